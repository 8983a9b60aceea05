"""GraphQL names from schema names: camelCase fields, checked type names."""

from __future__ import annotations

import re

from mlgraph.errors import SchemaError

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\Z")


def camel(name: str) -> str:
    """``associated_ab_tests`` -> ``associatedAbTests``; ``AbTest`` -> ``abTest``."""
    head, *rest = name.split("_")
    if not rest:
        return name[:1].lower() + name[1:]
    return head[:1].lower() + head[1:] + "".join(p[:1].upper() + p[1:] for p in rest if p)


def checked(name: str, what: str) -> str:
    """``name`` if it is a valid GraphQL name; else SchemaError naming ``what``."""
    if not _NAME.match(name) or name.startswith("__"):
        raise SchemaError(
            f"{what} {name!r} cannot be a GraphQL name: use letters, digits and '_', "
            f"not starting with a digit or '__'"
        )
    return name
