"""Membership and transitions from the change feed, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.reverse import ReverseFollower, SavedSearches, Transition
from mlgraph.reverse import tables as rt
from mlgraph.reverse.follower import CURSOR
from mlgraph.reverse.reading import DocumentReader, Relations
from mlgraph.search.filter_document import Document
from mlgraph.search.filter_fields import DocumentMapping
from mlgraph.store import Store, feed
from tests.builders import entity, uri
from tests.conftest import StoreFactory

PERSONALIZATION = "type == 'Model' AND tags.team == 'personalization'"
MODEL = uri("Model", "ranking")


def moves(transitions: list[Transition]) -> list[tuple[str, str, int]]:
    return [(t.transition, t.uri, t.tx) for t in transitions]


def test_an_entity_enters_and_leaves(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "my team's models", PERSONALIZATION)
    follower = ReverseFollower(store)
    follower.catch_up()

    entered = store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    store.transact(upsert=[entity("Model", "other", tags={"team": "ads"})])
    follower.catch_up()
    assert searches.members(saved.id) == [MODEL]
    assert searches.matching(MODEL) == [saved.id]

    left = store.transact(upsert=[entity("Model", "ranking", tags={"team": "ads"})])
    follower.catch_up()
    assert searches.members(saved.id) == []
    assert moves(searches.transitions(saved.id)) == [
        ("entered", MODEL, entered.tx),
        ("left", MODEL, left.tx),
    ]
    assert follower.lag() == 0


def test_deleting_an_entity_makes_it_leave_every_search(store: Store) -> None:
    searches = SavedSearches(store)
    a = searches.save("alice", "models", "type == 'Model'")
    b = searches.save("bob", "personalization", "tags.team == 'personalization'")
    follower = ReverseFollower(store)
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower.catch_up()
    assert searches.matching(MODEL) == [a.id, b.id]

    gone = store.retract(MODEL)
    follower.catch_up()
    assert searches.matching(MODEL) == []
    left = [t for t in searches.transitions() if t.transition == "left"]
    assert sorted((t.search, t.tx) for t in left) == [(a.id, gone.tx), (b.id, gone.tx)]


def test_a_purged_entity_leaves_too(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "models", "type == 'Model'")
    follower = ReverseFollower(store)
    store.transact(upsert=[entity("Model", "ranking")])
    follower.catch_up()
    purged = store.purge(MODEL)
    follower.catch_up()
    assert searches.members(saved.id) == []
    assert moves(searches.transitions(saved.id))[-1] == ("left", MODEL, purged.tx)


def test_renaming_a_neighbour_changes_who_matches(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "instances of ranking", "model.name == 'ranking'")
    follower = ReverseFollower(store)
    instance = entity("ModelInstance", "ranking-v1", references={"model": MODEL})
    store.transact(upsert=[entity("Model", "ranking", name="old-name"), instance])
    follower.catch_up()
    assert searches.members(saved.id) == []

    # Only the model changes; the instance's document names it, so it enters.
    renamed = store.transact(upsert=[entity("Model", "ranking", name="Ranking")])
    follower.catch_up()
    assert searches.members(saved.id) == [instance.uri]
    assert moves(searches.transitions(saved.id)) == [("entered", instance.uri, renamed.tx)]


def test_inverse_relationships_are_searchable(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "models with v1", "instances.id == 'ranking-v1'")
    follower = ReverseFollower(store)
    store.transact(upsert=[entity("Model", "ranking")])
    store.transact(upsert=[entity("ModelInstance", "ranking-v1", references={"model": MODEL})])
    follower.catch_up()
    assert searches.members(saved.id) == [MODEL]


def test_a_new_search_starts_from_what_matches_now_without_notifying(store: Store) -> None:
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    follower = ReverseFollower(store)
    follower.catch_up()
    searches = SavedSearches(store)
    saved = searches.save("alice", "mine", PERSONALIZATION)
    follower.catch_up()
    assert searches.members(saved.id) == [MODEL]
    assert searches.transitions() == []
    built = searches.require(saved.id)
    assert built.built_tx == store.last_tx()


def test_editing_a_search_rebuilds_its_membership_silently(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "mine", PERSONALIZATION)
    follower = ReverseFollower(store)
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    store.transact(upsert=[entity("Model", "ads", tags={"team": "ads"})])
    follower.catch_up()
    before = searches.transitions()
    assert moves(before) == [("entered", MODEL, 1)]

    edited = searches.save("alice", "mine", "type == 'Model' AND tags.team == 'ads'")
    assert edited.id == saved.id and edited.revision > saved.revision
    assert searches.require(saved.id).built_tx is None  # until the follower builds it
    follower.catch_up()
    assert searches.members(saved.id) == [uri("Model", "ads")]
    assert searches.transitions() == before  # the edit itself notifies nobody

    # From then on the new definition counts.
    left = store.transact(upsert=[entity("Model", "ads", tags={"team": "infra"})])
    follower.catch_up()
    assert moves(searches.transitions())[-1] == ("left", uri("Model", "ads"), left.tx)


def test_saving_the_same_text_changes_nothing(store: Store) -> None:
    searches = SavedSearches(store)
    first = searches.save("alice", "mine", PERSONALIZATION)
    again = searches.save("alice", "mine", PERSONALIZATION)
    assert again == first
    assert [s.name for s in searches.all("alice")] == ["mine"]
    assert searches.find("alice", "mine") == first


def test_a_deleted_search_stops_matching(store: Store) -> None:
    searches = SavedSearches(store)
    kept = searches.save("alice", "kept", "type == 'Model'")
    dropped = searches.save("bob", "dropped", "type == 'Model'")
    follower = ReverseFollower(store)
    store.transact(upsert=[entity("Model", "ranking")])
    follower.catch_up()
    assert searches.delete(dropped.id)
    assert not searches.delete(dropped.id)
    store.transact(upsert=[entity("Model", "second")])
    follower.catch_up()
    assert dropped.id not in follower.percolator
    assert {t.search for t in searches.transitions()} == {kept.id, dropped.id}
    assert [t.uri for t in searches.transitions(dropped.id)] == [MODEL]
    assert searches.members(dropped.id) == []
    assert searches.members(kept.id) == [MODEL, uri("Model", "second")]


def _history(store: Store) -> None:
    """Five transitions: ranking enters, leaves, enters again; other enters and leaves."""
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "ads"})])
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    store.transact(upsert=[entity("Model", "other", tags={"team": "personalization"})])
    store.retract(uri("Model", "other"))


def test_handling_the_feed_again_notifies_once(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "mine", PERSONALIZATION)
    ReverseFollower(store).catch_up()
    _history(store)
    ReverseFollower(store, batch=2).catch_up()
    first = moves(searches.transitions())
    members = searches.members(saved.id)
    assert len(first) == 5

    # From the start again, by a new follower and by one that saw it all.
    store.save_cursor(CURSOR, 0)
    ReverseFollower(store, batch=3).catch_up()
    store.save_cursor(CURSOR, 2)
    ReverseFollower(store).catch_up()
    assert moves(searches.transitions()) == first
    assert searches.members(saved.id) == members == [MODEL]


def test_a_round_that_fails_midway_writes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    searches = SavedSearches(store)
    searches.save("alice", "mine", PERSONALIZATION)
    follower = ReverseFollower(store)
    follower.catch_up()
    _history(store)

    def crash(*_: object) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as patched:
        patched.setattr(feed, "save_cursor", crash)
        with pytest.raises(RuntimeError):
            follower.step()
    assert searches.transitions() == []
    assert store.cursor(CURSOR) == 0
    follower.catch_up()
    assert len(searches.transitions()) == 5


def test_a_stale_search_that_no_longer_compiles_is_left_out(store: Store) -> None:
    """Not recompiled yet (recompile.py marks it invalid): the follower skips it, not crash."""
    searches = SavedSearches(store)
    torch = searches.save("alice", "torch", "framework == 'torch'")
    models = searches.save("bob", "models", "type == 'Model'")
    with store.engine.begin() as conn:  # compiled by another compiler version
        s = rt.saved_search
        conn.execute(s.update().where(s.c.id == torch.id).values(compiled={"version": 0}))
    full = SavedSearches(store).mapping
    fields = {p: f for p, f in full.fields.items() if p != "framework"}
    follower = ReverseFollower(store, mapping=DocumentMapping(fields, {}))
    store.transact(upsert=[entity("Model", "ranking", attributes={"framework": "torch"})])
    follower.catch_up()
    assert torch.id not in follower.percolator
    assert searches.members(models.id) == [MODEL]
    assert searches.members(torch.id) == []


# -- what a round reads ------------------------------------------------------------------


class CountingReader(DocumentReader):
    """A reader that notes every read: (URIs, as of, relationships asked for)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.reads: list[tuple[frozenset[str], int | None, Relations]] = []

    def documents(
        self, uris: Iterable[str], as_of: int | None = None, relations: Relations = None
    ) -> dict[str, Document]:
        wanted = frozenset(uris)
        if wanted:
            self.reads.append((wanted, as_of, relations))
        return super().documents(wanted, as_of, relations)


