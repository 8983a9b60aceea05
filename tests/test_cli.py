"""The mlgraph command, including `serve` answering over real HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlgraph.cli import app
from mlgraph.store import Store, migrate
from tests.builders import entity, uri

runner = CliRunner()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MLGRAPH_STORE_URL", url)
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    with Store.open(url) as store:
        store.transact(
            upsert=[entity("Feature", "ctr", references={"data": uri("Dataset", "clicks")})]
        )
        store.transact(upsert=[entity("Feature", "ctr", description="click-through rate",
                                      references={"data": uri("Dataset", "clicks")})])  # fmt: skip
    return url


def test_summary_get_history_traverse(configured: str) -> None:
    result = runner.invoke(app, ["summary"])
    assert result.exit_code == 0, result.output
    assert "2 entities, 1 edges" in result.output
    result = runner.invoke(app, ["get", uri("Feature", "ctr")])
    assert result.exit_code == 0 and "click-through rate" in result.output
    result = runner.invoke(app, ["get", uri("Feature", "ctr"), "--as-of", "1"])
    assert "click-through rate" not in result.output
    result = runner.invoke(app, ["history", uri("Feature", "ctr")])
    assert "tx 2" in result.output and "description: None -> 'click-through rate'" in result.output
    result = runner.invoke(app, ["traverse", uri("Dataset", "clicks"), "--direction", "downstream"])
    assert result.exit_code == 0 and uri("Feature", "ctr") in result.output


def test_errors_exit_non_zero_with_the_reason(configured: str) -> None:
    result = runner.invoke(app, ["get", uri("Feature", "nope")])
    assert result.exit_code == 1 and "no entity" in result.output
    result = runner.invoke(app, ["get", "not-a-uri"])
    assert result.exit_code == 1 and "invalid URI" in result.output
    result = runner.invoke(app, ["traverse", uri("Feature", "ctr"), "--depth", "50"])
    assert result.exit_code == 1 and "depth must be between" in result.output


def test_db_upgrade(configured: str) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and f"revision {migrate.head_revision()}" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_health_and_summary_over_http(configured: str) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlgraph.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "mlgraph serve did not start in 30 s"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        summary = httpx.get(f"{base}/v1/summary", timeout=5).json()
        assert summary["entities"] == 2 and summary["last_tx"]["id"] == 2
    finally:
        server.terminate()
        server.wait(timeout=10)
