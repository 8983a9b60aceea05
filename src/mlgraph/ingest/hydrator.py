"""Hydration: fetch a subject's current state and normalize it into writes."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from mlgraph.catalog import Entity
from mlgraph.connectors import Connector, Connectors, Subject
from mlgraph.errors import MlgraphError
from mlgraph.ingest.fetcher import Fetcher, SourceRefused, SourceUnavailable
from mlgraph.ingest.inbox import Claim
from mlgraph.ingest.stub_requests import requested_stub
from mlgraph.store import Provenance, Store


@dataclass(frozen=True, slots=True)
class Writes:
    """What hydrating one subject asks the store to do."""

    upsert: list[Entity]
    retract: list[str]
    cause: Provenance


@dataclass(frozen=True, slots=True)
class Fetched:
    writes: Writes


@dataclass(frozen=True, slots=True)
class Done:
    tx: int | None  # None when the source's state was already stored


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Dead:
    reason: str


Outcome = Fetched | Retry | Dead


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 0.2
    max_delay_s: float = 30.0

    def delay(self, attempts: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Exponential backoff with jitter, never sooner than the source asked."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2**attempts)
        jittered: float = backoff * rng.uniform(0.5, 1.0)
        return max(jittered, retry_after_s or 0.0)


class Hydrator:
    """Fetch a subject's current state and say what to write; the Committer writes it."""

    def __init__(self, store: Store, connectors: Connectors, fetcher: Fetcher) -> None:
        self.store = store
        self.connectors = connectors
        self.fetcher = fetcher

    async def hydrate(self, claim: Claim) -> Outcome:
        subject = Subject.from_key(claim.subject)
        try:
            connector = self.connectors.get(subject.source)
            resource = connector.resources[subject.resource]
        except (MlgraphError, KeyError) as exc:
            return Dead(f"no connector for {claim.subject}: {exc}")
        try:
            payload = await self.fetcher.fetch(
                connector, subject, fresh_after=claim.last_received.timestamp()
            )
        except SourceUnavailable as exc:
            return Retry(str(exc), exc.retry_after_s)
        except SourceRefused as exc:
            return Dead(str(exc))
        cause = Provenance(connector.name, claim.event_ids[-1], "hydrator")
        try:
            entities = [] if payload is None else connector.normalize(resource, payload)
            stale = (
                await asyncio.to_thread(self._stale_parts, connector, subject, entities)
                if connector.parts.get(subject.resource)
                else []  # nothing to look up: spare the thread hop (most resources)
            )
        except (MlgraphError, KeyError, TypeError, ValueError) as exc:
            # The response does not fit: retrying the same response cannot help.
            return Dead(f"{claim.subject}: cannot normalize the source's response: "
                        f"{type(exc).__name__}: {exc}")  # fmt: skip
        gone = []
        if payload is None:  # the source does not have it (any more)
            gone = connector.gone(subject)
            gone += [uri for e in claim.event_ids if (uri := requested_stub(e)) is not None]
        return Fetched(Writes(entities, [*gone, *stale], cause))

    def _stale_parts(
        self, connector: Connector, subject: Subject, entities: list[Entity]
    ) -> list[str]:
        """Parts the store holds for the subject that its response no longer lists."""
        relationships = connector.parts.get(subject.resource)
        if not relationships:
            return []
        fresh = {e.uri for e in entities}
        held = self.store.neighbors(connector.subject_uri(subject), relationships=relationships)
        return sorted({n.uri for n in held} - fresh)
