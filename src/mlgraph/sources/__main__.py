"""``python -m mlgraph.sources``: serve the six reference sources from the command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from mlgraph.sources.faults import FaultConfig
from mlgraph.sources.generator import generate
from mlgraph.sources.resources import SOURCES
from mlgraph.sources.runner import DEFAULT_BASE_PORT, base_url, run_sources
from mlgraph.sources.sinks import (
    EventSink,
    FanoutSink,
    HttpSink,
    NatsSink,
    NullSink,
    RedisStreamSink,
)

app = typer.Typer(add_completion=False)


@app.command()
def main(
    size: Annotated[int, typer.Option(help="Organisation size (1: ~100 objects, 100: ~10k).")] = 1,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    base_port: Annotated[
        int, typer.Option(help="Port of the first source; the others follow.")
    ] = DEFAULT_BASE_PORT,
    events_url: Annotated[
        str | None, typer.Option(help="POST events here (e.g. http://127.0.0.1:8000/v1/events).")
    ] = None,
    nats: Annotated[
        str | None, typer.Option(help="Publish events to NATS JetStream (nats://127.0.0.1:4222).")
    ] = None,
    redis: Annotated[
        str | None, typer.Option(help="Append events to Redis stream mlgraph:events.")
    ] = None,
    emit_initial: Annotated[
        bool, typer.Option(help="Announce every object (*_created) on start.")
    ] = False,
    churn: Annotated[float, typer.Option(help="Changes per second (0: none).")] = 0.0,
    churn_seed: Annotated[int, typer.Option(help="Churn seed.")] = 0,
    faults: Annotated[
        str | None, typer.Option(help='Fault config for every source, JSON: {"error_rate": 0.1}.')
    ] = None,
) -> None:
    """Serve the six sources over a generated organisation until Ctrl-C."""
    sinks: list[EventSink] = []
    if events_url:
        sinks.append(HttpSink(events_url))
    if nats:
        sinks.append(NatsSink(nats))
    if redis:
        sinks.append(RedisStreamSink(redis))
    sink: EventSink = FanoutSink(*sinks) if len(sinks) > 1 else (sinks[0] if sinks else NullSink())
    fault_config = FaultConfig.model_validate_json(faults) if faults else None
    org = generate(size, seed)
    typer.echo(f"{org.total()} objects (size {size}, seed {seed})")
    for i, name in enumerate(SOURCES):
        typer.echo(f"  {name:<16} {base_url(host, base_port + i)}")
    asyncio.run(
        run_sources(
            org,
            sink,
            host,
            base_port,
            faults=fault_config,
            churn_rate=churn or None,
            churn_seed=churn_seed,
            emit_initial=emit_initial,
        )
    )


if __name__ == "__main__":
    app()
