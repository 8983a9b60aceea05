"""A generated organisation loaded into a store through the real connectors.

The objects of ``mlgraph.sources.generate(size)`` go through each connector's
``normalize`` (the same code the hydration workers run on the sources' HTTP
responses) into ``Store.transact``, and the enricher derives the inferred
relationships. This skips HTTP and the inbox, which the e2e tests cover, so a
search test gets the real entities, names, owners, tags and edges in a second
or two, deterministically, on either backend.
"""

from __future__ import annotations

from mlgraph.catalog import Entity
from mlgraph.connectors import load_connectors
from mlgraph.enrich.enricher import Enricher
from mlgraph.sources import generate
from mlgraph.store import Store

BATCH = 200


def organisation_entities(store: Store, size: int) -> list[Entity]:
    org = generate(size)
    found: list[Entity] = []
    for connector in load_connectors(store.schema):
        for resource in connector.resources.values():
            collection = resource.get.split("/")[3]  # /api/v1/{collection}/{id}
            for obj in org.objects(collection):
                found.extend(connector.normalize(resource, obj))
    return found


def load_organisation(store: Store, size: int) -> int:
    """Load the organisation of ``size`` into ``store``; how many entities it has."""
    entities = organisation_entities(store, size)
    for i in range(0, len(entities), BATCH):
        store.transact(upsert=entities[i : i + BATCH])
    Enricher(store).catch_up()
    return len(entities)
