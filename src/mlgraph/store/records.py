"""What the store takes and gives back: plain, immutable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from mlgraph.catalog.entity import Entity

Origin = Literal["asserted", "inferred"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who or what caused a transaction."""

    source: str | None = None
    event_id: str | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """``src --rel--> dst``, with ``rel`` a relationship declared on the source's type."""

    src: str
    rel: str
    dst: str
    origin: Origin = "asserted"
    provenance: dict[str, Any] | None = None


class Op(StrEnum):
    """What a transaction did to one entity or edge, as the change feed tells it."""

    CREATE = "create"
    UPDATE = "update"
    RETRACT = "retract"
    PURGE = "purge"
    ASSERT = "assert"


@dataclass(frozen=True, slots=True)
class TxReport:
    """The outcome of ``transact``; ``tx`` is None when nothing changed."""

    tx: int | None
    at: datetime | None
    entities_written: int = 0
    entities_retracted: int = 0
    stubs_created: int = 0
    edges_asserted: int = 0
    edges_retracted: int = 0

    @property
    def changed(self) -> bool:
        return self.tx is not None


@dataclass(frozen=True, slots=True)
class Neighbor:
    """An entity one edge away, with the relationship named as seen from where we stand."""

    relationship: str
    direction: Literal["out", "in"]
    uri: str
    type: str | None
    label: str
    origin: Origin
    provenance: dict[str, Any] | None
    since_tx: int


@dataclass(frozen=True, slots=True)
class EdgeChange:
    relationship: str
    direction: Literal["out", "in"]
    uri: str


@dataclass(frozen=True, slots=True)
class Version:
    """One transaction in an entity's history and what it changed."""

    tx: int
    at: datetime
    provenance: Provenance
    op: Literal["created", "updated", "retracted", "edges"]
    entity: Entity | None  # the entity as of this transaction (None once retracted)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    edges_added: tuple[EdgeChange, ...] = ()
    edges_removed: tuple[EdgeChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeItem:
    kind: Literal["entity", "edge"]
    op: Op
    uri: str
    label: str | None = None
    other: str | None = None
    cause: Provenance | None = None  # when it differs from the transaction's


@dataclass(frozen=True, slots=True)
class Change:
    """One committed transaction, as the change feed delivers it."""

    tx: int
    at: datetime
    provenance: Provenance
    items: tuple[ChangeItem, ...]

    @property
    def uris(self) -> set[str]:
        """Every entity this transaction touched, including both ends of changed edges."""
        out = {i.uri for i in self.items}
        out.update(i.other for i in self.items if i.other)
        return out


@dataclass(frozen=True, slots=True)
class Listed:
    """An entity as ``Store.listing`` gives it: enough to tell whether it is current."""

    uri: str
    type: str
    state: str
    source_updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Reached:
    uri: str
    type: str | None
    name: str | None
    depth: int


@dataclass(frozen=True, slots=True)
class Traversal:
    """Entities reached from ``start``; ``partial`` when a cap cut the walk short."""

    start: str
    nodes: tuple[Reached, ...]
    partial: bool


@dataclass(frozen=True, slots=True)
class EntityStatus:
    """When the entity's source was last read, and when the enricher last looked at it."""

    hydrated_at: datetime | None
    enriched_at: datetime | None
    unresolved: str | None  # why it cannot be hydrated; None when it can (or was)
    unresolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A referenced entity no source could give: reported, not retried."""

    uri: str
    type: str
    reason: str
    since: datetime
    referenced_by: int
