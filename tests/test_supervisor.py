"""The follower process: `mlgraph serve` runs the feed's followers in a child of its own,
which is restarted when it dies, stopped with the server, and gone when the server is."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mlgraph.supervisor import FollowerProcess

SEED_INSTANCE = {"event_type": "model_instance_created", "instance_id": "ranking-model-v5-20XX0101"}


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not reaped yet) counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def test_a_follower_process_that_dies_is_started_again_with_backoff() -> None:
    dies = [sys.executable, "-c", "import sys; sys.exit(3)"]
    followers = FollowerProcess(dies, first_backoff_s=0.05, max_backoff_s=0.2)
    followers.start()
    try:
        wait_for(lambda: followers.restarts >= 3, 10, "three restarts")
    finally:
        assert followers.stop() in (3, -signal.SIGTERM)  # exited, or stopped while starting


def test_stopping_asks_the_follower_process_to_finish_then_kills_it() -> None:
    ignores_term = [sys.executable, "-c",
                    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    "print('ready', flush=True); time.sleep(60)"]  # fmt: skip
    followers = FollowerProcess(ignores_term)
    followers.start()
    time.sleep(0.5)  # let it install its handler
    started = time.monotonic()
    assert followers.stop(timeout_s=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert followers.restarts == 0  # a stop is not a death to recover from


@pytest.fixture
def service_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGRAPH_")}
    yield env | {"MLGRAPH_DATA_DIR": str(tmp_path / "data"), "MLGRAPH_PORT": str(port),
                 "MLGRAPH_AUTH": "off"}  # fmt: skip


def test_follow_stops_when_the_process_that_started_it_is_killed(
    service_env: dict[str, str],
) -> None:
    # A parent that starts `mlgraph follow --parent <itself>`, as serve does, then waits.
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import os, subprocess, sys, time\n"
         "from mlgraph.supervisor import follow_command\n"
         "child = subprocess.Popen(follow_command(os.getpid()))\n"
         "print(child.pid, flush=True)\n"
         "time.sleep(120)\n"],
        env=service_env, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(1.0)
        assert alive(child)
        parent.kill()  # kill -9: nothing of the parent's runs any more
        parent.wait()
        wait_for(lambda: not alive(child), 20, "the orphaned follower process stopped")
    finally:
        if parent.poll() is None:
            parent.kill()


def test_serve_runs_the_followers_beside_it_and_stops_them_with_it(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    # The sources are not running: the event's hydration fails and waits for a retry,
    # but the search index still gets built by the follower process from the store.
    server = subprocess.Popen([sys.executable, "-m", "mlgraph.cli", "serve"], env=service_env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{service_env['MLGRAPH_PORT']}"
    try:

        def up() -> bool:
            assert server.poll() is None, "the server exited"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            return False

        wait_for(up, 60, "the server answers")
        wait_for(lambda: len(children(server.pid)) == 1, 20, "the follower process started")
        (follower,) = children(server.pid)
        # The indexer (in the follower process) builds the index the API searches.
        wait_for(
            lambda: httpx.get(f"{base}/v1/search", params={"q": "x"}).status_code == 200,
            60,
            "the follower process built a search index",
        )
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert not alive(follower)
    finally:
        if server.poll() is None:
            server.kill()
