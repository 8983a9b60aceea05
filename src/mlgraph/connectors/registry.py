"""Finding connectors: entry points in group ``mlgraph.connectors``, plus YAML files.

An entry point names a factory ``(ConnectorContext) -> Connector``. A folder of
``*.yaml`` files (``MLGRAPH_CONNECTORS_DIR``) adds declarative connectors with
no Python at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from mlgraph.catalog import Schema
from mlgraph.connectors.base import Connector, EventRule, Resource
from mlgraph.connectors.declarative import ConnectorError, load_declarative

GROUP = "mlgraph.connectors"


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector factory gets: the schema and the configured source URLs."""

    schema: Schema
    sources: Mapping[str, str] = field(default_factory=dict)

    def base_url(self, name: str, default: str) -> str:
        return self.sources.get(name, default)


ConnectorFactory = Callable[[ConnectorContext], Connector]


class Connectors:
    """The loaded connectors, by source name and by the event types they handle."""

    def __init__(self, connectors: list[Connector]) -> None:
        self._by_name: dict[str, Connector] = {}
        self._routes: dict[str, tuple[Connector, Resource, EventRule]] = {}
        for c in connectors:
            if c.name in self._by_name:
                raise ConnectorError(f"two connectors are named {c.name!r}")
            self._by_name[c.name] = c
            for event_type, (resource, rule) in c.event_types.items():
                if event_type in self._routes:
                    other = self._routes[event_type][0].name
                    raise ConnectorError(
                        f"event type {event_type!r} is claimed by both {other!r} and {c.name!r}"
                    )
                self._routes[event_type] = (c, resource, rule)

    def __iter__(self) -> Iterator[Connector]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Connector:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name))
            raise ConnectorError(f"no connector named {name!r} (known: {known})") from None

    def route(self, event_type: str) -> tuple[Connector, Resource, EventRule] | None:
        return self._routes.get(event_type)

    @property
    def event_types(self) -> list[str]:
        return sorted(self._routes)


def load_connectors(
    schema: Schema,
    sources: Mapping[str, str] | None = None,
    directory: Path | None = None,
) -> Connectors:
    """Every connector installed (entry points) and declared in ``directory``."""
    context = ConnectorContext(schema, dict(sources or {}))
    found: list[Connector] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        factory: ConnectorFactory = ep.load()
        found.append(factory(context))
    if directory is not None:
        for path in sorted(Path(directory).glob("*.yaml")):
            connector = load_declarative(path, schema)
            if connector.name in context.sources:
                connector.base_url = context.sources[connector.name]
            found.append(connector)
    return Connectors(found)
