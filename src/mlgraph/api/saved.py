"""Saved searches and reverse search over REST (docs/api.md#saved-searches).

Who may do what is in ``saved_ops.py``: everything needs ``read``; a caller
manages its own searches, an ``admin`` anyone's. A search that is not valid
DSL is a 422 whose body points at the line and column, with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mlgraph.api import saved_ops as ops
from mlgraph.api.auth import Principal, require
from mlgraph.api.matcher import SearchMatcher, matcher_of
from mlgraph.api.rest import entity_uri
from mlgraph.api.tokens import Scope
from mlgraph.errors import NotFound, ValidationError
from mlgraph.reverse import DslError, SavedSearch, SavedSearches
from mlgraph.reverse.saved import MAX_NAME
from mlgraph.runtime import Service

router = APIRouter(tags=["saved searches"])

Reader = Annotated[Principal, Depends(require(Scope.READ))]
SearchId = Annotated[int, Path(ge=1, le=ops.MAX_ID, description="The saved search's id.")]
After = Annotated[int, Query(ge=0, le=ops.MAX_ID, description="`next` of the previous page.")]
Limit = Annotated[
    int, Query(ge=1, le=10_000, description="Page size, at most MLGRAPH_API_MAX_PAGE.")
]
Index = Literal["entities", "owners"]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No token, or an invalid one"},
    403: {"description": "The token may not do this"},
    422: {"description": "Bad input; the message says what and where"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No saved search with that id"}}


class SavedSearchIn(BaseModel):
    """Create a search, or edit one: by ``id``, or by ``owner`` and ``name``."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[int, Field(ge=1, le=ops.MAX_ID)] | None = Field(
        None, description="Edit this search (its filter, or its name)."
    )
    owner: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_NAME,
        description="Default: the token's name; another owner needs the 'admin' scope.",
    )
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    filter: str = Field(
        min_length=1, max_length=ops.MAX_FILTER, description="The search, in the DSL (docs/dsl.md)."
    )
    index: Index = Field("entities", description="Every saved search reads entity documents.")


class SavedSearchOut(BaseModel):
    id: int
    owner: str
    name: str
    filter: str
    index: Index
    revision: int
    saved_tx: int
    built_tx: int | None = Field(
        description="The transaction its members were computed as of; null until the reverse "
        "follower has done so (after every edit)."
    )
    created_at: datetime
    updated_at: datetime
    invalid_reason: str | None = Field(
        description="Why it no longer compiles against the search mapping (it then matches "
        "nothing until saved again); null when it does."
    )


class UpsertOut(BaseModel):
    saved_search: SavedSearchOut
    created: bool


class DslErrorOut(BaseModel):
    error: str
    reason: str
    line: int
    column: int
    excerpt: str


class SearchPageOut(BaseModel):
    total: int
    items: list[SavedSearchOut]
    next: int | None = Field(description="`after` for the next page; null on the last.")


class MemberOut(BaseModel):
    uri: str
    since_tx: int


class MemberPageOut(BaseModel):
    search: int
    total: int
    items: list[MemberOut]
    next: str | None = Field(description="`after` for the next page; null on the last.")


class TransitionOut(BaseModel):
    id: int
    search: int
    uri: str
    tx: int
    transition: Literal["entered", "left", "invalid"] = Field(
        description="`invalid`: the search itself stopped compiling (`uri` is empty)."
    )
    at: datetime
    delivered_at: datetime | None


class TransitionPageOut(BaseModel):
    search: int
    items: list[TransitionOut]
    next: int | None = Field(description="`after` for the next page; null on the last.")


class DeletedOut(BaseModel):
    deleted: SavedSearchOut


