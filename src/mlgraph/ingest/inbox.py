"""The durable inbox: accepted events wait here until their subject is hydrated.

An event is acknowledged only after its row is committed here, so a crash
loses nothing: on start, rows left ``processing`` go back to ``pending``.
Events carrying an id seen before are dropped (dedupe). All pending events for
one subject are claimed together and hydrated once (coalescing). Events that
keep failing move to ``dead_letter`` with the reason, and can be replayed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from mlgraph.ingest.tables import dead_letter, inbox
from mlgraph.store.engine import writing
from mlgraph.store.transactor import chunks

PENDING, PROCESSING, DONE = "pending", "processing", "done"
CLAIM_LOCK = 0x6D6C_6772_6170_6801  # pg_advisory_xact_lock key of Inbox.claim ("mlgraph")


@dataclass(frozen=True, slots=True)
class Entry:
    """One event to put in the inbox."""

    event_id: str
    subject: str
    source: str | None
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """One event for the dead-letter table straight away (e.g. an unknown type)."""

    event_id: str
    source: str | None
    event_type: str | None
    payload: dict[str, Any]
    reason: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    accepted: int
    duplicates: int
    dead_lettered: int


@dataclass(frozen=True, slots=True)
class Claim:
    """Every pending event of one subject, taken by a worker to hydrate once."""

    subject: str
    ids: tuple[int, ...]
    event_ids: tuple[str, ...]
    attempts: int
    last_received: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    event_id: str
    subject: str | None
    source: str | None
    event_type: str | None
    payload: dict[str, Any]
    reason: str
    attempts: int
    failed_at: datetime
    replayed_at: datetime | None


@dataclass
class Stats:
    pending: int = 0
    processing: int = 0
    done: int = 0
    dead_letters: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


# The workers' hot path, built once: SQLAlchemy builds, keys and looks up a
# statement made afresh on every call, which costs three times what running
# one of these does (measured on SQLite: 0.85 ms against 0.28 ms).
_DUE = (
    sa.select(inbox.c.subject, inbox.c.not_before, inbox.c.id)
    .where(inbox.c.status == PENDING, inbox.c.not_before <= sa.bindparam("now"))
    .order_by(inbox.c.not_before, inbox.c.id)
    .limit(sa.bindparam("page", type_=sa.Integer()))
)
_PENDING_OF = (
    sa.select(inbox.c.id, inbox.c.subject, inbox.c.event_id, inbox.c.attempts,
              inbox.c.received_at)
    .where(inbox.c.status == PENDING, inbox.c.subject.in_(sa.bindparam("subjects", expanding=True)))
    .order_by(inbox.c.id)
)  # fmt: skip
# RETURNING counts what went in on both backends (executemany rowcount does not).
_INSERT_NEW = {
    name: insert(inbox).on_conflict_do_nothing(index_elements=["event_id"]).returning(inbox.c.id)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_SET_STATUS = (
    inbox.update()
    .where(inbox.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(status=sa.bindparam("new_status"))
)


class Inbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- accepting ---------------------------------------------------------------

    def accept(self, entries: Sequence[Entry], rejected: Sequence[Rejected] = ()) -> Accepted:
        """Store events durably; duplicates of known event ids are dropped."""
        now = _now()
        rows = [
            {"event_id": e.event_id, "subject": e.subject, "source": e.source,
             "event_type": e.event_type, "payload": e.payload, "received_at": now,
             "status": PENDING, "attempts": 0, "not_before": now, "last_error": None}
            for e in entries
        ]  # fmt: skip
        with writing(self.engine) as conn:
            inserted = self._insert_new(conn, rows)
            if rejected:
                conn.execute(
                    dead_letter.insert(),
                    [{"event_id": r.event_id, "subject": r.subject, "source": r.source,
                      "event_type": r.event_type, "payload": r.payload, "reason": r.reason,
                      "attempts": 0, "failed_at": now, "replayed_at": None} for r in rejected],
                )  # fmt: skip
        return Accepted(inserted, len(rows) - inserted, len(rejected))

    def _insert_new(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        # Within one batch the first of a repeated id wins; across batches the table's
        # unique index decides, without failing the batch.
        unique = list({r["event_id"]: r for r in reversed(rows)}.values())[::-1]
        stmt = _INSERT_NEW[conn.dialect.name]
        inserted = 0
        for part in chunks(unique, 1000):
            inserted += len(conn.execute(stmt, part).all())
        return inserted

    # -- working -----------------------------------------------------------------

    def recover(self) -> int:
        """Put back what a stopped process had claimed; returns how many."""
        with writing(self.engine) as conn:
            result = conn.execute(
                inbox.update().where(inbox.c.status == PROCESSING).values(status=PENDING)
            )
        return result.rowcount

    def claim(self, limit: int, now: datetime | None = None) -> list[Claim]:
        """Take up to ``limit`` due subjects, each with all its pending events.

        Subjects come in the order their first event fell due. The cost grows with
        what is claimed, not with what waits: an index range scan of due rows
        (``ix_inbox_claim``), then the pending rows of those subjects.
        """
        now = now or _now()
        with writing(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                # Processes claim in turn, as SQLite's write lock makes them, so no
                # subject is claimed twice; the lock goes with the transaction.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK)))
            subjects = self._due_subjects(conn, limit, now)
            if not subjects:
                return []
            rows = conn.execute(_PENDING_OF, {"subjects": subjects}).all()
            conn.execute(_SET_STATUS, {"ids": [r.id for r in rows], "new_status": PROCESSING})
        grouped: dict[str, list[Any]] = {s: [] for s in subjects}
        for r in rows:
            grouped[r.subject].append(r)
        return [
            Claim(
                subject,
                tuple(r.id for r in group),
                tuple(r.event_id for r in group),
                max(r.attempts for r in group),
                max(r.received_at for r in group),
            )
            for subject, group in grouped.items()
        ]

    @staticmethod
    def _due_subjects(conn: Connection, limit: int, now: datetime) -> list[str]:
        """Up to ``limit`` subjects with due events, walking due rows in index order."""
        subjects: dict[str, None] = {}  # ordered, distinct
        page = 4 * limit  # most subjects have one pending event: one page is enough
        after: tuple[datetime, int] | None = None
        while len(subjects) < limit:
            query = _DUE
            if after is not None:  # rare: a page of the same few subjects' events
                query = query.where(
                    sa.or_(
                        inbox.c.not_before > after[0],
                        sa.and_(inbox.c.not_before == after[0], inbox.c.id > after[1]),
                    )
                )
            rows = conn.execute(query, {"now": now, "page": page}).all()
            for row in rows:
                subjects[row.subject] = None
                if len(subjects) == limit:
                    break
            if len(rows) < page:
                break
            after = (rows[-1].not_before, rows[-1].id)
        return list(subjects)

    def done(self, claims: Iterable[Claim]) -> None:
        ids = [i for c in claims for i in c.ids]
        if not ids:
            return
        with writing(self.engine) as conn:
            for part in chunks(ids):
                conn.execute(_SET_STATUS, {"ids": part, "new_status": DONE})

    def retry(self, claim: Claim, error: str, delay_s: float) -> None:
        """Put a claim back to wait ``delay_s`` seconds, counting the attempt."""
        with writing(self.engine) as conn:
            conn.execute(
                inbox.update()
                .where(inbox.c.id.in_(claim.ids))
                .values(
                    status=PENDING,
                    attempts=inbox.c.attempts + 1,
                    not_before=_now() + timedelta(seconds=delay_s),
                    last_error=error[:2000],
                )
            )

    def bury(self, claim: Claim, reason: str) -> None:
        """Move a claim's events to the dead-letter table."""
        now = _now()
        with writing(self.engine) as conn:
            rows = conn.execute(sa.select(inbox).where(inbox.c.id.in_(claim.ids))).all()
            conn.execute(
                dead_letter.insert(),
                [{"event_id": r.event_id, "subject": r.subject, "source": r.source,
                  "event_type": r.event_type, "payload": r.payload, "reason": reason[:4000],
                  "attempts": r.attempts + 1, "failed_at": now, "replayed_at": None}
                 for r in rows],
            )  # fmt: skip
            conn.execute(inbox.delete().where(inbox.c.id.in_(claim.ids)))

    def forget_done(self, older_than: timedelta) -> int:
        """Drop handled events past the dedupe window."""
        cutoff = _now() - older_than
        with writing(self.engine) as conn:
            result = conn.execute(
                inbox.delete().where(inbox.c.status == DONE, inbox.c.received_at < cutoff)
            )
        return result.rowcount

    # -- looking -----------------------------------------------------------------

    def stats(self) -> Stats:
        with self.engine.connect() as conn:
            counts: dict[str, int] = dict(
                iter(
                    conn.execute(
                        sa.select(inbox.c.status, sa.func.count()).group_by(inbox.c.status)
                    )
                )
            )
            dead = conn.execute(
                sa.select(sa.func.count()).where(dead_letter.c.replayed_at.is_(None))
            ).scalar_one()
        return Stats(
            counts.get(PENDING, 0), counts.get(PROCESSING, 0), counts.get(DONE, 0), dead, counts
        )

    def dead_letters(self, limit: int = 100, *, include_replayed: bool = False) -> list[DeadLetter]:
        query = sa.select(dead_letter).order_by(dead_letter.c.id).limit(limit)
        if not include_replayed:
            query = query.where(dead_letter.c.replayed_at.is_(None))
        with self.engine.connect() as conn:
            return [DeadLetter(**r._mapping) for r in conn.execute(query)]

    def dead_letter(self, id: int) -> DeadLetter | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(dead_letter).where(dead_letter.c.id == id)).first()
        return None if row is None else DeadLetter(**row._mapping)

    def mark_replayed(self, ids: Iterable[int]) -> None:
        with writing(self.engine) as conn:
            conn.execute(
                dead_letter.update()
                .where(dead_letter.c.id.in_(list(ids)))
                .values(replayed_at=_now())
            )
