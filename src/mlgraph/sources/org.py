"""The in-memory organisation: every object of every source, by collection and id.

Objects are plain dicts in their read shape (docs/sources.md). They are
replaced, never mutated in place, and every read hands out a copy, so a reader
on another thread (a test, the demo) always sees a whole object. One lock
guards the maps; it is held only for dict operations, never across an await.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from mlgraph.sources.resources import COLLECTIONS, resource

Object = dict[str, Any]


def isoformat(moment: datetime, timespec: str = "auto") -> str:
    """ISO-8601 UTC with a ``Z``; by default microseconds only when there are some."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class MonotonicClock:
    """Wall-clock time that never repeats or goes back, so every change moves ``updated_at``.

    Always with microseconds, so its stamps also sort as text.
    """

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            moment = max(self._now(), self._last + timedelta(microseconds=1))
            self._last = moment
        return isoformat(moment, "microseconds")


class InvalidPageToken(ValueError):
    pass


def encode_page_token(after_id: str) -> str:
    return base64.urlsafe_b64encode(after_id.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidPageToken(f"invalid page_token {token!r}") from None


class Organisation:
    """Objects keyed by collection and id, with ``updated_at`` kept by ``clock``."""

    def __init__(self, clock: Callable[[], str] | None = None) -> None:
        self.clock: Callable[[], str] = clock or MonotonicClock()
        self._objects: dict[str, dict[str, Object]] = {c: {} for c in COLLECTIONS}
        # Sorted ids per collection, rebuilt lazily after an insert or delete:
        # paging walks ids in order and a page is a bisect, not a sort.
        self._sorted: dict[str, list[str]] = {}
        self._lock = threading.RLock()

    # --- reads ---------------------------------------------------------------

    def get(self, collection: str, id: str) -> Object | None:
        """A copy of the object, or None."""
        with self._lock:
            found = self._table(collection).get(id)
        return copy.deepcopy(found) if found is not None else None

    def get_many(self, collection: str, ids: Iterable[str]) -> list[Object]:
        """Copies of those of ``ids`` that exist, in the order asked, each once."""
        with self._lock:
            table = self._table(collection)
            found = [table[id] for id in dict.fromkeys(ids) if id in table]
        return copy.deepcopy(found)

    def has(self, collection: str, id: str) -> bool:
        with self._lock:
            return id in self._table(collection)

    def count(self, collection: str) -> int:
        with self._lock:
            return len(self._table(collection))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {c: len(objects) for c, objects in self._objects.items()}

    def total(self) -> int:
        return sum(self.counts().values())

    def ids(self, collection: str) -> list[str]:
        """Every id of the collection, in id order."""
        with self._lock:
            return list(self._sorted_ids(collection))

    def objects(self, collection: str) -> list[Object]:
        """Copies of every object of the collection, in id order."""
        with self._lock:
            table = self._table(collection)
            return [copy.deepcopy(table[id]) for id in self._sorted_ids(collection)]

    def iter_objects(self, collection: str) -> Iterator[Object]:
        """The stored objects themselves, for fast scans: read, never modify them."""
        with self._lock:
            snapshot = list(self._table(collection).values())
        return iter(snapshot)

    def page(
        self, collection: str, limit: int, page_token: str | None = None
    ) -> tuple[list[dict[str, str]], str | None]:
        """One page of ``{"id", "updated_at"}`` in id order and the token of the next page.

        The token is the last id returned, so a page is stable under concurrent
        inserts and deletes: every id present for the whole walk is seen once.
        """
        after = decode_page_token(page_token) if page_token else None
        with self._lock:
            ids = self._sorted_ids(collection)
            start = bisect.bisect_right(ids, after) if after is not None else 0
            chosen = ids[start : start + limit]
            table = self._table(collection)
            items = [{"id": id, "updated_at": table[id]["updated_at"]} for id in chosen]
            more = start + limit < len(ids)
        return items, (encode_page_token(chosen[-1]) if more and chosen else None)

    # --- writes --------------------------------------------------------------

    def insert(self, collection: str, obj: Object) -> None:
        """Store ``obj`` as it is (generation and loading); replaces an object with its id."""
        id = obj[resource(collection).id_field]
        with self._lock:
            table = self._table(collection)
            if id not in table:
                self._sorted.pop(collection, None)
            table[id] = obj

    def create(self, collection: str, obj: Object) -> Object:
        """Add a new object, stamping ``updated_at``; KeyError if the id is taken."""
        id = obj[resource(collection).id_field]
        with self._lock:
            if id in self._table(collection):
                raise KeyError(f"{collection}/{id} already exists")
            stored = {**copy.deepcopy(obj), "updated_at": self.clock()}
            self.insert(collection, stored)
        return copy.deepcopy(stored)

    def update(self, collection: str, id: str, changes: Object) -> Object:
        """Replace the given fields, stamping ``updated_at``; KeyError if missing."""
        with self._lock:
            current = self._table(collection).get(id)
            if current is None:
                raise KeyError(f"{collection}/{id} does not exist")
            stored = {**current, **copy.deepcopy(changes), "updated_at": self.clock()}
            self._table(collection)[id] = stored
        return copy.deepcopy(stored)

    def delete(self, collection: str, id: str) -> Object:
        """Remove the object and return it; KeyError if missing."""
        with self._lock:
            table = self._table(collection)
            if id not in table:
                raise KeyError(f"{collection}/{id} does not exist")
            self._sorted.pop(collection, None)
            return table.pop(id)

    # --- internals -------------------------------------------------------------

    def _table(self, collection: str) -> dict[str, Object]:
        try:
            return self._objects[collection]
        except KeyError:
            resource(collection)  # raises the readable error
            raise

    def _sorted_ids(self, collection: str) -> list[str]:
        ids = self._sorted.get(collection)
        if ids is None:
            ids = self._sorted[collection] = sorted(self._table(collection))
        return ids
