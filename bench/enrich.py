"""Freshness of inferred relationships under sustained ingest load, next to batch re-derivation.

Two phases, the same in all but how inferred edges are kept. Each starts the
six reference sources (``python -m mlgraph.sources``, churning the
organisation and POSTing every change's thin event to the service) and
``mlgraph serve`` on a fresh SQLite store, waits for the initial load to be
hydrated, then, while churn goes on, creates a new pipeline run for an
existing A/B test cell and then a new model instance trained by that run,
``--rate`` times a second. Only the events the sources send reach the
service: the instance's event is the trigger, and the instance-to-test
association must be inferred (after the run stub is hydrated progressively).

- ``incremental``: the service's enricher follows the change feed (the default).
- ``batch``: the service does not infer (``MLGRAPH_INFER=false``); a full
  re-derivation (``Inference.rederive``, what ``mlgraph enrich --rederive``
  runs) runs back to back against the same store, which is the best a
  periodic batch can do.

Freshness of one trigger: the time of the transaction that made the inferred
edge ``instance -> test`` readable, minus the moment just before the
instance was created at the source. Read from the store's history afterwards,
so measuring costs the service nothing.

    .venv/bin/python bench/enrich.py --quick    # under a minute
    .venv/bin/python bench/enrich.py            # size 50, 30 s of triggers per phase
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from mlgraph.enrich.inference import Inference
from mlgraph.sources.resources import SOURCES
from mlgraph.store import Store

TARGET_P99_S = 5.0
INSTANCE_REL = "associated_ab_tests"


@dataclass(frozen=True)
class Config:
    quick: bool
    size: int
    seed: int
    churn: float
    rate: float
    duration_s: float
    settle_s: float


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small organisation, short phases")
    p.add_argument("--size", type=int, help="organisation size (default 50; quick 3)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--churn", type=float, default=50.0, help="source changes per second")
    p.add_argument("--rate", type=float, default=2.0, help="triggers per second")
    p.add_argument("--duration", type=float, help="seconds of triggers per phase (30; quick 8)")
    p.add_argument("--settle", type=float, default=30.0, help="wait this long for late edges")
    a = p.parse_args(argv)
    return Config(
        quick=a.quick,
        size=a.size or (3 if a.quick else 50),
        seed=a.seed,
        churn=a.churn,
        rate=a.rate,
        duration_s=a.duration or (8.0 if a.quick else 30.0),
        settle_s=a.settle,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_base_port(n: int) -> int:
    """A block of ``n`` consecutive free ports (the sources listen on base..base+n-1)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        try:
            for port in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no block of free ports")


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Phase:
    mode: str
    freshness: list[float] = field(default_factory=list)
    missing: int = 0
    triggers: int = 0
    entities: int = 0
    rederive_s: list[float] = field(default_factory=list)
    dead_letters: int = 0
    load_s: float = 0.0


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        logfile = (self.tmp / f"{name}.log").open("wb")
        self.running[name] = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=self.tmp, stdout=logfile, stderr=logfile
        )

    def check(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                tail = (self.tmp / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def stop(self) -> None:
        for process in self.running.values():
            process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until(check: Any, what: str, processes: Processes, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        processes.check()
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def run_phase(cfg: Config, mode: str) -> Phase:
    phase = Phase(mode)
    with tempfile.TemporaryDirectory(prefix=f"mlgraph-enrich-{mode}-") as scratch:
        tmp = Path(scratch)
        processes = Processes(tmp)
        try:
            _run_phase(cfg, phase, processes, tmp)
        finally:
            processes.stop()
    return phase


def _run_phase(cfg: Config, phase: Phase, processes: Processes, tmp: Path) -> None:
    port, base = free_port(), free_base_port(len(SOURCES))
    urls = {name: f"http://127.0.0.1:{base + i}" for i, name in enumerate(SOURCES)}
    api = f"http://127.0.0.1:{port}"
    store_url = f"sqlite:///{tmp / 'store.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGRAPH_")}
    service_env = env | {
        "MLGRAPH_STORE_URL": store_url,
        "MLGRAPH_SOURCES": json.dumps(urls),
        "MLGRAPH_INFER": "true" if phase.mode == "incremental" else "false",
    }
    processes.spawn("service", ["-m", "mlgraph.cli", "serve", "--port", str(port)], service_env)
    http = httpx.Client(timeout=10)
    wait_until(lambda: http.get(f"{api}/healthz").status_code == 200, "the service", processes, 60)

    started = time.monotonic()
    processes.spawn("sources", [
        "-m", "mlgraph.sources", "--size", str(cfg.size), "--seed", str(cfg.seed),
        "--base-port", str(base), "--events-url", f"{api}/v1/events", "--emit-initial",
        "--churn", str(cfg.churn),
    ], env)  # fmt: skip
    for url in urls.values():
        wait_until(lambda u=url: http.get(f"{u}/admin/health").status_code == 200,
                   "the sources", processes, 60)  # fmt: skip

    quiet = [0]

    def drained() -> bool:
        # Churn never stops, so "drained" is: little waiting, three checks in a row.
        summary = http.get(f"{api}/v1/summary").json()
        idle = summary["inbox"]["pending"] + summary["inbox"]["processing"] < 10
        quiet[0] = quiet[0] + 1 if idle and summary["entities"] > 0 else 0
        time.sleep(0.4)
        return quiet[0] >= 3

    wait_until(drained, "the initial load", processes, 600)
    phase.load_s = time.monotonic() - started
    log(f"[{phase.mode}] initial load hydrated in {phase.load_s:.1f} s")

    store = Store.open(store_url)
    stop = threading.Event()
    batch = None
    if phase.mode == "batch":
        batch = threading.Thread(target=rederive_loop, args=(store, stop, phase), daemon=True)
        batch.start()

    tests = http.get(f"{urls['experimentation']}/api/v1/tests", params={"limit": 500}).json()
    test_ids = [t["id"] for t in tests["items"]]
    tests_by_id = {i: http.get(f"{urls['experimentation']}/api/v1/tests/{i}").json()
                   for i in test_ids}  # fmt: skip
    models = http.get(f"{urls['registry']}/api/v1/models", params={"limit": 500}).json()
    model_ids = [m["id"] for m in models["items"]]
    pipelines = http.get(f"{urls['orchestrator']}/api/v1/pipelines", params={"limit": 500}).json()
    pipeline_ids = [p["id"] for p in pipelines["items"]]
    rng = random.Random(cfg.seed)

    triggers: dict[str, tuple[str, float]] = {}  # instance uri -> (test uri, sent at)
    period = 1.0 / cfg.rate
    t_end = time.monotonic() + cfg.duration_s
    k = 0
    while time.monotonic() < t_end:
        due = time.monotonic() + period
        test = tests_by_id[rng.choice(test_ids)]
        if not test["cells"]:
            continue
        cell = rng.choice(test["cells"])
        run_id, instance_id = f"bench-run-{phase.mode}-{k}", f"bench-instance-{phase.mode}-{k}"
        http.post(f"{urls['orchestrator']}/admin/pipeline-runs", json={
            "run_id": run_id, "pipeline": rng.choice(pipeline_ids),
            "ab_test_cells": [{"test_id": test["test_id"], "cell_number": cell["cell_number"],
                               "cell_name": cell["name"]}],
        }).raise_for_status()  # fmt: skip
        sent = time.time()
        http.post(f"{urls['registry']}/admin/instances", json={
            "id": instance_id, "model_id": rng.choice(model_ids), "pipeline_run_id": run_id,
        }).raise_for_status()  # fmt: skip
        test_uri = f"aip://ab-test/experimentation/{test['test_id']}"
        triggers[f"aip://model/registry/{instance_id}"] = (test_uri, sent)
        k += 1
        processes.check()
        time.sleep(max(0.0, due - time.monotonic()))
    phase.triggers = len(triggers)

    deadline = time.monotonic() + cfg.settle_s
    waiting = set(triggers)
    while waiting and time.monotonic() < deadline:
        waiting = {u for u in waiting if triggers[u][0] not in associated(store, u)}
        time.sleep(0.2)
    stop.set()
    if batch is not None:
        batch.join()
    for instance, (test_uri, sent) in triggers.items():
        at = inferred_at(store, instance, test_uri)
        if at is None:
            phase.missing += 1
        else:
            phase.freshness.append(at - sent)
    summary = http.get(f"{api}/v1/summary").json()
    phase.entities = summary["entities"]
    phase.dead_letters = summary["inbox"]["dead_letters"]
    store.close()


def associated(store: Store, instance: str) -> set[str]:
    if store.get(instance) is None:
        return set()
    return {n.uri for n in store.neighbors(instance, relationships=[INSTANCE_REL])}


def inferred_at(store: Store, instance: str, test: str) -> float | None:
    """When the edge ``instance -> test`` was first inferred (its transaction's time)."""
    if store.get(instance) is None:
        return None
    for version in store.history(instance):
        if any(e.relationship == INSTANCE_REL and e.uri == test for e in version.edges_added):
            return version.at.astimezone(UTC).timestamp()
    return None


def rederive_loop(store: Store, stop: threading.Event, phase: Phase) -> None:
    while not stop.is_set():
        began = time.monotonic()
        Inference(store).rederive()
        phase.rederive_s.append(time.monotonic() - began)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    log(f"bench/enrich.py: size {cfg.size}, churn {cfg.churn:g}/s, {cfg.rate:g} triggers/s "
        f"for {cfg.duration_s:g} s per phase")  # fmt: skip
    phases = {mode: run_phase(cfg, mode) for mode in ("incremental", "batch")}
    inc, bat = phases["incremental"], phases["batch"]
    for p in phases.values():
        if not p.freshness:
            raise SystemExit(f"{p.mode}: no trigger was inferred within the settle time")
    figures: dict[str, Any] = {
        "quick": cfg.quick,
        "size": cfg.size,
        "entities": inc.entities,
        "churn_per_s": cfg.churn,
        "triggers_per_s": cfg.rate,
        "inferred_freshness_p50_s": round(statistics.median(inc.freshness), 3),
        "inferred_freshness_p99_s": round(percentile(inc.freshness, 0.99), 3),
        "inferred_missing": inc.missing,
        "batch_freshness_p50_s": round(statistics.median(bat.freshness), 3),
        "batch_freshness_p99_s": round(percentile(bat.freshness, 0.99), 3),
        "batch_missing": bat.missing,
        "batch_rederive_s_mean": round(statistics.mean(bat.rederive_s), 3) if bat.rederive_s
        else None,
        "batch_rederive_runs": len(bat.rederive_s),
        "triggers": {"incremental": inc.triggers, "batch": bat.triggers},
        "dead_letters": {"incremental": inc.dead_letters, "batch": bat.dead_letters},
        "initial_load_s": {"incremental": round(inc.load_s, 1), "batch": round(bat.load_s, 1)},
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    figures["p99_ratio_batch_to_incremental"] = round(
        figures["batch_freshness_p99_s"] / max(figures["inferred_freshness_p99_s"], 1e-9), 2
    )
    figures["target_p99_met"] = figures["inferred_freshness_p99_s"] < TARGET_P99_S
    print(f"{'':24}{'incremental':>14}{'batch':>14}")
    rows = [
        ("freshness p50 (s)", "inferred_freshness_p50_s", "batch_freshness_p50_s"),
        ("freshness p99 (s)", "inferred_freshness_p99_s", "batch_freshness_p99_s"),
    ]
    for name, a, b in [(n, figures[x], figures[y]) for n, x, y in rows] + [
        ("triggers", inc.triggers, bat.triggers),
        ("not inferred in time", inc.missing, bat.missing),
    ]:
        print(f"{name:24}{a:>14}{b:>14}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
