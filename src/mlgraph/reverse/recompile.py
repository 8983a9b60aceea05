"""Index versions: every saved search compiled again when the search mapping changes.

A saved search keeps its text; its compiled tree is a cache, valid for one
mapping (``mapping_digest``) and one compiler (``compiler_version``). When
either changes (a field removed from the type schema, a fix in the compiler),
every saved search is compiled again from its text, before the new mapping
serves: at service start when a stored digest differs from the mapping's, and
from the search index rebuild just before its alias cut-over
(``cut_over_hook``), and by hand (``mlgraph searches recompile``).

- Compiles to the same tree: only the digest and version are brought up to date.
- Compiles to another tree (a field's kind changed): stored, and the search's
  revision bumped, so the reverse follower rebuilds its membership silently.
- No longer compiles: marked invalid (left out of matching, its text kept, its
  membership and due times dropped), written to ``saved_search_dead_letter``
  with the reason and where in the text, and its owner is told by an outbox
  row, ``search_transition`` with ``transition = 'invalid'`` and ``uri = ''``.
  Saving the search again (fixed) clears both; ``replay`` retries the stored
  text against the mapping as it is now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgraph.errors import NotFound
from mlgraph.reverse import tables as rt
from mlgraph.reverse.clock import Now, system_now
from mlgraph.reverse.compiler import COMPILER_VERSION, CompiledSearch, compile_search
from mlgraph.reverse.errors import DslError
from mlgraph.reverse.outbox import insert_ignoring_duplicates
from mlgraph.search.filter_fields import DocumentMapping
from mlgraph.search.mapping import filter_mapping
from mlgraph.store import Store, feed
from mlgraph.store.engine import writing

log = logging.getLogger("mlgraph.reverse")

ATTEMPTS = 5  # a concurrent save may take the revision number we meant to use

Outcome = Literal["refreshed", "rebuilt", "invalid", "still invalid", "unchanged"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A saved search that stopped compiling, and why."""

    id: int
    search: int
    owner: str
    name: str
    dsl: str
    reason: str  # what is wrong, the line and column, and the line with a caret
    position: int | None  # offset in ``dsl`` where the problem starts
    mapping_digest: str
    compiler_version: int
    at: datetime


@dataclass
class RecompileReport:
    mapping_digest: str
    dry_run: bool = False
    refreshed: list[int] = field(default_factory=list)  # same meaning: digest brought up to date
    rebuilt: list[int] = field(default_factory=list)  # new meaning, or valid again: rebuilt
    invalid: list[int] = field(default_factory=list)  # newly failing: dead letter, owner told
    still_invalid: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # search -> why it does not compile

    @property
    def checked(self) -> int:
        return len(self.refreshed) + len(self.rebuilt) + len(self.invalid) + len(self.still_invalid)


