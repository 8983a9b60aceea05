"""Exceptions shared by every part of mlgraph.

Each error says what is wrong and where, so that the API can turn it into a
4xx response without rewording it.
"""

from __future__ import annotations


class MlgraphError(Exception):
    """Base class for every error mlgraph raises on purpose."""


class InvalidURI(MlgraphError, ValueError):
    """A string is not a well-formed entity URI."""


class SchemaError(MlgraphError):
    """The type schema is malformed; the message names the declaration."""


class ValidationError(MlgraphError, ValueError):
    """An entity or edge does not fit the type schema; nothing was written."""


class NotFound(MlgraphError, LookupError):
    """The store has no entity with that URI."""


class LimitExceeded(MlgraphError, ValueError):
    """A request asks for more than a configured limit allows."""
