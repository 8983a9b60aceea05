"""The graph over REST: an entity, its lineage, its impact, its history.

The entity is named by the rest of the path, after the operation:
``/v1/entities/model/registry/ranking-model-v5-20XX0101`` is the URI
``aip://model/registry/ranking-model-v5-20XX0101`` (the configured scheme is
implied). The whole URI works too (``/v1/entities/aip://model/…``, or
percent-encoded), and so does ``aip:/model/…`` for proxies that merge double
slashes. Ids may contain ``/``; ``%`` in an id is sent as ``%25``, as in any
URL path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mlgraph.api.auth import require
from mlgraph.api.tokens import Scope
from mlgraph.catalog.entity import Entity
from mlgraph.catalog.fields import parse_datetime
from mlgraph.catalog.validation import canonical
from mlgraph.enrich.lineage import impact as impact_of
from mlgraph.errors import NotFound, ValidationError
from mlgraph.runtime import Service
from mlgraph.store.store import MAX_DEPTH, MAX_RESULTS

router = APIRouter(tags=["graph"], dependencies=[Depends(require(Scope.READ))])

MAX_TX = 2**63 - 1
UriPath = Annotated[
    str,
    Path(
        description="The entity's URI without its scheme (`model/registry/x`), or the whole "
        "URI (`aip://model/registry/x`, percent-encoded or not)."
    ),
]
AsOfQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Read as of a transaction id (`120`) or a time (`2025-01-15T00:00:00Z`).",
    ),
]


class NeighborOut(BaseModel):
    relationship: str
    direction: Literal["out", "in"]
    uri: str
    type: str | None
    origin: str
    since_tx: int


class EntityOut(BaseModel):
    uri: str
    type: str
    name: str | None
    description: str | None
    state: str
    owners: list[str]
    tags: dict[str, str]
    attributes: dict[str, Any]
    references: dict[str, list[str]]
    source_created_at: datetime | None
    source_updated_at: datetime | None
    last_hydrated_at: datetime | None
    last_enriched_at: datetime | None
    unresolved: str | None
    as_of_tx: int | None
    neighbors: list[NeighborOut] | None = None


class ReachedOut(BaseModel):
    uri: str
    type: str | None
    name: str | None
    depth: int


class LineageOut(BaseModel):
    start: str
    direction: Literal["upstream", "downstream"]
    depth: int
    partial: bool
    nodes: list[ReachedOut]


class AffectedOut(BaseModel):
    uri: str
    type: str | None
    depth: int
    via: str | None
    source: str | None


class OwnerOut(BaseModel):
    uri: str
    type: str | None
    owns: list[str]


class ImpactOut(BaseModel):
    start: str
    partial: bool
    by_type: dict[str, int]
    affected: list[AffectedOut]
    owners: list[OwnerOut]


class EdgeChangeOut(BaseModel):
    relationship: str
    direction: Literal["out", "in"]
    uri: str


class VersionOut(BaseModel):
    tx: int
    at: datetime
    op: str
    source: str | None
    event_id: str | None
    actor: str | None
    changes: dict[str, tuple[Any, Any]]
    edges_added: list[EdgeChangeOut]
    edges_removed: list[EdgeChangeOut]


class HistoryOut(BaseModel):
    uri: str
    total: int
    versions: list[VersionOut]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def entity_uri(service: Service, path: str) -> str:
    """The canonical URI a path names (see the module docstring)."""
    scheme = service.store.schema.scheme
    text = path.strip()
    merged = f"{scheme}:/"  # a proxy merged the double slash
    if "://" not in text:
        text = f"{scheme}://{text.removeprefix(merged)}"
    return canonical(service.store.schema, text, "uri")


def parse_as_of(value: str | None) -> int | datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        tx = int(text)
        if tx > MAX_TX:
            raise ValidationError(f"as_of: no transaction {text}")
        return tx
    return parse_datetime(text, "as_of")


def _entity_out(entity: Entity, service: Service, tx: int | None) -> dict[str, Any]:
    status = service.store.status(entity.uri)
    return {
        **entity.model_dump(mode="json"),
        "last_hydrated_at": status.hydrated_at if status else None,
        "last_enriched_at": status.enriched_at if status else None,
        "unresolved": status.unresolved if status else None,
        "as_of_tx": tx,
    }


@router.get("/v1/entities/{uri:path}", response_model=EntityOut)
async def get_entity(
    request: Request,
    uri: UriPath,
    as_of: AsOfQuery = None,
    neighbors: Annotated[
        bool, Query(description="Add every entity one edge away, named from this one.")
    ] = False,
) -> dict[str, Any]:
    """One entity: fields, owners, tags, references and when it was last hydrated and enriched."""
    service = _service(request)
    name, when = entity_uri(service, uri), parse_as_of(as_of)

    def read() -> dict[str, Any]:
        tx = service.store.tx_at(when)
        entity = service.store.get(name, tx)
        if entity is None:
            raise NotFound(f"no entity {name}" + ("" if tx is None else f" as of tx {tx}"))
        out = _entity_out(entity, service, tx)
        if neighbors:
            out["neighbors"] = [
                NeighborOut(
                    relationship=n.relationship, direction=n.direction, uri=n.uri, type=n.type,
                    origin=n.origin, since_tx=n.since_tx,
                )
                for n in service.store.neighbors(name, tx)
            ]  # fmt: skip
        return out

    return await run_in_threadpool(read)


@router.get("/v1/lineage/{uri:path}", response_model=LineageOut)
async def get_lineage(
    request: Request,
    uri: UriPath,
    direction: Literal["upstream", "downstream"] = "downstream",
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 3,
    relationships: Annotated[
        list[str] | None, Query(description="Follow only these relationships.")
    ] = None,
    types: Annotated[list[str] | None, Query(description="Return only these types.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 1000,
    as_of: AsOfQuery = None,
) -> dict[str, Any]:
    """Entities upstream or downstream, nearest first, following the schema's `flow`."""
    service = _service(request)
    name, when = entity_uri(service, uri), parse_as_of(as_of)
    walk = await run_in_threadpool(
        lambda: service.store.traverse(
            name, direction, depth=depth, relationships=relationships, types=types,
            limit=limit, as_of=when,
        )
    )  # fmt: skip
    return {
        "start": walk.start,
        "direction": direction,
        "depth": depth,
        "partial": walk.partial,
        "nodes": [ReachedOut(uri=r.uri, type=r.type, name=r.name, depth=r.depth)
                  for r in walk.nodes],
    }  # fmt: skip


