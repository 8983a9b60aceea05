"""The worker loop: claim due subjects from the inbox and hydrate them concurrently."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mlgraph.ingest.committer import Committer
from mlgraph.ingest.hydrator import Dead, Done, Fetched, Hydrator, Retry, RetryPolicy, Writes
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
    max_batch: int = 200  # hydrations written in one transaction
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
        self.committer = Committer(hydrator.store)
        self._to_commit: list[tuple[Claim, Writes, asyncio.Future[None]]] = []
        self._committing: asyncio.Task[None] | None = None

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
        if self._committing is not None:
            await self._committing

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
        if isinstance(outcome, Fetched):
            # Wait for the group commit: it holds this task's slot, which keeps
            # the number of hydrations waiting to be written bounded.
            committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._to_commit.append((claim, outcome.writes, committed))
            if self._committing is None or self._committing.done():
                self._committing = asyncio.create_task(self._commit())
            await committed
        else:
            await asyncio.to_thread(self._settle_failure, claim, outcome)

    async def _commit(self) -> None:
        """Write what has been hydrated, batch after batch, then mark those claims done."""
        await asyncio.sleep(0)  # let the hydrations finishing in this tick join the batch
        while self._to_commit:
            batch = self._to_commit[: self.policy.max_batch]
            del self._to_commit[: self.policy.max_batch]
            items = [(claim, writes) for claim, writes, _ in batch]
            try:
                results = await asyncio.to_thread(self.committer.commit, items)
                done = []
                for (claim, _), result in zip(items, results, strict=True):
                    if isinstance(result, Done):
                        done.append(claim)
                        self.stats.hydrated += result.tx is not None
                        self.stats.unchanged += result.tx is None
                    else:
                        await asyncio.to_thread(self._settle_failure, claim, result)
                # A crash before this write only means hydrating them again: no change.
                await asyncio.to_thread(self.inbox.done, done)
            except Exception as exc:  # the store is unreachable: try these again later
                log.exception("committing %d hydrations failed", len(items))
                for claim, _ in items:
                    await asyncio.to_thread(
                        self._settle_failure, claim, Retry(f"{type(exc).__name__}: {exc}")
                    )
            finally:
                for _, _, committed in batch:
                    if not committed.done():
                        committed.set_result(None)

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