def test_with_no_saved_searches_a_round_only_moves_the_cursor(store: Store) -> None:
    follower = ReverseFollower(store)
    reader = follower.reader = CountingReader(store)
    for i in range(5):
        store.transact(upsert=[entity("Model", f"m{i}", tags={"team": "personalization"})])
    store.retract(uri("Model", "m0"))
    follower.catch_up()
    assert reader.reads == []
    assert follower.stats.documents == 0
    assert store.cursor(CURSOR) == store.last_tx() and follower.lag() == 0

    # A search saved now is built from the store as it stands: nothing was lost.
    searches = SavedSearches(store)
    saved = searches.save("alice", "mine", PERSONALIZATION)
    follower.catch_up()
    assert searches.members(saved.id) == [uri("Model", f"m{i}") for i in range(1, 5)]
    left = store.transact(upsert=[entity("Model", "m1", tags={"team": "ads"})])
    follower.catch_up()
    assert moves(searches.transitions(saved.id)) == [("left", uri("Model", "m1"), left.tx)]


def test_a_change_that_moves_nobody_reads_no_document_before(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "mine", PERSONALIZATION)
    follower = ReverseFollower(store)
    reader = follower.reader = CountingReader(store)
    store.transact(upsert=[entity("Dataset", "d", description="one")])
    store.transact(upsert=[entity("Dataset", "d", description="two")])
    follower.catch_up()
    assert [as_of for _, as_of, _ in reader.reads] == [1, 2]  # the documents after only

    reader.reads.clear()
    entered = store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    store.transact(
        upsert=[entity("Model", "ranking", tags={"team": "personalization"}, description="x")]
    )
    follower.catch_up()
    # Entering differs from the membership: the document before is read (there is none).
    tx = entered.tx
    assert tx is not None
    assert [as_of for _, as_of, _ in reader.reads] == [tx, tx - 1, tx + 1]
    assert moves(searches.transitions(saved.id)) == [("entered", MODEL, entered.tx)]


