"""The reverse follower: follows the change feed and records who enters and leaves each search.

For every transaction after its cursor (``percolator``), it reads the
documents of the entities the transaction touched as of just before it and as
of it, percolates both, and records the difference as transitions: *entered*
and *left*. A transaction that renames an entity touches the documents of its
neighbours too (they list its name), so those are matched again as well. A
deleted entity has no document after, so it leaves every search; a purged
one has no history either, so what it leaves is read from the membership.

Both sides are read from history, not from the membership table, so handling
a transaction again finds the very same transitions, and the outbox's unique
key keeps one of each: handling the feed twice notifies once. A batch's
transitions, membership changes and cursor are written in one database
transaction.

Saved searches are picked up at the start of every round. A new or edited
search first gets its membership built, with no transitions, as of the
transaction that was the last when it was saved (the follower stops a round
there to do so), and takes part in matching from the next transaction on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from mlgraph.reverse import tables as rt
from mlgraph.reverse.compiler import CompiledSearch
from mlgraph.reverse.documents import Document
from mlgraph.reverse.mapping import DocumentMapping, document_mapping
from mlgraph.reverse.outbox import Found, record, replace_members
from mlgraph.reverse.percolator import Percolator
from mlgraph.reverse.reading import DocumentReader
from mlgraph.reverse.saved import compiled_of
from mlgraph.store import Change, Op, Store, feed
from mlgraph.store import tables as t
from mlgraph.store.engine import writing

log = logging.getLogger("mlgraph.reverse")

CURSOR = "percolator"
NAMED_OPS = frozenset({Op.CREATE, Op.UPDATE, Op.RETRACT})


@dataclass
class ReverseStats:
    rounds: int = 0
    transactions: int = 0
    documents: int = 0  # documents matched (before and after count as two)
    entered: int = 0
    left: int = 0
    built: int = 0  # searches whose membership was (re)built


@dataclass(frozen=True, slots=True)
class _Search:
    revision: int
    built_tx: int  # transitions only for transactions after this one


@dataclass(frozen=True, slots=True)
class _Pending:
    """A search saved or edited, whose membership is still to be built."""

    revision: int
    saved_tx: int
    compiled: CompiledSearch


class ReverseFollower:
    def __init__(
        self,
        store: Store,
        *,
        mapping: DocumentMapping | None = None,
        batch: int = 100,
        idle_poll_s: float = 0.2,
    ) -> None:
        self.store = store
        self.mapping = mapping or document_mapping(store.schema)
        self.reader = DocumentReader(store)
        self.percolator = Percolator(self.mapping)
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.stats = ReverseStats()
        self._searches: dict[int, _Search] = {}
        self._pending: dict[int, _Pending] = {}
        self._seen_revision = 0

    # -- saved searches ------------------------------------------------------------

    def sync_searches(self) -> bool:
        """Take in searches saved or deleted since the last look; True if any were."""
        s = rt.saved_search
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s).where(s.c.revision > self._seen_revision).order_by(s.c.revision)
            ).all()
            count = conn.execute(sa.select(sa.func.count()).select_from(s)).scalar_one()
            known = set(self._searches) | set(self._pending)
            gone: set[int] = set()
            if count != len(known | {r.id for r in rows}):  # some were deleted
                ids = {int(i) for i in conn.execute(sa.select(s.c.id)).scalars()}
                gone = known - ids
        for search_id in gone:
            self._forget(search_id)
        for row in rows:
            compiled = compiled_of(row, self.mapping)
            self._forget(row.id)
            if row.built_revision == row.revision and row.built_tx is not None:
                self._adopt(row.id, row.revision, row.built_tx, compiled)
            else:
                self._pending[row.id] = _Pending(row.revision, row.saved_tx, compiled)
            self._seen_revision = max(self._seen_revision, row.revision)
        return bool(rows or gone)

    def _adopt(
        self, search_id: int, revision: int, built_tx: int, compiled: CompiledSearch
    ) -> None:
        self.percolator.add(search_id, compiled)
        self._searches[search_id] = _Search(revision, built_tx)

    def _forget(self, search_id: int) -> None:
        self.percolator.remove(search_id)
        self._searches.pop(search_id, None)
        self._pending.pop(search_id, None)

    def _build_due(self, cursor: int) -> bool:
        """Build, as of ``cursor``, the pending searches saved at or before it."""
        due = {i: p for i, p in self._pending.items() if p.saved_tx <= cursor}
        if not due:
            return False
        building = Percolator(self.mapping, self.percolator.statistics)
        for search_id, pending in due.items():
            building.add(search_id, pending.compiled)
        now = self._time_of(cursor)
        members: list[tuple[int, str]] = []
        for docs in self.reader.every_document(as_of=cursor):
            for doc in docs:
                members.extend((s, doc["uri"]) for s in building.match(doc, now))
        s = rt.saved_search
        with writing(self.store.engine) as conn:
            replace_members(conn, due, members, cursor)
            for search_id, pending in due.items():
                conn.execute(
                    s.update()
                    .where(s.c.id == search_id, s.c.revision == pending.revision)
                    .values(built_tx=cursor, built_revision=pending.revision)
                )
        for search_id, pending in due.items():
            del self._pending[search_id]
            self._adopt(search_id, pending.revision, cursor, pending.compiled)
        self.stats.built += len(due)
        return True

    def _time_of(self, tx: int) -> float:
        """The commit time of ``tx``: what ``now`` means in a search matched at it."""
        with self.store.engine.connect() as conn:
            at = conn.execute(sa.select(t.tx.c.at).where(t.tx.c.id == tx)).scalar()
        return 0.0 if at is None else float(at.timestamp())

    # -- the feed ------------------------------------------------------------------

    def step(self) -> bool:
        """Handle one batch of the feed; False when there was nothing to do."""
        changed = self.sync_searches()
        cursor = self.store.cursor(CURSOR)
        changed = self._build_due(cursor) or changed
        changes = self.store.changes_since(cursor, self.batch)
        if self._pending:
            # Stop where the next pending search was saved: it is built as of
            # exactly that transaction, and matched from the one after.
            until = min(p.saved_tx for p in self._pending.values())
            changes = [c for c in changes if c.tx <= until]
        if not changes:
            return changed
        found: list[Found] = []
        members: dict[tuple[int, str], int | None] = {}
        for change in changes:
            self._handle(change, found, members)
        with writing(self.store.engine) as conn:
            gone = record(conn, found, members)
            feed.save_cursor(conn, CURSOR, changes[-1].tx)
        for search_id in gone:
            self._forget(search_id)
        kept = [f for f in found if f.search not in gone]
        self.stats.rounds += 1
        self.stats.transactions += len(changes)
        self.stats.entered += sum(1 for f in kept if f.transition == "entered")
        self.stats.left += sum(1 for f in kept if f.transition == "left")
        return True

    def _handle(
        self, change: Change, found: list[Found], members: dict[tuple[int, str], int | None]
    ) -> None:
        tx = change.tx
        touched = change.uris
        before = self.reader.documents(touched, as_of=tx - 1)
        after = self.reader.documents(touched, as_of=tx)
        renamed = {
            i.uri
            for i in change.items
            if i.kind == "entity"
            and i.op in NAMED_OPS
            and _name(before, i.uri) != _name(after, i.uri)
        }
        if renamed:
            # Their neighbours' documents list their names: those changed too.
            extra = self._related(before, after, renamed) - touched
            before.update(self.reader.documents(extra, as_of=tx - 1))
            after.update(self.reader.documents(extra, as_of=tx))
            touched = touched | extra
        purged = {i.uri for i in change.items if i.kind == "entity" and i.op == Op.PURGE}
        now = change.at.timestamp()
        for uri in sorted(touched):
            was = (
                self._stored_members(uri, members, tx)
                if uri in purged
                else self._match(before.get(uri), tx, now)
            )
            doc = after.get(uri)
            if doc is not None:
                self.percolator.observe(doc)
            is_now = self._match(doc, tx, now)
            for search in sorted(is_now - was):
                found.append(Found(search, uri, tx, "entered", change.at))
                members[(search, uri)] = tx
            for search in sorted(was - is_now):
                found.append(Found(search, uri, tx, "left", change.at))
                members[(search, uri)] = None

    def _match(self, doc: Document | None, tx: int, now: float) -> set[int]:
        if doc is None:
            return set()
        self.stats.documents += 1
        searches = self._searches
        return {s for s in self.percolator.match(doc, now) if searches[s].built_tx < tx}

    def _related(
        self, before: Mapping[str, Document], after: Mapping[str, Document], uris: Iterable[str]
    ) -> set[str]:
        paths = self.mapping.relationships
        found: set[str] = set()
        for uri in uris:
            for doc in (before.get(uri), after.get(uri)):
                if doc is not None:
                    for path in paths:
                        found.update(doc.get(path, ()))
        return found

    def _stored_members(
        self, uri: str, pending: Mapping[tuple[int, str], int | None], tx: int
    ) -> set[int]:
        """The searches ``uri`` is a member of, with this round's changes applied."""
        m = rt.membership
        with self.store.engine.connect() as conn:
            stored = {
                int(s) for s in conn.execute(sa.select(m.c.search).where(m.c.uri == uri)).scalars()
            }
        for (search, member), since in pending.items():
            if member == uri:
                if since is None:
                    stored.discard(search)
                else:
                    stored.add(search)
        searches = self._searches
        return {s for s in stored if s in searches and searches[s].built_tx < tx}

    # -- running -------------------------------------------------------------------

    def catch_up(self) -> ReverseStats:
        """Handle the feed up to its end."""
        while self.step():
            pass
        return self.stats

    def lag(self) -> int:
        """Transactions committed that the follower has not handled yet."""
        return self.store.last_tx() - self.store.cursor(CURSOR)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the feed until ``stop`` is set."""
        while not stop.is_set():
            try:
                busy = await asyncio.to_thread(self.step)
            except Exception:  # the store is unreachable or a bug: log, back off, go on
                log.exception("reverse-search round failed; retrying")
                busy = False
                await asyncio.sleep(1.0)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_poll_s)


def _name(docs: Mapping[str, Document], uri: str) -> str | None:
    doc = docs.get(uri)
    return None if doc is None else str(doc["name"])
