"""Ingest benchmark: thin event -> stored entity, end to end, next to the floor.

    python bench/ingest.py [--quick] [--size N] [--seed S] [--freshness-s D]

It starts the six reference sources (``python -m mlgraph.sources``) and
``mlgraph serve`` on SQLite as subprocesses on free ports, then measures:

1. throughput: a ``*_created`` event for every object of the generated
   organisation is POSTed to ``/v1/events``; timed from the first POST until
   the inbox holds nothing pending or processing;
2. the floor: the same source GETs, normalized by the same connectors and
   written one transaction per subject into a fresh store, done from this
   process without the pipeline (no HTTP intake, no inbox), at the service's
   per-source concurrency, rate limit and subjects in flight. Also: the same
   with group commit (as the worker writes), and the GETs and the writes each
   alone, to show where the floor's time goes;
3. freshness: at half the measured peak rate, real objects are changed
   through the sources' admin API and each change's thin event is POSTed; the
   store's history then tells when the version carrying each change was
   written (``Version.at``), and freshness is that minus the send time.

Every phase also records the CPU each process used (sources, service, this
one), per event: on a small machine the three share the cores.

Progress goes to stderr; stdout gets a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from mlgraph.catalog import Entity
from mlgraph.catalog.schema import load_schema
from mlgraph.config import Settings
from mlgraph.connectors import Connector, Connectors, Resource, Subject, load_connectors
from mlgraph.enrich.enricher import CURSOR as ENRICHER
from mlgraph.ingest.fetcher import Fetcher, FetchPolicy, client_session
from mlgraph.ingest.tables import inbox
from mlgraph.ingest.worker import WorkerPolicy
from mlgraph.reverse.follower import CURSOR as PERCOLATOR
from mlgraph.search.indexer import CURSOR as INDEXER
from mlgraph.sources import COLLECTIONS, SOURCES, generate, initial_events, make_event, resource
from mlgraph.store import Provenance, Store

# The targets.
TARGET_RATIO = 2.0  # floor events/s ÷ ours, at most
TARGET_EVENTS_PER_S = 1000.0  # on SQLite, at least
TARGET_P99_S = 1.0  # freshness at half the peak rate, below

TICK_S = 0.02  # the freshness sender's clock: changes due in one tick share a POST
WORKER = WorkerPolicy()  # the service's defaults: subjects in flight, group commit size
GROUP_MAX = WORKER.max_batch  # subjects per transaction at most when writes are grouped
POLL_S = 0.02  # how often the inbox is looked at while waiting for it to drain
SERVICE_DEFAULTS = Settings.model_fields
# The feed's followers: the setting that switches each on, and its cursor.
FOLLOWERS = {"enrich": ENRICHER, "search": INDEXER, "reverse": PERCOLATOR}
Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    size: int
    seed: int
    batch: int  # events per POST in the throughput phase
    clients: int  # concurrent POSTers in the throughput phase
    freshness_s: float
    concurrency: int  # requests in flight per source, service and floor alike
    rate_per_s: float  # requests per second per source, service and floor alike
    in_flight: int  # subjects hydrated at once, service and floor alike
    service_settings: tuple[tuple[str, str], ...] = ()  # --set KEY=VALUE
    freshness_rate: float | None = None  # changes/s; None: half the measured peak


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="size 3 (~235 events), 5 s freshness")
    parser.add_argument("--size", type=int, help="organisation size (default 50: ~5,100 events)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--batch", type=int, default=100, help="events per POST (throughput)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent POSTers (throughput)")
    parser.add_argument("--freshness-s", type=float, help="freshness phase length (20 s; quick 5)")
    parser.add_argument(
        "--source-rate",
        type=float,
        default=float(SERVICE_DEFAULTS["source_rate_per_s"].default),
        help="requests/s per source, for the service and the floor (the service's default)",
    )
    parser.add_argument(
        "--freshness-rate",
        type=float,
        help="changes/s of the freshness phase (default: half the measured peak, the target's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a service setting, e.g. --set search=false (MLGRAPH_SEARCH); repeatable",
    )
    args = parser.parse_args(argv)
    settings = []
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key.lower() not in SERVICE_DEFAULTS:
            parser.error(f"--set {item!r}: expected KEY=VALUE with KEY a service setting")
        settings.append((key.lower(), value))
    quick = bool(args.quick)
    size = args.size or (3 if quick else 50)
    if size < 1 or args.batch < 1 or args.clients < 1 or args.source_rate <= 0:
        parser.error("--size, --batch, --clients and --source-rate must be positive")
    return Config(
        quick=quick,
        size=size,
        seed=args.seed,
        batch=args.batch,
        clients=args.clients,
        freshness_s=args.freshness_s or (5.0 if quick else 20.0),
        concurrency=int(SERVICE_DEFAULTS["source_concurrency"].default),
        rate_per_s=args.source_rate,
        in_flight=WORKER.max_in_flight,
        service_settings=tuple(settings),
        freshness_rate=args.freshness_rate,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile, interpolated (with few samples p99 is close to the max)."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q) - 1]


def other_benchmark_running() -> bool:
    """Whether bench/store.py is running: it shares the two cores, so it skews figures."""
    found = subprocess.run(["pgrep", "-f", "bench/store.py"], capture_output=True, check=False)
    return found.returncode == 0


class Neighbours:
    """Looks for the other benchmark every second while the run lasts."""

    def __init__(self) -> None:
        self.seen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="neighbours", daemon=True)

    def __enter__(self) -> Neighbours:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while True:
            if not self.seen and other_benchmark_running():
                self.seen = True
                log("note: bench/store.py is running on this machine; figures will be lower")
            if self._stop.wait(1.0):
                return


# -- subprocesses ----------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(n: int, rng: random.Random) -> int:
    """The first of ``n`` consecutive free ports (the sources take base, base + 1, ...)."""
    for _ in range(100):
        base = rng.randrange(20_000, 60_000)
        if all(port_is_free(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"found no {n} consecutive free ports")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any MLGRAPH_* setting but the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGRAPH_")}
    return env | {f"MLGRAPH_{k.upper()}": v for k, v in settings.items()}


def spawn(
    args: list[str], env: dict[str, str], logfile: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    # Its own session, so stopping it stops whatever it started too.
    with logfile.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it if it has not gone in 10 s."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], logfile: Path, timeout_s: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited:\n{tail(logfile)}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout_s} s:\n{tail(logfile)}")


@dataclass
class Running:
    """The subprocesses of one run and where they answer."""

    source_urls: dict[str, str] = field(default_factory=dict)
    api: str = ""
    store_url: str = ""
    db_path: Path = Path()
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def stop_all(self) -> None:
        for process in reversed(self.processes.values()):
            stop(process)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each subprocess and by this process.

        The service's children (its follower process) are counted apart, as
        ``followers``, and are part of what the service costs.
        """
        used = {name: cpu_seconds(p.pid) for name, p in self.processes.items()}
        service = self.processes.get("service")
        if service is not None:
            used["followers"] = sum(cpu_seconds(pid) for pid in children(service.pid))
        return used | {"bench": time.process_time()}


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc; none elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (Linux /proc; 0 elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def start_sources(cfg: Config, run: Running, tmp: Path) -> None:
    base = free_port_block(len(SOURCES), random.Random())
    logfile = tmp / "sources.log"
    args = [
        "-m",
        "mlgraph.sources",
        "--size",
        str(cfg.size),
        "--seed",
        str(cfg.seed),
        "--base-port",
        str(base),
    ]
    run.processes["sources"] = spawn(args, clean_env(), logfile, tmp)
    run.source_urls = {name: f"http://127.0.0.1:{base + i}" for i, name in enumerate(SOURCES)}
    for url in run.source_urls.values():
        wait_until_answering(f"{url}/admin/health", run.processes["sources"], logfile)


def start_service(cfg: Config, run: Running, tmp: Path) -> None:
    port = free_port()
    run.db_path = tmp / "store.db"
    run.store_url = f"sqlite:///{run.db_path}"
    env = clean_env(
        store_url=run.store_url,
        sources=json.dumps(run.source_urls),
        source_concurrency=str(cfg.concurrency),
        source_rate_per_s=str(cfg.rate_per_s),
        **dict(cfg.service_settings),
    )
    logfile = tmp / "serve.log"
    # cwd is the scratch directory, so no mlgraph.toml of the caller's is read.
    run.processes["service"] = spawn(
        ["-m", "mlgraph.cli", "serve", "--port", str(port)], env, logfile, tmp
    )
    run.api = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{run.api}/healthz", run.processes["service"], logfile)
    # The follower process starts beside the server and takes a few seconds to
    # import and open the store: measure from when it is settled.
    wait_idle(run, ("service", "followers"))


def wait_idle(run: Running, names: Sequence[str], timeout_s: float = 60.0) -> None:
    """Wait until the named processes use under a quarter of a core for half a second
    (idle, they still poll the inbox and the feed)."""
    deadline = time.monotonic() + timeout_s
    before = run.cpu()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = run.cpu()
        if sum(now[n] - before[n] for n in names) < 0.125:
            return
        before = now
    raise TimeoutError(f"{', '.join(names)} still busy after {timeout_s} s")


# -- reading the service's SQLite file directly ----------------------------------------
# Polling /v1/summary would make the service count every entity each time;
# a read-only connection to its WAL-mode file costs it nothing.


@dataclass(frozen=True, slots=True)
class Queue:
    pending: int
    processing: int
    done: int
    dead: int


def read_queue(db_path: Path) -> Queue:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
        counts = dict(conn.execute("SELECT status, count(*) FROM inbox GROUP BY status").fetchall())
        dead = conn.execute("SELECT count(*) FROM dead_letter WHERE replayed_at IS NULL").fetchone()
    return Queue(
        counts.get("pending", 0), counts.get("processing", 0), counts.get("done", 0), int(dead[0])
    )


def wait_drained(db_path: Path, expected_done: int, timeout_s: float) -> Queue:
    """Wait until nothing is pending or processing and ``expected_done`` events are done."""
    deadline = time.monotonic() + timeout_s
    while True:
        queue = read_queue(db_path)
        if queue.dead:
            raise RuntimeError(f"{queue.dead} events were dead-lettered: see `mlgraph dlq list`")
        if queue.pending == queue.processing == 0 and queue.done >= expected_done:
            return queue
        if time.monotonic() > deadline:
            raise TimeoutError(f"the inbox did not drain in {timeout_s} s: {queue}")
        time.sleep(POLL_S)


def followers_on(cfg: Config) -> list[str]:
    """The cursors of the followers the service runs (each can be switched off by --set)."""
    off = {k for k, v in cfg.service_settings if v.lower() in ("false", "0", "no", "off")}
    return [cursor for setting, cursor in FOLLOWERS.items() if setting not in off]


def followers_behind(db_path: Path, cursors: Sequence[str]) -> int:
    """Transactions the furthest-behind follower of the feed has yet to handle."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
        last = int(conn.execute("SELECT max(id) FROM tx").fetchone()[0] or 0)
        at = dict(conn.execute("SELECT name, position FROM cursor").fetchall())
    return max((last - int(at.get(name, 0)) for name in cursors), default=0)


def wait_followed(db_path: Path, cursors: Sequence[str], timeout_s: float) -> None:
    """Wait until the followers with these cursors reach the feed's end."""
    deadline = time.monotonic() + timeout_s
    while (behind := followers_behind(db_path, cursors)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the followers are still {behind} transactions behind")
        time.sleep(POLL_S)


def hydrated_uris(db_path: Path) -> set[str]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT n.uri FROM entity e JOIN node n ON n.id = e.node WHERE e.state = 'hydrated'"
        ).fetchall()
    return {str(r[0]) for r in rows}


# -- subjects --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One subject to hydrate, as the pipeline's router would name it."""

    connector: Connector
    resource: Resource
    subject: Subject
    event_id: str

    @property
    def url(self) -> str:
        return self.connector.url(self.subject)

    @property
    def uri(self) -> str:
        return self.connector.subject_uri(self.subject)


def target(connectors: Connectors, event: Event) -> Target:
    found = connectors.route(str(event["event_type"]))
    if found is None:
        raise RuntimeError(f"no connector handles {event['event_type']!r}")
    connector, res, rule = found
    subject = Subject(connector.name, res.name, str(event[rule.id_field]))
    return Target(connector, res, subject, str(event["event_id"]))


# -- the load this benchmark makes -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, float]  # float: idle since
KEEP_IDLE_S = 2.0  # reuse a connection idle no longer (uvicorn closes them after 5 s)


class LoadClient:
    """A minimal HTTP/1.1 keep-alive JSON client for the benchmark's own requests.

    httpx spends 2-3 ms of CPU a request against these servers; on two cores a
    load generator that heavy takes the CPU the service is measured on (the
    freshness phase's PUT + POST cost 6 ms a change). This one spends ~0.1 ms.
    It knows just enough: JSON bodies with Content-Length, which is all that
    uvicorn sends for these routes.
    """

    def __init__(self, per_host: int = 32, timeout_s: float = 60.0) -> None:
        self.per_host = per_host
        self.timeout_s = timeout_s
        self._idle: dict[str, list[Connection]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for idle in self._idle.values():
            for _, writer, _ in idle:
                writer.close()
        self._idle.clear()

    async def request(self, method: str, url: str, body: Any) -> Answer:
        parts = urlsplit(url)
        host = parts.netloc
        slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
        async with slots:
            idle = self._idle.setdefault(host, [])
            while idle:
                reader, writer, since = idle.pop()
                if time.monotonic() - since > KEEP_IDLE_S:
                    writer.close()
                    continue
                try:
                    return await self._use(idle, reader, writer, method, host, parts.path, body)
                except (ConnectionError, asyncio.IncompleteReadError):
                    # Closed by the server meanwhile. Sending again is safe: PUTs are
                    # idempotent, and the service drops an event id it has seen.
                    continue
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            return await self._use(idle, reader, writer, method, host, parts.path, body)

    async def _use(
        self,
        idle: list[Connection],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        host: str,
        path: str,
        body: Any,
    ) -> Answer:
        try:
            answer, keep = await asyncio.wait_for(
                self._exchange(reader, writer, method, host, path, body), self.timeout_s
            )
        except BaseException:
            writer.close()
            raise
        if keep:
            idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return answer

    @staticmethod
    async def _exchange(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        host: str,
        path: str,
        body: Any,
    ) -> tuple[Answer, bool]:
        payload = json.dumps(body).encode()
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        if "chunked" in headers.get("transfer-encoding", ""):
            raise RuntimeError(f"{method} {path}: chunked answers are not supported here")
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        keep = headers.get("connection", "") != "close"
        return Answer(status, json.loads(raw) if raw else None), keep


# -- phase 1: throughput through the service -------------------------------------------


@dataclass(frozen=True, slots=True)
class Throughput:
    events: int
    seconds: float  # first POST until the inbox is drained
    intake_seconds: float  # first POST until the last POST was answered
    followed_seconds: float  # first POST until the feed's followers reached its end
    cpu: dict[str, float]  # CPU seconds each process used until then


async def post_all(client: LoadClient, api: str, events: list[Event], cfg: Config) -> None:
    """POST ``events`` in batches from ``cfg.clients`` concurrent clients."""
    batches = iter([events[i : i + cfg.batch] for i in range(0, len(events), cfg.batch)])

    async def poster() -> None:
        for batch in batches:  # shared: each poster takes the next batch
            answer = await client.request("POST", f"{api}/v1/events", batch)
            if answer.status != 202 or answer.body["accepted"] != len(batch):
                raise RuntimeError(f"POST /v1/events: {answer.status} {answer.body}")

    await asyncio.gather(*(poster() for _ in range(cfg.clients)))


def run_throughput(run: Running, events: list[Event], cfg: Config) -> Throughput:
    async def go() -> float:
        async with LoadClient() as client:
            await post_all(client, run.api, events, cfg)
        return time.perf_counter()

    cpu = run.cpu()
    started = time.perf_counter()
    intake_done = asyncio.run(go())
    wait_drained(run.db_path, len(events), timeout_s=600)
    finished = time.perf_counter()
    wait_followed(run.db_path, followers_on(cfg), timeout_s=600)
    followed = time.perf_counter()
    used = cpu_used(cpu, run.cpu())
    return Throughput(
        len(events), finished - started, intake_done - started, followed - started, used
    )


# -- phase 2: the floor, without the pipeline ------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetched:
    target: Target
    body: dict[str, Any]
    latency_s: float


@dataclass
class Floor:
    """The floor, and its two halves measured alone."""

    events: int = 0
    seconds: float = 0.0  # GET + normalize + transact, overlapped as the service does
    get_seconds: float = 0.0  # the GETs alone
    get_latencies: list[float] = field(default_factory=list)
    write_seconds: float = 0.0  # the transactions alone, one after another
    write_latencies: list[float] = field(default_factory=list)
    batched_seconds: float = 0.0  # the same entities, GROUP_MAX subjects per transaction
    group_seconds: float = 0.0  # GETs as above, written by group commit
    cpu: dict[str, float] = field(default_factory=dict)  # of the end-to-end floor
    uris: set[str] = field(default_factory=set)


class Gates:
    """The GETs as the service makes them: through its Fetcher (per-source concurrency
    and rate limits, batch GETs where the resource has one) and its HTTP client."""

    def __init__(self, cfg: Config) -> None:
        self.policy = FetchPolicy(concurrency=cfg.concurrency, rate_per_s=cfg.rate_per_s)
        self.http = client_session(self.policy)
        self.fetcher = Fetcher(self.http, self.policy)

    async def __aenter__(self) -> Gates:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    async def get(self, t: Target) -> Fetched:
        started = time.perf_counter()
        body = await self.fetcher.fetch(t.connector, t.subject)
        latency = time.perf_counter() - started
        if body is None:
            raise RuntimeError(f"GET {t.url}: 404")
        return Fetched(t, dict(body), latency)


async def each_in_flight(
    cfg: Config, items: list[Target], work: Callable[[Target], Awaitable[None]]
) -> None:
    """``work(item)`` for every item, ``cfg.in_flight`` at a time, in order (as claims go)."""
    queue = iter(items)

    async def worker() -> None:
        for item in queue:  # shared: each worker takes the next subject
            await work(item)

    await asyncio.gather(*(worker() for _ in range(cfg.in_flight)))


def normalized(f: Fetched) -> list[Entity]:
    return f.target.connector.normalize(f.target.resource, f.body)


def provenance(t: Target) -> Provenance:
    return Provenance(t.connector.name, t.event_id, "bench-floor")


async def floor_per_subject(cfg: Config, targets: list[Target], store: Store) -> float:
    """GET, normalize and transact each subject, ``in_flight`` subjects at once."""
    async with Gates(cfg) as gates:

        async def hydrate(t: Target) -> None:
            entities = normalized(await gates.get(t))
            # In a thread, as the hydrator does: the GETs go on while SQLite writes.
            await asyncio.to_thread(store.transact, upsert=entities, provenance=provenance(t))

        started = time.perf_counter()
        await each_in_flight(cfg, targets, hydrate)
        return time.perf_counter() - started


async def floor_group_commit(cfg: Config, targets: list[Target], store: Store) -> float:
    """The same GETs; what is fetched while one transaction runs goes into the next."""
    ready: list[list[Entity]] = []
    more, fetched_all = asyncio.Event(), asyncio.Event()

    async def commit() -> None:
        while not (fetched_all.is_set() and not ready):
            await more.wait()
            more.clear()
            while ready:
                group, ready[:] = ready[:GROUP_MAX], ready[GROUP_MAX:]
                entities = [e for subject in group for e in subject]
                await asyncio.to_thread(store.transact, upsert=entities)

    async with Gates(cfg) as gates:

        async def fetch(t: Target) -> None:
            ready.append(normalized(await gates.get(t)))
            more.set()

        started = time.perf_counter()
        committer = asyncio.create_task(commit())
        await each_in_flight(cfg, targets, fetch)
        fetched_all.set()
        more.set()
        await committer
        return time.perf_counter() - started


async def floor_gets(cfg: Config, targets: list[Target]) -> tuple[float, list[Fetched]]:
    fetched: list[Fetched] = []
    async with Gates(cfg) as gates:

        async def get(t: Target) -> None:
            fetched.append(await gates.get(t))

        started = time.perf_counter()
        await each_in_flight(cfg, targets, get)
        return time.perf_counter() - started, fetched


def floor_writes(fetched: list[Fetched], store: Store) -> tuple[float, list[float]]:
    """One transaction per subject, one after another, in this thread."""
    latencies: list[float] = []
    started = time.perf_counter()
    for f in fetched:
        began = time.perf_counter()
        store.transact(upsert=normalized(f), provenance=provenance(f.target))
        latencies.append(time.perf_counter() - began)
    return time.perf_counter() - started, latencies


def floor_batched(fetched: list[Fetched], store: Store) -> float:
    """``GROUP_MAX`` subjects a transaction, one after another, in this thread."""
    started = time.perf_counter()
    for i in range(0, len(fetched), GROUP_MAX):
        part = fetched[i : i + GROUP_MAX]
        store.transact(upsert=[e for f in part for e in normalized(f)])
    return time.perf_counter() - started


def fresh_store(tmp: Path, name: str) -> Store:
    return Store.open(f"sqlite:///{tmp / name}")


def run_floor(cfg: Config, run: Running, targets: list[Target], tmp: Path) -> Floor:
    out = Floor(events=len(targets))
    with fresh_store(tmp, "floor.db") as store:
        cpu = run.cpu()
        out.seconds = asyncio.run(floor_per_subject(cfg, targets, store))
        out.cpu = cpu_used(cpu, run.cpu())
    out.uris = hydrated_uris(tmp / "floor.db")
    with fresh_store(tmp, "floor-group.db") as store:
        out.group_seconds = asyncio.run(floor_group_commit(cfg, targets, store))
    if hydrated_uris(tmp / "floor-group.db") != out.uris:
        raise AssertionError("the group-commit floor stored other entities than the floor")
    # The two halves alone: where the floor's time goes.
    out.get_seconds, fetched = asyncio.run(floor_gets(cfg, targets))
    out.get_latencies = [f.latency_s for f in fetched]
    # Back in event order (they arrive in completion order), as the service claims them.
    order = {t.subject.key: i for i, t in enumerate(targets)}
    fetched.sort(key=lambda f: order[f.target.subject.key])
    with fresh_store(tmp, "floor-sequential.db") as store:
        out.write_seconds, out.write_latencies = floor_writes(fetched, store)
    with fresh_store(tmp, "floor-batched.db") as store:
        out.batched_seconds = floor_batched(fetched, store)
    return out


# -- phase 3: freshness ----------------------------------------------------------------

# Per collection: the field a change sets at the source, and where its connector
# puts that field in the entity ("description", or the name of an attribute).
CHANGED_FIELD: dict[str, tuple[str, str]] = {
    "teams": ("description", "description"),
    "users": ("title", "title"),
    "datasets": ("description", "description"),
    "pipelines": ("description", "description"),
    "tests": ("hypothesis", "hypothesis"),
    "pipeline-runs": ("status", "status"),
    "job-attempts": ("host", "host"),
    "dataset-versions": ("row_count", "row_count"),
    "features": ("description", "description"),
    "models": ("description", "description"),
    "instances": ("description", "description"),
}


@dataclass(slots=True)
class Change:
    collection: str
    object_id: str
    uri: str
    seq: int
    updated_at: datetime | None = None  # the source's updated_at after the change
    sent_at: float | None = None  # time.time() as its event was POSTed
    event_id: str = ""

    @property
    def value(self) -> str | int:
        field_name = CHANGED_FIELD[self.collection][0]
        return self.seq if field_name == "row_count" else f"bench change {self.seq}"


def change_plan(
    org_ids: dict[str, list[str]], connectors: Connectors, seed: int
) -> Iterator[Change]:
    """Every object once in a shuffled order, then again: a subject's changes stay far apart."""
    objects = [(c, i) for c in COLLECTIONS for i in org_ids[c]]
    random.Random(seed).shuffle(objects)
    seq = 0
    while True:
        for collection, object_id in objects:
            event = make_event(resource(collection), object_id, "updated")
            yield Change(collection, object_id, target(connectors, event).uri, seq)
            seq += 1


async def make_changes(
    client: LoadClient, urls: dict[str, str], collection: str, changes: list[Change]
) -> list[Event]:
    """Change the objects at their source, in one admin request; the thin events that say so."""
    res = resource(collection)
    url = f"{urls[res.source]}/admin/{collection}:batchUpdate"
    field_name = CHANGED_FIELD[collection][0]
    body = [{"id": c.object_id, "fields": {field_name: c.value}} for c in changes]
    answer = await client.request("POST", url, body)
    if answer.status != 200:
        raise RuntimeError(f"POST {url}: {answer.status} {answer.body}")
    events = []
    for change, stored in zip(changes, answer.body["objects"], strict=True):
        change.updated_at = datetime.fromisoformat(stored["updated_at"])
        event = make_event(res, change.object_id, "updated")
        change.event_id = str(event["event_id"])
        events.append(event)
    return events


async def send_changes(client: LoadClient, run: Running, changes: list[Change]) -> None:
    by_collection: dict[str, list[Change]] = {}
    for c in changes:
        by_collection.setdefault(c.collection, []).append(c)
    made = await asyncio.gather(
        *(make_changes(client, run.source_urls, coll, cs) for coll, cs in by_collection.items())
    )
    sent_at = time.time()
    for c in changes:
        c.sent_at = sent_at
    events = [event for group in made for event in group]
    answer = await client.request("POST", f"{run.api}/v1/events", events)
    if answer.status != 202:
        raise RuntimeError(f"POST /v1/events: {answer.status} {answer.body}")


async def drive_changes(
    run: Running, plan: Iterator[Change], rate: float, seconds: float
) -> tuple[list[Change], float]:
    """Open loop: every tick, the changes due by then go out, whether or not earlier ones
    are done, so a slow service cannot slow the offered rate down."""
    total = max(1, round(rate * seconds))
    changes: list[Change] = []
    tasks: list[asyncio.Task[None]] = []
    async with LoadClient() as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while len(changes) < total:
            due = min(total, int((loop.time() - started) * rate) + 1)
            batch = [next(plan) for _ in range(due - len(changes))]
            if batch:
                changes += batch
                tasks.append(asyncio.create_task(send_changes(client, run, batch)))
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*tasks)
        elapsed = loop.time() - started
    return changes, elapsed


@dataclass
class Freshness:
    rate: float  # offered, changes per second
    achieved_rate: float
    samples: list[float] = field(default_factory=list)
    intake: list[float] = field(default_factory=list)  # send -> committed to the inbox
    superseded: int = 0  # a later change to the same object was stored first
    missing: int = 0  # no stored version carries the change
    cpu: dict[str, float] = field(default_factory=dict)


def stored_value(entity: Entity, where: str) -> Any:
    return entity.description if where == "description" else entity.attributes.get(where)


def measure_freshness(store: Store, changes: list[Change], out: Freshness) -> None:
    """For each change, the first stored version at or past its ``updated_at``."""
    histories = {uri: store.history(uri) for uri in {c.uri for c in changes}}
    for c in changes:
        assert c.updated_at is not None and c.sent_at is not None
        version = next(
            (
                v
                for v in histories[c.uri]
                if v.entity is not None
                and v.entity.source_updated_at is not None
                and v.entity.source_updated_at >= c.updated_at
            ),
            None,
        )
        if version is None or version.entity is None:
            out.missing += 1
            continue
        if version.entity.source_updated_at == c.updated_at:
            got = stored_value(version.entity, CHANGED_FIELD[c.collection][1])
            if got != c.value:
                raise AssertionError(f"{c.uri}: stored {got!r} at {c.updated_at}, not {c.value!r}")
        else:
            out.superseded += 1
        out.samples.append(version.at.timestamp() - c.sent_at)
    out.intake = intake_delays(store, changes)


def intake_delays(store: Store, changes: list[Change]) -> list[float]:
    """Send -> the inbox row's ``received_at``: the HTTP intake's share of freshness."""
    sent = {c.event_id: c.sent_at for c in changes if c.sent_at is not None}
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(inbox.c.event_id, inbox.c.received_at).where(inbox.c.event_id.in_(list(sent)))
        ).all()
    return [row.received_at.timestamp() - sent[row.event_id] for row in rows]


