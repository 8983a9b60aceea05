"""Concurrent writers: tx ids follow commit order, the feed never skips, no update is lost.

Each writer is its own Store (its own engine and connections), as separate
processes would be, so on PostgreSQL only the advisory lock orders them. A
reader follows the feed while they write, as the indexer will.
"""

from __future__ import annotations

import threading
from collections import Counter

from mlgraph.store import Edge, Store
from tests.builders import entity, uri
from tests.conftest import StoreFactory

WRITERS = 6
ROUNDS = 15
HUB = uri("Dataset", "hub")


def write(url: str, store: Store, writer: int, failures: list[BaseException]) -> None:
    try:
        with Store.open(url, store.schema, upgrade=False) as mine:
            for round_ in range(ROUNDS):
                pipeline = f"p{writer}"
                mine.transact(
                    upsert=[
                        entity("Pipeline", pipeline, attributes={"schedule": f"r{round_}"}),
                        # Everyone rewrites the same entity: each write must become a version.
                        entity("Dataset", "shared", description=f"w{writer}-r{round_}"),
                    ],
                    assert_edges=[Edge(HUB, "produced_by", uri("Pipeline", pipeline))],
                )
    except BaseException as exc:  # surfaced by the test below
        failures.append(exc)


def follow(store: Store, stop: threading.Event, seen: list[int]) -> None:
    cursor = 0
    while True:
        done = stop.is_set()  # read before the last poll, so nothing committed is missed
        for change in store.changes_since(cursor, limit=50):
            seen.append(change.tx)
            cursor = change.tx
        if done:
            return


def test_concurrent_writers_and_a_live_feed_reader(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.transact(upsert=[entity("Dataset", "hub")])
        url = store.engine.url.render_as_string(hide_password=False)
        failures: list[BaseException] = []
        seen: list[int] = []
        stop = threading.Event()
        reader = threading.Thread(target=follow, args=(store, stop, seen))
        reader.start()
        writers = [
            threading.Thread(target=write, args=(url, store, w, failures)) for w in range(WRITERS)
        ]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        stop.set()
        reader.join()
        assert not failures, failures

        total = 1 + WRITERS * ROUNDS
        # The reader saw every commit exactly once, in tx order, with no gap.
        assert seen == list(range(1, total + 1))
        assert store.last_tx() == total
        # No lost update: every write to the shared entity is a version of its own.
        versions = store.history(uri("Dataset", "shared"))
        assert len(versions) == WRITERS * ROUNDS
        written = Counter(
            (v.entity.description or "").split("-")[0] for v in versions if v.entity is not None
        )
        assert written == {f"w{w}": ROUNDS for w in range(WRITERS)}
        # Every writer's last state and edge is there.
        for n in range(WRITERS):
            assert store.require(uri("Pipeline", f"p{n}")).attributes == {
                "schedule": f"r{ROUNDS - 1}"
            }
        assert len(store.neighbors(HUB, relationships=["produced_by"])) == WRITERS
