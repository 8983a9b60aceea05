"""The write path's statements, built once, and inserts without SQLAlchemy's per-row work.

SQLAlchemy spends about three times as long on a statement built afresh as
on running one built once (building it, computing its cache key, looking it
up), and for an ``executemany`` it turns every row into a parameter dict
through every column's bind processor. In the ingest path those were most of
a transaction's client CPU, so the hot statements are made here once per
dialect, and plain inserts of many rows go to the driver with only the
processors that do something (JSON, datetimes) applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect

S = TypeVar("S")


class ByDialect(Generic[S]):
    """One statement per backend, built on first use: ``stmt.of(conn)``."""

    def __init__(self, build: Callable[[bool], S]) -> None:
        self._build = build
        self._built: dict[bool, S] = {}

    def of(self, conn: Connection) -> S:
        postgres = conn.dialect.name == "postgresql"
        found = self._built.get(postgres)
        if found is None:
            found = self._built[postgres] = self._build(postgres)
        return found


def among(
    column: sa.ColumnElement[Any], name: str, element: sa.types.TypeEngine[Any], postgres: bool
) -> sa.ColumnElement[bool]:
    """``column IN :name``: an expanding list on SQLite, one array parameter on PostgreSQL.

    For the thousands of values of a bulk load, rendering and sending one
    parameter each cost more client time than the lookup (measured: 3x).
    """
    if postgres:
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(element)))
    return column.in_(sa.bindparam(name, expanding=True))


Processor = Callable[[Any], Any]
_inserts: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[tuple[int, Processor]]]] = {}


def _insert_of(
    dialect: Dialect, table: sa.Table, columns: tuple[str, ...]
) -> tuple[str, list[tuple[int, Processor]]]:
    key = (dialect.name, table.name, columns)
    found = _inserts.get(key)
    if found is None:
        quote = dialect.identifier_preparer.quote
        marks = ", ".join("?" for _ in columns)
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({marks})"
        )
        processors: list[tuple[int, Processor]] = []
        for i, name in enumerate(columns):
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((i, process))
        found = _inserts[key] = (sql, processors)
    return found


def driver_insert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys by the driver's ``executemany`` (SQLite).

    The values are those SQLAlchemy would send: each column's bind processor
    (JSON serialization, UTC datetimes) is applied, and only those.
    """
    columns = tuple(rows[0])
    sql, processors = _insert_of(conn.dialect, table, columns)
    if processors:
        params: list[tuple[Any, ...]] = []
        for row in rows:
            values = [row[c] for c in columns]
            for i, process in processors:
                values[i] = process(values[i])
            params.append(tuple(values))
    else:
        params = [tuple(row[c] for c in columns) for row in rows]
    conn.exec_driver_sql(sql, params)
