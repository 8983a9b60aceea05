"""Following the change feed: what the enricher, the search indexer and the reverse
follower share.

Each keeps a durable named cursor and handles the feed in rounds (``step``);
this is the loop around the rounds: run to the end of the feed, say how far
behind it is, and run until told to stop, backing off when a round fails (the
store unreachable, or a bug) rather than dying, since the next round starts
from the cursor and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from mlgraph.store.store import Store

log = logging.getLogger("mlgraph.store")

Stats = TypeVar("Stats")

RETRY_AFTER_FAILURE_S = 1.0


class FeedFollower(Generic[Stats]):
    """A reader of the change feed with a durable cursor; subclasses handle a round."""

    cursor_name: ClassVar[str]  # the durable cursor's name in the store
    activity: ClassVar[str]  # what a round does, for the log ("indexing")

    store: Store
    stats: Stats
    idle_poll_s: float

    def step(self) -> bool:
        """Handle the next part of the feed; False when there was nothing to do."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the follower holds (called when ``run`` ends)."""

    def catch_up(self) -> Stats:
        """Handle the feed up to its end (including what handling it writes)."""
        while self.step():
            pass
        return self.stats

    def lag(self) -> int:
        """Transactions committed that the follower has not handled yet."""
        return self.store.last_tx() - self.store.cursor(self.cursor_name)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the feed until ``stop`` is set, each round in a worker thread."""
        try:
            while not stop.is_set():
                try:
                    busy = await asyncio.to_thread(self.step)
                except Exception:
                    log.exception("%s round failed; retrying", self.activity)
                    busy = False
                    await asyncio.sleep(RETRY_AFTER_FAILURE_S)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.idle_poll_s)
        finally:
            await asyncio.to_thread(self.close)