@router.get("/v1/impact/{uri:path}", response_model=ImpactOut)
async def get_impact(
    request: Request,
    uri: UriPath,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 5,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 1000,
) -> dict[str, Any]:
    """What a change to the entity affects, by type, and the owners to tell."""
    service = _service(request)
    name = entity_uri(service, uri)
    found = await run_in_threadpool(
        lambda: impact_of(service.store, name, depth=depth, limit=limit)
    )
    return {
        "start": found.start,
        "partial": found.partial,
        "by_type": {t: len(items) for t, items in found.by_type.items()},
        "affected": [AffectedOut(uri=a.uri, type=a.type, depth=a.depth, via=a.via,
                                 source=a.source) for a in found.affected],
        "owners": [OwnerOut(uri=o.uri, type=o.type, owns=list(o.owns)) for o in found.owners],
    }  # fmt: skip


@router.get("/v1/history/{uri:path}", response_model=HistoryOut)
async def get_history(
    request: Request,
    uri: UriPath,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_TX)] = 0,
) -> dict[str, Any]:
    """Every transaction that changed the entity or its edges, oldest first, with diffs."""
    service = _service(request)
    name = entity_uri(service, uri)

    def read() -> dict[str, Any]:
        versions = service.store.history(name)
        if not versions and service.store.get(name) is None:
            raise NotFound(f"no entity {name}")
        return {
            "uri": name,
            "total": len(versions),
            "versions": [
                VersionOut(
                    tx=v.tx, at=v.at, op=v.op, source=v.provenance.source,
                    event_id=v.provenance.event_id, actor=v.provenance.actor, changes=v.changes,
                    edges_added=[EdgeChangeOut(relationship=c.relationship,
                                               direction=c.direction, uri=c.uri)
                                 for c in v.edges_added],
                    edges_removed=[EdgeChangeOut(relationship=c.relationship,
                                                 direction=c.direction, uri=c.uri)
                                   for c in v.edges_removed],
                )
                for v in versions[offset : offset + limit]
            ],
        }  # fmt: skip

    return await run_in_threadpool(read)


@router.get("/v1/entities", response_model=dict[str, Any])
async def list_entities(
    request: Request,
    type: Annotated[str | None, Query(max_length=100, description="Only this type.")] = None,
    after: Annotated[
        str | None, Query(max_length=2000, description="The last URI of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 100,
    as_of: AsOfQuery = None,
) -> dict[str, Any]:
    """Entity URIs in URI order (of one type), a page at a time; `next` is the next `after`."""
    service = _service(request)
    when = parse_as_of(as_of)
    start = None if after is None else canonical(service.store.schema, after, "after")
    page = await run_in_threadpool(
        lambda: service.store.entity_page(type, start, limit, service.store.tx_at(when))
    )
    more = len(page.uris) == limit
    return {"total": page.total, "uris": list(page.uris), "next": page.uris[-1] if more else None}
