"""Errors in a saved search's text, pointing at where in the text they are."""

from __future__ import annotations

from dataclasses import dataclass

from mlgraph.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of the search text: offsets, and where it starts as people count."""

    start: int  # offset of the first character
    end: int  # offset just past the last character
    line: int  # 1-based
    column: int  # 1-based


def span_at(text: str, start: int, end: int | None = None) -> Span:
    """The span from offset ``start`` to ``end`` (one character when not given)."""
    start = max(0, min(start, len(text)))
    end = start + 1 if end is None else max(end, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(start, end, line, column)


def excerpt(text: str, span: Span) -> str:
    """The line the span starts on, with carets under the span."""
    first = text.rfind("\n", 0, span.start) + 1
    last = text.find("\n", span.start)
    line = text[first : len(text) if last < 0 else last]
    width = max(1, min(span.end, first + len(line)) - span.start)
    return f"  {line}\n  {' ' * (span.start - first)}{'^' * width}"


class DslError(ValidationError):
    """A saved search that does not parse or does not fit the search document.

    ``reason`` says what is wrong; ``line``, ``column`` and ``excerpt`` say where.
    """

    def __init__(self, reason: str, text: str, span: Span) -> None:
        self.reason = reason
        self.line = span.line
        self.column = span.column
        self.span = span
        self.excerpt = excerpt(text, span)
        super().__init__(f"{reason} (line {span.line}, column {span.column})\n{self.excerpt}")
