"""Opaque cursors and page info for relay connections."""

from __future__ import annotations

import base64
import binascii

import strawberry

from mlgraph.errors import ValidationError


@strawberry.type(description="Where a page of a connection sits in the whole.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def encode(kind: str, value: str | int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def decode(cursor: str, kind: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise ValidationError(f"invalid cursor {cursor!r}") from None
    found, sep, value = text.partition(":")
    if not sep or found != kind:
        raise ValidationError(f"invalid cursor {cursor!r}: not a cursor of this list")
    return value


def offset_after(cursor: str | None) -> int:
    """How many items come before the page that starts after ``cursor``."""
    if cursor is None:
        return 0
    value = decode(cursor, "o")
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ValidationError(f"invalid cursor {cursor!r}")
    return int(value)


def page_info(offset: int, count: int, total: int) -> PageInfo:
    """For ``count`` items after the first ``offset`` of ``total``."""
    return PageInfo(
        has_next_page=offset + count < total,
        has_previous_page=offset > 0,
        start_cursor=encode("o", offset + 1) if count else None,
        end_cursor=encode("o", offset + count) if count else None,
    )