def test_documents_carry_only_the_relationships_searches_read(store: Store) -> None:
    searches = SavedSearches(store)
    saved = searches.save("alice", "ranking's instances", "model.name == 'ranking'")
    follower = ReverseFollower(store)
    follower.catch_up()
    follower.percolator.statistics.documents = follower.percolator.statistics.sample  # settled
    reader = follower.reader = CountingReader(store)
    instance = entity(
        "ModelInstance", "v1", references={"model": MODEL}, owners=[uri("User", "al")]
    )
    store.transact(upsert=[entity("Model", "ranking"), instance])
    follower.catch_up()
    assert {relations for _, _, relations in reader.reads} == {frozenset({"model"}), None}
    assert searches.members(saved.id) == [instance.uri]


# -- the same answers as reading everything ----------------------------------------------

# Names, teams and a model to point at: searches on the entity, on its neighbours' names,
# through an inverse, and one with no positive term (checked for every document).
PROPERTY_SEARCHES = [
    "type == 'Model' AND tags.team == 'a'",
    "model.name == 'n1'",
    "instances.name == 'x'",
    "NOT tags.team == 'a'",
    "name == 'n2' OR owners.id == 'al'",
]
MODELS = ["m1", "m2"]
upserts = st.tuples(
    st.just("model"), st.sampled_from(MODELS), st.sampled_from(["n1", "n2"]), st.sampled_from("ab")
)
instances = st.tuples(
    st.just("instance"),
    st.sampled_from(["x", "y"]),
    st.sampled_from(MODELS),
    st.booleans(),  # owned by al
)
retracts = st.tuples(st.just("retract"), st.sampled_from([*MODELS, "x", "y"]))
catch_ups = st.tuples(st.just("catch_up"))
operations = st.lists(st.one_of(upserts, instances, retracts, catch_ups), max_size=14)


