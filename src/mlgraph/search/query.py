"""The search box's language: free text and filters.

    ranking model                      every word must match (a typo or two is forgiven)
    "weekly ranking"                   a phrase: the words next to each other
    type:Model  type:Model,Dataset     one of these types (any case; or a URI kind: type:ab-test)
    owner:alice owner:personalization  owned by this user or group (id, name, email or URI)
    tag:team=personalization  tag:env  a tag with this value, or with any value
    state:deprecated                   active, deprecated, stale, fresh, hydrated or stub
    -word  -type:JobAttempt            leave out what matches
    aip://model/registry/x             that entity first

Filters on different keys all apply; values of one key (repeated, or comma
separated) are alternatives. Parsing checks syntax and the schema (type names)
and says what is wrong in a ``QueryError``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

from mlgraph.catalog.schema import Schema
from mlgraph.errors import MlgraphError

FilterKey = Literal["type", "owner", "tag", "state"]
FILTER_KEYS: tuple[FilterKey, ...] = ("type", "owner", "tag", "state")
STATES = ("active", "deprecated", "stale", "fresh", "hydrated", "stub")
MAX_QUERY = 500  # characters
MAX_WORDS = 32


class QueryError(MlgraphError, ValueError):
    """The query cannot be run as written; the message says why and how to fix it."""


@dataclass(frozen=True, slots=True)
class Filter:
    key: FilterKey
    values: tuple[str, ...]  # alternatives, normalized (type names as the schema spells them)
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Text:
    """Free text as typed: a word, or a quoted phrase."""

    text: str
    phrase: bool = False
    negated: bool = False


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    texts: tuple[Text, ...] = ()
    filters: tuple[Filter, ...] = ()
    uris: tuple[str, ...] = field(default=())

    @property
    def positive_text(self) -> str:
        """The free text that must match, in the order typed (what a name is compared with)."""
        return " ".join(t.text for t in self.texts if not t.negated)

    @property
    def is_empty(self) -> bool:
        return not (self.texts or self.filters or self.uris)


def _suggest(value: str, known: list[str]) -> str:
    close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True, slots=True)
class _Token:
    start: int  # offset in the query
    text: str  # quotes removed
    literal: bool  # opened with a quote (after an optional '-'): text, never a filter


def _tokens(text: str) -> list[_Token]:
    """Whitespace-separated tokens; quotes keep spaces in one token (a phrase, or a
    filter value such as owner:"Alice Chen")."""
    found: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, chars = i, []
        while i < n and not text[i].isspace():
            if text[i] == '"':
                end = text.find('"', i + 1)
                if end < 0:
                    raise QueryError(
                        f"unterminated quote at character {i + 1}: close it with another '\"'"
                    )
                chars.append(text[i + 1 : end])
                i = end + 1
            else:
                chars.append(text[i])
                i += 1
        literal = text[start + (text[start] == "-") : start + 2].startswith('"')
        found.append(_Token(start, "".join(chars), literal))
    return found


class QueryParser:
    """Parses query text against a schema (which knows the type names)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._types = {name.lower(): name for name in schema.types}
        self._kinds: dict[str, list[str]] = {}
        for t in schema.types.values():
            self._kinds.setdefault(t.kind.lower(), []).append(t.name)

    def parse(self, text: str) -> ParsedQuery:
        if len(text) > MAX_QUERY:
            raise QueryError(f"the query is {len(text)} characters long; at most {MAX_QUERY}")
        texts: list[Text] = []
        filters: list[Filter] = []
        uris: list[str] = []
        scheme = f"{self.schema.scheme}://"
        for token in _tokens(text):
            raw = text[token.start :]
            negated = raw.startswith("-") and len(token.text) > 1
            body = token.text[1:] if negated else token.text
            key, colon, value = body.partition(":")
            if token.literal:
                if body.strip():
                    texts.append(Text(body, phrase=len(body.split()) > 1, negated=negated))
            elif body.startswith(scheme) and not negated:
                uris.append(body)
            elif colon and key:
                filters.append(self._filter(key, value, negated, token.start))
            elif body:
                texts.append(Text(body, negated=negated))
        if len(texts) > MAX_WORDS:
            raise QueryError(f"the query has {len(texts)} words; at most {MAX_WORDS}")
        return ParsedQuery(tuple(texts), tuple(filters), tuple(uris))

    def _filter(self, key: str, value: str, negated: bool, at: int) -> Filter:
        lowered = key.lower()
        if lowered not in FILTER_KEYS:
            raise QueryError(
                f"unknown filter {key + ':'!r} at character {at + 1}"
                f"{_suggest(lowered, list(FILTER_KEYS))}; the filters are type:, owner:, tag: "
                "and state: (to search for the text, put it in quotes)"
            )
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not values:
            raise QueryError(f"{lowered}: needs a value, e.g. {_EXAMPLES[lowered]}")
        filter_key: FilterKey = lowered
        if filter_key == "type":
            normalized = [t for v in values for t in self._type(v)]
        elif filter_key == "state":
            normalized = [self._state(v) for v in values]
        elif filter_key == "tag":
            normalized = [self._tag(v) for v in values]
        else:
            normalized = [v.lower() for v in values]
        return Filter(filter_key, tuple(dict.fromkeys(normalized)), negated)

    def _type(self, value: str) -> list[str]:
        lowered = value.lower()
        if lowered in self._types:
            return [self._types[lowered]]
        if lowered in self._kinds:
            return self._kinds[lowered]
        known = sorted(self.schema.types)
        raise QueryError(
            f"type:{value}: no such type{_suggest(value, known)}; the types are " + ", ".join(known)
        )

    def _state(self, value: str) -> str:
        lowered = value.lower()
        if lowered not in STATES:
            raise QueryError(
                f"state:{value}: no such state{_suggest(lowered, list(STATES))}; "
                f"the states are {', '.join(STATES)}"
            )
        return lowered

    def _tag(self, value: str) -> str:
        """``key=value`` or ``key::value`` as ``key::value``; ``key`` alone as ``key``."""
        key, sep, tag_value = value.partition("::") if "::" in value else value.partition("=")
        if not key:
            raise QueryError(f"tag:{value}: the tag key is missing, e.g. tag:team=personalization")
        if sep and not tag_value:
            raise QueryError(f"tag:{value}: the value after {sep!r} is missing")
        return f"{key}::{tag_value}".lower() if sep else key.lower()


_EXAMPLES = {
    "type": "type:Model",
    "owner": "owner:alice",
    "tag": "tag:team=personalization",
    "state": "state:deprecated",
}
