"""A connector declared in YAML: URL templates and JMESPath field mappings, no Python.

```yaml
name: featurestore
base_url: http://127.0.0.1:9103        # settings.sources[name] wins when set
headers: {X-Api-Key: "${FEATURESTORE_KEY}"}   # ${VAR} is read from the environment
resources:
  feature:
    type: Feature
    get: /api/v1/features/{id}
    list: /api/v1/features
    batch_get: {path: "/api/v1/features:batchGet", id_field: name}   # optional: many in one GET
    events: {feature_created: feature_id, feature_deleted: feature_id}
    map:
      id: name                              # every value is a JMESPath expression
      name: name
      description: description
      owners: {emails: owner_emails}        # or {uris: …}
      tags: {labels: labels}                # [{key, value}]; or {dict: …}; or {fields: {k: …}}
      attributes: {version: version, value_type: value_type}
      references:
        data: {ids: source_dataset_ids, type: Dataset, source: datasets}   # or {id: …}
      source_updated_at: updated_at
```

Everything is checked when the file loads: unknown keys, JMESPath syntax,
entity types, relationships and fields against the schema.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from mlgraph.catalog import Entity, Schema
from mlgraph.connectors.base import BatchGet, Connector, EventRule, Resource
from mlgraph.connectors.people import owners_from_emails, tags_from_labels
from mlgraph.errors import MlgraphError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConnectorError(MlgraphError):
    """A connector declaration is malformed; the message names the file and key."""


@dataclass(frozen=True)
class _Reference:
    expr: ParsedResult
    many: bool
    type: str
    source: str | None


@dataclass(frozen=True)
class _Mapping:
    """Compiled ``map:`` of one resource."""

    id: ParsedResult
    scalars: dict[str, ParsedResult] = field(default_factory=dict)  # name, description, times
    owners: tuple[str, ParsedResult] | None = None  # ("emails" | "uris", expr)
    tags: tuple[str, Any] | None = None  # ("labels" | "dict", expr) or ("fields", {k: expr})
    attributes: dict[str, ParsedResult] = field(default_factory=dict)
    references: dict[str, _Reference] = field(default_factory=dict)


class DeclarativeConnector(Connector):
    def __init__(
        self,
        name: str,
        base_url: str,
        resources: Mapping[str, Resource],
        mappings: Mapping[str, _Mapping],
        schema: Schema,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(name, base_url, resources, schema)
        self.mappings = dict(mappings)
        self.headers = dict(headers)

    def normalize(self, resource: Resource, payload: Mapping[str, Any]) -> list[Entity]:
        m = self.mappings[resource.name]
        id = m.id.search(payload)
        if id is None or id == "":
            raise ValueError(f"{self.name}.{resource.name}: the response has no id")
        values = {k: expr.search(payload) for k, expr in m.scalars.items()}
        owners: tuple[str, ...] = ()
        if m.owners is not None:
            how, expr = m.owners
            found = expr.search(payload) or []
            owners = owners_from_emails(found, self.schema) if how == "emails" else tuple(found)
        tags: dict[str, str] = {}
        if m.tags is not None:
            how, spec = m.tags
            if how == "labels":
                tags = tags_from_labels(spec.search(payload))
            elif how == "dict":
                tags = {str(k): str(v) for k, v in (spec.search(payload) or {}).items()}
            else:
                tags = {k: str(v) for k, e in spec.items() if (v := e.search(payload)) is not None}
        references = {}
        for rel, ref in m.references.items():
            found = ref.expr.search(payload)
            ids = (found or []) if ref.many else ([] if found is None else [found])
            references[rel] = tuple(self.uri(ref.type, str(i), ref.source) for i in ids)
        return [
            Entity(
                uri=self.uri(resource.entity_type, str(id)),
                type=resource.entity_type,
                name=values.get("name"),
                description=values.get("description"),
                owners=owners,
                tags=tags,
                attributes={k: e.search(payload) for k, e in m.attributes.items()},
                references=references,
                source_created_at=values.get("source_created_at"),
                source_updated_at=values.get("source_updated_at"),
            )
        ]


def load_declarative(path: str | Path, schema: Schema, base_url: str | None = None) -> Connector:
    """Load a YAML connector; ``base_url`` (from settings) overrides the file's."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConnectorError(f"{path}: {exc}") from None
    return _Loader(str(path), schema).connector(data, base_url)


