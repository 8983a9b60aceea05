"""Models alike in the features they use, and the features their likes suggest.

Similarity is the Jaccard index of two feature sets: shared features over
all features of either. A Model's features are those of its instances (the
inferred ``uses_features``, current once the enricher has run); a
ModelInstance's are its ``features``. Models are compared with models and
instances with instances. Only candidates sharing a feature can score above
zero, so the work is three set-at-a-time steps, whatever the graph's size:
this model's features, everything else using them, and those candidates'
features.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from mlgraph.catalog.validation import canonical
from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.store import Store

# The relationship, read from each comparable type, that names its features.
FEATURES_OF = {"Model": "uses_features", "ModelInstance": "features"}

MAX_K = 1000


@dataclass(frozen=True, slots=True)
class Similar:
    uri: str
    score: float  # Jaccard index of the two feature sets, in (0, 1]
    shared: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recommendation:
    feature: str
    score: float  # the sum of the similarities of the similar models using it
    used_by: tuple[str, ...]  # those models, most similar first


@dataclass(frozen=True, slots=True)
class Similarity:
    uri: str
    type: str
    features: tuple[str, ...]
    similar: tuple[Similar, ...]
    recommendations: tuple[Recommendation, ...]


class _FeatureSets:
    """Reads which features entities of one type use, and which of them use a feature."""

    def __init__(self, store: Store, type_name: str) -> None:
        view = store.schema.type(type_name).relationship(FEATURES_OF[type_name])
        self.store = store
        self.type = type_name
        labels = set(view.labels)
        self._to_features = (labels, set()) if view.direction == "out" else (set(), labels)
        self._to_users = (self._to_features[1], self._to_features[0])

    def features(self, uris: Iterable[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for s in self.store.step(uris, *self._to_features):
            found[s.frm].add(s.to)
        return found

    def users(self, features: Iterable[str]) -> set[str]:
        return {s.to for s in self.store.step(features, *self._to_users)}


def _check(store: Store, uri: str, k: int, what: str) -> tuple[str, str]:
    if not 1 <= k <= MAX_K:
        raise LimitExceeded(f"{what} must be between 1 and {MAX_K}, got {k}")
    uri = canonical(store.schema, uri, "uri")
    found = store.states([uri]).get(uri)
    if found is None:
        raise NotFound(f"no entity {uri}")
    if found[0] not in FEATURES_OF:
        raise ValidationError(
            f"{uri} is a {found[0]}; similarity compares {' or '.join(FEATURES_OF)} entities"
        )
    return uri, found[0]


def similarity(store: Store, uri: str, *, k: int = 10, recommend: int = 10) -> Similarity:
    """The ``k`` most similar models (or instances) to ``uri``, and up to ``recommend``
    features they use that ``uri`` does not, scored by how similar their users are."""
    uri, type_name = _check(store, uri, k, "k")
    if not 0 <= recommend <= MAX_K:
        raise LimitExceeded(f"recommend must be between 0 and {MAX_K}, got {recommend}")
    sets = _FeatureSets(store, type_name)
    own = sets.features([uri]).get(uri, set())
    candidates = sets.users(own) - {uri} if own else set()
    theirs = sets.features(candidates)
    scored = []
    for other, features in theirs.items():
        shared = own & features
        scored.append(Similar(other, len(shared) / len(own | features), tuple(sorted(shared))))
    scored.sort(key=lambda s: (-s.score, s.uri))
    similar = tuple(scored[:k])
    return Similarity(
        uri, type_name, tuple(sorted(own)), similar, _recommend(own, similar, theirs, recommend)
    )


def _recommend(
    own: set[str], similar: tuple[Similar, ...], theirs: dict[str, set[str]], limit: int
) -> tuple[Recommendation, ...]:
    score: dict[str, float] = defaultdict(float)
    users: dict[str, list[str]] = defaultdict(list)
    for s in similar:  # most similar first, so ``used_by`` keeps that order
        for feature in sorted(theirs[s.uri] - own):
            score[feature] += s.score
            users[feature].append(s.uri)
    ranked = sorted(score, key=lambda f: (-score[f], f))[:limit]
    return tuple(Recommendation(f, score[f], tuple(users[f])) for f in ranked)
