"""Relevance: the tiers, the field boosts, and what demotes an entity.

A hit's score is its tier plus its text relevance, times its demotion:

    exact name  >>  name prefix  >>  every word as typed  >>  the name with a typo  >>  the rest

Tiers are constant-score clauses, each over four times the sum of those below
it plus the most text relevance adds, so BM25 (scaled down) orders hits within
a tier and never lifts one into the next. tantivy's fuzzy matches all score
the same; the tier clauses are what put the right near miss first. Demotion
multiplies the whole score: deprecated, never-hydrated and stale entities sink
within their tier, but by less than the gap between tiers, so a deprecated
exact name still beats a fresh prefix match.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from mlgraph.catalog.entity import Entity, LifecycleState

# Text relevance (BM25 times a field boost, or a constant for a prefix or a
# near miss) is scaled to stay under about 10 for a query of a few words.
# Scores are 32-bit floats: larger constants would round BM25 away.
TEXT_SCALE = 0.015
FUZZY_NAME = 40.0
ALL_TERMS = 200.0
PREFIX = 1_000.0
EXACT = 5_000.0
DEPRECATED = 0.5
STUB = 0.7  # referenced but never read from its source: little is known about it
STALE = 0.8
STALE_AFTER = timedelta(days=365)
# Between equals, the shorter name first: `ranking-model` before
# `ranking-model-v5-20XX0101` when both match `rankng` as well.
BREVITY_PER_WORD = 0.005
BREVITY_WORDS = 10
DEEPEST = DEPRECATED * STUB * STALE * (1 - BREVITY_PER_WORD * BREVITY_WORDS)  # 0.27: tiers 4x apart

# How much a term found in each field counts (summed over the fields it is in).
FIELD_BOOSTS: Mapping[str, float] = {
    "name_words": 4.0,
    "owner_words": 2.0,
    "type_words": 1.5,
    "tag_words": 1.5,
    "related_words": 1.0,
    "attribute_words": 1.0,
    "description_words": 0.8,
}
PREFIX_MATCH = 2.0  # the last word typed as a prefix of a name word (constant)
FUZZY_MATCH = 0.5  # a word within a typo or two of a name word (constant)
MIN_PREFIX = 2  # shorter prefixes match too much to mean anything


# Near misses are looked for only when the words as typed find fewer hits than
# this: a typo rarely matches much, and fuzzy matching costs more than the rest.
FUZZY_BELOW = 10


def fuzzy_distance(term: str) -> int:
    """Edits allowed for a typo: none in short words, where one edit is another word, nor
    in numbers and versions, where it is another run or another release."""
    if len(term) < 4 or any(c.isdigit() for c in term):
        return 0
    return 1 if len(term) < 8 else 2


# A tag or attribute with one of these keys and values marks an entity as retired.
LIFECYCLE_KEYS = frozenset(
    {"status", "state", "stage", "lifecycle", "lifecycle_state", "model.state", "deprecated"}
)
RETIRED_VALUES = frozenset(
    {"deprecated", "retired", "archived", "decommissioned", "obsolete", "sunset", "true", "yes"}
)


def is_deprecated(entity: Entity) -> bool:
    """Whether the entity's own tags or attributes say it is retired."""
    for values in (entity.tags, entity.attributes):
        for key, value in values.items():
            if (
                key.lower() in LIFECYCLE_KEYS
                and isinstance(value, str | bool)
                and str(value).lower() in RETIRED_VALUES
            ):
                # `deprecated: true` means retired; `status: true` means nothing.
                if str(value).lower() in ("true", "yes") and key.lower() != "deprecated":
                    continue
                return True
    return False


def is_stale(updated_ts: int | None, now: float) -> bool:
    return updated_ts is not None and updated_ts < now - STALE_AFTER.total_seconds()


def factor(entity: Entity, stale: bool, name_words: int) -> float:
    """How much an entity's score is multiplied by: 1 for a live, hydrated, recent one
    with a one-word name."""
    found = 1.0 - BREVITY_PER_WORD * min(max(name_words - 1, 0), BREVITY_WORDS)
    if is_deprecated(entity):
        found *= DEPRECATED
    if entity.state is LifecycleState.STUB:
        found *= STUB
    if stale:
        found *= STALE
    return found


# tantivy multiplies a score by log2(2 + w) for a document's ``weight_by_field``
# value w >= 0. Storing w = 2**(WEIGHT_BITS * f) - 2 makes that WEIGHT_BITS * f:
# the factor f, times a constant every hit shares (divided out for display).
WEIGHT_BITS = 4  # at least 1 / DEEPEST, so that the deepest demotion still gives w >= 0


def weight(f: float) -> float:
    return float(2 ** (WEIGHT_BITS * f) - 2)
