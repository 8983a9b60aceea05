"""GraphQL errors with a code, and no internals: what went wrong is said, not how.

Errors mlgraph raises on purpose keep their message and get a code in
``extensions``; anything else is logged with its traceback and answered as
``internal error``.
"""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from mlgraph.errors import InvalidURI, LimitExceeded, MlgraphError, NotFound, ValidationError
from mlgraph.search import IndexUnavailable, QueryError

log = logging.getLogger("mlgraph.api")

CODES: tuple[tuple[type[Exception], str], ...] = (
    (NotFound, "NOT_FOUND"),
    (LimitExceeded, "LIMIT_EXCEEDED"),
    (ValidationError, "BAD_REQUEST"),
    (InvalidURI, "BAD_REQUEST"),
    (QueryError, "BAD_REQUEST"),
    (IndexUnavailable, "UNAVAILABLE"),
)


def code_of(error: GraphQLError) -> str | None:
    """The code of an expected error; None for an unexpected one (a bug)."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return str((error.extensions or {}).get("code") or "GRAPHQL_VALIDATION_FAILED")
    for kind, code in CODES:
        if isinstance(original, kind):
            return code
    return "BAD_REQUEST" if isinstance(original, MlgraphError) else None


class ErrorCodes(MaskErrors):
    """Adds ``extensions.code`` to every error and masks unexpected ones."""

    def __init__(self) -> None:
        super().__init__(error_message="internal error")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        out: list[GraphQLError] = []
        for error in errors:
            code = code_of(error)
            masked = self.anonymise_error(error) if code is None else error
            extensions = {**(error.extensions or {}), "code": code or "INTERNAL"}
            out.append(
                GraphQLError(
                    masked.message,
                    nodes=masked.nodes,
                    source=masked.source,
                    positions=masked.positions,
                    path=masked.path,
                    extensions=extensions,
                )
            )
        return out


class Schema(strawberry.Schema):
    """Logs only unexpected errors: a bad query is the client's to fix, not an incident."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if code_of(error) is None:
                log.error("GraphQL resolver failed", exc_info=error.original_error)
