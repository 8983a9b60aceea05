"""Entity status stamps (one INSERT ... SELECT each) and the driver-level inserts behind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from mlgraph.store import Store
from mlgraph.store import tables as t
from mlgraph.store.prebuilt import driver_insert
from tests.builders import entity, uri

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_stamps_keep_each_others_columns_and_skip_unknown_uris(store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "a"), entity("Dataset", "b")])
    a, b, missing = uri("Dataset", "a"), uri("Dataset", "b"), uri("Dataset", "nope")

    store.mark_hydrated([a, a, missing], T0)  # repeated and unknown URIs are fine
    store.mark_enriched([a, b], T0 + timedelta(seconds=1))
    store.mark_unresolved({b: "gone"}, T0 + timedelta(seconds=2))

    found = store.statuses([a, b, missing])
    assert set(found) == {a, b}
    assert found[a].hydrated_at == T0  # the enricher's stamp did not overwrite it
    assert found[a].enriched_at == T0 + timedelta(seconds=1)
    assert (found[a].unresolved, found[a].unresolved_at) == (None, None)
    assert (found[b].hydrated_at, found[b].unresolved) == (None, "gone")

    # A later hydration resolves b, and keeps its enrichment stamp.
    store.mark_hydrated([b], T0 + timedelta(seconds=3))
    again = store.status(b)
    assert again is not None
    assert again.hydrated_at == T0 + timedelta(seconds=3)
    assert again.enriched_at == T0 + timedelta(seconds=1)
    assert (again.unresolved, again.unresolved_at) == (None, None)


def test_many_stamps_at_once_cross_the_chunk_size(store: Store) -> None:
    datasets = [entity("Dataset", f"d{i:04}") for i in range(1_203)]
    store.transact(upsert=datasets)
    uris = [d.uri for d in datasets]
    store.mark_hydrated(uris, T0)
    found = store.statuses(uris)
    assert len(found) == len(uris)
    assert {s.hydrated_at for s in found.values()} == {T0}


# PostgreSQL's JSONB cannot hold NUL characters nor lone surrogates, whoever writes them.
text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(provenance=st.none() | st.dictionaries(text, json_values, max_size=4))
def test_a_driver_insert_reads_back_as_sqlalchemy_writes_it(
    store: Store, provenance: dict[str, object] | None
) -> None:
    """Rows the driver path writes (JSON, NULL, UTC times) read back as SQLAlchemy's do."""
    store.transact(upsert=[entity("Dataset", "a")])
    insert = driver_insert if store.backend == "sqlite" else _sqlalchemy_insert
    with store.engine.connect() as conn:
        trans = conn.begin()
        node = conn.execute(sa.select(t.node.c.id)).scalar_one()
        label = conn.execute(sa.select(sa.func.min(t.label.c.id))).scalar_one()
        tx = conn.execute(sa.select(sa.func.max(t.tx.c.id))).scalar_one()
        insert(conn, t.edge, [{"src": node, "label": label, "dst": node, "tx": tx,
                               "origin": "inferred", "provenance": provenance}])  # fmt: skip
        insert(conn, t.cursor, [{"name": "raw", "position": 2, "updated_at": T0}])
        stored = conn.execute(sa.select(t.edge.c.provenance)).scalar_one()
        nulls = conn.execute(
            sa.select(sa.func.count()).where(t.edge.c.provenance.is_(None))
        ).scalar_one()
        at = conn.execute(sa.select(t.cursor.c.updated_at)).scalar_one()
        trans.rollback()
    assert stored == provenance
    assert nulls == (provenance is None)  # None is SQL NULL, not the JSON text 'null'
    assert at == T0


def _sqlalchemy_insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    conn.execute(table.insert(), rows)