def run_freshness(run: Running, plan: Iterator[Change], rate: float, cfg: Config) -> Freshness:
    before = read_queue(run.db_path).done
    cpu = run.cpu()
    changes, elapsed = asyncio.run(drive_changes(run, plan, rate, cfg.freshness_s))
    wait_drained(run.db_path, before + len(changes), timeout_s=600)
    out = Freshness(rate, len(changes) / elapsed, cpu=cpu_used(cpu, run.cpu()))
    with Store.open(run.store_url) as store:
        measure_freshness(store, changes, out)
    return out


# -- reporting -------------------------------------------------------------------------


def figures(cfg: Config, t: Throughput, floor: Floor, f: Freshness) -> dict[str, Any]:
    ours = t.events / t.seconds
    floor_rate = floor.events / floor.seconds
    group_rate = floor.events / floor.group_seconds
    p50 = percentile(f.samples, 50) if f.samples else float("nan")
    p99 = percentile(f.samples, 99) if f.samples else float("nan")
    return {
        "events": t.events,
        "events_per_s": round(ours, 1),
        "throughput_s": round(t.seconds, 3),
        "intake_events_per_s": round(t.events / t.intake_seconds, 1),
        "followers_caught_up_s": round(t.followed_seconds, 3),
        "floor_events_per_s": round(floor_rate, 1),
        "ratio_to_floor": round(floor_rate / ours, 2),
        "floor_group_commit_events_per_s": round(group_rate, 1),
        "ratio_to_floor_group_commit": round(group_rate / ours, 2),
        "floor_get_only_per_s": round(floor.events / floor.get_seconds, 1),
        "floor_get_p50_ms": round(percentile(floor.get_latencies, 50) * 1000, 2),
        "floor_get_p99_ms": round(percentile(floor.get_latencies, 99) * 1000, 2),
        "floor_write_only_per_s": round(floor.events / floor.write_seconds, 1),
        "floor_write_p50_ms": round(percentile(floor.write_latencies, 50) * 1000, 2),
        "floor_write_p99_ms": round(percentile(floor.write_latencies, 99) * 1000, 2),
        "floor_write_batched_per_s": round(floor.events / floor.batched_seconds, 1),
        "freshness_rate_per_s": round(f.rate, 1),
        "freshness_achieved_rate_per_s": round(f.achieved_rate, 1),
        "freshness_samples": len(f.samples),
        "freshness_superseded": f.superseded,
        "freshness_missing": f.missing,
        "freshness_p50_s": round(p50, 4),
        "freshness_p99_s": round(p99, 4),
        "freshness_max_s": round(max(f.samples), 4) if f.samples else None,
        "freshness_intake_p50_s": round(percentile(f.intake, 50), 4) if f.intake else None,
        "freshness_intake_p99_s": round(percentile(f.intake, 99), 4) if f.intake else None,
        # Where the two cores went: CPU ms per event, by process and phase.
        "cpu_ms_per_event": {
            "pipeline": per_event(t.cpu, t.events),
            "floor": per_event(floor.cpu, floor.events),
            "freshness": per_event(f.cpu, len(f.samples) + f.missing),
        },
        "source_concurrency": cfg.concurrency,
        "source_rate_per_s": cfg.rate_per_s,
        "size": cfg.size,
        "service_settings": dict(cfg.service_settings),
        "seed": cfg.seed,
        "quick": cfg.quick,
        "store": "sqlite",
        "targets": {
            "ratio_to_floor_max": TARGET_RATIO,
            "events_per_s_min": TARGET_EVENTS_PER_S,
            "freshness_p99_s_max": TARGET_P99_S,
        },
        "met": {
            "ratio_to_floor": floor_rate / ours <= TARGET_RATIO,
            "events_per_s": ours >= TARGET_EVENTS_PER_S,
            "freshness_p99": f.missing == 0 and p99 < TARGET_P99_S,
        },
    }


