"""Fetching current state from sources, politely.

Per source: a concurrency limit, a rate limit, a circuit breaker. A short-TTL
cache answers a fetch only with a response that was fetched after the event
that asked for it arrived, so a cached answer is never older than the change
it is meant to show.

Where a resource declares a batch GET, the fetches asked for in one turn of
the event loop go out together, up to its ``max_ids`` a request (DataLoader's
trick): the workers start every claimed hydration in the same turn, so one
claim of 200 subjects becomes a few requests instead of 200.

The HTTP client is aiohttp: measured on the ingest benchmark it spends about
0.2 ms of CPU a GET where httpx spent 2-3 ms (httpcore's pool bookkeeping),
and the service is CPU-bound on one core (docs/ingest.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiolimiter import AsyncLimiter
from cachetools import TTLCache
from yarl import URL

from mlgraph.connectors import BatchGet, Connector, Resource, Subject
from mlgraph.ingest.breaker import CircuitBreaker

log = logging.getLogger("mlgraph.ingest")


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
    max_url_chars: int = 4000  # a batch GET's URL at most: servers cap request lines at 4-8 KB


Answer = Mapping[str, Any] | None  # an object, or None when the source has none
# Per (source, resource) being batched: id -> the fetches waiting for it.
_Waiting = dict[str, list["asyncio.Future[Answer]"]]


@dataclass
class _SourceState:
    semaphore: asyncio.Semaphore
    limiter: AsyncLimiter
    breaker: CircuitBreaker
    proxy: str | None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("Retry-After")  # aiohttp headers ignore case
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def client_session(policy: FetchPolicy) -> aiohttp.ClientSession:
    """The HTTP client a Fetcher needs: the per-source semaphores bound the connections."""
    # No pool limit of its own: a request waiting for a pooled connection would
    # spend its timeout queueing; the Fetcher's semaphores already cap them.
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    # Not trust_env: aiohttp would then read the proxy variables and ~/.netrc on
    # every request, in a thread (a tenth of the service's CPU); the Fetcher
    # looks the proxy up once per source instead.
    return aiohttp.ClientSession(connector=connector, trust_env=False)


def env_proxy(url: str) -> str | None:
    """The proxy that HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY name for ``url``."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    host = (parts.hostname or "").lower()
    for entry in proxies.get("no", "").lower().replace(" ", "").split(","):
        domain = entry.split(":")[0].lstrip(".")
        if entry == "*" or (domain and (host == domain or host.endswith("." + domain))):
            return None
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class Fetcher:
    def __init__(self, http: aiohttp.ClientSession, policy: FetchPolicy | None = None) -> None:
        self.http = http
        self.policy = policy or FetchPolicy()
        self._timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        self._sources: dict[str, _SourceState] = {}
        self._cache: TTLCache[str, tuple[float, Any]] = TTLCache(
            maxsize=50_000, ttl=self.policy.cache_ttl_s
        )
        self.requests = 0
        self._waiting: dict[tuple[str, str], _Waiting] = {}
        self._batches: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references

    def _state(self, connector: Connector) -> _SourceState:
        state = self._sources.get(connector.name)
        if state is None:
            p = self.policy
            state = _SourceState(
                asyncio.Semaphore(p.concurrency),
                AsyncLimiter(p.rate_per_s, 1.0),
                CircuitBreaker(p.breaker_threshold, p.breaker_cooldown_s),
                env_proxy(connector.base_url),
            )
            self._sources[connector.name] = state
        return state

    async def get(
        self, connector: Connector, url: str, *, fresh_after: float | None = None
    ) -> Mapping[str, Any] | None:
        """The JSON at ``url``, or None for 404. ``fresh_after`` is a time.time() bound."""
        cached = self._fresh(url, fresh_after)
        if cached is not None:
            return cached
        found = await self._request(connector, url)
        if found is None:
            return None
        started, body = found
        if not isinstance(body, dict):
            raise SourceRefused(f"GET {url}: expected a JSON object, got {type(body).__name__}")
        self._cache[url] = (started, body)
        return body

    def _fresh(self, url: str, fresh_after: float | None) -> Mapping[str, Any] | None:
        """The cached answer for ``url`` if it was fetched after ``fresh_after``."""
        cached = self._cache.get(url)
        if cached is not None and fresh_after is not None and cached[0] >= fresh_after:
            return cached[1]  # type: ignore[no-any-return]
        return None

    async def fetch(
        self, connector: Connector, subject: Subject, *, fresh_after: float | None = None
    ) -> Answer:
        """The subject's current state, or None when the source has none.

        One GET, or a place in the next batch GET if its resource has one.
        """
        resource = connector.resources[subject.resource]
        url = resource.url(connector.base_url, subject.id)
        if resource.batch is None:
            return await self.get(connector, url, fresh_after=fresh_after)
        cached = self._fresh(url, fresh_after)
        if cached is not None:
            return cached
        key = (connector.name, resource.name)
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = {}
            # After the fetches already scheduled in this turn have joined.
            asyncio.get_running_loop().call_soon(self._send_batches, connector, resource)
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        waiting.setdefault(subject.id, []).append(answer)
        return await answer

    def _send_batches(self, connector: Connector, resource: Resource) -> None:
        waiting = self._waiting.pop((connector.name, resource.name), {})
        assert resource.batch is not None
        for chunk in _chunks(waiting, resource.batch, connector.base_url, self.policy):
            task = asyncio.create_task(self._get_batch(connector, resource, chunk))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _get_batch(self, connector: Connector, resource: Resource, chunk: _Waiting) -> None:
        batch = resource.batch
        assert batch is not None
        url = batch.url(connector.base_url, list(chunk))
        try:
            found = await self._request(connector, url)
            if found is None:
                raise SourceRefused(
                    f"GET {url[:200]}: 404: {connector.name} has no batch GET at {batch.path}"
                )
            started, items = found[0], _items(found[1], batch, url)
        except SourceRefused as exc:
            # The batch answer is unusable, not the objects: ask for each alone, so
            # one bad item or a missing batch route fails only what it must.
            log.warning("%s; getting its %d objects one by one", exc, len(chunk))
            await asyncio.gather(*(self._get_alone(connector, resource, id, answers)
                                   for id, answers in chunk.items()))  # fmt: skip
            return
        except Exception as exc:  # unavailable: every fetch waiting on this request fails
            _fail(chunk.values(), exc)
            return
        for id, answers in chunk.items():
            item = items.get(id)
            if item is not None:
                self._cache[resource.url(connector.base_url, id)] = (started, item)
            _answer(answers, item)

    async def _get_alone(
        self,
        connector: Connector,
        resource: Resource,
        id: str,
        answers: list[asyncio.Future[Answer]],
    ) -> None:
        try:
            item = await self.get(connector, resource.url(connector.base_url, id))
        except Exception as exc:
            _fail([answers], exc)
            return
        _answer(answers, item)

    async def _request(self, connector: Connector, url: str) -> tuple[float, Any] | None:
        """``(time.time() as sent, the JSON body)`` of a 2xx answer, or None for 404."""
        state = self._state(connector)
        wait = state.breaker.wait_s()
        if wait is not None:
            raise SourceUnavailable(f"{connector.name}: circuit open", wait)
        async with state.semaphore, state.limiter:
            started = time.time()
            self.requests += 1
            try:
                async with self.http.get(
                    url,
                    headers=connector.headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                    proxy=state.proxy,
                ) as response:
                    status, reason, headers = response.status, response.reason, response.headers
                    raw = await response.read()
            except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too
                state.breaker.failure()
                raise SourceUnavailable(
                    f"GET {url}: timed out after {self.policy.timeout_s}s"
                ) from None
            except aiohttp.ClientError as exc:
                state.breaker.failure()
                raise SourceUnavailable(f"GET {url}: {type(exc).__name__}: {exc}") from None
        if status == 429:
            # Overload, not failure: honour the source's pace without opening the circuit.
            state.breaker.release_trial()
            raise SourceUnavailable(f"GET {url}: 429 Too Many Requests", retry_after(headers))
        if status >= 500:
            state.breaker.failure()
            raise SourceUnavailable(f"GET {url}: {status} {reason}", retry_after(headers))
        state.breaker.success()
        if status == 404:
            return None
        if status >= 300:  # redirects are not followed: a source's object URL is its own
            text = raw[:200].decode("utf-8", "replace")
            raise SourceRefused(f"GET {url}: {status} {text}")
        return started, json.loads(raw)

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
            page_url = str(URL(url).update_query(params))
            for attempt in range(5):
                try:
                    found = await self._request(connector, page_url)
                    break
                except SourceUnavailable as exc:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(exc.retry_after_s or 0.2 * 2**attempt)
            if found is None:
                raise SourceRefused(f"GET {page_url}: 404, no list of {resource.name}")
            body = found[1]
            for item in body.get("items", []):
                yield str(item["id"]), item.get("updated_at")
            token = body.get("next_page_token")
            if not token:
                return


