"""API tokens: scopes on every route that reads, takes events or administers, and the modes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mlgraph.api import create_app
from mlgraph.api.tables import api_token
from mlgraph.api.tokens import Scope, Tokens
from mlgraph.cli import app as cli
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.errors import ValidationError
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.api.graph import M1, build

EVENT = {"event_type": "model_instance_updated", "instance_id": "ranking-model-v5-20XX0101"}
ENTITY = "/v1/entities/" + M1.removeprefix("aip://")
QUERY = {"query": "{ __typename }"}

# (method, path, body, the scope it needs)
ROUTES: list[tuple[str, str, Any, Scope]] = [
    ("GET", "/v1/summary", None, Scope.READ),
    ("GET", ENTITY, None, Scope.READ),
    ("GET", "/v1/entities?type=User", None, Scope.READ),
    ("GET", "/v1/lineage/" + M1.removeprefix("aip://"), None, Scope.READ),
    ("GET", "/v1/impact/" + M1.removeprefix("aip://"), None, Scope.READ),
    ("GET", "/v1/history/" + M1.removeprefix("aip://"), None, Scope.READ),
    ("GET", "/v1/search?q=ranking", None, Scope.READ),
    ("POST", "/graphql", QUERY, Scope.READ),
    ("GET", "/graphql?query={__typename}", None, Scope.READ),
    ("POST", "/v1/events", EVENT, Scope.WRITE),
    ("POST", "/v1/events", [EVENT, EVENT], Scope.WRITE),
    ("GET", "/v1/dlq", None, Scope.ADMIN),
    ("GET", "/v1/dlq/1", None, Scope.ADMIN),
    ("POST", "/v1/dlq/replay", {"ids": []}, Scope.ADMIN),
]
OPEN_ROUTES = ["/healthz", "/readyz", "/metrics", "/openapi.json"]


def make_client(store: Store, **settings: Any) -> TestClient:
    service = Service(Settings(workers=False, **settings), store, load_connectors(store.schema))
    return TestClient(create_app(service))


@pytest.fixture
def tokens(store: Store) -> dict[str, str]:
    """One token per scope set, made before the app starts (so auth is in force)."""
    build(store)
    made = Tokens(store.engine)
    return {
        "read": made.create("reader", ["read"]).secret,
        "write": made.create("registry webhook", ["write"]).secret,
        "admin": made.create("operator", ["admin"]).secret,
    }


@pytest.fixture
def client(store: Store, tokens: dict[str, str]) -> Iterator[TestClient]:
    with make_client(store) as c:
        yield c


def call(client: TestClient, method: str, path: str, body: Any, token: str | None = None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client.request(method, path, json=body, headers=headers)


def allowed(status: int) -> bool:
    return status not in (401, 403)


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES)
def test_every_route_needs_its_scope(
    client: TestClient, tokens: dict[str, str], method: str, path: str, body: Any, scope: Scope
) -> None:
    anonymous = call(client, method, path, body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["error"].startswith("authentication required: send 'Authorization: "
                                                f"Bearer <token>' with a token that has the "
                                                f"{scope.value!r} scope")  # fmt: skip
    for held in ("read", "write", "admin"):
        response = call(client, method, path, body, tokens[held])
        may = held == "admin" or held == scope.value
        assert allowed(response.status_code) is may, (held, response.status_code, response.text)
        if not may:
            assert response.status_code == 403
            assert response.json()["error"] == (
                f"the token {'reader' if held == 'read' else 'registry webhook'!r} "
                f"({tokens[held][:12]}…) lacks the {scope.value!r} scope; it has: {held}"
            )
            assert "insufficient_scope" in response.headers["www-authenticate"]


def test_health_readiness_metrics_and_the_spec_need_no_token(client: TestClient) -> None:
    for path in OPEN_ROUTES:
        assert client.get(path).status_code == 200, path


def test_bad_revoked_and_malformed_tokens(
    client: TestClient, store: Store, tokens: dict[str, str]
) -> None:
    for header, message in (
        ("Bearer mlg_not-a-token", "invalid or revoked API token"),
        ("Bearer something-else", "invalid or revoked API token"),
        ("Basic dXNlcjpwYXNz", "the Authorization header must be 'Bearer <token>'"),
        ("Bearer", "the Authorization header must be 'Bearer <token>'"),
    ):
        response = client.get("/v1/summary", headers={"Authorization": header})
        assert response.status_code == 401 and response.json() == {"error": message}
    reader = Tokens(store.engine).listing()[0]
    assert reader.name == "reader"
    Tokens(store.engine).revoke(reader.id)
    client.app.state.auth.forget()  # type: ignore[attr-defined]  # another process would wait
    response = client.get("/v1/summary", headers={"Authorization": f"Bearer {tokens['read']}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid or revoked API token"


def test_events_are_taken_only_with_write_and_land_in_the_inbox(
    client: TestClient, store: Store, tokens: dict[str, str]
) -> None:
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    before = service.inbox.stats().pending
    assert call(client, "POST", "/v1/events", EVENT).status_code == 401
    assert call(client, "POST", "/v1/events", EVENT, tokens["read"]).status_code == 403
    assert service.inbox.stats().pending == before  # refused events leave no trace
    accepted = call(client, "POST", "/v1/events", EVENT, tokens["write"])
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 1
    assert service.inbox.stats().pending == before + 1


def test_anonymous_read_reads_but_never_writes(store: Store, tokens: dict[str, str]) -> None:
    with make_client(store, anonymous_read=True) as client:
        assert client.get(ENTITY).status_code == 200
        assert client.post("/graphql", json=QUERY).json()["data"] == {"__typename": "Query"}
        assert client.post("/v1/events", json=EVENT).status_code == 401
        assert client.post("/v1/dlq/replay", json={}).status_code == 401
        # A token that is sent is checked, even where none is needed.
        bad = client.get(ENTITY, headers={"Authorization": "Bearer mlg_wrong"})
        assert bad.status_code == 401


def test_auto_is_open_until_the_first_token(store: Store) -> None:
    build(store)
    with make_client(store) as client:
        assert client.post("/v1/events", json=EVENT).status_code == 202
        Tokens(store.engine).create("first", ["read"])
        client.app.state.auth.forget()  # type: ignore[attr-defined]
        assert client.post("/v1/events", json=EVENT).status_code == 401
        assert client.get("/v1/summary").status_code == 401


def test_required_refuses_even_before_any_token_and_off_checks_nothing(
    store: Store, tokens: dict[str, str]
) -> None:
    with make_client(store, auth="off") as client:
        assert client.post("/v1/events", json=EVENT).status_code == 202
        assert client.post("/v1/dlq/replay", json={}).status_code == 200
    with store.engine.begin() as conn:
        conn.execute(api_token.delete())
    with make_client(store, auth="required") as client:
        assert client.get("/v1/summary").status_code == 401


def test_graphiql_page_loads_without_a_token(client: TestClient) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


def test_tokens_are_kept_hashed_and_scopes_are_checked(store: Store) -> None:
    tokens = Tokens(store.engine)
    created = tokens.create("ci", ["admin"])
    assert created.info.scopes == {Scope.READ, Scope.WRITE, Scope.ADMIN}  # admin brings both
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(api_token)).one()
    assert created.secret not in {str(v) for v in stored}
    assert stored.prefix == created.secret[:12] and stored.token_hash != created.secret
    assert tokens.verify(created.secret) == created.info
    with pytest.raises(ValidationError, match="unknown scope 'superuser'"):
        tokens.create("x", ["superuser"])
    with pytest.raises(ValidationError, match="at least one scope"):
        tokens.create("x", [])


def test_token_commands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MLGRAPH_STORE_URL", url)
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    runner = CliRunner()
    made = runner.invoke(cli, ["token", "create", "--scope", "read", "--scope", "write",
                               "--name", "webhook"])  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("mlg_")
    with Store.open(url) as store:
        info = Tokens(store.engine).verify(secret)
    assert info is not None and info.scopes == {Scope.READ, Scope.WRITE}
    listed = runner.invoke(cli, ["token", "list"])
    assert "webhook" in listed.stdout and secret not in listed.stdout
    assert runner.invoke(cli, ["token", "revoke", str(info.id)]).exit_code == 0
    with Store.open(url) as store:
        assert Tokens(store.engine).verify(secret) is None
    refused = runner.invoke(cli, ["token", "create", "--scope", "root"])
    assert refused.exit_code == 1 and "unknown scope 'root'" in refused.output
