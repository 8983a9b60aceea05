"""Presearch keys: what a document must contain for an atom to have a chance of holding.

A key is a tuple starting with the field path:

    (field, "=", value)          the field has this exact (normalized) value
    (field, "?")                 the field has a value at all
    (field, "^", prefix)         a value starts with ``prefix`` (PREFIX_LENGTHS characters)
    (field, "3", trigram)        a value contains these three characters
    (field, "r", level, bucket)  a number or date falls in this bucket
    (field, "m")                 the field has more than one value

An atom gives *options*: sets of keys of which a matching document has at
least one. Any option is a correct place to index the atom; the percolator
picks the rarest. Ranges use Lucene's trie idea: a value's order-preserving
64-bit code is cut into ``LEVELS`` prefixes of ``STEP`` bits; a range is
covered by a few buckets of mixed sizes, and a document emits the bucket of
each of its values at every level in use.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mlgraph.reverse.query import Atom, Op

Key = tuple[Any, ...]
Option = tuple[Key, ...]  # a document matching the atom has at least one of these keys

# A pattern's literal prefix is cut to the longest of these lengths it has, and
# a document emits its values' prefixes at the lengths in use: a few keys per
# value, however long the patterns are.
PREFIX_LENGTHS = (1, 2, 3, 4, 6, 8, 11, 14, 18, 24, 32)
STEP = 2  # bits per range level: 4 children per bucket
LEVELS = 16  # 32 bits of the code at the finest level: doubles to ~1e-6 relative
# Buckets for one range: a range needs at most 3 per level at each end, so
# any range is covered at the finest level. Past this the cover is coarser.
MAX_RANGE_KEYS = 2 * (2**STEP - 1) * LEVELS


def exists_key(field: str) -> Key:
    return (field, "?")


@dataclass(frozen=True, slots=True)
class Choice:
    """A way to index a conjunction: its keys, and the literal a matching key proves.

    An exact key (a value, "the field exists") proves its literal holds: the
    matcher need not check that literal again.
    """

    keys: Option
    proves: int | None = None  # index of the literal in the conjunction


def conjunction_options(literals: Sequence[tuple[Atom, bool]]) -> list[Choice]:
    """Every way to index a conjunction: its positive atoms' options, and for a field
    with both a lower and an upper bound (``x >= 10 AND x < 20``), the buckets of
    the range between them.

    Alone, each bound covers half the number line. Together they hold of one
    value only if the field has one: a document whose field has several
    values (one below 20, another above 10) carries the ``(field, "m")`` key,
    which is part of the option.
    """
    found: list[Choice] = []
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for i, (atom, positive) in enumerate(literals):
        if not positive:
            continue
        found.extend(Choice(keys, i if exact else None) for keys, exact in options(atom))
        if atom.op.is_range and not atom.relative:
            low, high = _bounds(atom)
            lows[atom.field] = max(lows.get(atom.field, -math.inf), low)
            highs[atom.field] = min(highs.get(atom.field, math.inf), high)
    for field, low in lows.items():
        high = highs[field]
        if low > -math.inf and high < math.inf:
            cover = range_cover(low, high) if low <= high else []
            found.append(Choice((*((field, "r", lv, b) for lv, b in cover), (field, "m"))))
    return found


def options(atom: Atom) -> list[tuple[Option, bool]]:
    """Every way to index ``atom`` (a positive one), each with whether a matching key
    proves the atom; the last is always "the field exists"."""
    field = atom.field
    found: list[tuple[Option, bool]] = []
    if atom.op is Op.EQ:
        found.append((tuple((field, "=", v) for v in atom.values), True))
    elif atom.op.is_range and not atom.relative:
        low, high = _bounds(atom)
        cover = range_cover(low, high)
        found.append((tuple((field, "r", level, b) for level, b in cover), False))
    elif atom.op is Op.CONTAINS:
        found.extend((((field, "3", t),), False) for t in trigrams(str(atom.values[0])))
    elif atom.op is Op.LIKE:
        found.extend(_like_options(field, str(atom.values[0])))
    found.append(((exists_key(field),), atom.op is Op.EXISTS))
    return found


def _bounds(atom: Atom) -> tuple[float, float]:
    bound = float(atom.values[0])
    if atom.op in (Op.GT, Op.GE):
        return bound, math.inf
    return -math.inf, bound


def _like_options(field: str, pattern: str) -> Iterator[tuple[Option, bool]]:
    if "*" not in pattern and "?" not in pattern:
        yield ((field, "=", pattern),), True  # no wildcard: an equality
    head = _literal_prefix(pattern)
    fits = [n for n in PREFIX_LENGTHS if n <= len(head)]
    if fits:
        yield ((field, "^", head[: fits[-1]]),), False
    for run in pattern.replace("?", "*").split("*"):
        yield from ((((field, "3", t),), False) for t in trigrams(run))


def _literal_prefix(pattern: str) -> str:
    for i, ch in enumerate(pattern):
        if ch in "*?":
            return pattern[:i]
    return pattern


def trigrams(text: str) -> list[str]:
    return list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))


# -- ranges -------------------------------------------------------------------------


def sortable(value: float) -> int:
    """An unsigned 64-bit code of ``value`` that sorts as the numbers do."""
    value = float(value) + 0.0  # -0.0 and 0.0 are one number: give them one code
    (bits,) = struct.unpack(">Q", struct.pack(">d", value))
    return int(bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63))


def bucket(code: int, level: int) -> int:
    return code >> (64 - STEP * level)


def range_cover(low: float, high: float) -> list[tuple[int, int]]:
    """(level, bucket) pairs whose buckets together hold every value in [low, high].

    The finest level that needs at most MAX_RANGE_KEYS buckets: the two end
    buckets may hold values outside the range (the matcher checks), the
    buckets between are whole buckets of coarser levels where they fit.
    """
    lo, hi = sortable(low), sortable(high)
    # Levels above the one where the two ends part add no keys: start there.
    parted = (64 - (lo ^ hi).bit_length()) // STEP + 1
    for finest in range(min(LEVELS, parted + LEVELS), 0, -1):
        found = _cover(lo, hi, finest)
        if len(found) <= MAX_RANGE_KEYS:
            return found
    return found


def _cover(lo: int, hi: int, finest: int) -> list[tuple[int, int]]:
    fan = 1 << STEP
    level = finest
    first, last = bucket(lo, level), bucket(hi, level)
    found: list[tuple[int, int]] = []
    while first <= last:
        if level == 1:
            found.extend((1, b) for b in range(first, last + 1))
            break
        # The ragged ends stay at this level; the aligned middle moves up one.
        while first % fan and first <= last:
            found.append((level, first))
            first += 1
        while (last + 1) % fan and last >= first:
            found.append((level, last))
            last -= 1
        first, last, level = first // fan, (last + 1) // fan - 1, level - 1
    return found


# -- a document's keys ----------------------------------------------------------------


class FieldPlan:
    """Which keys the index holds for one field, so a document emits only those."""

    __slots__ = ("eq", "exists", "levels", "multiple", "prefixes", "trigrams")

    def __init__(self) -> None:
        self.eq = False
        self.exists = False
        self.prefixes: tuple[int, ...] = ()
        self.trigrams = False
        self.levels: tuple[int, ...] = ()
        self.multiple = False


def plan_of(families: Iterator[tuple[str, str, int]]) -> dict[str, FieldPlan]:
    """Field plans from the (field, family, parameter) of every key in an index."""
    plans: dict[str, FieldPlan] = {}
    prefixes: dict[str, set[int]] = {}
    levels: dict[str, set[int]] = {}
    for field, family, parameter in families:
        plan = plans.setdefault(field, FieldPlan())
        if family == "=":
            plan.eq = True
        elif family == "?":
            plan.exists = True
        elif family == "^":
            prefixes.setdefault(field, set()).add(parameter)
        elif family == "3":
            plan.trigrams = True
        elif family == "r":
            levels.setdefault(field, set()).add(parameter)
        elif family == "m":
            plan.multiple = True
    for field, found in prefixes.items():
        plans[field].prefixes = tuple(sorted(found))
    for field, found in levels.items():
        plans[field].levels = tuple(sorted(found))
    return plans


def family(key: Key) -> tuple[str, str, int]:
    """(field, family, parameter): the prefix length or the range level, else 0."""
    kind = key[1]
    if kind == "^":
        return key[0], kind, len(key[2])
    if kind == "r":
        return key[0], kind, key[2]
    return key[0], kind, 0


def document_keys(doc: dict[str, tuple[Any, ...]], plans: dict[str, FieldPlan]) -> list[Key]:
    """The keys of ``doc`` that the index can hold."""
    found: list[Key] = []
    add = found.append
    for field, values in doc.items():
        plan = plans.get(field)
        if plan is None:
            continue
        if plan.exists:
            add((field, "?"))
        if plan.multiple and len(values) > 1:
            add((field, "m"))
        if plan.eq:
            found.extend((field, "=", v) for v in values)
        if plan.prefixes:
            for v in values:
                if isinstance(v, str):
                    found.extend((field, "^", v[:n]) for n in plan.prefixes if len(v) >= n)
        if plan.trigrams:
            grams = {v[i : i + 3] for v in values if isinstance(v, str) for i in range(len(v) - 2)}
            found.extend((field, "3", t) for t in grams)
        if plan.levels:
            for v in values:
                if isinstance(v, int | float) and not isinstance(v, bool):
                    code = sortable(v)
                    found.extend((field, "r", lv, code >> (64 - STEP * lv)) for lv in plan.levels)
    return found


def every_key(doc: dict[str, tuple[Any, ...]]) -> set[Key]:
    """Every key ``doc`` could be found by, at every prefix length and range level."""
    found: set[Key] = set()
    for field, values in doc.items():
        found.add((field, "?"))
        if len(values) > 1:
            found.add((field, "m"))
        for v in values:
            found.add((field, "=", v))
            if isinstance(v, str):
                found.update((field, "^", v[:n]) for n in PREFIX_LENGTHS if len(v) >= n)
                found.update((field, "3", v[i : i + 3]) for i in range(len(v) - 2))
            elif isinstance(v, int | float) and not isinstance(v, bool):
                code = sortable(v)
                found.update((field, "r", lv, bucket(code, lv)) for lv in range(1, LEVELS + 1))
    return found
