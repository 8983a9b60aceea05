"""kill -9 of an indexer process mid-stream: on restart nothing is missing or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlgraph.search import CURSOR, Discovery
from mlgraph.store import Store
from tests.builders import entity
from tests.search.checks import assert_index_matches_store

ROOT = Path(__file__).resolve().parents[2]


def follower(store_url: str, index_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.search.follower", store_url, str(index_dir)],
        cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_for(condition: object, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not condition():  # type: ignore[operator]
        assert process.poll() is None, f"the indexer exited while waiting for {what}"
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def test_kill_9_mid_stream_then_restart(
    indexed: Discovery, store: Store, store_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "follower.log"
    process = follower(store_url, indexed.root, log)
    try:
        written = 0
        # Keep committing while the indexer works through the feed in small batches...
        for i in range(60):
            store.transact(upsert=[entity("Feature", f"feature-{i}", description="streamed")])
            written += 1
            if i == 20:
                wait_for(lambda: store.cursor(CURSOR) > 5, "the indexer to start", process)
        # ...and kill it while it is behind.
        behind_at_kill = store.last_tx() - store.cursor(CURSOR)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        for i in range(60, 80):
            store.transact(upsert=[entity("Feature", f"feature-{i}", description="streamed")])
            written += 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert behind_at_kill > 0, "the indexer caught up before the kill: nothing was in flight"
    assert 0 < store.cursor(CURSOR) < store.last_tx()

    restarted = follower(store_url, indexed.root, log)
    try:
        wait_for(lambda: store.cursor(CURSOR) == store.last_tx(), "the restart to catch up",
                 restarted)  # fmt: skip
    finally:
        restarted.kill()
        restarted.wait()
    assert indexed.search("streamed").total == written == 80
    assert_index_matches_store(indexed, store)
