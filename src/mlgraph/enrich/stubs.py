"""Progressive hydration: every stub the graph gains is asked of the source that owns it.

A stub is an entity something refers to that no hydration has described yet.
The enricher sees it appear in the change feed and hands it to whoever can
hydrate it (the ingest inbox, wired by the runtime); what nobody can hydrate
is marked unresolved with the reason, and not asked for again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from mlgraph.store import ChangeItem, Op, Store

# (uri, type) of stubs to hydrate -> {uri: reason} for those that cannot be
RequestHydration = Callable[[Sequence[tuple[str, str]]], Mapping[str, str]]


class StubHydration:
    def __init__(self, store: Store, request: RequestHydration) -> None:
        self.store = store
        self.request = request

    def handle(self, items: Sequence[ChangeItem]) -> tuple[int, int]:
        """Ask for the stubs these changes created; returns (requested, unresolved)."""
        created = {i.uri for i in items if i.kind == "entity" and i.op is Op.CREATE}
        if not created:
            return 0, 0
        stubs = [(uri, type_) for uri, (type_, state) in self.store.states(created).items()
                 if state == "stub"]  # fmt: skip
        if not stubs:
            return 0, 0
        known = self.store.statuses(uri for uri, _ in stubs)
        wanted = [(u, t) for u, t in sorted(stubs) if u not in known or not known[u].unresolved]
        unroutable = dict(self.request(wanted)) if wanted else {}
        if unroutable:
            self.store.mark_unresolved(unroutable, datetime.now(UTC))
        return len(wanted) - len(unroutable), len(unroutable)
