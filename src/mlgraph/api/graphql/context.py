"""What every resolver of one request shares: the store, its loaders, the limits, the types."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import strawberry
from strawberry.fastapi import BaseContext

from mlgraph.api.limits import Limits
from mlgraph.api.loaders import Loaders
from mlgraph.catalog.entity import Entity
from mlgraph.catalog.validation import canonical
from mlgraph.errors import ValidationError
from mlgraph.runtime import Service
from mlgraph.store import Store

if TYPE_CHECKING:
    from mlgraph.api.graphql.nodes import EntityNode, Registry

MAX_TX = 2**63 - 1


@strawberry.input(
    name="AsOf",
    description="Read the graph as it was: after transaction `tx`, or at time `at` "
    "(the last transaction committed by then). Give one of the two.",
)
class AsOfInput:
    tx: int | None = None
    at: datetime | None = None


class Context(BaseContext):
    def __init__(self, service: Service, limits: Limits, registry: Registry) -> None:
        super().__init__()
        self.service = service
        self.limits = limits
        self.registry = registry
        self.loaders = Loaders(service.store)

    @property
    def store(self) -> Store:
        return self.service.store

    def uri(self, text: str, where: str = "uri") -> str:
        """``text`` as a canonical URI; ValidationError if it is not one."""
        return canonical(self.store.schema, text, where)

    async def tx(self, as_of: AsOfInput | None) -> int | None:
        """The transaction to read at; None reads now."""
        if as_of is None or (as_of.tx is None and as_of.at is None):
            return None
        if as_of.tx is not None and as_of.at is not None:
            raise ValidationError("asOf takes tx or at, not both")
        if as_of.tx is not None:
            if not 0 <= as_of.tx <= MAX_TX:
                raise ValidationError(f"asOf.tx must be a transaction id >= 0, got {as_of.tx}")
            return as_of.tx
        return await asyncio.to_thread(self.store.tx_at, as_of.at)

    def node(
        self, entity: Entity | None, tx: int | None, pins: Mapping[str, str] | None = None
    ) -> EntityNode | None:
        return None if entity is None else self.registry.wrap(entity, tx, pins)

    async def node_at(self, uri: str, tx: int | None) -> EntityNode | None:
        return self.node(await self.loaders.entities.load((uri, tx)), tx)

    async def nodes(self, uris: Iterable[str], tx: int | None) -> list[EntityNode | None]:
        """Nodes for ``uris`` in order, None where the store has no such entity."""
        found = await self.loaders.entities.load_many([(u, tx) for u in uris])
        return [self.node(e, tx) for e in found]
