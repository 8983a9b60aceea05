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
A search marked invalid (it no longer compiles, see recompile.py) takes no part.

Time passes too (``clock.py``): a search with relative dates (``now-7d``) can
change its answer about an entity nobody touched. Whenever the follower
evaluates such a pair, it notes the next moment the answer may flip
(``search_due``); each round first re-checks the rows due before the next
transaction (or before the clock's now, when the feed is idle), recording the
transitions at the moment they happened and at the transaction the store
stood at. The follower's time never goes back: a transaction committed
"before" a moment already reached is matched as of that moment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from mlgraph.reverse import clock, reading
from mlgraph.reverse import tables as rt
from mlgraph.reverse.clock import Micros, Now, TimeRule, system_now, time_rule
from mlgraph.reverse.compiler import CompiledSearch
from mlgraph.reverse.errors import DslError
from mlgraph.reverse.outbox import Change as Move
from mlgraph.reverse.outbox import Found, existing_searches, members_of, record, replace_members
from mlgraph.reverse.percolator import Percolator
from mlgraph.reverse.predicate import Prepared
from mlgraph.reverse.reading import DocumentReader
from mlgraph.reverse.saved import compiled_of
from mlgraph.search.filter_document import Document
from mlgraph.search.filter_fields import DocumentMapping
from mlgraph.search.mapping import filter_mapping
from mlgraph.store import Change, Op, Store, feed
from mlgraph.store import tables as t
from mlgraph.store.engine import writing
from mlgraph.store.following import FeedFollower

log = logging.getLogger("mlgraph.reverse")

CURSOR = "percolator"
NAMED_OPS = frozenset({Op.CREATE, Op.UPDATE, Op.RETRACT})
# A built search's membership is as of ``built``, if it was not edited meanwhile.
_MARK_BUILT = (
    rt.saved_search.update()
    .where(
        rt.saved_search.c.id == sa.bindparam("search"),
        rt.saved_search.c.revision == sa.bindparam("at_revision"),
    )
    .values(built_tx=sa.bindparam("built"), built_revision=sa.bindparam("at_revision"))
)


@dataclass
class ReverseStats:
    rounds: int = 0
    transactions: int = 0
    documents: int = 0  # documents matched (before and after count as two)
    entered: int = 0
    left: int = 0
    built: int = 0  # searches whose membership was (re)built
    due: int = 0  # (search, entity) pairs re-checked because time passed


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


class ReverseFollower(FeedFollower[ReverseStats]):
    cursor_name = CURSOR
    activity = "reverse-search"

    def __init__(
        self,
        store: Store,
        *,
        mapping: DocumentMapping | None = None,
        batch: int = 100,
        idle_poll_s: float = 0.2,
        now: Now = system_now,
    ) -> None:
        self.store = store
        self.mapping = mapping or filter_mapping(store.schema)
        self.reader = DocumentReader(store)
        self.percolator = Percolator(self.mapping)
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.stats = ReverseStats()
        self._searches: dict[int, _Search] = {}
        self._pending: dict[int, _Pending] = {}
        self._invalid: set[int] = set()  # searches that no longer compile: left out
        self._seen_revision = 0
        self.now = now
        # The searches whose answer time can change, with what makes it change.
        self._timed: dict[int, tuple[CompiledSearch, TimeRule]] = {}
        self._floor: Micros = 0  # the follower's time: never goes back
        # What a renaming changes in its neighbours' documents: if no search reads
        # one of these, a renaming matches no neighbour again.
        self._name_paths = frozenset(f"{p}.name" for p in self.mapping.relationships)
        self._relationships = frozenset(self.mapping.relationships)
        self._wanted: frozenset[str] | None = None  # the relationships searches read

    def news(self) -> object:
        """The feed's end, and the saved searches' last revision and number (an edit
        or a deletion is news too)."""
        s = rt.saved_search
        with self.store.engine.connect() as conn:  # one connection for both looks
            searches = conn.execute(sa.select(sa.func.max(s.c.revision), sa.func.count())).one()
            return feed.last_tx(conn), tuple(searches)

    # -- saved searches ------------------------------------------------------------

    def sync_searches(self) -> bool:
        """Take in searches saved or deleted since the last look; True if any were."""
        s = rt.saved_search
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s).where(s.c.revision > self._seen_revision).order_by(s.c.revision)
            ).all()
            count = conn.execute(sa.select(sa.func.count()).select_from(s)).scalar_one()
            known = set(self._searches) | set(self._pending) | self._invalid
            gone: set[int] = set()
            if count != len(known | {r.id for r in rows}):  # some were deleted
                ids = {int(i) for i in conn.execute(sa.select(s.c.id)).scalars()}
                gone = known - ids
        for search_id in gone:
            self._forget(search_id)
        for row in rows:
            self._forget(row.id)
            self._seen_revision = max(self._seen_revision, row.revision)
            if row.invalid_reason is not None:
                self._invalid.add(row.id)  # no longer compiles: matched again once fixed
                continue
            try:
                compiled = compiled_of(row, self.mapping)
            except DslError as exc:  # stale, and not recompiled yet (recompile.py will)
                log.warning("saved search %d does not compile, left out: %s", row.id, exc)
                self._invalid.add(row.id)
                continue
            if row.built_revision == row.revision and row.built_tx is not None:
                self._adopt(row.id, row.revision, row.built_tx, compiled)
            else:
                self._pending[row.id] = _Pending(row.revision, row.saved_tx, compiled)
        return bool(rows or gone)

    def _adopt(
        self, search_id: int, revision: int, built_tx: int, compiled: CompiledSearch
    ) -> None:
        self.percolator.add(search_id, compiled)
        self._wanted = None
        self._searches[search_id] = _Search(revision, built_tx)
        rule = time_rule(compiled)
        if rule is not None:
            self._timed[search_id] = (compiled, rule)

    def _relations(self) -> frozenset[str]:
        """The relationships (as documents name them) some search reads: the ``x`` of
        ``x``, ``x.id`` and ``x.name``."""
        if self._wanted is None:
            bases = {p.rsplit(".", 1)[0] if p.endswith((".id", ".name")) else p for p in
                     self.percolator.fields_read()}  # fmt: skip
            self._wanted = frozenset(bases & self._relationships)
        return self._wanted

    def _forget(self, search_id: int) -> None:
        self._wanted = None
        self.percolator.remove(search_id)
        self._searches.pop(search_id, None)
        self._pending.pop(search_id, None)
        self._timed.pop(search_id, None)
        self._invalid.discard(search_id)

    def _build_due(self, cursor: int) -> bool:
        """Build, as of ``cursor``, the pending searches saved at or before it."""
        due = {i: p for i, p in self._pending.items() if p.saved_tx <= cursor}
        if not due:
            return False
        building = Percolator(self.mapping, self.percolator.statistics)
        rules: dict[int, TimeRule] = {}
        for search_id, pending in due.items():
            building.add(search_id, pending.compiled)
            rule = time_rule(pending.compiled)
            if rule is not None:
                rules[search_id] = rule
        # As of the follower's time (the clock's now when idle): a new search
        # is built silently as of now, not as of the last write long ago.
        at = self._floor = max(self._floor, clock.micros(self._time_of(cursor)))
        now = clock.seconds(at)
        members: list[tuple[int, str]] = []
        dues: dict[tuple[int, str], Micros | None] = {}
        for docs in self.reader.every_document(as_of=cursor):
            for doc in docs:
                # Every document passes by: a sample of them anchors the searches
                # well from the first change on.
                self.percolator.observe(doc)
                members.extend((s, doc["uri"]) for s in building.match(doc, now))
                if rules:
                    # Members and near misses alike: whoever time can carry across.
                    prepared = building.prepare(doc)
                    for search_id, rule in rules.items():
                        flip = clock.next_flip(clock.flip_times(rule, prepared), at)
                        if flip is not None:
                            dues[(search_id, doc["uri"])] = flip
        with writing(self.store.engine) as conn:
            replace_members(conn, due, members, cursor)
            clock.forget_dues(conn, due)
            clock.write_dues(conn, dues, alive=existing_searches(conn, due))
            conn.execute(
                _MARK_BUILT,
                [{"search": i, "at_revision": p.revision, "built": cursor} for i, p in due.items()],
            )
        for search_id, pending in due.items():
            del self._pending[search_id]
            self._adopt(search_id, pending.revision, cursor, pending.compiled)
        self.stats.built += len(due)
        return True

    def _time_of(self, tx: int) -> datetime:
        """The commit time of ``tx``: what ``now`` means in a search matched at it."""
        with self.store.engine.connect() as conn:
            at = conn.execute(sa.select(t.tx.c.at).where(t.tx.c.id == tx)).scalar()
        return clock.EPOCH if at is None else at

    # -- the feed ------------------------------------------------------------------

    def step(self) -> bool:
        """Handle one batch of the feed, or of what time changed; False when there was nothing."""
        changed = self.sync_searches()
        cursor = self.store.cursor(CURSOR)
        changes = self.store.changes_since(cursor, self.batch)
        # Time first, up to the next transaction (or now): that transaction is
        # then matched against the membership as it stood at its moment.
        horizon = clock.micros(changes[0].at if changes else self.now())
        if self._tick(cursor, horizon):
            return True
        self._floor = max(self._floor, horizon)
        changed = self._build_due(cursor) or changed
        if self._pending:
            # Stop where the next pending search was saved: it is built as of
            # exactly that transaction, and matched from the one after.
            until = min(p.saved_tx for p in self._pending.values())
            changes = [c for c in changes if c.tx <= until]
        if not changes:
            return changed
        found = _Round()
        with self.store.engine.connect() as conn:
            earliest = clock.earliest_due(conn)
            if self._searches:
                # The membership of what the round touches, read once; _handle keeps it
                # up to date with the round's own changes.
                found.stored = members_of(conn, set().union(*(c.uris for c in changes)))
        handled = 0
        for change in changes:
            at = max(clock.micros(change.at), self._floor)
            if handled and earliest is not None and earliest <= at:
                break  # time carries someone across first: the next round re-checks them
            flip = self._handle(change, at, found) if self._searches else None
            if flip is not None:
                earliest = flip if earliest is None else min(earliest, flip)
            self._floor = at
            handled += 1
        self._write(found, changes[handled - 1].tx)
        self.stats.rounds += 1
        self.stats.transactions += handled
        return True

    def _write(self, found: _Round, cursor: int | None) -> None:
        """Write a round's transitions, membership and due times (and the cursor) at once."""
        with writing(self.store.engine) as conn:
            gone = record(conn, found.transitions, found.members)
            alive = existing_searches(conn, {s for s, _ in found.dues})
            clock.write_dues(conn, found.dues, found.gone, alive)
            if cursor is not None:
                feed.save_cursor(conn, CURSOR, cursor)
        for search_id in gone:
            self._forget(search_id)
        kept = [f for f in found.transitions if f.search not in gone]
        self.stats.entered += sum(1 for f in kept if f.transition == "entered")
        self.stats.left += sum(1 for f in kept if f.transition == "left")

    # -- time ----------------------------------------------------------------------

    def _tick(self, cursor: int, horizon: Micros) -> bool:
        """Re-check the pairs due at or before ``horizon``, as the store stands at ``cursor``;
        False when none were due."""
        with self.store.engine.connect() as conn:
            rows = clock.due_rows(conn, horizon, self.batch)
            if not rows:
                return False
            m = rt.membership
            uris = sorted({u for _, u, _ in rows})
            stored: set[tuple[int, str]] = set()
            for i in range(0, len(uris), clock.CHUNK):
                part = uris[i : i + clock.CHUNK]
                query = sa.select(m.c.search, m.c.uri).where(m.c.uri.in_(part))
                stored.update((int(r.search), str(r.uri)) for r in conn.execute(query))
        docs = self.reader.documents(uris, as_of=cursor)
        found = _Round()
        for search_id, uri, due in rows:
            timed = self._timed.get(search_id)
            doc = docs.get(uri)
            if timed is None or doc is None:
                # A search being rebuilt (its build writes its rows again) or
                # deleted, an entity gone (the feed saw it leave): nothing to do.
                found.dues[(search_id, uri)] = None
                continue
            compiled, rule = timed
            prepared = compiled.prepare(doc)
            timing = (compiled, clock.flip_times(rule, prepared), prepared)
            member = (search_id, uri) in stored
            found.dues[(search_id, uri)] = _carry(
                (search_id, uri), timing, due, horizon, member, cursor, found
            )
        self._write(found, None)
        self.stats.due += len(rows)
        return True

    # -- the feed ------------------------------------------------------------------

    def _handle(self, change: Change, at: Micros, found: _Round) -> Micros | None:
        """Match what ``change`` touched as of the follower's time ``at``; the earliest
        moment time may change an answer it gave (None: never).

        The documents after are always read. A document before is read only
        where it can matter: for an entity whose matches after differ from its
        membership (which is what the document before matched, unless the feed
        is handled again), and for a renamed one, whose neighbours to match
        again it names.
        """
        with self.reader.reading() as conn:
            tx = change.tx
            touched = change.uris
            # Documents with only the relationships searches read, but now and then a
            # whole one, for the statistics (which count every field).
            counted = self.percolator.statistics.wants()
            relations = None if counted else self._relations()
            after = self.reader.documents(touched, as_of=tx, relations=relations)
            before: dict[str, Document] = {}
            read: set[str] = set()  # the URIs whose document before was read
            named = {
                i.uri for i in change.items if i.kind == "entity" and i.op in NAMED_OPS
            } & touched
            if named and self.percolator.reads_any(self._name_paths):
                names = reading.names(conn, named, as_of=tx - 1)
                renamed = {u for u in named if names.get(u) != _name(after, u)}
                if renamed:
                    # Their neighbours' documents list their names: those changed too.
                    # Who they are, every relationship of theirs tells.
                    before.update(self.reader.documents(renamed, as_of=tx - 1))
                    read |= renamed
                    if relations is not None:
                        after.update(self.reader.documents(renamed, as_of=tx))
                    extra = self._related(before, after, renamed) - touched
                    after.update(self.reader.documents(extra, as_of=tx, relations=relations))
                    touched = touched | extra
            purged = {i.uri for i in change.items if i.kind == "entity" and i.op == Op.PURGE}
            now = clock.seconds(at)
            stored = found.stored
            missing = touched - stored.keys()
            if missing:
                stored.update(members_of(conn, missing))
            is_now: dict[str, set[int]] = {}
            for uri in touched:
                doc = after.get(uri)
                if counted and doc is not None:
                    self.percolator.count(doc)
                is_now[uri] = self._match(doc, tx, now)
            differ = {
                u for u in touched - read - purged if is_now[u] != self._members(stored[u], tx)
            }
            if differ:
                before.update(self.reader.documents(differ, as_of=tx - 1, relations=relations))
                read |= differ
        members = found.members
        earliest: Micros | None = None
        for uri in sorted(touched):
            if uri in purged:
                was = self._members(stored[uri], tx)
            elif uri in read:
                was = self._match(before.get(uri), tx, now)
            else:
                was = is_now[uri]  # as the membership says: nothing changes
            doc = after.get(uri)
            now_in = is_now[uri]
            for search in sorted(now_in - was):
                found.transitions.append(Found(search, uri, tx, "entered", change.at))
                members[(search, uri)] = tx
                stored[uri].add(search)
            for search in sorted(was - now_in):
                found.transitions.append(Found(search, uri, tx, "left", change.at))
                members[(search, uri)] = None
                stored[uri].discard(search)
            flip = self._schedule(uri, doc, tx, at, found)
            if flip is not None:
                earliest = flip if earliest is None else min(earliest, flip)
        return earliest

    def _schedule(
        self, uri: str, doc: Document | None, tx: int, at: Micros, found: _Round
    ) -> Micros | None:
        """Note when time may next change the answer of each timed search about ``doc``."""
        if doc is None:  # gone: time changes nothing about it any more
            for key in [k for k in found.dues if k[1] == uri]:
                del found.dues[key]
            found.gone.add(uri)
            return None
        if not self._timed:
            return None
        prepared = self.percolator.prepare(doc)
        earliest: Micros | None = None
        searches = self._searches
        for search_id, (_, rule) in self._timed.items():
            if searches[search_id].built_tx >= tx:
                continue
            flip = clock.next_flip(clock.flip_times(rule, prepared), at)
            found.dues[(search_id, uri)] = flip
            if flip is not None:
                earliest = flip if earliest is None else min(earliest, flip)
        return earliest

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

    def _members(self, stored: set[int], tx: int) -> set[int]:
        """Of the searches an entity is a member of, those matched at ``tx``."""
        searches = self._searches
        return {s for s in stored if s in searches and searches[s].built_tx < tx}


