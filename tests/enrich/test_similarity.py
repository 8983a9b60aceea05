"""Similar models by shared features, and the features similar models suggest."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.enrich.inference import Inference
from mlgraph.enrich.similarity import Recommendation, Similar, similarity
from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.store import Store
from tests.builders import entity, uri

F1, F2, F3, F4, F5 = (uri("Feature", f"f{i}") for i in range(1, 6))
A, B, C, D, E, G = (uri("Model", f"model-{m}") for m in "abcdeg")
A1, B1, C1, G1 = (uri("ModelInstance", f"{m}1") for m in "abcg")

# instance -> (its model, its features)
INSTANCES = {
    "a1": ("a", [F1, F2, F3]),
    "b1": ("b", [F1, F2]),
    "b2": ("b", [F4]),
    "c1": ("c", [F3, F5]),
    "d1": ("d", [F5]),
    "e1": ("e", []),
    "g1": ("g", [F2, F3, F4]),
}


def build(store: Store) -> None:
    """Models' features, through their instances: a {1,2,3}, b {1,2,4}, c {3,5}, d {5},
    e {}, g {2,3,4}."""
    store.transact(
        upsert=[
            *(entity("Feature", f"f{i}") for i in range(1, 6)),
            *(entity("Model", f"model-{m}") for m in "abcdeg"),
            *(entity("ModelInstance", name, references={"model": uri("Model", f"model-{m}"),
                                                         "features": features})
              for name, (m, features) in INSTANCES.items()),
        ]
    )  # fmt: skip
    Inference(store).rederive()


def test_similar_models_by_jaccard_with_shared_features(store: Store) -> None:
    build(store)
    result = similarity(store, A)
    assert (result.type, result.features) == ("Model", (F1, F2, F3))
    # b: {1,2} of {1,2,3,4}; g: {2,3} of {1,2,3,4}; c: {3} of {1,2,3,5}; d shares nothing.
    assert result.similar == (
        Similar(B, 0.5, (F1, F2)), Similar(G, 0.5, (F2, F3)), Similar(C, 0.25, (F3,))
    )  # fmt: skip
    assert similarity(store, C).similar == (
        Similar(D, 0.5, (F5,)), Similar(A, 0.25, (F3,)), Similar(G, 0.25, (F3,))
    )  # fmt: skip
    assert similarity(store, A, k=1).similar == (Similar(B, 0.5, (F1, F2)),)


def test_recommendations_are_features_of_similar_models_scored_by_similarity(
    store: Store,
) -> None:
    build(store)
    assert similarity(store, A).recommendations == (
        Recommendation(F4, 1.0, (B, G)), Recommendation(F5, 0.25, (C,))
    )  # fmt: skip
    # Only the k most similar models vote.
    assert similarity(store, A, k=2).recommendations == (Recommendation(F4, 1.0, (B, G)),)
    assert similarity(store, A, recommend=1).recommendations == (Recommendation(F4, 1.0, (B, G)),)
    assert similarity(store, A, recommend=0).recommendations == ()


def test_instances_compare_with_instances_by_their_own_features(store: Store) -> None:
    build(store)
    result = similarity(store, A1)
    assert result.type == "ModelInstance"
    assert result.similar == (
        Similar(B1, 2 / 3, (F1, F2)), Similar(G1, 0.5, (F2, F3)), Similar(C1, 0.25, (F3,))
    )  # fmt: skip
    assert result.recommendations == (
        Recommendation(F4, 0.5, (G1,)), Recommendation(F5, 0.25, (C1,))
    )  # fmt: skip


def test_a_model_without_features_has_no_likes(store: Store) -> None:
    build(store)
    assert similarity(store, E).similar == ()
    assert similarity(store, E).recommendations == ()


def test_bad_input_is_refused_clearly(store: Store) -> None:
    build(store)
    with pytest.raises(NotFound, match="no entity"):
        similarity(store, uri("Model", "model-nope"))
    with pytest.raises(ValidationError, match="is a Feature; similarity compares Model or"):
        similarity(store, F1)
    with pytest.raises(LimitExceeded, match="k must be between"):
        similarity(store, A, k=0)
    with pytest.raises(LimitExceeded, match="recommend must be between"):
        similarity(store, A, recommend=-1)


_examples = itertools.count()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sets(st.integers(0, 5), max_size=4)),
        min_size=1,
        max_size=6,
    )
)
def test_scores_equal_jaccard_computed_by_hand(
    store: Store, instances: list[tuple[int, set[int]]]
) -> None:
    """Instances (model index, feature indexes); each model's set is its instances' union."""
    source = f"x{next(_examples)}"
    feature = [uri("Feature", f"f{i}", source) for i in range(6)]
    model = [uri("Model", f"model-{i}", source) for i in range(3)]
    instance = [uri("ModelInstance", f"i{i}", source) for i in range(len(instances))]
    written = store.transact(
        upsert=[
            *(entity("Feature", f"f{i}", source=source) for i in range(6)),
            *(entity("Model", f"model-{i}", source=source) for i in range(3)),
            *(entity("ModelInstance", f"i{n}", source=source,
                     references={"model": model[m], "features": [feature[f] for f in fs]})
              for n, (m, fs) in enumerate(instances)),
        ]
    )  # fmt: skip
    # Derive what this example's writes imply, as the enricher would from the feed.
    assert written.tx is not None
    (change,) = store.changes_since(written.tx - 1)
    Inference(store).apply(change.items)
    sets = {instance[n]: {feature[f] for f in fs} for n, (_, fs) in enumerate(instances)}
    for n, (m, _) in enumerate(instances):
        sets.setdefault(model[m], set()).update(sets[instance[n]])
    for subject in [*instance, *{model[m] for m, _ in instances}]:
        peers = instance if subject in instance else model
        mine = sets[subject]
        expected = sorted(
            (
                (-len(mine & sets[p]) / len(mine | sets[p]), p)
                for p in peers
                if p != subject and p in sets and mine & sets[p]
            ),
        )
        got = similarity(store, subject, k=1000).similar
        assert [(-s.score, s.uri) for s in got] == expected
        assert all(set(s.shared) == mine & sets[s.uri] for s in got)