class ReverseSearchIn(BaseModel):
    """A document to match (field path to value or list of values), or an entity's URI."""

    model_config = ConfigDict(extra="forbid")

    index: Index = "entities"
    document: dict[str, Any] | None = Field(
        None, description='A reverse-search document, e.g. {"type": "Model", "tags.team": …}'
    )
    uri: str | None = Field(
        None,
        max_length=2000,
        description="Instead of a document: an entity's URI (the scheme may be left out); "
        "its document as stored now.",
    )
    limit: int = Field(20, ge=1, le=10_000)
    after: int = Field(0, ge=0, le=ops.MAX_ID, description="`next` of the previous page.")


class ReverseSearchOut(BaseModel):
    total: int
    items: list[SavedSearchOut]
    next: int | None


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _matcher(request: Request) -> SearchMatcher:
    return matcher_of(request.app)


def _searches(request: Request) -> SavedSearches:
    return SavedSearches(_service(request).store, _matcher(request).mapping)


def _page(request: Request, limit: int) -> int:
    most = _service(request).settings.api_max_page
    if limit > most:
        raise ValidationError(f"limit must be at most {most} (MLGRAPH_API_MAX_PAGE), got {limit}")
    return limit


def out(search: SavedSearch) -> SavedSearchOut:
    return SavedSearchOut(
        id=search.id, owner=search.owner, name=search.name, filter=search.dsl, index="entities",
        revision=search.revision, saved_tx=search.saved_tx, built_tx=search.built_tx,
        created_at=search.created_at, updated_at=search.updated_at,
        invalid_reason=search.invalid_reason,
    )  # fmt: skip


def dsl_error(exc: DslError) -> JSONResponse:
    body = DslErrorOut(
        error=str(exc), reason=exc.reason, line=exc.line, column=exc.column, excerpt=exc.excerpt
    )
    return JSONResponse(body.model_dump(), status_code=422)


UPSERT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    **NOT_FOUND,
    201: {"model": UpsertOut, "description": "Created"},
    422: {"model": DslErrorOut, "description": "Not a valid search (line, column, reason)"},
}


async def _upsert(request: Request, body: SavedSearchIn, principal: Principal) -> Response:
    searches = _searches(request)
    try:
        done = await run_in_threadpool(
            lambda: ops.upsert(
                searches, principal, ident=body.id, owner=body.owner, name=body.name,
                text=body.filter,
            )
        )  # fmt: skip
    except DslError as exc:
        return dsl_error(exc)
    result = UpsertOut(saved_search=out(done.search), created=done.created)
    return JSONResponse(result.model_dump(mode="json"), status_code=201 if done.created else 200)


@router.post("/v1/saved-searches", response_model=UpsertOut, responses=UPSERT_RESPONSES)
async def create_saved_search(request: Request, body: SavedSearchIn, principal: Reader) -> Response:
    """Save a search (201), or edit it (200): by `id`, or by `owner` and `name`."""
    return await _upsert(request, body, principal)


@router.put("/v1/saved-searches", response_model=UpsertOut, responses=UPSERT_RESPONSES)
async def put_saved_search(request: Request, body: SavedSearchIn, principal: Reader) -> Response:
    """The same as POST: create or edit."""
    return await _upsert(request, body, principal)


@router.get("/v1/saved-searches", response_model=SearchPageOut, responses=ERRORS)
async def list_saved_searches(
    request: Request,
    _principal: Reader,
    owner: Annotated[str | None, Query(max_length=MAX_NAME, description="Only theirs.")] = None,
    after: After = 0,
    limit: Limit = 20,
) -> SearchPageOut:
    """Saved searches in id order, a page at a time."""
    size, searches = _page(request, limit), _searches(request)
    if owner is not None:
        ops.check_text("owner", owner, MAX_NAME)

    def read() -> tuple[list[SavedSearch], int]:
        return searches.page(owner, after=after, limit=size + 1), searches.count(owner)

    found, total = await run_in_threadpool(read)
    more = len(found) > size
    return SearchPageOut(
        total=total, items=[out(s) for s in found[:size]], next=found[size - 1].id if more else None
    )


