"""The follower process beside ``mlgraph serve``: started, restarted if it dies, stopped.

The change feed's followers (enricher, search indexer, reverse follower) cost
about as much CPU as hydration itself, and a Python process computes on one
core at a time. In a process of their own they use another core, and the API
process keeps its core for intake and hydration (docs/operations.md). They
need nothing from the API process: they read the feed from the store, and
what they write (the index, memberships, stubs to hydrate) is read back from
the store and the index directory.

The child exits when its parent is gone however that happened, ``kill -9``
included: it checks its parent's pid twice a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from mlgraph.runtime import Service

log = logging.getLogger("mlgraph")
PARENT_CHECK_S = 0.5


class FollowerProcess:
    """``mlgraph follow`` as a child process, restarted with backoff when it dies."""

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        *,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.argv = list(argv or follow_command(os.getpid()))
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Its own session: a Ctrl-C in the terminal reaches the server, which then
        # stops the followers itself, rather than both at once.
        return subprocess.Popen(self.argv, start_new_session=True)

    def start(self) -> None:
        with self._lock:
            self._process = self._spawn()
        log.info("the feed's followers run in process %d (mlgraph follow)", self._process.pid)
        self._watcher = threading.Thread(target=self._watch, name="follower-watch", daemon=True)
        self._watcher.start()

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Ask the child to finish its round and stop; kill it if it takes too long."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("the follower process did not stop in %g s: killed", timeout_s)
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(timeout_s)
        return process.returncode

    def _watch(self) -> None:
        backoff = self.first_backoff_s
        started = time.monotonic()
        while True:
            with self._lock:
                process = self._process
            code = None if process is None else process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > self.max_backoff_s:
                backoff = self.first_backoff_s  # it ran a good while: a fresh failure
            log.error("the follower process exited with %s; restarting in %g s", code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(self.max_backoff_s, backoff * 2)
            with self._lock:
                if self._stopping.is_set():
                    return
                started = time.monotonic()
                try:
                    self._process = self._spawn()
                except OSError as exc:  # out of processes or descriptors: try again later
                    log.error("could not start the follower process: %s", exc)
                    self._process = None
                    continue
                self.restarts += 1


def follow_command(parent: int) -> list[str]:
    return [sys.executable, "-m", "mlgraph.cli", "follow", "--parent", str(parent)]


async def follow(service: Service, parent: int | None = None) -> None:
    """Run the feed's followers until SIGTERM or SIGINT, or until ``parent`` exits."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watching = None
    if parent is not None:
        watching = asyncio.create_task(_stop_when_orphaned(parent, stop))
    try:
        async with service.running_followers():
            await stop.wait()
    finally:
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        service.close()


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    # Once the parent is gone the child is re-parented: its parent pid changes.
    while os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_S)
            return
    log.warning("the process that started the followers (%d) is gone: stopping", parent)
    stop.set()
