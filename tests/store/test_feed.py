"""The change feed: commit order, paging, durable cursors."""

from __future__ import annotations

from mlgraph.store import Op, Store
from tests.builders import entity, uri
from tests.conftest import StoreFactory


def test_changes_come_in_tx_order_with_what_changed(store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "a")])
    store.transact(upsert=[entity("Feature", "f", references={"data": uri("Dataset", "a")})])
    store.retract(uri("Feature", "f"))
    changes = store.changes_since(0)
    assert [c.tx for c in changes] == [1, 2, 3]
    assert [(i.kind, i.op, i.uri) for i in changes[0].items] == [
        ("entity", Op.CREATE, uri("Dataset", "a"))
    ]
    assert {(i.kind, i.op) for i in changes[1].items} == {
        ("entity", Op.CREATE),
        ("edge", Op.ASSERT),
    }
    edge = next(i for i in changes[1].items if i.kind == "edge")
    assert (edge.uri, edge.label, edge.other) == (
        uri("Feature", "f"),
        "Feature.data",
        uri("Dataset", "a"),
    )
    assert changes[2].uris == {uri("Feature", "f"), uri("Dataset", "a")}


def test_paging_through_the_feed(store: Store) -> None:
    for i in range(7):
        store.transact(upsert=[entity("Dataset", f"d{i}")])
    seen: list[int] = []
    cursor = 0
    while page := store.changes_since(cursor, limit=3):
        seen += [c.tx for c in page]
        cursor = page[-1].tx
    assert seen == list(range(1, 8))


def test_cursors_are_durable(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        assert store.cursor("indexer") == 0
        store.transact(upsert=[entity("Dataset", "a")])
        store.save_cursor("indexer", 1)
        store.save_cursor("indexer", 1)  # saving again is fine
        store.save_cursor("percolator", 0)
        url = store.engine.url
        assert store.summary()["cursors"] == {"indexer": 1, "percolator": 0}
        from mlgraph.store import Store as Reopened

        with Reopened.open(url.render_as_string(hide_password=False), store.schema) as again:
            assert again.cursor("indexer") == 1
            assert again.changes_since(again.cursor("indexer")) == []
