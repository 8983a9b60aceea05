"""The normalized entity every connector produces and the store keeps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LifecycleState(StrEnum):
    """How much mlgraph knows about an entity."""

    STUB = "stub"  # referenced by another entity, never fetched from its source
    HYDRATED = "hydrated"  # fetched from its source of truth


class Entity(BaseModel):
    """One entity in its normalized form.

    ``owners`` and ``references`` become edges in the store. A relationship named
    in ``references`` is stated in full: its edges from this entity are exactly
    the URIs listed (an empty list removes them all); relationships left out are
    left as they are. ``owners`` is always stated in full.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    type: str
    name: str | None = None
    description: str | None = None
    owners: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)
    references: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    state: LifecycleState = LifecycleState.HYDRATED
    source_created_at: datetime | None = None
    source_updated_at: datetime | None = None
