"""After any writes and clock moves, membership is what brute force says at the final time."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.reverse import ReverseFollower, SavedSearches
from mlgraph.reverse.reading import DocumentReader
from tests.builders import entity, uri
from tests.conftest import StoreFactory

# Now, not a fixed date: a purge commits at the wall clock's time, and the
# clock under test must not stand behind the store's commit times.
START = datetime.now(UTC).replace(microsecond=0)
STEP = timedelta(hours=12)  # dates and clock moves on one grid: flips land exactly on "now"

SEARCHES = [
    "updated_at > now-3d",
    "updated_at <= now-2d AND type == 'Model'",
    "updated_at > now-5d AND NOT updated_at > now-1d",
    "type == 'Dataset' OR updated_at >= now-1d",
    "updated_at > now-2d OR updated_at < now-4d",
    "tags.team == 'a' AND updated_at < now-1d",
    "updated_at < now-1d AND updated_at > now-2d",  # a one-day window
]
TYPES = ["Model", "Dataset"]
IDS = ["a", "b", "c"]

writes = st.tuples(
    st.just("write"),
    st.sampled_from(TYPES),
    st.sampled_from(IDS),
    st.integers(-12, 6),  # updated_at, in steps from START
    st.sampled_from(["a", "b"]),
)
retracts = st.tuples(
    st.sampled_from(["retract", "purge"]), st.sampled_from(TYPES), st.sampled_from(IDS)
)
moves = st.tuples(st.just("move"), st.integers(0, 8))
catch_ups = st.tuples(st.just("catch_up"))
saves = st.tuples(st.just("save"), st.integers(0, len(SEARCHES) - 1))
edits = st.tuples(  # search i's text becomes search j's
    st.just("edit"), st.integers(0, len(SEARCHES) - 1), st.integers(0, len(SEARCHES) - 1)
)
operations = st.lists(st.one_of(writes, retracts, moves, catch_ups, saves, edits), max_size=20)


class Clock:
    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=st.sets(st.integers(0, len(SEARCHES) - 1), max_size=3), ops=operations)
def test_membership_is_brute_force_at_the_final_time(
    store_factory: StoreFactory, first: set[int], ops: list[tuple[object, ...]]
) -> None:
    with store_factory() as store:
        clock = Clock()
        searches = SavedSearches(store)
        saved = {i: searches.save("alice", f"s{i}", SEARCHES[i]).id for i in sorted(first)}
        follower = ReverseFollower(store, now=clock, batch=3)
        alive: set[str] = set()
        edited: set[int] = set()  # rebuilt silently: their transitions need not alternate
        for op in ops:
            if op[0] == "write":
                _, type_name, id, step, team = op
                model = entity(
                    str(type_name),
                    str(id),
                    source_updated_at=START + int(str(step)) * STEP,
                    tags={"team": str(team)},
                )
                store.transact(upsert=[model], at=clock())
                alive.add(model.uri)
            elif op[0] in ("retract", "purge"):
                gone = uri(str(op[1]), str(op[2]))
                if gone in alive:
                    if op[0] == "purge":
                        store.purge(gone)
                    else:
                        store.transact(retract=[gone], at=clock())
                    alive.discard(gone)
            elif op[0] == "move":
                clock.at += int(str(op[1])) * STEP
            elif op[0] == "catch_up":
                follower.catch_up()
            elif op[0] == "edit":
                i = int(str(op[1]))
                if i in saved:
                    searches.save("alice", f"s{i}", SEARCHES[int(str(op[2]))])
                    edited.add(saved[i])
            else:
                i = int(str(op[1]))
                saved.setdefault(i, searches.save("alice", f"s{i}", SEARCHES[i]).id)
        follower.catch_up()

        now = clock().timestamp()
        documents = [d for docs in DocumentReader(store).every_document() for d in docs]
        for search_id in saved.values():
            compiled = searches.compiled(search_id)
            expected = sorted(d["uri"] for d in documents if compiled.matches(d, now))
            assert searches.members(search_id) == expected, compiled.text

        # Each entity's transitions alternate, in time order, and end where membership is.
        history: dict[tuple[int, str], list[tuple[str, datetime]]] = defaultdict(list)
        for t in searches.transitions():
            history[(t.search, t.uri)].append((t.transition, t.at))
        for (search_id, member), steps in history.items():
            if search_id in edited:
                continue
            kinds = [k for k, _ in steps]
            assert all(a != b for a, b in pairwise(kinds)), steps
            assert [at for _, at in steps] == sorted(at for _, at in steps), steps
            assert (kinds[-1] == "entered") == (member in searches.members(search_id)), steps
