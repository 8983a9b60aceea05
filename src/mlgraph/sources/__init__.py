"""Reference source systems: six small HTTP services over one generated ML organisation.

The model registry, pipeline orchestrator, feature store, experimentation
platform, dataset catalog and identity directory of seed 000, with the API
shapes and thin events of docs/sources.md. mlgraph is developed, tested,
benchmarked and demonstrated against them; they can inject faults and keep
the organisation changing (churn).

    org = generate(size=10, seed=7)
    sources = Sources(org, HttpSink("http://127.0.0.1:8000/v1/events"))
    thread = SourcesThread(sources)      # or, inside a loop: async with serve_sources(sources)
    urls = thread.start()                # base URLs by source name, on free ports
    thread.emit_initial()                # a *_created event for every object
    thread.start_churn(rate=10)          # keep changing, one event per change
    thread.stop()

docs/sources.md has the API, the events, the admin API and the faults.
"""

from mlgraph.sources.churn import Churn
from mlgraph.sources.editor import Editor, InvalidObject, ObjectExists, ObjectNotFound
from mlgraph.sources.events import Event, initial_events, make_event
from mlgraph.sources.faults import EventFaults, FaultConfig, SourceFaults
from mlgraph.sources.generator import SEED_EXAMPLE, generate
from mlgraph.sources.integrity import dangling_references, referrers
from mlgraph.sources.org import Organisation
from mlgraph.sources.resources import COLLECTIONS, RESOURCES, SOURCES, Resource, resource
from mlgraph.sources.runner import (
    DEFAULT_BASE_PORT,
    Sources,
    SourcesThread,
    run_sources,
    serve_sources,
)
from mlgraph.sources.sinks import (
    CollectingSink,
    EventSink,
    FanoutSink,
    HttpSink,
    NatsSink,
    NullSink,
    RedisStreamSink,
)

__all__ = [
    "COLLECTIONS",
    "DEFAULT_BASE_PORT",
    "RESOURCES",
    "SEED_EXAMPLE",
    "SOURCES",
    "Churn",
    "CollectingSink",
    "Editor",
    "Event",
    "EventFaults",
    "EventSink",
    "FanoutSink",
    "FaultConfig",
    "HttpSink",
    "InvalidObject",
    "NatsSink",
    "NullSink",
    "ObjectExists",
    "ObjectNotFound",
    "Organisation",
    "RedisStreamSink",
    "Resource",
    "SourceFaults",
    "Sources",
    "SourcesThread",
    "dangling_references",
    "generate",
    "initial_events",
    "make_event",
    "referrers",
    "resource",
    "run_sources",
    "serve_sources",
]
