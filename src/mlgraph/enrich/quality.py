"""The quality report: what in the graph needs a person's attention, section by section.

Every section is a count (by type) and the first few examples, read from the
store with set-based queries; nothing here walks entities one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlgraph.catalog.schema import Schema
from mlgraph.enrich.lineage import consumer_labels
from mlgraph.errors import LimitExceeded
from mlgraph.store import Store
from mlgraph.store.quality_queries import Example, Found

# People and teams are the owners; asking who owns them, or for their
# description, is noise the directories they come from do not answer.
EXEMPT_FROM_OWNERSHIP = ("User", "Group")

MAX_EXAMPLES = 1000

SECTIONS = {
    "missing_owners": "Missing owners",
    "missing_description": "Missing description",
    "stale": "Stale (not hydrated within the window)",
    "unresolved": "Unresolved references",
    "orphans": "Orphans (no edges at all)",
    "deprecation_candidates": "Deprecation candidates (no consumers, no activity)",
}


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    by_type: dict[str, int]
    examples: tuple[Example, ...]

    @property
    def count(self) -> int:
        return sum(self.by_type.values())


@dataclass(frozen=True, slots=True)
class QualityReport:
    generated_at: datetime
    stale_before: datetime
    idle_before: datetime
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "stale_before": self.stale_before.isoformat(),
            "idle_before": self.idle_before.isoformat(),
            "sections": {
                s.key: {
                    "title": s.title,
                    "count": s.count,
                    "by_type": s.by_type,
                    "examples": [_example_json(e) for e in s.examples],
                }
                for s in self.sections
            },
        }


def _example_json(e: Example) -> dict[str, Any]:
    at = None if e.at is None else e.at.isoformat()
    return {"uri": e.uri, "type": e.type, "state": e.state, "name": e.name, "at": at}


def consumable_types(schema: Schema) -> set[str]:
    """Types something can consume (per the schema): only those can lack consumers."""
    out, inward = consumer_labels(schema)
    types = {schema.edge(label).source for label in out}
    types.update(target for label in inward for target in schema.edge(label).targets)
    return types


def quality_report(
    store: Store,
    *,
    stale_after: timedelta = timedelta(days=7),
    idle_after: timedelta = timedelta(days=90),
    limit: int = 10,
    now: datetime | None = None,
) -> QualityReport:
    """Missing owners and descriptions, stale and unresolved entities, orphans, and
    deprecation candidates; each with counts by type and up to ``limit`` examples."""
    if not 0 <= limit <= MAX_EXAMPLES:
        raise LimitExceeded(f"limit must be between 0 and {MAX_EXAMPLES}, got {limit}")
    for name, window in (("stale window", stale_after), ("idle window", idle_after)):
        if window <= timedelta(0):
            raise LimitExceeded(f"the {name} must be positive, got {window}")
    now = now or datetime.now(UTC)
    stale_before, idle_before = now - stale_after, now - idle_after
    unresolved = store.unresolved(limit) if limit else []
    found: dict[str, Found] = {
        "missing_owners": store.missing_owners(EXEMPT_FROM_OWNERSHIP, limit),
        "missing_description": store.missing_description(EXEMPT_FROM_OWNERSHIP, limit),
        "stale": store.stale(stale_before, limit),
        "unresolved": Found(
            store.unresolved_by_type(),
            tuple(Example(u.uri, u.type, "stub", None, u.since) for u in unresolved),
        ),
        "orphans": store.orphans(limit),
        "deprecation_candidates": store.idle_unconsumed(
            idle_before,
            consumer_labels(store.schema),
            sorted(consumable_types(store.schema)),
            limit,
        ),
    }
    sections = tuple(
        Section(key, title, found[key].by_type, found[key].examples)
        for key, title in SECTIONS.items()
    )
    return QualityReport(now, stale_before, idle_before, sections)