def per_event(cpu: dict[str, float], events: int) -> dict[str, float]:
    return {name: round(1000 * seconds / max(events, 1), 3) for name, seconds in cpu.items()}


def cpu_cell(cpu: dict[str, float]) -> str:
    return " ".join(f"{name[:4]} {ms:.2f}" for name, ms in cpu.items())


def table(out: dict[str, Any]) -> str:
    rows = [
        ("events (one subject each)", f"{out['events']:,}"),
        ("pipeline events/s", f"{out['events_per_s']:,.0f}"),
        ("  intake alone (POST answered) events/s", f"{out['intake_events_per_s']:,.0f}"),
        (
            "  stored / followers caught up, s from the first POST",
            f"{out['throughput_s']:.2f} / {out['followers_caught_up_s']:.2f}",
        ),
        ("floor events/s (GET + transact)", f"{out['floor_events_per_s']:,.0f}"),
        ("ratio to floor (floor ÷ ours)", f"{out['ratio_to_floor']:.2f}"),
        ("floor with group commit events/s", f"{out['floor_group_commit_events_per_s']:,.0f}"),
        ("  ratio to it", f"{out['ratio_to_floor_group_commit']:.2f}"),
        ("  floor GETs alone /s", f"{out['floor_get_only_per_s']:,.0f}"),
        ("  GET latency p50 / p99 ms", f"{out['floor_get_p50_ms']} / {out['floor_get_p99_ms']}"),
        ("  floor transactions alone /s", f"{out['floor_write_only_per_s']:,.0f}"),
        (
            "  transaction p50 / p99 ms",
            f"{out['floor_write_p50_ms']} / {out['floor_write_p99_ms']}",
        ),
        (
            f"  batched writes ({GROUP_MAX} subjects/tx) /s",
            f"{out['floor_write_batched_per_s']:,.0f}",
        ),
        (
            "freshness rate offered / achieved /s",
            f"{out['freshness_rate_per_s']:,.0f} / {out['freshness_achieved_rate_per_s']:,.0f}",
        ),
        (
            "freshness samples (superseded, missing)",
            f"{out['freshness_samples']:,} ({out['freshness_superseded']}, "
            f"{out['freshness_missing']})",
        ),
        (
            "freshness p50 / p99 / max s",
            f"{out['freshness_p50_s']} / {out['freshness_p99_s']} / {out['freshness_max_s']}",
        ),
        (
            "  of which intake (into the inbox) p50 / p99 s",
            f"{out['freshness_intake_p50_s']} / {out['freshness_intake_p99_s']}",
        ),
    ]
    cpu = out["cpu_ms_per_event"]
    rows += [(f"CPU ms/event, {phase}", cpu_cell(cpu[phase])) for phase in cpu]
    met = out["met"]
    rows += [
        (f"target: ratio ≤ {TARGET_RATIO:g}", "met" if met["ratio_to_floor"] else "NOT met"),
        (
            f"target: ≥ {TARGET_EVENTS_PER_S:,.0f} events/s",
            "met" if met["events_per_s"] else "NOT met",
        ),
        (f"target: p99 < {TARGET_P99_S:g} s", "met" if met["freshness_p99"] else "NOT met"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:>28}" for k, v in rows)


def revision() -> dict[str, Any]:
    """The commit measured, and whether the work tree differed from it."""

    def git(*args: str) -> str:
        found = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return found.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "-s", "src")),
    }


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version()}


