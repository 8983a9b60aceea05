"""DataLoaders over the store's batch reads: one request's reads, gathered per query level.

GraphQL resolves the fields of one level concurrently; each resolver asks a
loader for what it needs and the loader asks the store once for all of them
(``Store.get_many``, ``neighbors_many``, ``statuses_many``). So the number of
SQL statements a query issues follows the shape of the query, not the number
of entities it returns. Loaders live for one request: what they cache is
never stale for longer than that.

Entities are loaded with their own fields only (no owners or references):
GraphQL reaches every relationship, owners included, through ``neighbors``,
whose statement also reads the neighbors' fields and hands them to
``entities``, so following a relationship costs one statement, not two.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from strawberry.dataloader import DataLoader

from mlgraph.catalog.entity import Entity
from mlgraph.store import Store
from mlgraph.store.batch_reads import NeighborPage
from mlgraph.store.records import EntityStatus

EntityKey = tuple[str, int | None]  # (uri, as of tx; None for now)
NO_NEIGHBORS = NeighborPage(0, ())


@dataclass(frozen=True, slots=True)
class NeighborKey:
    """One entity's page of neighbors along one relationship (its edge labels, one way)."""

    uri: str
    labels: tuple[str, ...]
    direction: Literal["out", "in"]
    tx: int | None
    offset: int
    limit: int | None


class Loaders:
    """The loaders of one request."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entities: DataLoader[EntityKey, Entity | None] = DataLoader(self._entities)
        self.neighbors: DataLoader[NeighborKey, NeighborPage] = DataLoader(self._neighbors)
        self.statuses: DataLoader[str, EntityStatus | None] = DataLoader(self._statuses)

    async def _entities(self, keys: Sequence[EntityKey]) -> list[Entity | None]:
        by_tx: dict[int | None, list[str]] = defaultdict(list)
        for uri, tx in keys:
            by_tx[tx].append(uri)
        found: dict[EntityKey, Entity] = {}
        for tx, uris in by_tx.items():
            got = await asyncio.to_thread(
                functools.partial(self.store.get_many, uris, tx, references=False)
            )
            found.update(((uri, tx), entity) for uri, entity in got.items())
        return [found.get(key) for key in keys]

    async def _neighbors(self, keys: Sequence[NeighborKey]) -> list[NeighborPage]:
        # Keys that differ only by entity share one statement: one per relationship
        # field (and page) of the query level.
        groups: dict[NeighborKey, list[str]] = defaultdict(list)
        for k in keys:
            groups[replace(k, uri="")].append(k.uri)
        found: dict[NeighborKey, NeighborPage] = {}
        for g, uris in groups.items():
            pages = await asyncio.to_thread(
                self.store.neighbors_many,
                uris,
                g.labels,
                g.direction,
                as_of=g.tx,
                offset=g.offset,
                limit=g.limit,
            )
            for uri in uris:
                page = found[replace(g, uri=uri)] = pages.get(uri, NO_NEIGHBORS)
                for item, entity in zip(page.items, page.entities, strict=True):
                    if entity is not None:
                        self.entities.prime((item.uri, g.tx), entity)
        return [found[k] for k in keys]

    async def _statuses(self, keys: Sequence[str]) -> list[EntityStatus | None]:
        found = await asyncio.to_thread(self.store.statuses_many, keys)
        return [found.get(uri) for uri in keys]
