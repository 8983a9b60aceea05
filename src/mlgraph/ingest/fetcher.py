"""Fetching current state from sources, politely.

Per source: a concurrency limit, a rate limit, a circuit breaker. A short-TTL
cache answers a fetch only with a response that was fetched after the event
that asked for it arrived, so a cached answer is never older than the change
it is meant to show.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from cachetools import TTLCache

from mlgraph.connectors import Connector, Resource
from mlgraph.ingest.breaker import CircuitBreaker


class SourceUnavailable(Exception):
    """The source could not answer now; try again later (after ``retry_after_s`` if given)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class SourceRefused(Exception):
    """The source answered with an error that retrying will not fix (4xx other than 404/429)."""


@dataclass(frozen=True)
class FetchPolicy:
    concurrency: int = 8  # requests in flight per source
    rate_per_s: float = 500.0  # requests per second per source
    timeout_s: float = 5.0
    cache_ttl_s: float = 2.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 1.0


@dataclass
class _SourceState:
    semaphore: asyncio.Semaphore
    limiter: AsyncLimiter
    breaker: CircuitBreaker


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class Fetcher:
    def __init__(self, http: httpx.AsyncClient, policy: FetchPolicy | None = None) -> None:
        self.http = http
        self.policy = policy or FetchPolicy()
        self._sources: dict[str, _SourceState] = {}
        self._cache: TTLCache[str, tuple[float, Any]] = TTLCache(
            maxsize=50_000, ttl=self.policy.cache_ttl_s
        )
        self.requests = 0

    def _state(self, source: str) -> _SourceState:
        state = self._sources.get(source)
        if state is None:
            p = self.policy
            state = _SourceState(
                asyncio.Semaphore(p.concurrency),
                AsyncLimiter(p.rate_per_s, 1.0),
                CircuitBreaker(p.breaker_threshold, p.breaker_cooldown_s),
            )
            self._sources[source] = state
        return state

    async def get(
        self, connector: Connector, url: str, *, fresh_after: float | None = None
    ) -> Mapping[str, Any] | None:
        """The JSON at ``url``, or None for 404. ``fresh_after`` is a time.time() bound."""
        cached = self._cache.get(url)
        if cached is not None and fresh_after is not None and cached[0] >= fresh_after:
            return cached[1]  # type: ignore[no-any-return]
        response = await self._request(connector, url)
        if response.status_code == 404:
            return None
        body = response.json()
        if not isinstance(body, dict):
            raise SourceRefused(f"GET {url}: expected a JSON object, got {type(body).__name__}")
        return body

    async def _request(self, connector: Connector, url: str) -> httpx.Response:
        state = self._state(connector.name)
        wait = state.breaker.wait_s()
        if wait is not None:
            raise SourceUnavailable(f"{connector.name}: circuit open", wait)
        async with state.semaphore, state.limiter:
            started = time.time()
            self.requests += 1
            try:
                response = await self.http.get(
                    url, headers=connector.headers, timeout=self.policy.timeout_s
                )
            except httpx.TimeoutException:
                state.breaker.failure()
                raise SourceUnavailable(
                    f"GET {url}: timed out after {self.policy.timeout_s}s"
                ) from None
            except httpx.TransportError as exc:
                state.breaker.failure()
                raise SourceUnavailable(f"GET {url}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 429:
            # Overload, not failure: honour the source's pace without opening the circuit.
            raise SourceUnavailable(f"GET {url}: 429 Too Many Requests", retry_after(response))
        if status >= 500:
            state.breaker.failure()
            raise SourceUnavailable(f"GET {url}: {status} {response.reason_phrase}",
                                    retry_after(response))  # fmt: skip
        if status >= 400 and status != 404:
            state.breaker.success()
            raise SourceRefused(f"GET {url}: {status} {response.text[:200]}")
        state.breaker.success()
        if status == 200:
            self._cache[url] = (started, response.json())
        return response

    async def list_ids(
        self, connector: Connector, resource: Resource, page_size: int = 1000
    ) -> AsyncIterator[tuple[str, str | None]]:
        """Every ``(id, updated_at)`` the source lists for ``resource``."""
        url = connector.list_url(resource)
        if url is None:
            return
        token: str | None = None
        while True:
            params = {"limit": str(page_size)} | ({"page_token": token} if token else {})
            page_url = str(httpx.URL(url, params=params))
            for attempt in range(5):
                try:
                    response = await self._request(connector, page_url)
                    break
                except SourceUnavailable as exc:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(exc.retry_after_s or 0.2 * 2**attempt)
            body = response.json()
            for item in body.get("items", []):
                yield str(item["id"]), item.get("updated_at")
            token = body.get("next_page_token")
            if not token:
                return
