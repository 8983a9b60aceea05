"""Schemathesis against the OpenAPI spec: no input it can make gets a server error.

Runs over a small graph (so lookups find something) with auth off (so requests reach the
handlers) on SQLite; what only PostgreSQL refuses (NUL characters, 64-bit overflow) is in
test_rest.py on both backends, and tests/api/test_auth.py covers what tokens do. Each
operation gets its own Hypothesis run (schemathesis' pytest plugin does not run on this
pytest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from mlgraph.api import create_app
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.api.graph import build

EXAMPLES = 60  # per operation: the whole spec in well under a minute


def test_no_input_gets_a_server_error(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'fuzz.db'}")
    build(store)
    service = Service(Settings(workers=False, auth="off"), store, load_connectors(store.schema))
    indexer = service.search.indexer()  # search answers from a built index, as in service
    indexer.catch_up()
    indexer.close()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    failures: dict[str, str] = {}
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err would raise: the spec is ours
        tried += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:  # report every operation that fails, not only the first
            failures[operation.label] = str(exc)[:2000]
    assert tried >= 12
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
