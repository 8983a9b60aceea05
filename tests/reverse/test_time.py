"""Relative-date searches re-checked as time passes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mlgraph.reverse import ReverseFollower, SavedSearches, Transition
from mlgraph.reverse import tables as rt
from mlgraph.store import Store
from tests.builders import entity, uri

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RANKING = uri("Model", "ranking")
DAY = timedelta(days=1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def move(self, by: timedelta) -> None:
        self.at += by


def moves(transitions: list[Transition]) -> list[tuple[str, str, int, datetime]]:
    return [(t.transition, t.uri, t.tx, t.at) for t in transitions]


def write_model(store: Store, clock: Clock, id: str, updated: datetime, **fields: Any) -> int:
    model = entity("Model", id, source_updated_at=updated, **fields)
    tx = store.transact(upsert=[model], at=clock()).tx
    assert tx is not None
    return tx


def due_rows(store: Store) -> list[tuple[int, str, datetime]]:
    d = rt.due
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(d).order_by(d.c.search, d.c.uri)).all()
    return [(r.search, r.uri, r.due_at) for r in rows]


def test_a_week_going_by_makes_an_entity_leave(store: Store) -> None:
    clock = Clock()
    searches = SavedSearches(store)
    recent = searches.save("alice", "recent", "updated_at > now-7d")
    follower = ReverseFollower(store, now=clock)
    follower.catch_up()
    tx = write_model(store, clock, "ranking", START - DAY)
    follower.catch_up()
    assert searches.members(recent.id) == [RANKING]
    # Due when the week since its update is over, not before.
    assert due_rows(store) == [(recent.id, RANKING, START + 6 * DAY)]

    clock.move(6 * DAY - timedelta(seconds=1))
    follower.catch_up()
    assert searches.members(recent.id) == [RANKING]

    clock.move(timedelta(hours=1))
    follower.catch_up()
    assert searches.members(recent.id) == []
    assert moves(searches.transitions(recent.id)) == [
        ("entered", RANKING, tx, START),
        # At the moment it happened, at the version the entity still has.
        ("left", RANKING, tx, START + 6 * DAY),
    ]
    assert due_rows(store) == []  # time changes nothing more about it
    assert follower.stats.due == 1


def test_an_entity_enters_when_it_becomes_old_enough(store: Store) -> None:
    clock = Clock()
    searches = SavedSearches(store)
    stale = searches.save("alice", "stale models", "type == 'Model' AND updated_at < now-30d")
    follower = ReverseFollower(store, now=clock)
    write_model(store, clock, "ranking", START - DAY)
    # A dataset can never match, however old: nothing is scheduled for it.
    data = entity("Dataset", "clicks", source_updated_at=START - DAY)
    last = store.transact(upsert=[data], at=clock()).tx
    follower.catch_up()
    assert searches.members(stale.id) == []
    assert due_rows(store) == [(stale.id, RANKING, START + 29 * DAY)]

    clock.move(40 * DAY)
    follower.catch_up()
    assert searches.members(stale.id) == [RANKING]
    # At the transaction the store stood at then (the model's own is older).
    assert moves(searches.transitions(stale.id)) == [("entered", RANKING, last, START + 29 * DAY)]


def test_several_flips_between_two_writes_are_each_recorded(store: Store) -> None:
    clock = Clock()
    searches = SavedSearches(store)
    # Matches while fresh, then not, then again once really old.
    odd = searches.save("alice", "fresh or old", "updated_at > now-2d OR updated_at < now-10d")
    follower = ReverseFollower(store, now=clock)
    tx = write_model(store, clock, "ranking", START)
    follower.catch_up()
    clock.move(11 * DAY)  # one step of the clock carries it across twice
    follower.catch_up()
    assert searches.members(odd.id) == [RANKING]
    assert moves(searches.transitions(odd.id)) == [
        ("entered", RANKING, tx, START),
        ("left", RANKING, tx, START + 2 * DAY),
        ("entered", RANKING, tx, START + 10 * DAY),
    ]

    # Handled again from scratch (a new follower, the feed re-read): nothing twice.
    store.save_cursor("percolator", 0)
    again = ReverseFollower(store, now=clock)
    again.catch_up()
    assert len(searches.transitions(odd.id)) == 3


def test_the_boundary_itself(store: Store) -> None:
    """At exactly the flip time, ``>`` has flipped and ``>=`` has not yet."""
    clock = Clock()
    searches = SavedSearches(store)
    strict = searches.save("alice", "strict", "updated_at > now-1d")
    loose = searches.save("alice", "loose", "updated_at >= now-1d")
    follower = ReverseFollower(store, now=clock)
    write_model(store, clock, "ranking", START)
    follower.catch_up()
    assert searches.matching(RANKING) == [strict.id, loose.id]

    clock.move(DAY)
    follower.catch_up()
    assert searches.matching(RANKING) == [loose.id]
    clock.move(timedelta(microseconds=1))
    follower.catch_up()
    assert searches.matching(RANKING) == []
    assert [t.at for t in searches.transitions(loose.id)][-1] == START + DAY + timedelta(
        microseconds=1
    )


def test_a_new_search_is_built_as_of_now_with_its_near_misses_scheduled(store: Store) -> None:
    clock = Clock()
    follower = ReverseFollower(store, now=clock)
    write_model(store, clock, "old", START - 20 * DAY)
    write_model(store, clock, "fresh", START - DAY)
    follower.catch_up()
    clock.move(3 * DAY)  # the store stays idle meanwhile

    searches = SavedSearches(store)
    recent = searches.save("alice", "recent", "updated_at > now-7d")
    aged = searches.save("alice", "aged", "updated_at < now-10d")
    follower.catch_up()
    # Built silently as of the clock's now, not as of the last write.
    assert searches.members(recent.id) == [uri("Model", "fresh")]
    assert searches.members(aged.id) == [uri("Model", "old")]
    assert searches.transitions() == []
    assert due_rows(store) == [
        (recent.id, uri("Model", "fresh"), START + 6 * DAY),
        (aged.id, uri("Model", "fresh"), START + 9 * DAY),
    ]

    clock.move(10 * DAY)
    follower.catch_up()
    assert searches.members(recent.id) == []
    assert searches.members(aged.id) == [uri("Model", "fresh"), uri("Model", "old")]


def test_a_write_between_flips_is_matched_against_the_time_it_happened(store: Store) -> None:
    clock = Clock()
    searches = SavedSearches(store)
    recent = searches.save("alice", "recent", "updated_at > now-7d")
    follower = ReverseFollower(store, now=clock)
    first = write_model(store, clock, "ranking", START)
    follower.catch_up()
    clock.move(8 * DAY)
    # The follower has not looked since; the entity is touched again (not its date).
    second = write_model(store, clock, "ranking", START, description="now documented")
    follower.catch_up()
    assert moves(searches.transitions(recent.id)) == [
        ("entered", RANKING, first, START),
        ("left", RANKING, first, START + 7 * DAY),  # before the write, as it happened
    ]
    refreshed = write_model(store, clock, "ranking", clock())
    follower.catch_up()
    assert searches.members(recent.id) == [RANKING]
    assert moves(searches.transitions(recent.id))[-1] == ("entered", RANKING, refreshed, clock())
    assert second < refreshed


def test_gone_entities_and_deleted_searches_leave_no_due_rows(store: Store) -> None:
    clock = Clock()
    searches = SavedSearches(store)
    recent = searches.save("alice", "recent", "updated_at > now-7d")
    kept = searches.save("bob", "recent too", "updated_at > now-3d")
    follower = ReverseFollower(store, now=clock)
    write_model(store, clock, "ranking", START)
    write_model(store, clock, "other", START)
    follower.catch_up()
    assert len(due_rows(store)) == 4

    store.transact(retract=[RANKING], at=clock())
    follower.catch_up()
    assert {u for _, u, _ in due_rows(store)} == {uri("Model", "other")}
    assert searches.delete(recent.id)
    assert due_rows(store) == [(kept.id, uri("Model", "other"), START + 3 * DAY)]
    clock.move(4 * DAY)
    follower.catch_up()
    assert searches.members(kept.id) == []
    assert due_rows(store) == []


def test_editing_a_search_reschedules_it(store: Store) -> None:
    clock = Clock()
    searches = SavedSearches(store)
    recent = searches.save("alice", "recent", "updated_at > now-7d")
    follower = ReverseFollower(store, now=clock)
    write_model(store, clock, "ranking", START)
    follower.catch_up()
    searches.save("alice", "recent", "updated_at > now-2d")
    follower.catch_up()
    assert due_rows(store) == [(recent.id, RANKING, START + 2 * DAY)]
    clock.move(3 * DAY)
    follower.catch_up()
    assert searches.members(recent.id) == []
