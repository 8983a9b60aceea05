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
# While idle, a follower looks for news every ``idle_poll_s`` (a one-row query)
# and runs a whole round only when there is some, or after this long: rounds
# also do timed work (staleness sweeps, relative dates).
IDLE_ROUND_S = 1.0
# The longest wait between two looks for news: the wait doubles from the
# follower's ``idle_poll_s`` while nothing happens, and is back at it after news.
IDLE_POLL_MAX_S = 0.4
# Rounds start at most this often: under a trickle of changes each round would
# otherwise take a transaction or two and pay its fixed costs (a cursor write,
# an index commit) for them. Like a search engine's refresh interval, it bounds
# how long a change waits to be followed; under a backlog rounds are longer.
ROUND_EVERY_S = 0.1


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

    def news(self) -> object:
        """A cheap token that changes whenever a round may find work: by default the
        feed's last transaction. Followers with other inputs add theirs."""
        return self.store.last_tx()

    def lag(self) -> int:
        """Transactions committed that the follower has not handled yet."""
        return self.store.last_tx() - self.store.cursor(self.cursor_name)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the feed until ``stop`` is set, each round in a worker thread."""
        poll_s = self.idle_poll_s
        try:
            while not stop.is_set():
                started = asyncio.get_running_loop().time()
                try:
                    # Read before the round: news committed during it shows as a change.
                    mark = await asyncio.to_thread(self.news)
                    busy = await asyncio.to_thread(self.step)
                except Exception:
                    log.exception("%s round failed; retrying", self.activity)
                    await asyncio.sleep(RETRY_AFTER_FAILURE_S)
                    continue
                if not busy:
                    poll_s = await self._idle(stop, mark, poll_s)
                    continue
                poll_s = self.idle_poll_s
                wait = started + ROUND_EVERY_S - asyncio.get_running_loop().time()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
        finally:
            await asyncio.to_thread(self.close)

    async def _idle(self, stop: asyncio.Event, mark: object, poll_s: float) -> float:
        """Until there is news, ``IDLE_ROUND_S`` has passed, or ``stop`` is set; looking
        for news every ``poll_s``, then less often. The next wait is returned.

        An idle round costs a few queries and, for the indexer, a file lock; a
        look for news, one query, but also a thread's wake-up: three followers
        looking 20 times a second kept an idle follower process at 7% of a core.
        """
        loop = asyncio.get_running_loop()
        until = loop.time() + IDLE_ROUND_S
        while loop.time() < until:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
            if stop.is_set():
                return poll_s
            try:
                if await asyncio.to_thread(self.news) != mark:
                    return self.idle_poll_s
            except Exception:  # the round that follows will log it
                return self.idle_poll_s
            poll_s = min(IDLE_POLL_MAX_S, poll_s * 2)
        return poll_s
