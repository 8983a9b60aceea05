"""Reconciliation: compare what a source lists with what the store holds, and heal.

Thin events can be dropped. A sweep lists every id a source has and enqueues
a hydration for each one the store is missing, holds only as a stub, or holds
at a different ``updated_at``, and for each one the store holds hydrated that
the source no longer lists (its fetch will 404 and retract it).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from mlgraph.catalog import format_uri, parse_uri
from mlgraph.catalog.fields import parse_datetime
from mlgraph.connectors import Connector, Connectors, Subject
from mlgraph.ingest.fetcher import Fetcher, SourceRefused, SourceUnavailable
from mlgraph.ingest.inbox import Entry, Inbox
from mlgraph.store import Store

EVENT_TYPE = "reconcile"


@dataclass
class ResourceReport:
    listed: int = 0
    stored: int = 0
    missing: int = 0
    changed: int = 0
    gone: int = 0
    error: str | None = None  # the source could not be listed; nothing was enqueued

    @property
    def enqueued(self) -> int:
        return self.missing + self.changed + self.gone


@dataclass
class ReconcileReport:
    resources: dict[str, ResourceReport] = field(default_factory=dict)

    @property
    def enqueued(self) -> int:
        return sum(r.enqueued for r in self.resources.values())

    @property
    def failed(self) -> dict[str, str]:
        return {name: r.error for name, r in self.resources.items() if r.error}


def _time(value: str | None) -> datetime | None:
    return None if value is None else parse_datetime(value, "updated_at")


class Reconciler:
    def __init__(
        self, store: Store, inbox: Inbox, connectors: Connectors, fetcher: Fetcher
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.connectors = connectors
        self.fetcher = fetcher

    async def run(self, source: str | None = None) -> ReconcileReport:
        """Sweep one source (or all) and enqueue what needs hydrating."""
        selected = [self.connectors.get(source)] if source else list(self.connectors)
        report = ReconcileReport()
        sweep = uuid.uuid4().hex[:12]
        for connector in selected:
            for resource in connector.resources.values():
                if resource.list is None:
                    continue
                name = f"{connector.name}/{resource.name}"
                try:
                    found, entries = await self._resource(connector, resource.name, sweep)
                except (SourceUnavailable, SourceRefused) as exc:
                    # One source down must not stop the sweep of the others.
                    report.resources[name] = ResourceReport(error=str(exc))
                    continue
                report.resources[name] = found
                if entries:
                    await asyncio.to_thread(self.inbox.accept, entries)
        return report

    async def _resource(
        self, connector: Connector, name: str, sweep: str
    ) -> tuple[ResourceReport, list[Entry]]:
        resource = connector.resources[name]
        kind = self.store.schema.type(resource.entity_type).kind
        prefix = format_uri(kind, connector.name, "x", self.store.schema.scheme)[:-1]
        stored = {
            item.uri: item
            for item in await asyncio.to_thread(self.store.listing, prefix, resource.entity_type)
        }
        report = ResourceReport(stored=len(stored))
        subjects: list[Subject] = []
        seen: set[str] = set()
        async for id, updated_at in self.fetcher.list_ids(connector, resource):
            report.listed += 1
            uri = connector.uri(resource.entity_type, id)
            seen.add(uri)
            have = stored.get(uri)
            if have is None or have.state == "stub":
                report.missing += 1
            elif have.source_updated_at != _time(updated_at):
                report.changed += 1
            else:
                continue
            subjects.append(Subject(connector.name, name, id))
        for uri in stored.keys() - seen:
            # Only hydrated entities were claimed by the source; a stub is a reference
            # another entity still makes, and stays until that entity stops making it.
            if stored[uri].state == "stub":
                continue
            report.gone += 1
            subjects.append(Subject(connector.name, name, parse_uri(uri).id))
        entries = [
            Entry(f"{EVENT_TYPE}:{sweep}:{s.key}", s.key, connector.name, EVENT_TYPE,
                  {"event_type": EVENT_TYPE, "subject": s.key, "sweep": sweep})
            for s in subjects
        ]  # fmt: skip
        return report, entries
