"""Fixtures shared by the whole suite: a store on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

# Registered on the metadata, so their tables are truncated between tests too.
import mlgraph.api.tables
import mlgraph.ingest.tables
import mlgraph.reverse.tables  # noqa: F401
from mlgraph.catalog import Schema, load_schema
from mlgraph.store import Store
from mlgraph.store.engine import create_engine
from mlgraph.store.tables import metadata

PG_ADMIN_URL = os.environ.get(
    "MLGRAPH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("MLGRAPH_REQUIRE_SERVICES") == "1"

StoreFactory = Callable[[], AbstractContextManager[Store]]


def service_missing(what: str) -> None:
    """Skip a test whose service is not running, or fail it when CI requires services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (MLGRAPH_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's ``Settings()`` gets a data directory of its own, never ``./.mlgraph``:
    a test must not see (or leave) another run's index or store."""
    monkeypatch.setenv("MLGRAPH_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, as the service does."""
    return "asyncio"


@pytest.fixture(scope="session")
def schema() -> Schema:
    return load_schema()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mlgraph_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        service_missing(f"PostgreSQL at {PG_ADMIN_URL}")
    url = sa.engine.make_url(create_engine(PG_ADMIN_URL).url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, schema: Schema
) -> StoreFactory:
    """Opens an empty store on ``backend``; each call starts from nothing."""
    pg_url = request.getfixturevalue("pg_database") if backend == "postgresql" else None
    counter = iter(range(1_000_000))

    @contextmanager
    def fresh() -> Iterator[Store]:
        if pg_url is not None:
            Store.open(pg_url, schema).close()  # migrate once, then empty it
            _truncate(pg_url)
            url = pg_url
        else:
            url = f"sqlite:///{tmp_path / f'store-{next(counter)}.db'}"
        # Built by the first walk, not in the background: a test knows which path answers.
        store = Store.open(url, schema, graph_cache="blocking")
        try:
            yield store
        finally:
            store.close()

    return fresh


@pytest.fixture
def store(store_factory: StoreFactory) -> Iterator[Store]:
    with store_factory() as opened:
        yield opened


@pytest.fixture
def store_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)
