"""The worker loop: claim due subjects from the inbox and hydrate them concurrently."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

from mlgraph.ingest.committer import Committer
from mlgraph.ingest.hydrator import Dead, Done, Fetched, Hydrator, Retry, RetryPolicy, Writes
from mlgraph.ingest.inbox import Claim, Inbox

log = logging.getLogger("mlgraph.ingest")
FORGET_EVERY_S = 60.0  # how often handled events past the dedupe window are dropped


@dataclass
class WorkerStats:
    hydrated: int = 0
    unchanged: int = 0
    retried: int = 0
    dead: int = 0
    events: int = 0


@dataclass(frozen=True)
class WorkerPolicy:
    # Subjects being fetched or waiting for their group commit. Room for more
    # than the sources' slots (6 x 8) lets hydrations pile up behind a running
    # commit, so the next one writes more of them in one transaction.
    max_in_flight: int = 256
    max_batch: int = 200  # hydrations written in one transaction
    # Claim again only once this many slots are free (or none is busy): each
    # claim is a write transaction, and one per finished commit suffices.
    min_claim: int = 32
    # With nothing due, the inbox is looked at again after idle_poll_s, then less
    # often, up to idle_poll_max_s (events this process takes in wake it at once;
    # the waits matter for retries falling due and events other processes add).
    idle_poll_s: float = 0.05
    idle_poll_max_s: float = 0.4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    keep_done: timedelta = timedelta(hours=24)  # the dedupe window
    # The cyclic GC's first threshold for the process while workers run (None: as is).
    # At the interpreter's 700 allocations, a service hydrating thousands of
    # objects a second ran a full collection every few seconds, each walking its
    # ~250k long-lived objects (schema, caches, percolator): 9% of its CPU in
    # the ingest benchmark, 2.5% at 10,000. It only raises the threshold.
    gc_threshold: int | None = 10_000


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
        if self.policy.gc_threshold is not None:
            first, *older = gc.get_threshold()
            if first < self.policy.gc_threshold:
                gc.set_threshold(self.policy.gc_threshold, *older)
        recovered = await asyncio.to_thread(self.inbox.recover)
        if recovered:
            log.info("recovered %d events a stopped process had claimed", recovered)
        in_flight: set[asyncio.Task[None]] = set()
        enough = min(self.policy.min_claim, self.policy.max_in_flight)
        slots = asyncio.Event()  # set once ``enough`` slots are free again

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if self.policy.max_in_flight - len(in_flight) >= enough:
                slots.set()

        loop = asyncio.get_running_loop()
        forget_at = loop.time() + FORGET_EVERY_S
        poll_s = self.policy.idle_poll_s
        while not stop.is_set():
            free = self.policy.max_in_flight - len(in_flight)
            if free >= enough or not in_flight:
                claims = await asyncio.to_thread(self.inbox.claim, free)
                for claim in claims:
                    task = asyncio.create_task(self._process(claim))
                    in_flight.add(task)
                    task.add_done_callback(finished)
                if len(claims) < free:
                    # Nothing more is due: sleep until events arrive or the next poll
                    # (retries falling due, events another process put in the inbox).
                    if claims:
                        poll_s = self.policy.idle_poll_s
                    await self._wait(stop, self.wake, poll_s)
                    poll_s = min(self.policy.idle_poll_max_s, poll_s * 2)
            else:
                # Every slot was filled, so more may be due: claim once enough are free.
                slots.clear()
                await self._wait(stop, slots, None)
            if loop.time() >= forget_at:
                forget_at = loop.time() + FORGET_EVERY_S
                await asyncio.to_thread(self.inbox.forget_done, self.policy.keep_done)
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        if self._committing is not None:
            await self._committing

    @staticmethod
    async def _wait(stop: asyncio.Event, signal: asyncio.Event, timeout: float | None) -> None:
        if signal.is_set():
            signal.clear()
            return
        waiters = [asyncio.create_task(signal.wait()), asyncio.create_task(stop.wait())]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        signal.clear()

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
            try:
                # One thread hop a batch, for the writes and the inbox's bookkeeping.
                await asyncio.to_thread(self._write, [(claim, w) for claim, w, _ in batch])
            finally:
                for _, _, committed in batch:
                    if not committed.done():
                        committed.set_result(None)

    def _write(self, items: list[tuple[Claim, Writes]]) -> None:
        """Commit ``items`` in one transaction, then settle each claim (blocking)."""
        try:
            results = self.committer.commit(items)
            done = []
            for (claim, _), result in zip(items, results, strict=True):
                if isinstance(result, Done):
                    done.append(claim)
                    self.stats.hydrated += result.tx is not None
                    self.stats.unchanged += result.tx is None
                else:
                    self._settle_failure(claim, result)
            # A crash before this write only means hydrating them again: no change.
            self.inbox.done(done)
        except Exception as exc:  # the store is unreachable: try these again later
            log.exception("committing %d hydrations failed", len(items))
            for claim, _ in items:
                self._settle_failure(claim, Retry(f"{type(exc).__name__}: {exc}"))

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
