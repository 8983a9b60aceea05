"""A parsed query as tantivy queries: what matches, and how it ranks (see ranking.py).

``match`` is the set of hits: every word found in some field (as typed, as a
prefix when it is the last word, or within a typo or two of a name word),
every phrase, every filter. ``ranked`` adds the tier clauses on top of it.
Facets count ``match``; hits are ordered by ``ranked``.

Over the text fields, whether a word is found is asked of ``any_words`` (all of
their words in one field: one posting list per word, not seven), scoring
nothing; each word's per-field BM25 is an optional clause of ``ranked``, so it
is computed for the hits only and ``match`` (counted for facets) never scores.
A word found in very many documents of a field is scored on the hits only
(``_on_hits``). The scores are the same as summing each word's fields inside ``match``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tantivy

from mlgraph.search import analysis, ranking
from mlgraph.search.mapping import ANY_WORDS
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


def _on_hits(hits: tantivy.Query, query: tantivy.Query) -> tantivy.Query:
    """``query``'s score, asked of the hits only: ``hits`` leads, ``query`` skips to each.

    Optional clauses side by side become one union, which walks every document
    of every clause in the windows it visits: a word in most documents (``team``
    in the owners) costs its whole posting list. Led by the hits, a term skips
    from hit to hit instead (on a million documents, BENCHMARKS.md).
    """
    return Q.boolean_query([(Occur.Must, hits), (Occur.Should, query)])


# A word in more documents than this is scored by skipping from hit to hit (``_on_hits``);
# rarer ones are cheaper to walk than to find the hits again for.
DENSE_TERM = 10_000


class Compiler:
    def __init__(
        self,
        schema: tantivy.Schema,
        *,
        fuzzy: bool = False,
        searcher: tantivy.Searcher | None = None,
        dense: int = DENSE_TERM,
    ) -> None:
        """``searcher``: the one the query will run on, to leave out words a field never
        holds (they score nothing) and to score words in more than ``dense`` documents
        on the hits only."""
        self.schema = schema
        self.fuzzy = fuzzy  # words and the name may also match with a typo or two
        self.searcher = searcher
        self.dense = dense

    def documents_with(self, field: str, term: str) -> int | None:
        """How many documents hold ``term`` in ``field`` (None: no searcher to ask)."""
        return None if self.searcher is None else int(self.searcher.doc_freq(field, term))

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
        scores: list[tantivy.Query] = []  # the words' text relevance, a part per field
        dense: list[tantivy.Query] = []  # parts scored on the hits only
        words = [t for t in parsed.texts if not t.phrase and not t.negated]
        terms = [term for w in words for term in analysis.terms(w.text)]
        prefix = terms[-1] if complete and terms and len(terms[-1]) >= ranking.MIN_PREFIX else None
        for i, term in enumerate(terms):
            last = i == len(terms) - 1
            found, parts, dense_parts = self.word(term, fields, prefix if last else None)
            musts.append((Occur.Must, found))
            scores.extend(parts)
            dense.extend(dense_parts)
        phrase_terms: list[str] = []
        for text in parsed.texts:
            found_terms = analysis.terms(text.text)
            if not found_terms:
                continue
            if text.negated:
                musts.append((Occur.MustNot, self.words_anywhere(found_terms, fields)))
            elif text.phrase:
                phrase_terms.extend(found_terms)
                musts.append((Occur.Must, self.phrase(found_terms, fields)))
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
        hits = _filter_only(match)
        ranked = Q.boolean_query(
            [
                (Occur.Must, match),
                *((Occur.Should, q) for q in [*scores, *tiers]),
                *((Occur.Should, _on_hits(hits, q)) for q in dense),
            ]
        )
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

    def anywhere(self, term: str, fields: Sequence[str]) -> tantivy.Query:
        """``term`` as typed in some field of ``fields``, scoring nothing of its own."""
        if tuple(fields) == TEXT_FIELDS:
            return self.term(ANY_WORDS, term)
        return _any([self.term(f, term) for f in fields])

    def word(
        self, term: str, fields: Sequence[str], prefix: str | None
    ) -> tuple[tantivy.Query, list[tantivy.Query], list[tantivy.Query]]:
        """One word: found in any field, or as a prefix or a near miss of a name word (what
        must match, scoring nothing), and the parts of its text relevance, summed: each
        field's BM25 times its boost, a constant for the prefix and for the near miss;
        the parts in many documents apart (to be scored on the hits only). A field that
        never holds the word is left out.

        A sum, not tantivy's disjunction-max: the two rank alike once the tiers are
        on top, and the sum is cheaper on a million documents (docs/BENCHMARKS.md).
        """
        scale = ranking.TEXT_SCALE
        found = [self.anywhere(term, fields)]
        options: list[tantivy.Query] = []
        dense: list[tantivy.Query] = []
        for f in fields:
            held = self.documents_with(f, term)
            if held != 0:
                scored = Q.boost_query(self.term(f, term), _boost(f))
                (dense if held is not None and held > self.dense else options).append(scored)
        if prefix is not None:
            starts = Q.fuzzy_term_query(self.schema, "name_words", prefix, distance=0, prefix=True)
            found.append(starts)
            options.append(Q.const_score_query(starts, ranking.PREFIX_MATCH * scale))
        distance = ranking.fuzzy_distance(term) if self.fuzzy else 0
        if distance:
            near = Q.fuzzy_term_query(self.schema, "name_words", term, distance=distance)
            found.append(near)
            options.append(Q.const_score_query(near, ranking.FUZZY_MATCH * scale))
        return _filter_only(_any(found)), options, dense

    def words_anywhere(self, terms: Sequence[str], fields: Sequence[str]) -> tantivy.Query:
        """All of ``terms`` in some field each (what ``-word`` leaves out)."""
        return Q.boolean_query([(Occur.Must, self.anywhere(t, fields)) for t in terms])

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
            found.append(Q.const_score_query(self.words_anywhere(terms, fields), ranking.ALL_TERMS))
        return found
