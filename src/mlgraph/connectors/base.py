"""The connector interface.

A connector describes one source system: the resources it serves (where to
GET one, where to list them), which thin events name which resource, and how
a response becomes normalized entities. It does no I/O itself: the ingest
workers fetch (with retries, rate limits and caching) and hand it the JSON.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mlgraph.catalog import Entity, Schema, format_uri


@dataclass(frozen=True, slots=True)
class EventRule:
    """A thin event type: the field that carries the changed object's id."""

    id_field: str


@dataclass(frozen=True, slots=True)
class BatchGet:
    """Where a source answers for many objects in one request.

    ``GET {path}?{param}=a&{param}=b`` answers ``{"{items}": [object, ...]}``
    with every object it has of those asked for; an id it leaves out is one the
    source does not have (a 404 for a single GET). Each object's id is in its
    field ``id_field``. A source that can, spares itself and mlgraph a request
    per object: at ingest rates that is most of both sides' work.
    """

    path: str  # e.g. "/api/v1/instances:batchGet"
    id_field: str  # where an answered object holds its id, e.g. "id"
    param: str = "ids"
    items: str = "items"
    max_ids: int = 100  # ids in one request at most

    def url(self, base_url: str, ids: Sequence[str]) -> str:
        query = "&".join(f"{self.param}={quote(id, safe='')}" for id in ids)
        return f"{base_url.rstrip('/')}{self.path}?{query}"


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind of object a source serves."""

    name: str  # e.g. "instance"
    entity_type: str  # the schema type it normalizes to, e.g. "ModelInstance"
    get: str  # path template with {id}, e.g. "/api/v1/instances/{id}"
    list: str | None = None  # paged list path, e.g. "/api/v1/instances"
    events: Mapping[str, EventRule] = field(default_factory=dict)
    batch: BatchGet | None = None  # how to get many at once, if the source can

    def url(self, base_url: str, id: str) -> str:
        return base_url.rstrip("/") + self.get.format(id=quote(id, safe=""))


@dataclass(frozen=True, slots=True, order=True)
class Subject:
    """The object one event is about: what a worker hydrates."""

    source: str
    resource: str
    id: str

    @property
    def key(self) -> str:
        return f"{self.source}/{self.resource}/{self.id}"

    @classmethod
    def from_key(cls, key: str) -> Subject:
        source, resource, id = key.split("/", 2)
        return cls(source, resource, id)


class Connector(ABC):
    """One source system. Subclass it, or declare one in YAML (see declarative.py)."""

    def __init__(
        self, name: str, base_url: str, resources: Mapping[str, Resource], schema: Schema
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.resources = dict(resources)
        self.schema = schema
        self.headers: dict[str, str] = {}
        # resource -> relationships (seen from the subject) to entities that come
        # from the subject's own response, e.g. a test's cells: they live and die with it.
        self.parts: dict[str, tuple[str, ...]] = {}

    @property
    def event_types(self) -> dict[str, tuple[Resource, EventRule]]:
        return {
            event_type: (resource, rule)
            for resource in self.resources.values()
            for event_type, rule in resource.events.items()
        }

    def uri(self, entity_type: str, id: str, source: str | None = None) -> str:
        """The URI of an object of ``entity_type`` with ``id`` at ``source`` (default: here)."""
        kind = self.schema.type(entity_type).kind
        return format_uri(kind, source or self.name, str(id), self.schema.scheme)

    def subject_uri(self, subject: Subject) -> str:
        return self.uri(self.resources[subject.resource].entity_type, subject.id)

    def url(self, subject: Subject) -> str:
        return self.resources[subject.resource].url(self.base_url, subject.id)

    def list_url(self, resource: Resource) -> str | None:
        return None if resource.list is None else self.base_url.rstrip("/") + resource.list

    def subject_for(self, entity_type: str, id: str) -> Subject | None:
        """What to hydrate to learn about the ``entity_type`` ``id`` here (None: nothing).

        Enrichment asks this of stubs. The default is the resource that serves
        the type; a connector whose parts come inside another object's response
        (a test's cells) names that object instead.
        """
        for resource in self.resources.values():
            if resource.entity_type == entity_type:
                return Subject(self.name, resource.name, id)
        return None

    def gone(self, subject: Subject) -> list[str]:
        """URIs to retract when the source no longer has the subject."""
        return [self.subject_uri(subject)]

    @abstractmethod
    def normalize(self, resource: Resource, payload: Mapping[str, Any]) -> list[Entity]:
        """The entities one GET response describes (the subject first)."""