# -- the run ---------------------------------------------------------------------------


def bench(cfg: Config, run: Running, tmp: Path) -> dict[str, Any]:
    org = generate(cfg.size, cfg.seed)
    events = initial_events(org)
    log(f"starting the sources (size {cfg.size}, seed {cfg.seed}: {len(events):,} objects)")
    start_sources(cfg, run, tmp)
    log("starting mlgraph serve on SQLite")
    start_service(cfg, run, tmp)
    connectors = load_connectors(load_schema(), run.source_urls)
    targets = [target(connectors, e) for e in events]

    log(f"throughput: POSTing {len(events):,} events, {cfg.batch} a request, {cfg.clients} clients")
    throughput = run_throughput(run, events, cfg)
    log(f"  {throughput.events / throughput.seconds:,.0f} events/s")

    log("floor: the same GETs and transactions, without the pipeline")
    floor = run_floor(cfg, run, targets, tmp)
    log(f"  {floor.events / floor.seconds:,.0f} events/s")
    stored = hydrated_uris(run.db_path)
    if stored != floor.uris:
        diff = sorted(stored ^ floor.uris)[:5]
        raise AssertionError(f"the service stored other entities than the floor: {diff}")

    rate = cfg.freshness_rate or throughput.events / throughput.seconds / 2
    log(f"freshness: {rate:,.0f} changes/s for {cfg.freshness_s:g} s")
    ids = {c: org.ids(c) for c in COLLECTIONS}
    freshness = run_freshness(run, change_plan(ids, connectors, cfg.seed), rate, cfg)
    return figures(cfg, throughput, floor, freshness)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    measured = revision()  # before the service starts: the code it runs
    # On SIGTERM too, unwind through the finally below: the subprocesses run in
    # sessions of their own and would outlive this one.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    run = Running()
    with (
        Neighbours() as neighbours,
        tempfile.TemporaryDirectory(prefix="mlgraph-ingest-") as scratch,
    ):
        tmp = Path(scratch)
        try:
            out = bench(cfg, run, tmp)
        finally:
            run.stop_all()
    out["machine"] = machine()
    # Edits during the run would make the figures belong to neither revision.
    out["revision"] = measured | {"changed_during_run": revision() != measured}
    out["other_benchmark_running"] = neighbours.seen
    print(table(out))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
