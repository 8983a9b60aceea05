"""POSTs due webhook deliveries: signed, retried with backoff and jitter, dead after N.

Each attempt is a JSON POST with ``X-Mlgraph-Signature`` (HMAC-SHA256 of the
body with the webhook's secret) and ``X-Mlgraph-Delivery`` (the delivery id,
the same on every retry and replay: receivers dedupe on it). A 2xx marks the
delivery delivered; anything else, or no answer within the timeout, is
retried after ``backoff_s * 2**(attempt-1)`` (at most ``backoff_max_s``, half
of it random) or after the receiver's ``Retry-After``; after ``max_attempts``
the delivery is dead, with the last reason. So delivery is at least once, and
exactly once for a receiver that dedupes on the delivery id. A webhook's
deliveries are sent in order, one at a time; one waiting for a retry does not
hold back those after it (the event's ``id`` orders them).

Before sending, the owner is asked of the gate: a webhook whose owner may no
longer read (a revoked token) is disabled and its pending deliveries die with
that reason; a notice about an entity the owner may not read is withheld.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp

from mlgraph import __version__
from mlgraph.reverse.delivery.access import Gate, OpenGate, Reader
from mlgraph.reverse.delivery.bell import OutboxBell
from mlgraph.reverse.delivery.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from mlgraph.reverse.delivery.webhooks import Due, Webhooks
from mlgraph.store import Store

log = logging.getLogger("mlgraph.notify")
DRAIN_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int = 8
    backoff_s: float = 1.0
    backoff_max_s: float = 600.0
    timeout_s: float = 10.0
    concurrency: int = 8  # requests in flight
    batch: int = 100  # deliveries claimed at once
    idle_poll_s: float = 1.0  # with nothing due: how often to look for new webhooks

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before the next attempt, after ``attempts`` failed ones."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_s * 2.0 ** (attempts - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)  # jitter: retries do not stampede

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is left to its dispatcher: longer than an attempt."""
        return timedelta(seconds=self.timeout_s * 2 + 5)


@dataclass
class DispatchStats:
    delivered: int = 0
    failed: int = 0  # attempts that failed (retried or dead)
    dead: int = 0
    withheld: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error: str | None = None
    retry_after: float | None = None


