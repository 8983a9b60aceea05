"""Connectors: how mlgraph reads each source system (fetch, normalize, list)."""

from mlgraph.connectors.base import BatchGet, Connector, EventRule, Resource, Subject
from mlgraph.connectors.registry import ConnectorContext, Connectors, load_connectors

__all__ = [
    "BatchGet",
    "Connector",
    "ConnectorContext",
    "Connectors",
    "EventRule",
    "Resource",
    "Subject",
    "load_connectors",
]
