"""People as sources name them (emails) and as mlgraph does (user URIs)."""

from __future__ import annotations

from collections.abc import Iterable

from mlgraph.catalog import Schema, format_uri

IDENTITY_SOURCE = "identity"


def user_uri(email: str, schema: Schema) -> str:
    """``alice@example.com`` → ``aip://user/identity/alice``: the identity source's id."""
    username = email.split("@", 1)[0].strip().lower()
    return format_uri(schema.type("User").kind, IDENTITY_SOURCE, username, schema.scheme)


def owners_from_emails(emails: Iterable[str] | None, schema: Schema) -> tuple[str, ...]:
    return tuple(sorted({user_uri(e, schema) for e in emails or () if e}))


def tags_from_labels(labels: Iterable[dict[str, object]] | None) -> dict[str, str]:
    """Source labels ``[{"key": "team", "value": "x"}]`` → tags ``{"team": "x"}``."""
    return {str(label["key"]): str(label.get("value") or "") for label in labels or ()}
