"""The type schema: entity types, their fields and relationships, loaded from data.

A relationship is declared once, on the type it starts from, and stored as
edges labelled ``Type.name``. Its inverse is the same edges read from the
other end, under the inverse name. ``owners`` is declared under ``common`` and
given to every type.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from mlgraph.catalog.fields import Field, FieldType
from mlgraph.catalog.rules import Rule, RuleError, compile_rule, in_dependency_order
from mlgraph.catalog.uri import _SEGMENT, DEFAULT_SCHEME
from mlgraph.errors import SchemaError, ValidationError

Cardinality = Literal["one", "many"]
Direction = Literal["out", "in"]


class Flow(StrEnum):
    """Which way lineage runs along a relationship."""

    UPSTREAM = "upstream"  # the target feeds the source (a model's features)
    DOWNSTREAM = "downstream"  # the source feeds the target (a run's A/B test cells)
    NONE = "none"  # not lineage (owners, membership)


@dataclass(frozen=True, slots=True)
class Relationship:
    """A declared relationship: edges ``source --name--> target``."""

    source: str
    name: str
    targets: tuple[str, ...]
    cardinality: Cardinality = "many"
    inverse: str | None = None
    inverse_cardinality: Cardinality = "many"
    flow: Flow = Flow.NONE
    description: str = ""
    rule: str | None = None  # a relationship path: the enricher infers these edges

    @property
    def label(self) -> str:
        """The edge label in the store: unique across the schema."""
        return f"{self.source}.{self.name}"

    @property
    def inferred(self) -> bool:
        return self.rule is not None


@dataclass(frozen=True, slots=True)
class RelationshipView:
    """A relationship as read from one type: a declared one (``out``) or an inverse (``in``)."""

    name: str
    owner: str
    direction: Direction
    declarations: tuple[Relationship, ...]
    cardinality: Cardinality
    description: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(r.label for r in self.declarations)

    @property
    def targets(self) -> tuple[str, ...]:
        """Types found at the other end."""
        if self.direction == "out":
            return self.declarations[0].targets
        return tuple(dict.fromkeys(r.source for r in self.declarations))


@dataclass(frozen=True, slots=True)
class EntityType:
    name: str
    kind: str
    description: str
    fields: Mapping[str, Field]
    relationships: Mapping[str, RelationshipView]

    def field(self, name: str) -> Field:
        try:
            return self.fields[name]
        except KeyError:
            raise ValidationError(
                f"{self.name} has no field {name!r}{_suggest(name, self.fields)}"
            ) from None

    def relationship(self, name: str) -> RelationshipView:
        try:
            return self.relationships[name]
        except KeyError:
            raise ValidationError(
                f"{self.name} has no relationship {name!r}{_suggest(name, self.relationships)}"
            ) from None

    @property
    def declared(self) -> tuple[Relationship, ...]:
        """Relationships stored from this type (its outgoing edges)."""
        return tuple(v.declarations[0] for v in self.relationships.values() if v.direction == "out")


@dataclass(frozen=True)
class Schema:
    types: Mapping[str, EntityType]
    scheme: str = DEFAULT_SCHEME
    _edges: Mapping[str, Relationship] = field(default_factory=dict, repr=False)
    rules: tuple[Rule, ...] = ()  # inference rules, each after those it reads

    def type(self, name: str) -> EntityType:
        try:
            return self.types[name]
        except KeyError:
            raise ValidationError(
                f"unknown entity type {name!r}{_suggest(name, self.types)}"
            ) from None

    def types_of_kind(self, kind: str) -> tuple[EntityType, ...]:
        return tuple(t for t in self.types.values() if t.kind == kind)

    def edge(self, label: str) -> Relationship:
        try:
            return self._edges[label]
        except KeyError:
            raise ValidationError(f"unknown edge label {label!r}") from None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self._edges)

    def labels_named(self, names: Iterable[str]) -> tuple[set[str], set[str]]:
        """Edge labels to follow outwards and inwards for relationships called ``names``.

        A name may be declared on one type and an inverse on another; both count.
        """
        wanted = set(names)
        out: set[str] = set()
        inward: set[str] = set()
        seen: set[str] = set()
        for t in self.types.values():
            for view in t.relationships.values():
                if view.name in wanted:
                    seen.add(view.name)
                    (out if view.direction == "out" else inward).update(view.labels)
        if unknown := wanted - seen:
            name = sorted(unknown)[0]
            every = {n for t in self.types.values() for n in t.relationships}
            raise ValidationError(f"unknown relationship {name!r}{_suggest(name, every)}")
        return out, inward

    def lineage_labels(
        self, direction: Literal["upstream", "downstream"]
    ) -> tuple[set[str], set[str]]:
        """Edge labels to follow outwards and inwards to walk lineage ``direction``."""
        follows_out = Flow.UPSTREAM if direction == "upstream" else Flow.DOWNSTREAM
        out = {r.label for r in self._edges.values() if r.flow is follows_out}
        inward = {r.label for r in self._edges.values() if r.flow not in (follows_out, Flow.NONE)}
        return out, inward


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise SchemaError(f"duplicate name {key!r} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_schema(path: str | Path | None = None, *, scheme: str = DEFAULT_SCHEME) -> Schema:
    """Load and validate a schema file; by default the built-in ``types.yaml``."""
    if path is None:
        text = resources.files("mlgraph.catalog").joinpath("types.yaml").read_text("utf-8")
        where = "types.yaml"
    else:
        text = Path(path).read_text("utf-8")
        where = str(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SchemaError(f"{where}: not valid YAML: {exc}") from None
    return build_schema(data, scheme=scheme, where=where)


def build_schema(data: Any, *, scheme: str = DEFAULT_SCHEME, where: str = "schema") -> Schema:
    """Build a schema from its parsed declarations, checking every one."""
    return _Builder(where).build(data, scheme)


class _Builder:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, at: str, message: str) -> SchemaError:
        return SchemaError(f"{self.where}: {at}: {message}")

    def mapping(self, value: Any, at: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(at, f"expected a mapping, got {type(value).__name__}")
        return value

    def build(self, data: Any, scheme: str) -> Schema:
        data = self.mapping(data, "top level")
        if unknown := set(data) - {"version", "common", "types"}:
            raise self.fail("top level", f"unknown key {sorted(unknown)[0]!r}")
        declared = self.mapping(data.get("types"), "types")
        if not declared:
            raise self.fail("types", "no types are declared")
        common = self.mapping(
            self.mapping(data.get("common"), "common").get("relationships"), "common.relationships"
        )

        kinds: dict[str, str] = {}
        fields: dict[str, dict[str, Field]] = {}
        forward: dict[str, dict[str, Relationship]] = {}
        inverse_of: list[tuple[str, str, str]] = []
        for tname, body in declared.items():
            at = f"types.{tname}"
            body = self.mapping(body, at)
            if unknown := set(body) - {"kind", "description", "fields", "relationships"}:
                raise self.fail(at, f"unknown key {sorted(unknown)[0]!r}")
            kind = body.get("kind")
            if not isinstance(kind, str) or not _SEGMENT.match(kind):
                raise self.fail(at, f"'kind' must be a URI segment such as 'model', got {kind!r}")
            kinds[tname] = kind
            fields[tname] = self.fields(tname, self.mapping(body.get("fields"), f"{at}.fields"))
            forward[tname] = {}
            rels = {**common, **self.mapping(body.get("relationships"), f"{at}.relationships")}
            for rname, spec in rels.items():
                rat = f"{tname}.{rname}"
                spec = self.mapping(spec, rat)
                if rname in fields[tname]:
                    raise self.fail(rat, f"duplicate name: {tname} has a field {rname!r}")
                if "inverse_of" in spec:
                    if set(spec) - {"inverse_of", "description"}:
                        raise self.fail(rat, "an 'inverse_of' declaration takes only 'description'")
                    inverse_of.append((tname, rname, str(spec["inverse_of"])))
                else:
                    forward[tname][rname] = self.relationship(tname, rname, spec, declared)

        self.resolve_inverse_of(inverse_of, forward)
        views: dict[str, dict[str, RelationshipView]] = {t: {} for t in declared}
        for tname, rels in forward.items():
            for rname, rel in rels.items():
                views[tname][rname] = RelationshipView(
                    rname, tname, "out", (rel,), rel.cardinality, rel.description
                )
        self.add_inverses(forward, fields, views)

        types = {
            t: EntityType(
                t,
                kinds[t],
                str(self.mapping(declared[t], t).get("description") or ""),
                fields[t],
                views[t],
            )
            for t in declared
        }
        edges = {r.label: r for rels in forward.values() for r in rels.values()}
        return Schema(types, scheme, edges, self.rules(types, edges))

    def rules(
        self, types: Mapping[str, EntityType], edges: Mapping[str, Relationship]
    ) -> tuple[Rule, ...]:
        compiled: dict[str, Rule] = {}
        for label, rel in edges.items():
            if rel.rule is not None:
                try:
                    compiled[label] = compile_rule(types, rel)
                except RuleError as exc:
                    raise self.fail(label, f"rule {rel.rule!r}: {exc}") from None
        try:
            return in_dependency_order(compiled)
        except RuleError as exc:
            raise self.fail("rules", str(exc)) from None

    def fields(self, tname: str, spec: Mapping[str, Any]) -> dict[str, Field]:
        out: dict[str, Field] = {}
        for fname, ftype in spec.items():
            at = f"{tname}.{fname}"
            description = ""
            if isinstance(ftype, Mapping):
                description = str(ftype.get("description") or "")
                ftype = ftype.get("type")
            try:
                out[fname] = Field(fname, FieldType(ftype), description)
            except ValueError:
                allowed = ", ".join(t.value for t in FieldType)
                raise self.fail(at, f"unknown field type {ftype!r} (one of: {allowed})") from None
        return out

    def relationship(
        self, tname: str, rname: str, spec: Mapping[str, Any], declared: Mapping[str, Any]
    ) -> Relationship:
        at = f"{tname}.{rname}"
        allowed = {"target", "cardinality", "inverse", "inverse_cardinality", "flow"}
        allowed |= {"description", "rule"}
        if unknown := set(spec) - allowed:
            raise self.fail(at, f"unknown key {sorted(unknown)[0]!r}")
        target = spec.get("target")
        targets = tuple(target) if isinstance(target, list) else (target,)
        if not targets or target is None:
            raise self.fail(at, "'target' is required")
        for t in targets:
            if t not in declared:
                raise self.fail(at, f"unknown target type {t!r}{_suggest(str(t), declared)}")
        cardinality = spec.get("cardinality", "many")
        inverse_cardinality = spec.get("inverse_cardinality", "many")
        for key, value in (
            ("cardinality", cardinality),
            ("inverse_cardinality", inverse_cardinality),
        ):
            if value not in ("one", "many"):
                raise self.fail(at, f"'{key}' must be 'one' or 'many', got {value!r}")
        try:
            flow = Flow(spec.get("flow", "none"))
        except ValueError:
            raise self.fail(
                at, f"'flow' must be upstream, downstream or none, got {spec.get('flow')!r}"
            ) from None
        inverse = spec.get("inverse")
        if inverse is not None and not isinstance(inverse, str):
            raise self.fail(at, f"'inverse' must be a name, got {inverse!r}")
        rule = spec.get("rule")
        if rule is not None and (not isinstance(rule, str) or not rule.strip()):
            raise self.fail(at, f"'rule' must be a relationship path, got {rule!r}")
        return Relationship(
            tname,
            rname,
            targets,
            cardinality,
            inverse,
            inverse_cardinality,
            flow,
            str(spec.get("description") or ""),
            rule,
        )

    def resolve_inverse_of(
        self, pending: list[tuple[str, str, str]], forward: dict[str, dict[str, Relationship]]
    ) -> None:
        for tname, rname, ref in pending:
            at = f"{tname}.{rname}"
            src, _, name = ref.partition(".")
            rel = forward.get(src, {}).get(name)
            if rel is None:
                raise self.fail(at, f"'inverse_of: {ref}' names no declared relationship")
            if tname not in rel.targets:
                raise self.fail(
                    at, f"inverse mismatch: {ref} targets {list(rel.targets)}, not {tname}"
                )
            if rel.inverse not in (None, rname):
                raise self.fail(
                    at,
                    f"inverse mismatch: this is declared the inverse of {ref}, "
                    f"but {ref} names its inverse {rel.inverse!r}",
                )
            forward[src][name] = dataclasses.replace(rel, inverse=rname)

    def add_inverses(
        self,
        forward: Mapping[str, Mapping[str, Relationship]],
        fields: Mapping[str, Mapping[str, Field]],
        views: dict[str, dict[str, RelationshipView]],
    ) -> None:
        gathered: dict[tuple[str, str], list[Relationship]] = {}
        for declared in forward.values():
            for rel in declared.values():
                if rel.inverse:
                    for target in rel.targets:
                        gathered.setdefault((target, rel.inverse), []).append(rel)
        for (target, name), sharing in gathered.items():
            at = f"{target}.{name}"
            sources = ", ".join(r.label for r in sharing)
            if name in fields[target]:
                raise self.fail(at, f"duplicate name: the inverse of {sources} is also a field")
            if name in views[target]:
                raise self.fail(
                    at,
                    f"duplicate name: {target} declares {name!r} itself and it is also the "
                    f"inverse of {sources} (declare it once; use 'inverse_of' on the other side)",
                )
            cards = {r.inverse_cardinality for r in sharing}
            if len(cards) > 1:
                raise self.fail(at, f"inverse mismatch: {sources} disagree on its cardinality")
            views[target][name] = RelationshipView(
                name,
                target,
                "in",
                tuple(sharing),
                cards.pop(),
                next((r.description for r in sharing if r.description), ""),
            )