def _name(docs: Mapping[str, Document], uri: str) -> str | None:
    doc = docs.get(uri)
    return None if doc is None else str(doc["name"])


@dataclass
class _Round:
    """What one round found, written in one database transaction."""

    transitions: list[Found] = field(default_factory=list)
    # (search, uri) -> the transaction it entered at, or None: no longer a member.
    members: dict[tuple[int, str], int | None] = field(default_factory=dict)
    # (search, uri) -> when time may next change the answer, or None: never.
    dues: dict[tuple[int, str], Micros | None] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # entities gone: none of their rows is due
    # uri -> the searches it is a member of: the table as the round began, with the
    # round's changes applied.
    stored: dict[str, set[int]] = field(default_factory=dict)


def _carry(
    pair: tuple[int, str],
    timed: tuple[CompiledSearch, list[Micros], Prepared],
    due: Micros,
    horizon: Micros,
    member: bool,
    cursor: int,
    found: _Round,
) -> Micros | None:
    """Walk one (search, uri) pair from ``due`` to ``horizon`` flip by flip, recording each
    transition at the moment it happened; the pair's next due time (None: never again)."""
    compiled, times, prepared = timed
    at = due
    while True:
        # Checked inside the interval that starts at ``at`` (or at the horizon
        # itself, exactly where the caller's "now" is).
        seen = min(clock.settled(times, at), horizon)
        matches = compiled.check(prepared, clock.seconds(seen))
        if matches != member:
            move: Move = "entered" if matches else "left"
            found.transitions.append(Found(*pair, cursor, move, clock.moment(at)))
            found.members[pair] = cursor if matches else None
            member = matches
        upcoming = clock.next_flip(times, seen)
        if upcoming is not None and upcoming <= at:
            upcoming = at + 1  # checked exactly at a flip time: look again just after it
        if seen >= horizon or upcoming is None or upcoming > horizon:
            return upcoming
        at = upcoming
