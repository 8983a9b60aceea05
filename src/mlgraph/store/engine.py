"""Opening a database: SQLite tuned for one writer and many readers, or PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

WRITE = "mlgraph_write"  # execution option: this connection will write


class WriteLock:
    """Held by every writer of one SQLite database: by threads, and by processes.

    SQLite allows one writer; writers that race for it fall into SQLite's busy
    handler, which sleeps with growing pauses (up to 100 ms) and so delays a
    writer long after the lock is free. Queueing instead costs nothing: on a
    lock for the threads of this process, then on ``flock`` of a file beside
    the database for the processes (the API's and the followers'), which wakes
    the next writer as soon as the last lets go.
    """

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.Lock()
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._path is None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


_write_locks: weakref.WeakKeyDictionary[Engine, WriteLock] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def write_lock(engine: Engine) -> WriteLock:
    """The one lock every writer takes for the SQLite database of ``engine``."""
    with _registry_lock:
        lock = _write_locks.get(engine)
        if lock is None:
            database = engine.url.database
            # Only a SQLite file has a place for a lock file (PostgreSQL locks rows).
            file = (
                engine.dialect.name == "sqlite"
                and database not in (None, "", ":memory:")
                and not str(database).startswith("file:")
            )
            lock = WriteLock(Path(f"{database}-writer.lock") if file else None)
            _write_locks[engine] = lock
        return lock


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection for one write transaction, begun, committed on success.

    On SQLite the process-wide write lock is held throughout; PostgreSQL has
    row locks and needs none.
    """
    guard = write_lock(engine) if engine.dialect.name == "sqlite" else _NoLock()
    with guard, engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        yield conn


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs, as users write them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin() issue BEGIN itself (below), not pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",  # readers do not block the writer
            "synchronous=NORMAL",  # durable at checkpoints; safe with WAL
            "foreign_keys=ON",
            "busy_timeout=30000",
            "cache_size=-65536",
            "temp_store=MEMORY",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock up front, so its reads see the state it
        # writes over and transaction ids follow commit order.
        immediate = conn.get_execution_options().get(WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
