"""The built-in connectors for the six reference sources.

``featurestore``, ``datasets`` and ``identity`` are YAML only (the files next
to this one): a new source needs no Python. ``registry``, ``orchestrator`` and
``experimentation`` are written in Python against the same interface.
"""

from __future__ import annotations

from importlib import resources

from mlgraph.connectors.base import Connector
from mlgraph.connectors.declarative import load_declarative
from mlgraph.connectors.registry import ConnectorContext, ConnectorFactory


def _yaml(name: str) -> ConnectorFactory:
    def factory(context: ConnectorContext) -> Connector:
        path = resources.files("mlgraph.connectors.builtin") / f"{name}.yaml"
        with resources.as_file(path) as file:
            return load_declarative(file, context.schema, context.sources.get(name))

    return factory


featurestore = _yaml("featurestore")
datasets = _yaml("datasets")
identity = _yaml("identity")
