"""``mlgraph demo``: the reference sources and the service, on the embedded default.

One event loop runs the six reference sources, the API with its hydration
workers, and the churn. The generated organisation is streamed through real
HTTP intake (the sources POST their thin events to ``/v1/events``), with a
progress bar, then keeps changing until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlgraph.api import create_app
from mlgraph.api.tokens import Tokens
from mlgraph.config import Settings
from mlgraph.runtime import Service
from mlgraph.sources import SOURCES, HttpSink, Sources, generate, serve_sources
from mlgraph.sources.runner import quiet_server

SEED_URI = "aip://model/registry/ranking-model-v5-20XX0101"


@dataclass(frozen=True)
class DemoOptions:
    size: int = 3
    seed: int = 7
    churn_per_s: float = 2.0
    sources_port: int = 9101
    reset: bool = False


def reset_data_dir(settings: Settings) -> None:
    if settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)


def demo_settings(settings: Settings, options: DemoOptions) -> Settings:
    urls = {name: f"http://127.0.0.1:{options.sources_port + i}" for i, name in enumerate(SOURCES)}
    # Anyone may read the demo's graph (the browser, curl); writing still needs a token
    # once tokens exist, and the demo makes one for its own sources then.
    return settings.model_copy(update={"sources": urls, "workers": True, "anonymous_read": True})


async def run_demo(settings: Settings, options: DemoOptions, console: Console) -> None:
    service = Service.open(settings)
    api_url = f"http://{settings.host}:{settings.port}"
    headers, token_id = _sources_token(service)
    sink = HttpSink(f"{api_url}/v1/events", headers=headers)
    sources = Sources(generate(options.size, options.seed), sink)
    api = quiet_server(create_app(service), settings.host, settings.port)
    api_task = asyncio.create_task(api.serve(), name="api")
    try:
        async with serve_sources(sources, base_port=options.sources_port) as urls:
            await _wait_for(f"{api_url}/healthz", api_task)
            console.print(f"[bold]mlgraph[/bold] on {api_url}  (store: {service.store.backend}, "
                          f"data: {settings.data_dir})")  # fmt: skip
            console.print("sources: " + ", ".join(f"{n} {u}" for n, u in urls.items()))
            before = service.inbox.stats().done
            total = await _stream_initial(sources, service, before, console)
            summary = service.store.summary()
            console.print(f"loaded {total} events: {summary['entities']} entities, "
                          f"{summary['edges']} edges")  # fmt: skip
            if options.churn_per_s > 0:
                await sources.churn(options.churn_per_s).start()
                console.print(f"the organisation keeps changing ({options.churn_per_s}/s)")
            _print_tour(console, api_url)
            await asyncio.shield(api_task)  # until Ctrl-C; then shut down in order below
    finally:
        api.should_exit = True
        await asyncio.gather(api_task, return_exceptions=True)
        if token_id is not None:
            Tokens(service.store.engine).revoke(token_id)


def _sources_token(service: Service) -> tuple[dict[str, str], int | None]:
    """A write token for the demo's own sources, when the API will ask for one."""
    tokens = Tokens(service.store.engine)
    auth = service.settings.auth
    if auth == "off" or (auth == "auto" and not tokens.any_active()):
        return {}, None
    created = tokens.create("mlgraph demo sources", ["write"])
    return {"Authorization": f"Bearer {created.secret}"}, created.info.id


async def _wait_for(url: str, server: asyncio.Task[None]) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(300):
            if server.done():
                raise RuntimeError(f"the API did not start (is {url} in use?)")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} did not answer")


async def _stream_initial(sources: Sources, service: Service, before: int, console: Console) -> int:
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as progress:
        emit = asyncio.create_task(sources.emit_initial())
        sent = progress.add_task("events sent", total=None)
        hydrated = progress.add_task("subjects hydrated", total=None)
        total: int | None = None
        while True:
            stats = await asyncio.to_thread(service.inbox.stats)
            if emit.done():
                total = emit.result()
                progress.update(sent, total=total, completed=total)
                progress.update(hydrated, total=total)
            else:
                accepted = stats.pending + stats.processing + stats.done - before
                progress.update(sent, completed=accepted)
            progress.update(hydrated, completed=stats.done - before)
            if total is not None and stats.pending == 0 and stats.processing == 0:
                progress.update(hydrated, completed=total)
                return total
            await asyncio.sleep(0.2)


def _print_tour(console: Console, api_url: str) -> None:
    console.print(f"""
[bold]Where to look[/bold]
  curl {api_url}/v1/summary
  curl {api_url}/docs                      # the OpenAPI explorer
  open {api_url}/graphql                   # GraphiQL: try seed 000's query (docs/api.md)
  mlgraph get {SEED_URI}
  mlgraph history {SEED_URI}
  mlgraph traverse aip://pipeline-run/orchestrator/train-weekly-ranking-20XX0101 --direction both
  mlgraph dlq list
  mlgraph reconcile
  mlgraph searches save failing-runs "type == 'PipelineRun' AND status == 'failed'"
  curl -N {api_url}/v1/saved-searches/1/events   # who enters and leaves it, as it happens
Ctrl-C stops everything.""")


def existing_store(settings: Settings) -> Path | None:
    path = settings.data_dir / "mlgraph.db"
    return path if settings.store_url is None and path.exists() else None