class _Loader:
    def __init__(self, where: str, schema: Schema) -> None:
        self.where = where
        self.schema = schema

    def fail(self, at: str, message: str) -> ConnectorError:
        return ConnectorError(f"{self.where}: {at}: {message}")

    def mapping(self, value: Any, at: str, allowed: set[str] | None = None) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(at, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None and (unknown := set(value) - allowed):
            raise self.fail(at, f"unknown key {sorted(unknown)[0]!r} (allowed: {sorted(allowed)})")
        return value

    def expr(self, value: Any, at: str) -> ParsedResult:
        if not isinstance(value, str):
            raise self.fail(at, f"expected a JMESPath expression, got {value!r}")
        try:
            return jmespath.compile(value)
        except JMESPathError as exc:
            raise self.fail(at, f"bad JMESPath {value!r}: {exc}") from None

    def connector(self, data: Any, base_url: str | None) -> Connector:
        top = self.mapping(data, "top level", {"name", "description", "base_url", "headers",
                                               "resources"})  # fmt: skip
        name = top.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail("name", "a connector needs a name (its URI source segment)")
        url = base_url or top.get("base_url")
        if not isinstance(url, str):
            raise self.fail("base_url", "no base_url in the file or in settings.sources")
        headers = {
            str(k): _ENV.sub(lambda m: os.environ.get(m.group(1), ""), str(v))
            for k, v in self.mapping(top.get("headers") or {}, "headers").items()
        }
        resources: dict[str, Resource] = {}
        mappings: dict[str, _Mapping] = {}
        for rname, spec in self.mapping(top.get("resources"), "resources").items():
            resources[rname], mappings[rname] = self.resource(rname, spec)
        return DeclarativeConnector(name, url, resources, mappings, self.schema, headers)

    def resource(self, rname: str, spec: Any) -> tuple[Resource, _Mapping]:
        at = f"resources.{rname}"
        spec = self.mapping(spec, at, {"type", "get", "list", "batch_get", "events", "map"})
        type_name = spec.get("type")
        if type_name not in self.schema.types:
            raise self.fail(f"{at}.type", f"unknown entity type {type_name!r}")
        get = spec.get("get")
        if not isinstance(get, str) or "{id}" not in get:
            raise self.fail(f"{at}.get", "a path template containing {id} is required")
        events = {}
        for event_type, rule in self.mapping(spec.get("events") or {}, f"{at}.events").items():
            id_field = rule.get("id") if isinstance(rule, Mapping) else rule
            if not isinstance(id_field, str):
                raise self.fail(f"{at}.events.{event_type}", "expected the id field's name")
            events[str(event_type)] = EventRule(id_field)
        batch = None
        if "batch_get" in spec:
            batch = self.batch_get(f"{at}.batch_get", spec["batch_get"])
        resource = Resource(rname, str(type_name), get, spec.get("list"), events, batch)
        return resource, self.entity_map(f"{at}.map", str(type_name), spec.get("map"))

    def batch_get(self, at: str, spec: Any) -> BatchGet:
        spec = self.mapping(spec, at, {"path", "id_field", "param", "items", "max_ids"})
        for key in ("path", "id_field"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise self.fail(f"{at}.{key}", f"'{key}' is required (a string)")
        for key in ("param", "items"):
            if key in spec and (not isinstance(spec[key], str) or not spec[key]):
                raise self.fail(f"{at}.{key}", f"expected a non-empty string, got {spec[key]!r}")
        max_ids = spec.get("max_ids", 1)
        if not isinstance(max_ids, int) or isinstance(max_ids, bool) or max_ids < 1:
            raise self.fail(f"{at}.max_ids", f"expected a positive integer, got {max_ids!r}")
        return BatchGet(**spec)  # the keys are checked above; absent ones take the defaults

    def entity_map(self, at: str, type_name: str, spec: Any) -> _Mapping:
        allowed = {"id", "name", "description", "owners", "tags", "attributes", "references",
                   "source_created_at", "source_updated_at"}  # fmt: skip
        spec = self.mapping(spec, at, allowed)
        if "id" not in spec:
            raise self.fail(at, "'id' (the expression giving the source id) is required")
        etype = self.schema.type(type_name)
        scalars = {
            k: self.expr(spec[k], f"{at}.{k}")
            for k in ("name", "description", "source_created_at", "source_updated_at")
            if k in spec
        }
        owners = None
        if "owners" in spec:
            o = self.mapping(spec["owners"], f"{at}.owners", {"emails", "uris"})
            how = next(iter(o))
            owners = (how, self.expr(o[how], f"{at}.owners.{how}"))
        tags: tuple[str, Any] | None = None
        if "tags" in spec:
            t = self.mapping(spec["tags"], f"{at}.tags", {"labels", "dict", "fields"})
            if len(t) != 1:
                raise self.fail(f"{at}.tags", "give one of 'labels', 'dict' or 'fields'")
            how = next(iter(t))
            if how == "fields":
                fields = self.mapping(t["fields"], f"{at}.tags.fields")
                tags = (how, {k: self.expr(v, f"{at}.tags.fields.{k}") for k, v in fields.items()})
            else:
                tags = (how, self.expr(t[how], f"{at}.tags.{how}"))
        attributes = {}
        for k, v in self.mapping(spec.get("attributes") or {}, f"{at}.attributes").items():
            if k not in etype.fields:
                raise self.fail(f"{at}.attributes.{k}", f"{type_name} has no field {k!r}")
            attributes[k] = self.expr(v, f"{at}.attributes.{k}")
        references = {}
        for rel, r in self.mapping(spec.get("references") or {}, f"{at}.references").items():
            rat = f"{at}.references.{rel}"
            r = self.mapping(r, rat, {"ids", "id", "type", "source"})
            if rel not in etype.relationships or etype.relationships[rel].direction != "out":
                raise self.fail(rat, f"{type_name} declares no relationship {rel!r}")
            target = r.get("type") or etype.relationships[rel].targets[0]
            if target not in etype.relationships[rel].targets:
                raise self.fail(rat, f"{type_name}.{rel} does not point to {target!r}")
            many = "ids" in r
            if many == ("id" in r):
                raise self.fail(rat, "give exactly one of 'ids' (a list) or 'id' (one)")
            expr = self.expr(r["ids" if many else "id"], rat)
            references[rel] = _Reference(expr, many, str(target), r.get("source"))
        return _Mapping(
            self.expr(spec["id"], f"{at}.id"), scalars, owners, tags, attributes, references
        )
