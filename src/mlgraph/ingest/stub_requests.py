"""Stubs the enricher wants hydrated, as inbox entries for the source that owns each."""

from __future__ import annotations

from collections.abc import Sequence

from mlgraph.catalog import parse_uri
from mlgraph.connectors import Connectors
from mlgraph.connectors.declarative import ConnectorError
from mlgraph.ingest.inbox import Entry

EVENT_TYPE = "stub"


def requested_stub(event_id: str) -> str | None:
    """The stub URI a stub request's event id names (None for other events).

    A stub's subject can be another object (a cell's test), so when the source
    has no such subject, this is how the hydrator knows which stub went unresolved.
    """
    kind, _, rest = event_id.partition(":")
    if kind != EVENT_TYPE:
        return None
    _, _, uri = rest.partition(":")
    return uri or None


def stub_entries(
    connectors: Connectors, stubs: Sequence[tuple[str, str]], batch: str
) -> tuple[list[Entry], dict[str, str]]:
    """Entries hydrating ``stubs`` ((uri, type) pairs), and why the others cannot be.

    ``batch`` makes the event ids unique per request, so a stub that comes
    back later is asked for again rather than deduplicated away.
    """
    entries: list[Entry] = []
    unroutable: dict[str, str] = {}
    for uri, type_ in stubs:
        parsed = parse_uri(uri)
        try:
            connector = connectors.get(parsed.source)
        except ConnectorError:
            unroutable[uri] = f"no connector serves the source {parsed.source!r}"
            continue
        subject = connector.subject_for(type_, parsed.id)
        if subject is None:
            unroutable[uri] = f"the {connector.name} connector cannot fetch a {type_}"
            continue
        payload = {"event_type": EVENT_TYPE, "subject": subject.key, "uri": uri}
        entries.append(Entry(f"{EVENT_TYPE}:{batch}:{uri}", subject.key, connector.name,
                             EVENT_TYPE, payload))  # fmt: skip
    return entries, unroutable
