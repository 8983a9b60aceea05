"""How text becomes search terms: one definition for documents, queries and highlights.

Names mix conventions (``rankingModelV5``, ``ranking-model-v5``,
``user_click_through_rate_7d``, ``HTTPServer``), so words are split in Python
on separators, case changes and letter/digit boundaries before tantivy sees
them. tantivy's analyzer (registered by ``index.open_index``) then only
lowercases and folds accents, and the very same analyzer object normalizes
query words, so a term means the same thing on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import tantivy

# Analyzer names as the mapping refers to them.
WORDS = "mlg_words"  # pre-split text: lowercase, fold accents, drop absurdly long tokens
KEYWORD = "mlg_keyword"  # a whole value as one term, lowercased: filters, facets, name keys

MAX_TOKEN = 64  # longer "words" are hashes or blobs: nobody types them

_RUN = re.compile(r"[^\W_]+")  # letters and digits; `_`, `-`, `.`, spaces... separate
# Within an ASCII run: an acronym (HTTP of HTTPServer), a word with an optional
# capital, a number.
_ASCII_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Other scripts have no case boundaries worth guessing at: split letters from digits only.
_OTHER_PART = re.compile(r"[0-9]+|[^\W\d_]+")


def words_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN + 1))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def keyword_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
        .filter(tantivy.Filter.lowercase())
        .build()
    )


# The analyzers' definitions go into the mapping hash: change one, and every
# index built with the old one is rebuilt.
ANALYZERS = {
    WORDS: f"simple|remove_long({MAX_TOKEN + 1})|lowercase|ascii_fold",
    KEYWORD: "raw|lowercase",
}
SPLITTER = _ASCII_PART.pattern + " " + _OTHER_PART.pattern

_WORDS = words_analyzer()


@dataclass(frozen=True, slots=True)
class Piece:
    """One word of a text, where it stands in the text."""

    text: str
    start: int
    end: int


def pieces(text: str) -> Iterator[Piece]:
    """The words of ``text`` with their offsets, split on separators, case and digits."""
    for run in _RUN.finditer(text):
        value = run.group()
        splitter = _ASCII_PART if value.isascii() else _OTHER_PART
        for part in splitter.finditer(value):
            yield Piece(part.group(), run.start() + part.start(), run.start() + part.end())


def split(text: str | None) -> str:
    """``text`` with its words separated by spaces: what the words fields index."""
    if not text:
        return ""
    if text.isascii():  # the common case, in one pass: separators never match a part
        return " ".join(_ASCII_PART.findall(text))
    return " ".join(p.text for p in pieces(text))


def terms(text: str | None) -> list[str]:
    """The search terms of ``text``, in order, as the index holds them."""
    if not text:
        return []
    return list(_WORDS.analyze(split(text)))


def term(word: str) -> str | None:
    """One word normalized as a term (None when the analyzer drops it)."""
    found = _WORDS.analyze(word)
    return found[0] if found else None


def name_key(text: str | None) -> str:
    """A name reduced to its terms: ``Ranking-Model_v5`` and ``rankingModelV5`` share one."""
    return " ".join(terms(text))
