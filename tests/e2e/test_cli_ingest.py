"""The ingestion commands against the reference sources: reconcile, dlq list/show/replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgraph.cli import app
from mlgraph.config import Settings
from mlgraph.runtime import Service
from mlgraph.sources import FaultConfig
from tests.e2e.harness import drain, running_sources

runner = CliRunner()
SEED = "aip://model/registry/ranking-model-v5-20XX0101"


def test_reconcile_dead_letters_and_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGRAPH_STORE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("MLGRAPH_MAX_ATTEMPTS", "1")
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    with running_sources() as (sources, _, urls):
        monkeypatch.setenv("MLGRAPH_SOURCES", json.dumps(urls))
        # The identity source is down: the sweep goes on without it, and says so.
        sources.set_faults(FaultConfig(error_rate=1.0), "identity")
        result = runner.invoke(app, ["reconcile"])
        assert result.exit_code == 1
        assert "2 resources could not be listed:" in result.output
        assert "500 Internal Server Error" in result.output
        seed = runner.invoke(app, ["get", SEED])
        assert '"team": "personalization"' in seed.output

        # An event for a user cannot be hydrated while identity is down: a dead letter.
        service = Service.open(Settings())
        service.accept({"event_type": "user_updated", "user_id": "alice"})
        drain(service)
        (letter,) = service.inbox.dead_letters()
        service.close()
        listed = runner.invoke(app, ["dlq", "list"])
        assert listed.exit_code == 0 and "identity/user/alice" in listed.output
        shown = runner.invoke(app, ["dlq", "show", str(letter.id)])
        assert "gave up after 1 attempts" in shown.output and '"user_id": "alice"' in shown.output

        sources.set_faults(FaultConfig())
        replayed = runner.invoke(app, ["dlq", "replay"])
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1" in replayed.output and "dead letters left: 0" in replayed.output
        alice = runner.invoke(app, ["get", "aip://user/identity/alice"])
        assert '"state": "hydrated"' in alice.output

        healed = runner.invoke(app, ["reconcile", "identity"])
        assert healed.exit_code == 0, healed.output
    assert runner.invoke(app, ["dlq", "list"]).output.strip() == "no dead letters"