def payload(due: Due, attempt: int) -> bytes:
    body = {
        "delivery": due.delivery,
        "webhook": due.webhook,
        "attempt": attempt,
        "sent_at": datetime.now(UTC).isoformat(),
        "search": {"id": due.notice.search, "name": due.search_name},
        "event": due.notice.to_json(),
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    return None


class Dispatcher:
    def __init__(
        self,
        store: Store,
        http: aiohttp.ClientSession,
        *,
        gate: Gate | None = None,
        policy: DeliveryPolicy | None = None,
        bell: OutboxBell | None = None,
        seed: int | None = None,
    ) -> None:
        self.webhooks = Webhooks(store)
        self.http = http
        self.gate = gate or OpenGate()
        self.policy = policy or DeliveryPolicy()
        self.bell = bell or OutboxBell(store)
        self.stats = DispatchStats()
        self._rng = random.Random(seed)
        self._wake: asyncio.Event | None = None
        self._limit = asyncio.Semaphore(self.policy.concurrency)

    def wake(self) -> None:
        """Look again now (a webhook was created, deliveries replayed). Loop thread only."""
        if self._wake is not None:
            self._wake.set()

    async def step(self) -> bool:
        """Fan out new transitions and send what is due; False when there was nothing."""
        fanned = await asyncio.to_thread(self.webhooks.fan_out)
        due_at = await asyncio.to_thread(self.webhooks.next_due)
        if due_at is None or due_at > datetime.now(UTC):
            return fanned > 0
        due = await asyncio.to_thread(self.webhooks.claim_due, self.policy.lease, self.policy.batch)
        readers: dict[int | None, Reader | str] = {}
        for d in due:
            if d.token_id not in readers:
                readers[d.token_id] = await self.gate.reader(d.token_id)
        # One webhook's deliveries in order (entered before left), webhooks side by side.
        by_webhook: dict[int, list[Due]] = {}
        for d in sorted(due, key=lambda d: d.delivery):
            by_webhook.setdefault(d.webhook, []).append(d)

        async def in_order(group: list[Due]) -> None:
            for d in group:
                await self._handle(d, readers[d.token_id])

        await asyncio.gather(*(in_order(group) for group in by_webhook.values()))
        return bool(due) or fanned > 0

    async def _handle(self, due: Due, reader: Reader | str) -> None:
        hooks = self.webhooks
        if isinstance(reader, str):
            # The owner may no longer read (revoked, say): for good, so stop the webhook.
            await asyncio.to_thread(hooks.disable, due.webhook, reader)
            self.stats.dead += 1
            return
        if due.notice.kind != "invalid" and not reader(due.notice.uri):
            reason = "the webhook's owner may not read this entity"
            await asyncio.to_thread(hooks.settle, due.delivery, "withheld", due.attempts,
                                    error=reason)  # fmt: skip
            self.stats.withheld += 1
            return
        attempt = due.attempts + 1
        async with self._limit:
            outcome = await self._post(due, attempt)
        if outcome.ok:
            await asyncio.to_thread(hooks.settle, due.delivery, "delivered", attempt)
            self.stats.delivered += 1
            return
        self.stats.failed += 1
        if attempt >= self.policy.max_attempts:
            error = f"gave up after {attempt} attempts: {outcome.error}"
            await asyncio.to_thread(hooks.settle, due.delivery, "dead", attempt, error=error)
            self.stats.dead += 1
            log.warning("webhook %d: delivery %d is dead: %s", due.webhook, due.delivery, error)
            return
        wait = self.policy.delay(attempt, outcome.retry_after, self._rng)
        retry_at = datetime.now(UTC) + timedelta(seconds=wait)
        await asyncio.to_thread(hooks.settle, due.delivery, "pending", attempt,
                                error=outcome.error, retry_at=retry_at)  # fmt: skip

    async def _post(self, due: Due, attempt: int) -> Outcome:
        body = payload(due, attempt)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"mlgraph/{__version__}",
            SIGNATURE_HEADER: sign(due.secret, body),
            DELIVERY_HEADER: str(due.delivery),
            EVENT_HEADER: due.notice.kind,
        }
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        try:
            async with self.http.post(
                due.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return Outcome(True)
                text = (await response.text(errors="replace"))[:200]
                return Outcome(
                    False,
                    f"HTTP {response.status} from {due.url}: {text}".rstrip(": "),
                    retry_after(response.headers.get("Retry-After")),
                )
        except TimeoutError:
            return Outcome(False, f"no answer from {due.url} within {self.policy.timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return Outcome(False, f"{type(exc).__name__}: {exc}")

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set."""
        self._wake = asyncio.Event()
        while not stop.is_set():
            try:
                busy = await self.step()
            except Exception:  # the store is unreachable, or a bug: log, back off, go on
                log.exception("webhook dispatch failed; retrying")
                busy = False
                await asyncio.sleep(1.0)
            if not busy:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until a transition, a wake-up, the next due retry, or the idle poll."""
        assert self._wake is not None
        self._wake.clear()
        timeout = self.policy.idle_poll_s
        due_at = await asyncio.to_thread(self.webhooks.next_due)
        if due_at is not None:
            timeout = min(timeout, max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
        waits: list[asyncio.Task[bool]] = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(self._wake.wait()),
        ]
        if await asyncio.to_thread(self.webhooks.any_active):
            waits.append(asyncio.create_task(self.bell.wait(self.bell.last, timeout)))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Dispatch until nothing is pending (retries included), or raise TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            busy = await self.step()
            due_at = await asyncio.to_thread(self.webhooks.next_due)
            if due_at is None and not busy:
                return
            if not busy and due_at is not None:
                # Briefly: what another dispatcher holds may be settled any moment.
                wait = (due_at - datetime.now(UTC)).total_seconds()
                await asyncio.sleep(min(max(wait, 0.0), DRAIN_POLL_S))
        raise TimeoutError(f"webhook deliveries still pending after {timeout_s:g} s")
