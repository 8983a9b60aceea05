"""The percolator: which saved searches does this document match?

Lucene Monitor's split. The *query index* holds every conjunction of every
search's normal form under one set of presearch keys: the rarest option its
positive atoms give (an exact value, a tag, an owner, a range's buckets, a
name prefix or trigram), chosen with the statistics of documents seen. A
conjunction with no positive atom (``NOT status == 'ok'``) goes on the
always-check list. The *presearcher* turns a document into its keys and
collects the conjunctions filed under them: the candidates. The *matcher*
checks only those, with the compiled predicate.

Identical conjunctions of different searches (many people following
``type == 'PipelineRun' AND status == 'failed'``) are indexed and checked once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlgraph.reverse.compiler import CompiledSearch
from mlgraph.reverse.keys import (
    Choice,
    FieldPlan,
    Key,
    conjunction_options,
    document_keys,
    family,
    plan_of,
)
from mlgraph.reverse.normal import Conjunction
from mlgraph.reverse.predicate import Check, Prepared, all_checks, literal_check, prepare
from mlgraph.reverse.stats import Statistics
from mlgraph.search.filter_fields import DocumentMapping, Kind

SearchId = int
NO_ANCHOR = Choice(())

# Re-choose every anchor when this many documents have been observed: the
# first choices rest on priors or a small sample.
REBALANCE_AT = frozenset({256, 2048})


@dataclass(slots=True, eq=False)
class _Conjunction:
    id: int
    literals: Conjunction | None  # None: a search too large to split, checked whole
    options: list[Choice]
    searches: set[SearchId] = field(default_factory=set)
    anchor: Choice = NO_ANCHOR  # the keys it is filed under; none = always checked
    # What is left to check once found under its keys; None: nothing (the key
    # proved its only literal, as for ``uri == '...'``).
    check: Check | None = None


class Percolator:
    def __init__(self, mapping: DocumentMapping, statistics: Statistics | None = None) -> None:
        self.mapping = mapping
        self.statistics = statistics if statistics is not None else Statistics()
        self.last_candidates = 0  # conjunctions checked for the last document
        self._searches: dict[SearchId, list[int]] = {}
        self._fields: dict[SearchId, dict[str, Kind]] = {}
        self._conjunctions: dict[int, _Conjunction] = {}
        self._by_literals: dict[Conjunction, int] = {}
        self._index: dict[Key, set[int]] = {}
        self._always: set[int] = set()
        self._families: Counter[tuple[str, str, int]] = Counter()
        self._plans: dict[str, FieldPlan] | None = None
        self._kinds: dict[str, Kind | None] = {}
        # The fields some search reads: a document is prepared for those only
        # (a team's document lists thousands of entities it owns; few searches ask).
        self._read: Counter[str] = Counter()
        self._reading: dict[str, Kind] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._searches)

    def __contains__(self, search_id: object) -> bool:
        return search_id in self._searches

    @property
    def conjunctions(self) -> int:
        return len(self._conjunctions)

    @property
    def always_checked(self) -> int:
        return len(self._always)

    # -- the query index -----------------------------------------------------------

    def add(self, search_id: SearchId, compiled: CompiledSearch) -> None:
        """Index ``compiled`` as ``search_id`` (replacing what that id held)."""
        self.remove(search_id)
        ids: list[int] = []
        if compiled.conjunctions is None:
            ids.append(self._new(None, [], compiled.check).id)
        else:
            for literals in compiled.conjunctions:
                ids.append(self._conjunction(literals).id)
        for cid in ids:
            self._conjunctions[cid].searches.add(search_id)
        self._searches[search_id] = ids
        self._fields[search_id] = dict(compiled.kinds)
        for path, kind in compiled.kinds.items():
            self._read[path] += 1
            self._reading[path] = kind

    def remove(self, search_id: SearchId) -> bool:
        ids = self._searches.pop(search_id, None)
        if ids is None:
            return False
        for path in self._fields.pop(search_id):
            self._read[path] -= 1
            if not self._read[path]:
                del self._read[path], self._reading[path]
        for cid in ids:
            conj = self._conjunctions[cid]
            conj.searches.discard(search_id)
            if not conj.searches:
                self._file(conj, NO_ANCHOR)
                self._always.discard(cid)
                del self._conjunctions[cid]
                if conj.literals is not None:
                    del self._by_literals[conj.literals]
        return True

    def _conjunction(self, literals: Conjunction) -> _Conjunction:
        found = self._by_literals.get(literals)
        if found is not None:
            return self._conjunctions[found]
        conj = self._new(literals, conjunction_options(literals))
        self._by_literals[literals] = conj.id
        return conj

    def _new(
        self, literals: Conjunction | None, choices: list[Choice], whole: Check | None = None
    ) -> _Conjunction:
        """A conjunction (or, with ``whole``, a search checked whole), filed under its best keys."""
        conj = _Conjunction(self._next_id, literals, choices, check=whole)
        self._next_id += 1
        self._conjunctions[conj.id] = conj
        self._file(conj, self._best(choices))
        return conj

    def _best(self, choices: list[Choice]) -> Choice:
        if not choices:
            return NO_ANCHOR
        frequency = self.statistics.frequency
        return min(choices, key=lambda c: (sum(frequency(k) for k in c.keys), len(c.keys)))

    def _file(self, conj: _Conjunction, anchor: Choice) -> None:
        """Move ``conj`` from its current keys to ``anchor``'s (none: the always-check list)."""
        for key in conj.anchor.keys:
            filed = self._index[key]
            filed.discard(conj.id)
            if not filed:
                del self._index[key]
            self._families[family(key)] -= 1
        for key in anchor.keys:
            self._index.setdefault(key, set()).add(conj.id)
            self._families[family(key)] += 1
        if anchor.keys:
            self._always.discard(conj.id)
        else:
            self._always.add(conj.id)
        conj.anchor = anchor
        if conj.literals is not None:
            conj.check = _checks(conj.literals, skip=anchor.proves)
        self._plans = None

    def rebalance(self) -> None:
        """Choose every conjunction's keys again, with the statistics as they are now."""
        for conj in self._conjunctions.values():
            best = self._best(conj.options)
            if best != conj.anchor:
                self._file(conj, best)

    def _field_plans(self) -> dict[str, FieldPlan]:
        if self._plans is None:
            self._families += Counter()  # drop the families no key uses any more
            self._plans = plan_of(iter(self._families))
        return self._plans

    # -- documents -----------------------------------------------------------------

    def _kind_of(self, path: str) -> Kind | None:
        try:
            return self._kinds[path]
        except KeyError:
            info = self.mapping.lookup(path)
            kind = self._kinds[path] = None if info is None else info.kind
            return kind

    def prepare(self, document: Mapping[str, Any]) -> Prepared:
        """``document`` as the searches read it: the fields they use, normalized."""
        return prepare(document, self._reading.get)

    def reads_any(self, paths: frozenset[str]) -> bool:
        """Whether some search reads one of ``paths``."""
        return not paths.isdisjoint(self._read.keys())

    def fields_read(self) -> frozenset[str]:
        """The document fields some search reads: all a match looks at."""
        return frozenset(self._read)

    def observe(self, document: Mapping[str, Any]) -> None:
        """Count ``document``'s keys towards the statistics anchors are chosen by.

        Every field counts, not only those read now: a search added later
        is anchored by the same statistics. Not every document offered is
        counted (``Statistics.wants``): preparing one costs as much as reading it.
        """
        if self.statistics.wants():
            self.count(document)

    def count(self, document: Mapping[str, Any]) -> None:
        """Count ``document``'s keys, sampled or not: ``observe`` without the sampling."""
        if self.statistics.observe(prepare(document, self._kind_of)) and (
            self.statistics.documents in REBALANCE_AT
        ):
            self.rebalance()

    def candidates(self, doc: Prepared) -> set[int]:
        """Conjunctions ``doc`` may match: those filed under its keys, and the always-checked."""
        index = self._index
        found = set(self._always)
        for key in document_keys(doc, self._field_plans()):
            filed = index.get(key)
            if filed:
                found |= filed
        return found

    def match(self, document: Mapping[str, Any], now: float | None = None) -> list[SearchId]:
        """The ids of the searches ``document`` matches, in order."""
        return self.match_prepared(self.prepare(document), time.time() if now is None else now)

    def match_prepared(self, doc: Prepared, now: float) -> list[SearchId]:
        candidates = self.candidates(doc)
        self.last_candidates = len(candidates)
        conjunctions = self._conjunctions
        matched: set[SearchId] = set()
        for cid in candidates:
            conj = conjunctions[cid]
            check = conj.check
            if check is None or check(doc, now):
                matched |= conj.searches
        return sorted(matched)

    def searches(self) -> Iterator[SearchId]:
        return iter(self._searches)


def _checks(literals: Conjunction, skip: int | None) -> Check | None:
    """All the literals' checks but ``skip``'s, cheap ones first; None if none are left."""
    kept = [lit for i, lit in enumerate(literals) if i != skip]
    if not kept:
        return None
    kept.sort(key=lambda lit: lit[0].op.value != "eq")  # equality before patterns
    return all_checks(tuple(literal_check(atom, positive) for atom, positive in kept))
