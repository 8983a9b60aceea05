"""Group commit: the writes of many hydrations in one store transaction.

On SQLite a transaction costs about as much as the hydration's own work, so
committing what finishes together, as one transaction, multiplies
throughput. Each entity keeps its own cause (source and event id) in the
change feed and history. If a batch is refused, its claims are committed one
by one, so only the one at fault is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from mlgraph.catalog import Entity
from mlgraph.errors import MlgraphError
from mlgraph.ingest.hydrator import Dead, Done, Writes
from mlgraph.ingest.inbox import Claim
from mlgraph.store import Provenance, Store

BATCH_PROVENANCE = Provenance("hydrator", None, "hydrator")


def merge(writes: Sequence[Writes]) -> tuple[list[Entity], list[str], dict[str, Provenance]]:
    """One set of writes; where two touch the same entity, the later one wins."""
    last: dict[str, Entity | None] = {}
    causes: dict[str, Provenance] = {}
    for w in writes:
        for entity in w.upsert:
            last.pop(entity.uri, None)  # keep the order of the latest write
            last[entity.uri] = entity
            causes[entity.uri] = w.cause
        for uri in w.retract:
            last.pop(uri, None)
            last[uri] = None
            causes[uri] = w.cause
    upsert = [e for e in last.values() if e is not None]
    retract = [uri for uri, e in last.items() if e is None]
    return upsert, retract, causes


class Committer:
    def __init__(self, store: Store) -> None:
        self.store = store

    def commit(self, items: Sequence[tuple[Claim, Writes]]) -> list[Done | Dead]:
        """Write ``items`` in one transaction; one result per item, in order."""
        upsert, retract, causes = merge([w for _, w in items])
        provenance = items[0][1].cause if len(items) == 1 else BATCH_PROVENANCE
        try:
            report = self.store.transact(
                upsert=upsert, retract=retract, provenance=provenance, causes=causes
            )
        except (MlgraphError, ValueError) as exc:
            if len(items) > 1:
                return [result for item in items for result in self.commit([item])]
            return [Dead(f"{items[0][0].subject}: the store refused it: {exc}")]
        # Bookkeeping after the facts: lost on a crash, it only makes an entity look
        # less recently hydrated until its next event.
        self.store.record_hydration([e.uri for e in upsert], retract, datetime.now(UTC))
        return [Done(report.tx)] * len(items)
