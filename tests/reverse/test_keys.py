"""Presearch keys are sound: a document an atom holds for has one of the atom's keys."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mlgraph.reverse.keys import (
    LEVELS,
    MAX_RANGE_KEYS,
    bucket,
    options,
    range_cover,
    sortable,
)
from mlgraph.reverse.query import Atom, Op

finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**20), 10**20)


@given(finite, finite)
def test_codes_sort_as_the_numbers_do(a: float, b: float) -> None:
    if a < b:
        assert sortable(a) < sortable(b)
    elif a == b:
        assert sortable(a) == sortable(b)  # 0.0 and -0.0 too


@given(finite, finite, st.lists(finite, max_size=20))
def test_a_range_cover_holds_every_value_in_the_range(a: float, b: float, xs: list[float]) -> None:
    low, high = min(a, b), max(a, b)
    cover = set(range_cover(low, high))
    assert 0 < len(cover) <= MAX_RANGE_KEYS
    for x in [low, high, *xs]:
        if low <= x <= high:
            code = sortable(x)
            assert any((lv, bucket(code, lv)) in cover for lv in range(1, LEVELS + 1))


def test_open_ranges_are_covered_at_full_precision() -> None:
    cover = range_cover(1000.0, math.inf)
    assert max(level for level, _ in cover) == LEVELS
    assert len(cover) <= MAX_RANGE_KEYS


def test_pattern_options() -> None:
    found = options(Atom("name", Op.LIKE, ("ranking-model-v*",)))
    keys = [keys for keys, _ in found]
    assert (("name", "^", "ranking-model-v"),) not in keys  # 15 characters: cut to 14
    assert (("name", "^", "ranking-model-"),) in keys
    assert (("name", "3", "ran"),) in keys and keys[-1] == (("name", "?"),)
    exact = options(Atom("name", Op.LIKE, ("ranking",)))
    assert exact[0] == ((("name", "=", "ranking"),), True)
