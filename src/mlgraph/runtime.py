"""Turning settings into the running parts: the schema and the store."""

from __future__ import annotations

from mlgraph.catalog.schema import Schema, load_schema
from mlgraph.config import Settings
from mlgraph.store import Store


def open_schema(settings: Settings) -> Schema:
    return load_schema(settings.schema_file, scheme=settings.uri_scheme)


def open_store(settings: Settings) -> Store:
    return Store.open(settings.resolved_store_url, open_schema(settings))