@router.get(
    "/v1/saved-searches/{search_id}",
    response_model=SavedSearchOut,
    responses={**ERRORS, **NOT_FOUND},
)
async def get_saved_search(
    request: Request, search_id: SearchId, _principal: Reader
) -> SavedSearchOut:
    """One saved search."""
    searches = _searches(request)
    return out(await run_in_threadpool(ops.require, searches, search_id))


@router.delete(
    "/v1/saved-searches/{search_id}",
    response_model=DeletedOut,
    responses={**ERRORS, **NOT_FOUND},
)
async def delete_saved_search(
    request: Request, search_id: SearchId, principal: Reader
) -> DeletedOut:
    """Delete a search and its membership (its transitions stay, as history)."""
    searches = _searches(request)
    gone = await run_in_threadpool(ops.delete, searches, principal, search_id)
    return DeletedOut(deleted=out(gone))


@router.get(
    "/v1/saved-searches/{search_id}/members",
    response_model=MemberPageOut,
    responses={**ERRORS, **NOT_FOUND},
)
async def saved_search_members(
    request: Request,
    search_id: SearchId,
    _principal: Reader,
    after: Annotated[
        str | None, Query(max_length=2000, description="`next` of the previous page (a URI).")
    ] = None,
    limit: Limit = 20,
) -> MemberPageOut:
    """The entities matching the search now (as of the reverse follower's last round)."""
    size, searches = _page(request, limit), _searches(request)
    if after is not None:
        ops.check_text("after", after, 2000)

    def read() -> tuple[list[tuple[str, int]], int]:
        ops.require(searches, search_id)
        found = searches.member_page(search_id, after=after, limit=size + 1)
        return found, searches.member_count(search_id)

    found, total = await run_in_threadpool(read)
    more = len(found) > size
    return MemberPageOut(
        search=search_id,
        total=total,
        items=[MemberOut(uri=u, since_tx=tx) for u, tx in found[:size]],
        next=found[size - 1][0] if more else None,
    )


@router.get(
    "/v1/saved-searches/{search_id}/transitions",
    response_model=TransitionPageOut,
    responses={**ERRORS, **NOT_FOUND},
)
async def saved_search_transitions(
    request: Request, search_id: SearchId, _principal: Reader, after: After = 0, limit: Limit = 20
) -> TransitionPageOut:
    """Entities entering and leaving the search, in the order they were recorded."""
    size, searches = _page(request, limit), _searches(request)

    def read() -> list[Any]:
        ops.require(searches, search_id)
        return searches.transitions(search_id, after=after, limit=size + 1)

    found = await run_in_threadpool(read)
    more = len(found) > size
    return TransitionPageOut(
        search=search_id,
        items=[TransitionOut.model_validate(t, from_attributes=True) for t in found[:size]],
        next=found[size - 1].id if more else None,
    )


@router.post(
    "/v1/reverse-search",
    response_model=ReverseSearchOut,
    responses={**ERRORS, 404: {"description": "No entity with that URI"}},
)
async def reverse_search(
    request: Request, body: ReverseSearchIn, _principal: Reader
) -> ReverseSearchOut:
    """The saved searches a document (or an entity as stored now) matches, in id order."""
    if (body.document is None) == (body.uri is None):
        raise ValidationError("give a document or a uri (one of the two)")
    size, matcher = _page(request, body.limit), _matcher(request)
    searches = _searches(request)
    service = _service(request)

    def run() -> tuple[list[SavedSearch], int, bool]:
        document = body.document
        if body.uri is not None:
            ops.check_text("uri", body.uri, 2000)
            uri = entity_uri(service, body.uri)
            document = matcher.document(uri)
            if document is None:
                raise NotFound(f"no entity {uri}")
        assert document is not None
        every = matcher.match(document)
        matched = [i for i in every if i > body.after]
        return searches.many(matched[:size]), len(every), len(matched) > size

    found, total, more = await run_in_threadpool(run)
    return ReverseSearchOut(
        total=total, items=[out(s) for s in found], next=found[-1].id if more and found else None
    )
