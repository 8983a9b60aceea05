"""The mlgraph command, including `serve` answering over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mlgraph.cli import app
from mlgraph.enrich.inference import Inference
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


# -- impact, paths, similar, quality ---------------------------------------------------


@pytest.fixture
def lineage_graph(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """d -> f -> m1 (of model a) and m2 (of model b, which also uses g); inferences derived."""
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    monkeypatch.setenv("MLGRAPH_STORE_URL", url)
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    alice = uri("User", "alice")
    with Store.open(url) as store:
        store.transact(
            upsert=[
                entity("Dataset", "d", description="clicks", owners=[alice]),
                entity("Feature", "f", owners=[alice], references={"data": uri("Dataset", "d")}),
                entity("Feature", "g"),
                entity("ModelInstance", "m1", references={"model": uri("Model", "model-a"),
                                                          "features": uri("Feature", "f")}),
                entity("ModelInstance", "m2", references={"model": uri("Model", "model-b"),
                                                          "features": [uri("Feature", "f"),
                                                                       uri("Feature", "g")]}),
            ]
        )  # fmt: skip
        Inference(store).rederive()
    return url


def invoke_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_impact_lists_the_affected_by_type_and_the_owners(lineage_graph: str) -> None:
    data = invoke_json("impact", uri("Dataset", "d"))
    assert {t: [a["uri"] for a in items] for t, items in data["by_type"].items()} == {
        "Feature": [uri("Feature", "f")],
        "Model": [uri("Model", "model-a"), uri("Model", "model-b")],
        "ModelInstance": [uri("ModelInstance", "m1"), uri("ModelInstance", "m2")],
    }
    assert data["by_type"]["Model"][0]["via"] == "Feature.consuming_models"
    assert data["owners"] == [
        {"uri": uri("User", "alice"), "type": "User", "owns": [uri("Feature", "f")]}
    ]
    assert data["count"] == 5 and data["partial"] is False
    result = runner.invoke(app, ["impact", uri("Dataset", "d"), "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "1 entities affected" in result.output and "partial" in result.output


def test_paths_prints_each_hop_named_from_its_start(lineage_graph: str) -> None:
    data = invoke_json("paths", uri("Dataset", "d"), uri("ModelInstance", "m1"))
    assert data["length"] == 2
    assert [[(h["frm"], h["relationship"], h["to"]) for h in p] for p in data["paths"]] == [
        [(uri("Dataset", "d"), "features", uri("Feature", "f")),
         (uri("Feature", "f"), "used_by", uri("ModelInstance", "m1"))],
    ]  # fmt: skip
    result = runner.invoke(app, ["paths", uri("ModelInstance", "m1"), uri("Dataset", "d"),
                                 "--lineage"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 shortest path(s) of length 2" in result.output
    assert f"--features--> {uri('Feature', 'f')}" in result.output
    assert f"--data--> {uri('Dataset', 'd')}" in result.output
    result = runner.invoke(app, ["paths", uri("Feature", "g"), uri("Dataset", "d"),
                                 "--lineage"])  # fmt: skip
    assert result.exit_code == 0 and "no path within 6 hops" in result.output


def test_similar_scores_models_and_recommends_features(lineage_graph: str) -> None:
    data = invoke_json("similar", uri("Model", "model-a"))
    assert data["features"] == [uri("Feature", "f")]
    assert data["similar"] == [
        {"uri": uri("Model", "model-b"), "score": 0.5, "shared": [uri("Feature", "f")]}
    ]
    assert data["recommendations"] == [
        {"feature": uri("Feature", "g"), "score": 0.5, "used_by": [uri("Model", "model-b")]}
    ]
    result = runner.invoke(app, ["similar", uri("ModelInstance", "m2"), "-k", "1"])
    assert result.exit_code == 0, result.output
    assert uri("ModelInstance", "m1") in result.output and "0.500" in result.output


def test_quality_reports_every_section(lineage_graph: str) -> None:
    data = invoke_json("quality", "--limit", "1")
    counts = {key: s["count"] for key, s in data["sections"].items()}
    assert counts == {
        "missing_owners": 3, "missing_description": 4, "stale": 0, "unresolved": 0,
        "orphans": 0, "deprecation_candidates": 0,
    }  # fmt: skip
    assert len(data["sections"]["missing_owners"]["examples"]) == 1
    # Everything was written just now: a zero-day idle window is refused; in a tiny one
    # the instances are idle, and nothing consumes them (the features have m1 and m2).
    result = runner.invoke(app, ["quality", "--idle-days", "0"])
    assert result.exit_code == 1 and "idle window must be positive" in result.output
    data = invoke_json("quality", "--idle-days", "0.00000001")
    assert [e["uri"] for e in data["sections"]["deprecation_candidates"]["examples"]] == [
        uri("ModelInstance", "m1"), uri("ModelInstance", "m2")
    ]  # fmt: skip
    result = runner.invoke(app, ["quality", "--idle-days", "0.00000001", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "Deprecation candidates (no consumers, no activity): 1 of 2" in result.output


def test_lineage_commands_refuse_bad_input(lineage_graph: str) -> None:
    result = runner.invoke(app, ["impact", uri("Dataset", "nope")])
    assert result.exit_code == 1 and "no entity" in result.output
    result = runner.invoke(app, ["paths", uri("Dataset", "d"), uri("Feature", "f"),
                                 "--max-depth", "11"])  # fmt: skip
    assert result.exit_code == 1 and "max_depth must be between 1 and 10" in result.output
    result = runner.invoke(app, ["similar", uri("Feature", "f")])
    assert result.exit_code == 1 and "similarity compares" in result.output
