"""`mlgraph demo` as a newcomer runs it: load, look, Ctrl-C, run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.test_crash import free_port


def start_demo(cwd: Path, port: int, sources_port: int, *flags: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGRAPH_")}
    return subprocess.Popen(
        [sys.executable, "-m", "mlgraph.cli", "demo", "--size", "1", "--churn", "5",
         "--port", str(port), "--sources-port", str(sources_port), *flags],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def read_until(process: subprocess.Popen[str], marker: str, timeout_s: float = 90) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout_s
    while marker not in seen:
        assert time.monotonic() < deadline, f"no {marker!r} in:\n{seen}"
        line = process.stdout.readline()
        assert line or process.poll() is None, f"demo exited:\n{seen}"
        seen += line
    return seen


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    return out


def test_demo_loads_the_organisation_and_stops_cleanly(tmp_path: Path) -> None:
    port, sources_port = free_port(), 19_400 + os.getpid() % 500
    demo = start_demo(tmp_path, port, sources_port)
    try:
        out = read_until(demo, "Ctrl-C stops everything.")
        assert "subjects hydrated" in out and "loaded 114 events" in out
        summary = httpx.get(f"http://127.0.0.1:{port}/v1/summary", timeout=5).json()
        assert summary["entities_by_type"]["ModelInstance"]["hydrated"] >= 1
        assert summary["inbox"]["dead_letters"] == 0
        seed = httpx.get(f"http://127.0.0.1:{sources_port}/api/v1/instances/"
                         "ranking-model-v5-20XX0101", timeout=5)  # fmt: skip
        assert seed.json()["pipeline_run_id"] == "train-weekly-ranking-20XX0101"
        time.sleep(1.5)  # let the churn change something
    finally:
        out = stop(demo)
    assert "stopped" in out and "Traceback" not in out
    assert (tmp_path / ".mlgraph" / "mlgraph.db").exists()

    again = start_demo(tmp_path, port, sources_port, "--reset")
    try:
        out = read_until(again, "Ctrl-C stops everything.")
        assert "emptied .mlgraph" in out and "loaded 114 events" in out
    finally:
        stop(again)
