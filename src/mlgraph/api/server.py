"""The API on a free loopback port in a background thread: for tests and benchmarks
that talk to it over real HTTP from the same process."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class ApiThread:
    """``with ApiThread(app) as url:`` serves ``app`` at ``url`` until the block ends."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", timeout_s: float = 30.0) -> None:
        self.app = app
        self.host = host
        self.timeout_s = timeout_s
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=0, log_level="warning", access_log=False)
        )
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))  # bound here, so the port is known and cannot be taken
        port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.01)
        self.url = f"http://{self.host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.timeout_s)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
