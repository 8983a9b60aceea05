"""The inbox on SQLite and PostgreSQL: dedupe, coalescing, retries, dead letters, recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlgraph.connectors import load_connectors
from mlgraph.ingest.envelope import MalformedEvents
from mlgraph.ingest.inbox import Entry, Inbox
from mlgraph.ingest.intake import Intake
from mlgraph.store import Store


def entry(event_id: str, subject: str = "registry/instance/m1") -> Entry:
    return Entry(event_id, subject, "registry", "model_instance_updated", {"event_id": event_id})


@pytest.fixture
def inbox(store: Store) -> Inbox:
    return Inbox(store.engine)


def test_known_event_ids_are_dropped(inbox: Inbox) -> None:
    assert inbox.accept([entry("a"), entry("b"), entry("a")]).accepted == 2
    again = inbox.accept([entry("a"), entry("c")])
    assert (again.accepted, again.duplicates) == (1, 1)
    assert inbox.stats().pending == 3


def test_pending_events_of_a_subject_are_claimed_together(inbox: Inbox) -> None:
    inbox.accept([entry("1"), entry("2", "registry/instance/m2"), entry("3"), entry("4")])
    claims = inbox.claim(10)
    assert [(c.subject, c.event_ids) for c in claims] == [
        ("registry/instance/m1", ("1", "3", "4")),
        ("registry/instance/m2", ("2",)),
    ]
    assert inbox.claim(10) == []  # nothing left pending
    inbox.done(claims)
    assert inbox.stats().done == 4


def test_a_retry_waits_and_counts_the_attempt(inbox: Inbox) -> None:
    inbox.accept([entry("1")])
    (claim,) = inbox.claim(5)
    inbox.retry(claim, "503 from the source", delay_s=3600)
    assert inbox.claim(5) == []
    stats = inbox.stats()
    assert stats.pending == 1
    later = inbox.claim(5, now=claim.last_received + timedelta(hours=2))
    assert later[0].attempts == 1


def test_burying_moves_events_to_dead_letters_with_the_reason(inbox: Inbox) -> None:
    inbox.accept([entry("1"), entry("2")])
    (claim,) = inbox.claim(5)
    inbox.bury(claim, "gave up after 8 attempts: 503")
    letters = inbox.dead_letters()
    assert [(dl.event_id, dl.reason, dl.attempts) for dl in letters] == [
        ("1", "gave up after 8 attempts: 503", 1),
        ("2", "gave up after 8 attempts: 503", 1),
    ]
    assert inbox.stats().pending == 0 and inbox.stats().dead_letters == 2
    assert inbox.dead_letter(letters[0].id) == letters[0]


def test_claims_of_a_stopped_process_are_recovered(inbox: Inbox) -> None:
    inbox.accept([entry("1")])
    inbox.claim(5)
    assert inbox.claim(5) == []
    assert inbox.recover() == 1
    assert len(inbox.claim(5)) == 1


def test_intake_routes_rejects_and_replays(store: Store, inbox: Inbox) -> None:
    intake = Intake(inbox, load_connectors(store.schema))
    result = intake.accept([
        {"event_type": "model_instance_created", "instance_id": "m1", "event_id": "e1"},
        {"event_type": "mystery_happened", "thing_id": "x", "event_id": "e2"},
    ])  # fmt: skip
    assert (result.accepted, result.dead_lettered) == (1, 1)
    (claim,) = inbox.claim(5)
    assert claim.subject == "registry/instance/m1"
    (letter,) = inbox.dead_letters()
    assert "unknown event type 'mystery_happened'" in letter.reason
    assert intake.replay() == (0, 1)  # still no connector for it
    # A known event type without its id field is malformed: nothing is accepted.
    with pytest.raises(MalformedEvents, match=r"events\[1\]: a 'feature_created' event must carry"):
        intake.accept([{"event_type": "feature_created", "feature_id": "f"},
                       {"event_type": "feature_created"}])  # fmt: skip
    assert inbox.stats().pending == 0


def test_replay_puts_dead_letters_back(store: Store, inbox: Inbox) -> None:
    intake = Intake(inbox, load_connectors(store.schema))
    intake.accept({"event_type": "feature_updated", "feature_id": "f1", "event_id": "e9"})
    (claim,) = inbox.claim(5)
    inbox.bury(claim, "source down")
    assert intake.replay() == (1, 0)
    (again,) = inbox.claim(5)
    assert again.subject == "featurestore/feature/f1"
    assert again.event_ids == ("e9#replay1",)
    assert inbox.dead_letters() == []
    assert len(inbox.dead_letters(include_replayed=True)) == 1


def test_a_claim_walks_past_a_busy_subject_and_takes_all_its_events(inbox: Inbox) -> None:
    # More pending events of one subject than a claim reads in one page (4 a subject).
    inbox.accept([entry(f"a{i}") for i in range(12)] + [entry("b", "registry/instance/m2")])
    claims = inbox.claim(2)
    assert [(c.subject, len(c.event_ids)) for c in claims] == [
        ("registry/instance/m1", 12),
        ("registry/instance/m2", 1),
    ]


def test_subjects_waiting_to_retry_are_passed_over_until_due(inbox: Inbox) -> None:
    inbox.accept([entry("1"), entry("2", "registry/instance/m2")])
    first, _ = inbox.claim(5)
    inbox.retry(first, "503", delay_s=3600)
    inbox.accept([entry("3", "registry/instance/m3")])
    assert [c.subject for c in inbox.claim(5)] == ["registry/instance/m3"]
    # Subjects come in the order they fell due: m4 at once, m1 an hour later.
    inbox.accept([entry("4", "registry/instance/m4")])
    later = inbox.claim(5, now=first.last_received + timedelta(hours=2))
    assert [(c.subject, c.attempts) for c in later] == [
        ("registry/instance/m4", 0),
        ("registry/instance/m1", 1),
    ]