def _uri_of(name: str) -> str:
    return uri("Model", name) if name in MODELS else uri("ModelInstance", name)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, batch=st.integers(1, 4))
def test_transitions_are_those_of_every_document_before_and_after(
    store_factory: StoreFactory, ops: list[tuple[object, ...]], batch: int
) -> None:
    """Skipping reads changes nothing: the transitions are those found by matching every
    entity's whole document as of each transaction before and after, with every search."""
    with store_factory() as store:
        searches = SavedSearches(store)
        ids = [searches.save("alice", f"s{i}", text).id for i, text in enumerate(PROPERTY_SEARCHES)]
        follower = ReverseFollower(store, batch=batch)
        follower.catch_up()
        for op in ops:
            if op[0] == "model":
                _, id, name, team = op
                store.transact(
                    upsert=[entity("Model", str(id), name=str(name), tags={"team": team})]
                )
            elif op[0] == "instance":
                _, id, model, owned = op
                owners = [uri("User", "al")] if owned else []
                store.transact(
                    upsert=[
                        entity("ModelInstance", str(id), references={"model": _uri_of(str(model))},
                               owners=owners)
                    ]
                )  # fmt: skip
            elif op[0] == "retract":
                if store.get(_uri_of(str(op[1]))) is not None:
                    store.retract(_uri_of(str(op[1])))
            else:
                follower.catch_up()
        follower.catch_up()

        compiled = {i: searches.compiled(i) for i in ids}
        now = datetime.now(UTC).timestamp()
        reader = DocumentReader(store)

        def matching(doc: Document | None) -> set[int]:
            if doc is None:
                return set()
            return {i for i, c in compiled.items() if c.matches(doc, now)}

        expected: set[tuple[int, str, int, str]] = set()
        every = [uri("User", "al"), *(_uri_of(n) for n in [*MODELS, "x", "y"])]
        for tx in range(1, store.last_tx() + 1):
            before = reader.documents(every, as_of=tx - 1)
            after = reader.documents(every, as_of=tx)
            for u in every:
                was, is_now = matching(before.get(u)), matching(after.get(u))
                expected |= {(s, u, tx, "entered") for s in is_now - was}
                expected |= {(s, u, tx, "left") for s in was - is_now}
        found = {(t.search, t.uri, t.tx, t.transition) for t in searches.transitions()}
        assert found == expected
        final = reader.documents(every)
        for i in ids:
            assert searches.members(i) == sorted(u for u in every if i in matching(final.get(u)))
