"""A parsed query as tantivy queries: what matches, and how it ranks (see ranking.py).

``match`` is the set of hits: every word found in some field (as typed, as a
prefix when it is the last word, or within a typo or two of a name word),
every phrase, every filter. ``ranked`` adds the tier clauses on top of it.
Facets count ``match``; hits are ordered by ``ranked``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tantivy

from mlgraph.search import analysis, ranking
from mlgraph.search.query import Filter, ParsedQuery, QueryError

Occur = tantivy.Occur
Q = tantivy.Query

TEXT_FIELDS = tuple(ranking.FIELD_BOOSTS)
NAME_FIELDS = ("name_words",)  # typeahead completes names only


@dataclass(frozen=True, slots=True)
class Compiled:
    match: tantivy.Query
    ranked: tantivy.Query
    terms: tuple[str, ...]  # what to highlight
    prefix: str | None  # the last word, when it may be a prefix
    browse: bool  # no text to rank by: newest first
    fuzzy: bool  # near misses included
    could_be_fuzzy: bool  # some word or the name is long enough to look for near misses


def _any(queries: Sequence[tantivy.Query]) -> tantivy.Query:
    if len(queries) == 1:
        return queries[0]
    return Q.boolean_query([(Occur.Should, q) for q in queries])


def _boost(field: str) -> float:
    return ranking.FIELD_BOOSTS.get(field, 1.0) * ranking.TEXT_SCALE


def _filter_only(query: tantivy.Query) -> tantivy.Query:
    """A clause that narrows the hits without adding to their scores."""
    return Q.const_score_query(query, 0.0)


class Compiler:
    def __init__(self, schema: tantivy.Schema, *, fuzzy: bool = False) -> None:
        self.schema = schema
        self.fuzzy = fuzzy  # words and the name may also match with a typo or two

    def term(self, field: str, value: str) -> tantivy.Query:
        return Q.term_query(self.schema, field, value)

    def compile(
        self,
        parsed: ParsedQuery,
        *,
        fields: Sequence[str] = TEXT_FIELDS,
        complete: bool = True,
        where: tantivy.Query | None = None,
    ) -> Compiled:
        """``complete``: the last word may be the start of a word (the user is typing).
        ``where``: a filter the hits must also pass (a saved-search filter), scoring nothing."""
        musts: list[tuple[tantivy.Occur, tantivy.Query]] = []
        words = [t for t in parsed.texts if not t.phrase and not t.negated]
        terms = [term for w in words for term in analysis.terms(w.text)]
        prefix = terms[-1] if complete and terms and len(terms[-1]) >= ranking.MIN_PREFIX else None
        for i, term in enumerate(terms):
            last = i == len(terms) - 1
            musts.append((Occur.Must, self.word(term, fields, prefix if last else None)))
        phrase_terms: list[str] = []
        for text in parsed.texts:
            found = analysis.terms(text.text)
            if not found:
                continue
            if text.negated:
                musts.append((Occur.MustNot, self.words_anywhere(found, fields)))
            elif text.phrase:
                phrase_terms.extend(found)
                musts.append((Occur.Must, self.phrase(found, fields)))
        for f in parsed.filters:
            clause = self.filter(f)
            if f.negated:
                musts.append((Occur.MustNot, clause))
            else:
                musts.append((Occur.Must, _filter_only(clause)))
        uri_matches = [self.term("uri", u) for u in parsed.uris]
        if uri_matches:
            musts.append((Occur.Must, _filter_only(_any(uri_matches))))
        if where is not None:
            musts.append((Occur.Must, _filter_only(where)))
        if not any(occur == Occur.Must for occur, _ in musts):
            if not parsed.filters and not parsed.uris and not terms and not phrase_terms:
                raise QueryError("the query has nothing to search for: type a word or a filter")
            musts.append((Occur.Must, Q.all_query()))
        match = Q.boolean_query(musts)
        tiers = self.tiers(parsed, terms, fields)
        ranked = Q.boolean_query([(Occur.Must, match), *((Occur.Should, q) for q in tiers)])
        key = analysis.name_key(parsed.positive_text)
        return Compiled(
            match,
            ranked,
            tuple(dict.fromkeys([*terms, *phrase_terms])),
            prefix,
            browse=not terms and not phrase_terms and not parsed.uris,
            fuzzy=self.fuzzy,
            could_be_fuzzy=any(map(ranking.fuzzy_distance, [*terms, key])),
        )

    def word(self, term: str, fields: Sequence[str], prefix: str | None) -> tantivy.Query:
        """One word, found in any field (each field's BM25 times its boost, summed), or as
        a prefix or a near miss of a name word.

        A sum, not tantivy's disjunction-max: the two rank alike once the tiers are
        on top, and the sum is cheaper on a million documents (docs/BENCHMARKS.md).
        """
        scale = ranking.TEXT_SCALE
        options = [Q.boost_query(self.term(f, term), _boost(f)) for f in fields]
        if prefix is not None:
            starts = Q.fuzzy_term_query(self.schema, "name_words", prefix, distance=0, prefix=True)
            options.append(Q.const_score_query(starts, ranking.PREFIX_MATCH * scale))
        distance = ranking.fuzzy_distance(term) if self.fuzzy else 0
        if distance:
            near = Q.fuzzy_term_query(self.schema, "name_words", term, distance=distance)
            options.append(Q.const_score_query(near, ranking.FUZZY_MATCH * scale))
        return _any(options)

    def words_anywhere(self, terms: Sequence[str], fields: Sequence[str]) -> tantivy.Query:
        """All of ``terms`` in some field each (what ``-word`` leaves out)."""
        return Q.boolean_query(
            [(Occur.Must, _any([self.term(f, t) for f in fields])) for t in terms]
        )

    def phrase(self, terms: Sequence[str], fields: Sequence[str]) -> tantivy.Query:
        if len(terms) == 1:
            return _any([Q.boost_query(self.term(f, terms[0]), _boost(f)) for f in fields])
        return _any(
            [Q.boost_query(Q.phrase_query(self.schema, f, list(terms)), _boost(f)) for f in fields]
        )

    def filter(self, f: Filter) -> tantivy.Query:
        if f.key == "type":
            return _any([self.term("type", v) for v in f.values])
        if f.key == "owner":
            return _any([self.term("owner_keys", v) for v in f.values])
        if f.key == "tag":
            return _any([self.term("tags" if "::" in v else "tag_keys", v) for v in f.values])
        return _any([self.term("state", v) for v in f.values])

    def tiers(
        self, parsed: ParsedQuery, terms: Sequence[str], fields: Sequence[str]
    ) -> list[tantivy.Query]:
        """Exact name, name prefix, every word as typed, the name with a typo: constant
        scores far apart (see ranking.py)."""
        found: list[tantivy.Query] = []
        for uri in parsed.uris:
            found.append(Q.const_score_query(self.term("uri", uri), ranking.EXACT))
        key = analysis.name_key(parsed.positive_text)
        if key:
            found.append(Q.const_score_query(self.term("name_key", key), ranking.EXACT))
            if len(key) >= ranking.MIN_PREFIX:
                starts = Q.fuzzy_term_query(self.schema, "name_key", key, distance=0, prefix=True)
                found.append(Q.const_score_query(starts, ranking.PREFIX))
            distance = ranking.fuzzy_distance(key) if self.fuzzy else 0
            if distance:
                near = Q.fuzzy_term_query(self.schema, "name_key", key, distance=distance)
                found.append(Q.const_score_query(near, ranking.FUZZY_NAME))
                near_start = Q.fuzzy_term_query(
                    self.schema, "name_key", key, distance=distance, prefix=True
                )
                found.append(Q.const_score_query(near_start, ranking.FUZZY_NAME / 2))
        if terms:
            every = Q.boolean_query(
                [(Occur.Must, _any([self.term(f, t) for f in fields])) for t in terms]
            )
            found.append(Q.const_score_query(every, ranking.ALL_TERMS))
        return found
