"""The worker loop: claim due subjects from the inbox and hydrate them concurrently."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mlgraph.ingest.hydrator import Dead, Done, Hydrator, Retry, RetryPolicy
from mlgraph.ingest.inbox import Claim, Inbox

log = logging.getLogger("mlgraph.ingest")


@dataclass
class WorkerStats:
    hydrated: int = 0
    unchanged: int = 0
    retried: int = 0
    dead: int = 0
    events: int = 0


@dataclass(frozen=True)
class WorkerPolicy:
    max_in_flight: int = 64
    idle_poll_s: float = 0.05
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    keep_done: timedelta = timedelta(hours=24)  # the dedupe window


class Worker:
    def __init__(
        self,
        inbox: Inbox,
        hydrator: Hydrator,
        policy: WorkerPolicy | None = None,
        seed: int | None = None,
    ) -> None:
        self.inbox = inbox
        self.hydrator = hydrator
        self.policy = policy or WorkerPolicy()
        self.stats = WorkerStats()
        self.wake = asyncio.Event()  # set by intake: new events are waiting
        self._rng = random.Random(seed)
        self._finished: list[Claim] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; whatever is in flight then is finished first."""
        recovered = await asyncio.to_thread(self.inbox.recover)
        if recovered:
            log.info("recovered %d events a stopped process had claimed", recovered)
        in_flight: set[asyncio.Task[None]] = set()
        rounds = 0
        while not stop.is_set():
            free = self.policy.max_in_flight - len(in_flight)
            claims = await asyncio.to_thread(self.inbox.claim, free) if free > 0 else []
            for claim in claims:
                task = asyncio.create_task(self._process(claim))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if not claims:
                await self._idle(stop, in_flight)
            rounds += 1
            if rounds % 2000 == 0:
                await asyncio.to_thread(self.inbox.forget_done, self.policy.keep_done)
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        if self._flusher is not None:
            await self._flusher
        await self._flush()

    async def _idle(self, stop: asyncio.Event, in_flight: set[asyncio.Task[None]]) -> None:
        self.wake.clear()
        signals = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
        waiters: set[asyncio.Task[Any]] = {*signals, *in_flight}  # a finished task frees a slot
        await asyncio.wait(
            waiters, timeout=self.policy.idle_poll_s, return_when=asyncio.FIRST_COMPLETED
        )
        for signal in signals:
            signal.cancel()

    async def drain(self, timeout_s: float = 60.0) -> None:
        """Work until the inbox has nothing due (for tests and batch runs)."""
        stop = asyncio.Event()
        runner = asyncio.create_task(self.run(stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            stats = await asyncio.to_thread(self.inbox.stats)
            if stats.pending == 0 and stats.processing == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await runner

    async def _process(self, claim: Claim) -> None:
        try:
            outcome = await self.hydrator.hydrate(claim)
        except Exception as exc:  # a bug must not kill the loop; the claim is retried
            log.exception("hydrating %s failed", claim.subject)
            outcome = Retry(f"{type(exc).__name__}: {exc}")
        self.stats.events += len(claim.ids)
        if isinstance(outcome, Done):
            if outcome.tx is None:
                self.stats.unchanged += 1
            else:
                self.stats.hydrated += 1
            # Marking claims done is batched: one write for all that finish together.
            # A crash before the write only means hydrating them again, which changes nothing.
            self._finished.append(claim)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush())
        else:
            await asyncio.to_thread(self._settle_failure, claim, outcome)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the claims finishing in this tick join the batch
        while self._finished:
            batch, self._finished = self._finished, []
            await asyncio.to_thread(self.inbox.done, batch)

    def _settle_failure(self, claim: Claim, outcome: Retry | Dead) -> None:
        if isinstance(outcome, Retry) and claim.attempts + 1 < self.policy.retry.max_attempts:
            delay = self.policy.retry.delay(claim.attempts, outcome.retry_after_s, self._rng)
            self.inbox.retry(claim, outcome.reason, delay)
            self.stats.retried += 1
            return
        reason = outcome.reason
        if isinstance(outcome, Retry):
            reason = f"gave up after {claim.attempts + 1} attempts: {reason}"
        self.inbox.bury(claim, reason)
        self.stats.dead += 1
        log.warning("dead-lettered %s: %s", claim.subject, reason)
