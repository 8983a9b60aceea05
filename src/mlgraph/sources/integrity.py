"""Referential integrity of an organisation, read off the resource table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlgraph.sources.org import Object, Organisation
from mlgraph.sources.resources import RESOURCES, Reference, email_of


def _targets(obj: Object, ref: Reference) -> Iterator[Any]:
    value = obj.get(ref.field)
    if value is None:
        return
    yield from (value if ref.many else [value])


def dangling_references(org: Organisation) -> list[str]:
    """Every reference that names a missing object, as ``collection/id.field -> target``.

    Null single references are allowed (the contract says ``str|null``).
    """
    emails = {email_of(u["username"]) for u in org.iter_objects("users")}
    cells: dict[str, set[int]] = {
        t["test_id"]: {c["cell_number"] for c in t["cells"]} for t in org.iter_objects("tests")
    }
    problems: list[str] = []
    for res in RESOURCES:
        for obj in org.iter_objects(res.collection):
            where = f"{res.collection}/{obj[res.id_field]}"
            for ref in res.references:
                for target in _targets(obj, ref):
                    if ref.by_email:
                        ok = target in emails
                    elif ref.cells:
                        ok = target["cell_number"] in cells.get(target["test_id"], set())
                    else:
                        ok = org.has(ref.collection, target)
                    if not ok:
                        problems.append(f"{where}.{ref.field} -> {target!r}")
    return problems


def referrers(org: Organisation, collection: str, id: str) -> list[str]:
    """``collection/id`` of every object whose references name ``collection/id``."""
    wanted: Any = email_of(id) if collection == "users" else id
    found: list[str] = []
    for res in RESOURCES:
        refs = [r for r in res.references if r.collection == collection]
        if not refs:
            continue
        for obj in org.iter_objects(res.collection):
            for ref in refs:
                targets = _targets(obj, ref)
                if ref.cells:
                    targets = (cell["test_id"] for cell in targets)
                if wanted in targets:
                    found.append(f"{res.collection}/{obj[res.id_field]}")
                    break
    return found
