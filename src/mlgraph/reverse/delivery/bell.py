"""Wakes whoever waits for the outbox to grow: streams and the webhook dispatcher.

One poller per process asks for the newest outbox id while anyone waits (a
primary-key maximum: cheap), so a thousand open streams cost one query. It
asks at once when a transaction has committed in this process (the reverse
follower's, say), and every ``poll_s`` otherwise, which is how commits by a
follower in another process are seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import sqlalchemy as sa

from mlgraph.reverse.delivery.notices import last_notice_id
from mlgraph.store import Store

log = logging.getLogger("mlgraph.notify")
_COMMITTED = "mlgraph.bell.committed"


class OutboxBell:
    def __init__(self, store: Store, poll_s: float = 0.1) -> None:
        self.store = store
        self.poll_s = poll_s
        self.last = -1  # the newest outbox id seen; -1 before the first look
        self._event: asyncio.Event | None = None
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nudge: asyncio.Event | None = None
        self._listening = False

    def ring(self) -> None:
        """Wake every waiter now (they read the outbox again). Call from the loop's thread."""
        if self._event is not None:
            event, self._event = self._event, asyncio.Event()
            event.set()

    async def wait(self, seen: int, timeout_s: float) -> bool:
        """Until the outbox may hold an id above ``seen``, or ``timeout_s``; False on timeout.

        True means "read again": the outbox grew (not necessarily for the
        waiter's search) or someone rang.
        """
        if self.last > seen:
            return True
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        self._waiters += 1
        if self._poller is None or self._poller.done():
            self._start()
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1
        return True

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._nudge = asyncio.Event()
        if not self._listening:
            sa.event.listen(self.store.engine, "commit", self._committing)
            sa.event.listen(self.store.engine, "checkin", self._checked_in)
            self._listening = True
        self._poller = asyncio.create_task(self._poll())

    def _committing(self, conn: Any) -> None:
        # Called before the commit is done: a query now might not see it yet. The
        # connection goes back to the pool once it is (below).
        conn.info[_COMMITTED] = True

    def _checked_in(self, _dbapi_conn: Any, record: Any) -> None:
        """A connection that committed is back in the pool (any thread): look now."""
        if record is None or not record.info.pop(_COMMITTED, False):
            return
        loop, nudge = self._loop, self._nudge
        if self._waiters and loop is not None and nudge is not None and not nudge.is_set():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(nudge.set)

    async def _poll(self) -> None:
        nudge = self._nudge
        assert nudge is not None
        while self._waiters > 0:
            nudge.clear()
            try:
                newest = await asyncio.to_thread(last_notice_id, self.store)
            except Exception:  # the store is unreachable for a moment: keep polling
                log.exception("reading the outbox failed")
                newest = self.last
            if newest != self.last:
                self.last = newest
                self.ring()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(nudge.wait(), self.poll_s)

    async def close(self) -> None:
        if self._listening:
            sa.event.remove(self.store.engine, "commit", self._committing)
            sa.event.remove(self.store.engine, "checkin", self._checked_in)
            self._listening = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
