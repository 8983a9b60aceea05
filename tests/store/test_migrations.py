"""The Alembic migrations create exactly the tables the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import mlgraph.api.tables
import mlgraph.ingest.tables
import mlgraph.reverse.tables  # noqa: F401 - registers every table on the metadata
from mlgraph.store import Store, migrate
from mlgraph.store.tables import metadata


def test_migrations_match_the_declared_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []


def test_upgrading_again_is_a_no_op(store: Store) -> None:
    migrate.upgrade(store.engine)
    head = migrate.head_revision()
    assert head is not None and migrate.current_revision(store.engine) == head
