"""Fault injection: slow, failing, rate-limited and hanging reads; lost, doubled, shuffled events.

Each source has its own ``SourceFaults``. Request faults are applied by an
ASGI middleware to ``/api/v1`` only (the admin API stays reliable, so a test
can always reconfigure or inspect a source). Event faults are applied by
``EventFaults``, the stage every event of the source passes before the sink.

All randomness comes from two ``random.Random`` seeded from the config's
``seed`` and the source name, re-seeded whenever the config is set: the same
config and the same sequence of requests and events give the same faults.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlgraph.sources.events import Event
from mlgraph.sources.sinks import EventSink

FAULTY_PATH_PREFIX = "/api/v1/"


class FaultConfig(BaseModel):
    """What a source gets wrong. The defaults get nothing wrong."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, description="Added to every read.")
    jitter_ms: float = Field(0.0, ge=0, description="Uniform extra latency, 0..jitter_ms.")
    error_rate: float = Field(0.0, ge=0, le=1, description="Fraction of reads answered 500/503.")
    rate_limit: float = Field(0.0, ge=0, le=1, description="Fraction of reads answered 429.")
    retry_after_s: int = Field(1, ge=0, description="Retry-After of a 429, in seconds.")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="Fraction of reads that hang.")
    timeout_s: float = Field(
        30.0, ge=0, description="How long a hanging read sleeps before it answers normally."
    )
    drop_rate: float = Field(0.0, ge=0, le=1, description="Fraction of events never sent.")
    duplicate_rate: float = Field(0.0, ge=0, le=1, description="Fraction of events sent twice.")
    reorder_window: int = Field(
        0, ge=0, description="Events are shuffled within windows of this many (0, 1: in order)."
    )
    reorder_flush_ms: float = Field(
        200.0, ge=0, description="Longest an event waits for its reorder window to fill."
    )
    seed: int = 0

    @model_validator(mode="after")
    def _fractions_fit(self) -> FaultConfig:
        # One roll decides each read (and each event), so the rates are exact
        # shares of all reads only if they fit in one.
        if self.error_rate + self.rate_limit + self.timeout_rate > 1:
            raise ValueError("error_rate + rate_limit + timeout_rate must be at most 1")
        if self.drop_rate + self.duplicate_rate > 1:
            raise ValueError("drop_rate + duplicate_rate must be at most 1")
        return self


class SourceFaults:
    """The fault config of one source, its random streams and counts of what it injected."""

    def __init__(self, source: str, config: FaultConfig | None = None) -> None:
        self.source = source
        self.injected: Counter[str] = Counter()
        self.configure(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        self._config = config
        self.request_rng = random.Random(f"{config.seed}:{self.source}:requests")
        self.event_rng = random.Random(f"{config.seed}:{self.source}:events")

    async def on_request(self) -> Response | None:
        """Delay the read, then maybe answer it with a fault; None lets it through."""
        config, rng = self._config, self.request_rng
        delay_ms = config.latency_ms + (rng.uniform(0, config.jitter_ms) if config.jitter_ms else 0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        roll = rng.random()
        if roll < config.error_rate:
            status = 500 if rng.random() < 0.5 else 503
            self.injected[f"error_{status}"] += 1
            return JSONResponse({"detail": f"injected fault: {status}"}, status_code=status)
        roll -= config.error_rate
        if roll < config.rate_limit:
            self.injected["rate_limited"] += 1
            return JSONResponse(
                {"detail": "injected fault: rate limited"},
                status_code=429,
                headers={"Retry-After": str(config.retry_after_s)},
            )
        roll -= config.rate_limit
        if roll < config.timeout_rate:
            self.injected["timeout"] += 1
            await asyncio.sleep(config.timeout_s)
        return None


class FaultMiddleware:
    """Applies a source's request faults to its ``/api/v1`` routes."""

    def __init__(self, app: ASGIApp, faults: SourceFaults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(FAULTY_PATH_PREFIX):
            fault = await self.faults.on_request()
            if fault is not None:
                await fault(scope, receive, send)
                return
        await self.app(scope, receive, send)


class EventFaults(EventSink):
    """The event path of one source: drops, duplicates and reorders, then hands to ``target``.

    Reordering holds events back until a window of ``reorder_window`` is full,
    shuffles it and sends it; a window that does not fill is sent (shuffled)
    after ``reorder_flush_ms``, so no event waits forever.
    """

    def __init__(self, faults: SourceFaults, target: EventSink) -> None:
        self.faults = faults
        self.target = target
        self._held: list[Event] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def emit(self, events: list[Event]) -> None:
        config, rng = self.faults.config, self.faults.event_rng
        passed: list[Event] = []
        for event in events:
            roll = rng.random()
            if roll < config.drop_rate:
                self.faults.injected["dropped"] += 1
                continue
            passed.append(event)
            if roll < config.drop_rate + config.duplicate_rate:
                self.faults.injected["duplicated"] += 1
                passed.append(dict(event))  # same event_id: a redelivery, not a new change
        if config.reorder_window <= 1:
            passed = [*self._take_held(), *passed]
        else:
            self._held.extend(passed)
            passed = []
            while len(self._held) >= config.reorder_window:
                window = self._held[: config.reorder_window]
                del self._held[: config.reorder_window]
                rng.shuffle(window)
                self.faults.injected["reordered_windows"] += 1
                passed.extend(window)
            self._arm_flush_timer(config.reorder_flush_ms)
        if passed:
            await self.target.emit(passed)

    async def flush(self) -> None:
        """Send the events held for reordering now (shuffled among themselves)."""
        held = self._take_held()
        if held:
            self.faults.event_rng.shuffle(held)
            await self.target.emit(held)

    async def close(self) -> None:
        """Flush what is held; the shared target is closed by its owner, not here."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        await self.flush()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _take_held(self) -> list[Event]:
        held, self._held = self._held, []
        return held

    def _arm_flush_timer(self, delay_ms: float) -> None:
        if not self._held or self._flush_timer is not None:
            return

        def fire() -> None:
            self._flush_timer = None
            task = asyncio.ensure_future(self.flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

        self._flush_timer = asyncio.get_running_loop().call_later(delay_ms / 1000, fire)
