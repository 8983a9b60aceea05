"""The enricher: follows the change feed, hydrates new stubs and keeps inferences current.

It reads committed transactions after its cursor, a batch at a time, and saves
the cursor only once the batch is handled, so a crash means handling a batch
again, which changes nothing the second time. Its own transactions come back
through the feed too: that is how a rule that reads another rule's edges
(a model's tests, through its instances' tests) follows within a round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from mlgraph.enrich.inference import Inference, Report
from mlgraph.enrich.stubs import RequestHydration, StubHydration
from mlgraph.store import Store
from mlgraph.store.following import FeedFollower

CURSOR = "enricher"


@dataclass
class EnrichStats:
    rounds: int = 0
    transactions: int = 0  # feed transactions handled
    inferred_changes: int = 0
    stubs_requested: int = 0
    unresolved: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


class Enricher(FeedFollower[EnrichStats]):
    cursor_name = CURSOR
    activity = "enrichment"

    def __init__(
        self,
        store: Store,
        request_hydration: RequestHydration | None = None,
        *,
        batch: int = 500,
        idle_poll_s: float = 0.05,
        infer: bool = True,
    ) -> None:
        self.store = store
        self.inference = Inference(store) if infer else None
        self.stubs = None if request_hydration is None else StubHydration(store, request_hydration)
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.stats = EnrichStats()

    def step(self) -> bool:
        """Handle one batch of the feed; False when there was nothing new."""
        changes = self.store.changes_since(self.store.cursor(CURSOR), self.batch)
        if not changes:
            return False
        items = [item for change in changes for item in change.items]
        report = Report() if self.inference is None else self.inference.apply(items)
        if self.stubs is not None:
            requested, unresolved = self.stubs.handle(items)
            self.stats.stubs_requested += requested
            self.stats.unresolved += unresolved
        touched = {item.uri for item in items if item.kind == "entity"}
        self.store.mark_enriched(touched, datetime.now(UTC))
        self.store.save_cursor(CURSOR, changes[-1].tx)
        self.stats.rounds += 1
        self.stats.transactions += len(changes)
        self.stats.inferred_changes += report.changes
        for rule, n in report.by_rule.items():
            self.stats.by_rule[rule] = self.stats.by_rule.get(rule, 0) + n
        return True
