"""One saved search's notices from a cursor, as they come: what SSE and GraphQL stream.

A subscriber names the last notice it has (``after``) and receives every later
one exactly once, in outbox order, whatever happened in between: a service
restart, a dropped connection. Notices about entities it may not read are
skipped (the cursor moves past them all the same).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from mlgraph.reverse.delivery.access import Reader
from mlgraph.reverse.delivery.bell import OutboxBell
from mlgraph.reverse.delivery.notices import Notice, read_notices
from mlgraph.store import Store

BATCH = 200
STOP_CHECK_S = 0.5

# Asked before every read: what the subscriber may read now. It raises to end
# the stream (a revoked token, say).
Admit = Callable[[], Awaitable[Reader]]


async def follow(
    store: Store,
    bell: OutboxBell,
    search_id: int,
    after: int,
    admit: Admit,
    *,
    idle_s: float = 15.0,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[Notice | None]:
    """Notices of ``search_id`` after id ``after``, until ``stop`` is set; ``None`` after
    ``idle_s`` with none (a stream sends a keep-alive then)."""
    loop = asyncio.get_running_loop()
    cursor = after
    while stop is None or not stop.is_set():
        reader = await admit()
        seen = bell.last
        notices = await asyncio.to_thread(read_notices, store, search_id, cursor, BATCH)
        for notice in notices:
            cursor = notice.id
            if notice.kind == "invalid" or reader(notice.uri):
                yield notice
        if len(notices) == BATCH:
            continue
        woke = False
        deadline = loop.time() + idle_s
        # In slices, so that a stopped stream (its client gone) ends within one.
        while not woke and loop.time() < deadline:
            if stop is not None and stop.is_set():
                return
            slice_s = min(STOP_CHECK_S, deadline - loop.time())
            woke = await bell.wait(max(seen, cursor), slice_s)
        if not woke:
            yield None
