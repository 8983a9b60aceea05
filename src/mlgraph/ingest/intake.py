"""Intake: one handler for every way events arrive (HTTP, NATS, Redis, Kafka).

It reads the events, finds the connector each one is for, and puts them in
the inbox in one transaction; only then may the caller acknowledge. Unknown
event types are accepted into the dead-letter table with the reason, so a
connector added later can replay them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlgraph.connectors import Connectors, Subject
from mlgraph.errors import ValidationError
from mlgraph.ingest.envelope import MalformedEvents, ThinEvent, parse_events
from mlgraph.ingest.inbox import Accepted, Entry, Inbox, Rejected


@dataclass(frozen=True, slots=True)
class Routed:
    entries: list[Entry]
    rejected: list[Rejected]


def route(connectors: Connectors, events: list[ThinEvent], where: str = "events") -> Routed:
    """Each event as an inbox entry for its subject, or rejected with a reason.

    Raises MalformedEvents when a known event type lacks the id it must carry.
    """
    entries: list[Entry] = []
    rejected: list[Rejected] = []
    problems: list[str] = []
    for i, event in enumerate(events):
        found = connectors.route(event.event_type)
        if found is None:
            known = ", ".join(connectors.event_types[:8])
            rejected.append(Rejected(
                event.event_id, event.source, event.event_type, event.raw,
                f"unknown event type {event.event_type!r}: no connector handles it "
                f"(known: {known}, …)",
            ))  # fmt: skip
            continue
        connector, resource, rule = found
        object_id = event.data.get(rule.id_field)
        if not isinstance(object_id, str | int) or isinstance(object_id, bool) or object_id == "":
            at = f"{where}[{i}]" if len(events) > 1 else "event"
            problems.append(
                f"{at}: a {event.event_type!r} event must carry '{rule.id_field}' "
                f"(the changed {resource.name}'s id), got {object_id!r}"
            )
            continue
        subject = Subject(connector.name, resource.name, str(object_id))
        entries.append(Entry(event.event_id, subject.key, connector.name, event.event_type,
                             event.raw))  # fmt: skip
    if problems:
        raise MalformedEvents(problems)
    return Routed(entries, rejected)


class Intake:
    def __init__(self, inbox: Inbox, connectors: Connectors) -> None:
        self.inbox = inbox
        self.connectors = connectors

    def accept(self, body: Any) -> Accepted:
        """Parse, route and store ``body`` (one event or a list); all or nothing."""
        routed = route(self.connectors, parse_events(body))
        return self.inbox.accept(routed.entries, routed.rejected)

    def replay(self, dead_letter_ids: list[int] | None = None) -> tuple[int, int]:
        """Put dead letters back into the inbox; returns (replayed, still unroutable)."""
        letters = (
            [dl for i in dead_letter_ids if (dl := self.inbox.dead_letter(i)) is not None]
            if dead_letter_ids is not None
            else self.inbox.dead_letters(limit=1_000_000)
        )
        replayed: list[int] = []
        stuck = 0
        for letter in letters:
            if letter.replayed_at is not None:
                continue
            try:
                routed = route(self.connectors, parse_events(letter.payload))
            except (MalformedEvents, ValidationError):
                stuck += 1
                continue
            if routed.rejected:
                stuck += 1
                continue
            # A replay is a new delivery: a fresh id, so dedupe does not drop it.
            entries = [
                Entry(f"{e.event_id}#replay{letter.id}", e.subject, e.source, e.event_type,
                      e.payload)
                for e in routed.entries
            ]  # fmt: skip
            self.inbox.accept(entries)
            replayed.append(letter.id)
        self.inbox.mark_replayed(replayed)
        return len(replayed), stuck