class Recompiler:
    def __init__(
        self, store: Store, mapping: DocumentMapping | None = None, now: Now = system_now
    ) -> None:
        self.store = store
        self.mapping = mapping or filter_mapping(store.schema)
        self.now = now

    def _stale(self) -> sa.ColumnElement[bool]:
        s = rt.saved_search
        return sa.or_(
            s.c.mapping_digest != self.mapping.digest, s.c.compiler_version != COMPILER_VERSION
        )

    def stale(self) -> int:
        """How many saved searches were compiled against another mapping or compiler."""
        query = sa.select(sa.func.count()).select_from(rt.saved_search).where(self._stale())
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def run(self, *, dry_run: bool = False, force: bool = False) -> RecompileReport:
        """Compile again every stale saved search (every one, with ``force``)."""
        s = rt.saved_search
        query = sa.select(s.c.id).order_by(s.c.id)
        if not force:
            query = query.where(self._stale())
        with self.store.engine.connect() as conn:
            ids = [int(i) for i in conn.execute(query).scalars()]
        report = RecompileReport(self.mapping.digest, dry_run)
        for search_id in ids:
            self._one(search_id, report, dry_run)
        if report.invalid and not dry_run:
            log.warning(
                "%d saved searches no longer compile against mapping %s: %s",
                len(report.invalid),
                self.mapping.digest,
                ", ".join(map(str, report.invalid)),
            )
        return report

    def replay(self, search_id: int) -> Outcome:
        """Compile a dead-lettered search's stored text again, against the mapping as it is."""
        with self.store.engine.connect() as conn:
            exists = conn.execute(
                sa.select(rt.saved_search.c.id).where(rt.saved_search.c.id == search_id)
            ).first()
        if exists is None:
            raise NotFound(f"no saved search {search_id}")
        report = RecompileReport(self.mapping.digest)
        return self._one(search_id, report, dry_run=False)

    def _one(self, search_id: int, report: RecompileReport, dry_run: bool) -> Outcome:
        if dry_run:  # only reads
            with self.store.engine.connect() as conn:
                outcome, reason = self._recompile(conn, search_id, dry_run)
        else:
            for attempt in range(ATTEMPTS):
                try:
                    with writing(self.store.engine) as conn:
                        outcome, reason = self._recompile(conn, search_id, dry_run)
                    break
                except sa.exc.IntegrityError:
                    if attempt == ATTEMPTS - 1:
                        raise
        if reason is not None:
            report.reasons[search_id] = reason
        found = {
            "refreshed": report.refreshed,
            "rebuilt": report.rebuilt,
            "invalid": report.invalid,
            "still invalid": report.still_invalid,
        }.get(outcome)
        if found is not None:
            found.append(search_id)
        return outcome

    def _recompile(
        self, conn: Connection, search_id: int, dry_run: bool
    ) -> tuple[Outcome, str | None]:
        """What compiling the search again gives (and, unless ``dry_run``, store it);
        with the reason it does not compile, if it does not."""
        s = rt.saved_search
        row = conn.execute(sa.select(s).where(s.c.id == search_id)).first()
        if row is None:
            return "unchanged", None  # deleted meanwhile
        try:
            compiled = compile_search(row.dsl, self.mapping)
        except DslError as exc:
            newly = row.invalid_reason is None
            if not dry_run:
                self._dead_letter(conn, row, exc, notify=newly)
            return ("invalid" if newly else "still invalid"), str(exc)
        same = row.invalid_reason is None and _same_meaning(row.compiled, compiled)
        if not dry_run:
            fresh = {
                "mapping_digest": self.mapping.digest,
                "compiler_version": COMPILER_VERSION,
                "compiled": compiled.to_json(),
            }
            if not same:  # a new meaning: valid again, and its membership built anew
                fresh.update(invalid_reason=None, **_rebuild(conn))
            conn.execute(s.update().where(s.c.id == search_id).values(**fresh))
            if not same:
                conn.execute(rt.dead_letter.delete().where(rt.dead_letter.c.search == search_id))
                conn.execute(rt.due.delete().where(rt.due.c.search == search_id))
        if same:
            return "refreshed", None
        return "rebuilt", None

    def _dead_letter(self, conn: Connection, row: Any, exc: DslError, *, notify: bool) -> None:
        s = rt.saved_search
        at = self.now()
        values: dict[str, Any] = {
            "mapping_digest": self.mapping.digest,
            "compiler_version": COMPILER_VERSION,
            "invalid_reason": str(exc),
        }
        if notify:  # newly invalid: the follower must drop it (a new revision tells it)
            values.update(_rebuild(conn))
            conn.execute(rt.membership.delete().where(rt.membership.c.search == row.id))
            conn.execute(rt.due.delete().where(rt.due.c.search == row.id))
        conn.execute(s.update().where(s.c.id == row.id).values(**values))
        dead = rt.dead_letter
        conn.execute(dead.delete().where(dead.c.search == row.id))
        conn.execute(
            dead.insert().values(
                search=row.id,
                owner=row.owner,
                name=row.name,
                dsl=row.dsl,
                reason=str(exc),
                position=exc.span.start,
                mapping_digest=self.mapping.digest,
                compiler_version=COMPILER_VERSION,
                at=at,
            )
        )
        if notify:
            # The delivery channels carry it to the owner like any transition.
            insert_ignoring_duplicates(
                conn,
                rt.transition,
                [
                    {
                        "search": row.id,
                        "uri": "",
                        "tx": feed.last_tx(conn),
                        "transition": "invalid",
                        "at": at,
                    }
                ],
            )

    def dead_letters(self, owner: str | None = None) -> list[DeadLetter]:
        dead = rt.dead_letter
        query = sa.select(dead).order_by(dead.c.id)
        if owner is not None:
            query = query.where(dead.c.owner == owner)
        with self.store.engine.connect() as conn:
            return [
                DeadLetter(
                    r.id,
                    r.search,
                    r.owner,
                    r.name,
                    r.dsl,
                    r.reason,
                    r.position,
                    r.mapping_digest,
                    r.compiler_version,
                    r.at,
                )
                for r in conn.execute(query)
            ]


def _same_meaning(stored: Any, compiled: CompiledSearch) -> bool:
    fresh = compiled.to_json()
    return isinstance(stored, dict) and all(stored.get(k) == fresh[k] for k in ("tree", "kinds"))


def _rebuild(conn: Connection) -> dict[str, Any]:
    """Column values that make the follower take the search in again (and rebuild it)."""
    s = rt.saved_search
    revision = int(conn.execute(sa.select(sa.func.max(s.c.revision))).scalar() or 0) + 1
    return {
        "revision": revision,
        "saved_tx": feed.last_tx(conn),
        "built_tx": None,
        "built_revision": None,
    }


def recompile_if_stale(store: Store) -> RecompileReport | None:
    """At service start: recompile when some search was compiled against another mapping."""
    recompiler = Recompiler(store)
    if not recompiler.stale():
        return None
    report = recompiler.run()
    log.info(
        "recompiled %d saved searches for mapping %s: %d rebuilt, %d newly invalid",
        report.checked,
        report.mapping_digest,
        len(report.rebuilt),
        len(report.invalid),
    )
    return report


def cut_over_hook(store: Store) -> Callable[[object], None]:
    """For ``Versions.before_cut_over``: recompile every saved search before a new search
    index version serves (``search`` may not import ``reverse``, so it takes a callback)."""

    def before_cut_over(_version: object) -> None:
        recompile_if_stale(store)

    return before_cut_over
