"""Who may receive what: asked of a gate, so that ``reverse`` knows nothing of API tokens.

A ``Reader`` answers, for one subscriber, whether it may read an entity: a
notice about an entity it may not read is never delivered to it. The API's
gate (``api/notify.py``) checks the subscriber's token; with scopes only, a
token that may read at all may read every entity, and a finer check replaces
that one function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Reader = Callable[[str], bool]  # uri -> may the subscriber read it


def ALLOW_ALL(_uri: str) -> bool:  # noqa: N802 - a constant that is a function
    return True


class Gate(Protocol):
    async def reader(self, token_id: int | None) -> Reader | str:
        """What the owner of a webhook made with ``token_id`` may read, or why nothing."""
        ...


class OpenGate:
    """Everyone may read everything (authentication off, or tests of delivery alone)."""

    async def reader(self, token_id: int | None) -> Reader | str:
        return ALLOW_ALL
