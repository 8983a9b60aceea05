"""Edge labels (``Type.relationship``) as small integers, so edges stay compact."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlgraph.errors import ValidationError
from mlgraph.store import tables as t


class Labels:
    """The label table, cached: every label the schema declares has an id."""

    def __init__(self, engine: Engine, names: Iterable[str]) -> None:
        with engine.begin() as conn:
            known = dict(iter(conn.execute(sa.select(t.label.c.name, t.label.c.id))))
            if missing := [n for n in names if n not in known]:
                conn.execute(t.label.insert(), [{"name": n} for n in missing])
                known = dict(iter(conn.execute(sa.select(t.label.c.name, t.label.c.id))))
        self._ids: dict[str, int] = known
        self._names: dict[int, str] = {i: n for n, i in known.items()}

    def id(self, name: str) -> int:
        try:
            return self._ids[name]
        except KeyError:
            raise ValidationError(f"unknown edge label {name!r}") from None

    def name(self, label_id: int) -> str:
        return self._names[label_id]

    def ids(self, names: Iterable[str]) -> list[int]:
        return sorted(self._ids[n] for n in names if n in self._ids)
