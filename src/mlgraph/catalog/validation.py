"""Checking an entity against the schema and bringing it to canonical form."""

from __future__ import annotations

from typing import Any

from mlgraph.catalog.entity import Entity
from mlgraph.catalog.schema import Relationship, Schema
from mlgraph.catalog.uri import parse_uri
from mlgraph.errors import InvalidURI, ValidationError

OWNERS = "owners"


def target_type(schema: Schema, rel: Relationship, uri: str, where: str) -> str:
    """The type an entity at ``uri`` has as the target of ``rel``, known from its kind."""
    kind = parse_uri(uri).kind
    for name in rel.targets:
        if schema.types[name].kind == kind:
            return name
    kinds = sorted({schema.types[t].kind for t in rel.targets})
    raise ValidationError(
        f"{where}: {uri!r} is a {kind!r} URI; {rel.label} points to {'/'.join(rel.targets)} "
        f"(URI kind {' or '.join(repr(k) for k in kinds)})"
    )


def canonical(schema: Schema, uri: str, where: str) -> str:
    try:
        return str(parse_uri(uri, schema.scheme))
    except InvalidURI as exc:
        raise ValidationError(f"{where}: {exc}") from None


def validate_entity(schema: Schema, entity: Entity) -> Entity:
    """``entity`` checked against the schema, with canonical URIs and typed attributes.

    Raises ValidationError naming the entity and the offending part.
    """
    etype = schema.type(entity.type)
    uri = canonical(schema, entity.uri, f"entity {entity.uri!r}")
    at = f"{entity.type} {uri}"
    if (kind := parse_uri(uri).kind) != etype.kind:
        raise ValidationError(f"{at}: a {entity.type} URI has kind {etype.kind!r}, not {kind!r}")
    attributes: dict[str, Any] = {}
    for key, value in entity.attributes.items():
        if value is not None:
            attributes[key] = etype.field(key).coerce(value, f"{at}: attribute {key!r}")
    for key in entity.tags:
        if not key:
            raise ValidationError(f"{at}: a tag key is empty")
    owners_rel = etype.relationship(OWNERS).declarations[0]
    owners = tuple(
        sorted({_endpoint(schema, owners_rel, u, f"{at}: owner") for u in entity.owners})
    )
    references: dict[str, tuple[str, ...]] = {}
    for name, uris in entity.references.items():
        where = f"{at}: reference {name!r}"
        if name == OWNERS:
            raise ValidationError(f"{where}: owners are given in Entity.owners")
        view = etype.relationship(name)
        if view.direction != "out":
            decl = view.declarations[0]
            raise ValidationError(
                f"{where} is the inverse of {decl.label}; state it on the {decl.source}"
            )
        rel = view.declarations[0]
        if rel.inferred:
            raise ValidationError(
                f"{where}: {rel.label} is inferred (rule {rel.rule!r}); no source states it"
            )
        targets = tuple(sorted({_endpoint(schema, rel, u, where) for u in uris}))
        if rel.cardinality == "one" and len(targets) > 1:
            raise ValidationError(f"{where}: {rel.label} takes one target, got {len(targets)}")
        references[name] = targets
    return entity.model_copy(
        update={"uri": uri, "owners": owners, "attributes": attributes, "references": references}
    )


def _endpoint(schema: Schema, rel: Relationship, uri: str, where: str) -> str:
    uri = canonical(schema, uri, where)
    target_type(schema, rel, uri, where)
    return uri