def _answer(answers: list[asyncio.Future[Answer]], item: Answer) -> None:
    for answer in answers:
        if not answer.done():  # a waiter cancelled meanwhile
            answer.set_result(item)


def _fail(waiting: Iterable[list[asyncio.Future[Answer]]], exc: BaseException) -> None:
    for answers in waiting:
        for answer in answers:
            if not answer.done():
                answer.set_exception(exc)


def _chunks(
    waiting: _Waiting, batch: BatchGet, base_url: str, policy: FetchPolicy
) -> list[_Waiting]:
    """``waiting`` cut into requests of at most ``max_ids`` ids and ``max_url_chars``."""
    chunks: list[_Waiting] = []
    chunk: _Waiting = {}
    length = len(batch.url(base_url, []))
    for id, answers in waiting.items():
        more = len(batch.url("", [id])) - len(batch.path)  # "?ids=…" or "&ids=…"
        if chunk and (len(chunk) >= batch.max_ids or length + more > policy.max_url_chars):
            chunks.append(chunk)
            chunk, length = {}, len(batch.url(base_url, []))
        chunk[id] = answers
        length += more
    if chunk:
        chunks.append(chunk)
    return chunks


def _items(body: Any, batch: BatchGet, url: str) -> dict[str, Mapping[str, Any]]:
    """The objects of a batch answer by id; what does not fit the contract is refused."""
    items = body.get(batch.items) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise SourceRefused(f"GET {url[:200]}: expected a JSON object with a list {batch.items!r}")
    found: dict[str, Mapping[str, Any]] = {}
    for item in items:
        id = item.get(batch.id_field) if isinstance(item, dict) else None
        if id is None:
            raise SourceRefused(
                f"GET {url[:200]}: an item of {batch.items!r} has no {batch.id_field!r}"
            )
        found[str(id)] = item
    return found
