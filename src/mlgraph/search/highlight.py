"""Highlighted snippets: the words of a text that the query matched, in ``<b>``.

Done in Python over the stored text, with the same word splitting and
normalization as the index, so ``rankingModelV5`` highlights ``ranking`` and
``Model`` for the query ``ranking model``, prefixes and near misses included
(tantivy's snippet generator sees neither split words nor fuzzy terms).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from mlgraph.search import analysis, ranking

SNIPPET_CHARS = 160
LEAD = 40  # characters of context before the first match in a long text


def edit_distance(a: str, b: str, limit: int) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) from a to b, capped at
    ``limit + 1``: the distance tantivy's fuzzy terms use."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


@dataclass(frozen=True, slots=True)
class Highlighter:
    terms: tuple[str, ...]
    prefix: str | None
    fuzzy: bool = True  # near misses matched too
    _seen: dict[str, bool] = field(default_factory=dict)  # words repeat across hits

    def matches(self, word: str) -> bool:
        found = self._seen.get(word)
        if found is None:
            found = self._seen[word] = self._matches(word)
        return found

    def _matches(self, word: str) -> bool:
        term = analysis.term(word)
        if term is None:
            return False
        if term in self.terms or (self.prefix is not None and term.startswith(self.prefix)):
            return True
        return self.fuzzy and any(
            (d := ranking.fuzzy_distance(t)) and edit_distance(term, t, d) <= d for t in self.terms
        )

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [(p.start, p.end) for p in analysis.pieces(text) if self.matches(p.text)]

    def snippet(self, text: str | None, max_chars: int = SNIPPET_CHARS) -> str | None:
        """``text`` (or a window of it) HTML-escaped with matches in ``<b>``; None if
        nothing in it matched."""
        if not text or (not self.terms and self.prefix is None):
            return None
        spans = self.spans(text)
        if not spans:
            return None
        start = 0
        if len(text) > max_chars:
            start = max(0, spans[0][0] - LEAD)
            if start:  # begin at a word, not in the middle of one
                space = text.find(" ", start)
                start = space + 1 if 0 <= space < spans[0][0] else start
        end = min(len(text), start + max_chars)
        if end < len(text):
            space = text.rfind(" ", start, end)
            end = space if space > spans[0][1] else end
        return _render(text, spans, start, end)


def _render(text: str, spans: Sequence[tuple[int, int]], start: int, end: int) -> str:
    out = ["…" if start else ""]
    at = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(html.escape(text[at:s]))
        out.append(f"<b>{html.escape(text[s:e])}</b>")
        at = e
    out.append(html.escape(text[at:end]))
    out.append("…" if end < len(text) else "")
    return "".join(out)
