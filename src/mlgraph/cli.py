"""The ``mlgraph`` command."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mlgraph.config import CONFIG_ENV, Settings
from mlgraph.errors import MlgraphError
from mlgraph.runtime import Service, open_store

app = typer.Typer(help="mlgraph: the metadata service for ML platforms.", no_args_is_help=True)
db = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db, name="db")
dlq = typer.Typer(help="Events that could not be hydrated.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")
console = Console()
errors = Console(stderr=True)


@app.callback()
def main(
    config: Annotated[
        Path | None, typer.Option(help="A TOML settings file (default: ./mlgraph.toml if present).")
    ] = None,
) -> None:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:
        errors.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> typer.Exit:
    errors.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API server on the configured store (SQLite in the data directory by default)."""
    import uvicorn

    from mlgraph.api import create_app

    settings = _settings()
    service = Service.open(settings)
    host, port = host or settings.host, port or settings.port
    console.print(f"mlgraph on [bold]http://{host}:{port}[/bold]  store: {service.store.backend}")
    console.print(f"  curl http://{host}:{port}/healthz")
    console.print(f"  curl http://{host}:{port}/v1/summary")
    uvicorn.run(create_app(service), host=host, port=port, log_level="info")


@app.command()
def demo(
    size: Annotated[int, typer.Option(help="How big an organisation to generate.")] = 3,
    churn: Annotated[
        float, typer.Option(help="Changes per second after the load (0: none).")
    ] = 2.0,
    reset: Annotated[bool, typer.Option(help="Start from an empty data directory.")] = False,
    reuse: Annotated[bool, typer.Option(help="Keep the data of an earlier run.")] = False,
    port: Annotated[int | None, typer.Option(help="Port of the API.")] = None,
    sources_port: Annotated[int, typer.Option(help="First of the six sources' ports.")] = 9101,
) -> None:
    """Run the reference sources and mlgraph on SQLite, stream the organisation in, keep going."""
    import asyncio

    from mlgraph.demo import DemoOptions, demo_settings, existing_store, reset_data_dir, run_demo

    settings = _settings()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    found = existing_store(settings)
    if found is not None and not reuse:
        ask = sys.stdin.isatty() and not reset
        if reset or (ask and typer.confirm(f"{found} holds an earlier run. Start afresh?")):
            reset_data_dir(settings)
            console.print(f"emptied {settings.data_dir}")
        else:
            console.print(f"reusing {found}")
    options = DemoOptions(size=size, churn_per_s=churn, sources_port=sources_port)
    try:
        asyncio.run(run_demo(demo_settings(settings, options), options, console))
    except KeyboardInterrupt:
        console.print("stopped")
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise _fail(exc) from None


@app.command()
def summary() -> None:
    """Counts of entities by type and state, edges, and the last transaction."""
    with open_store(_settings()) as store:
        data = store.summary()
    table = Table(
        "type", "hydrated", "stub", title=f"{data['entities']} entities, {data['edges']} edges"
    )
    for type_, states in data["entities_by_type"].items():
        table.add_row(type_, str(states.get("hydrated", 0)), str(states.get("stub", 0)))
    console.print(table)
    last = data["last_tx"]
    console.print(
        f"last transaction: {last['id']} at {last['at']}" if last else "no transactions yet"
    )


@app.command()
def get(
    uri: str,
    as_of: Annotated[int | None, typer.Option("--as-of", help="A transaction id.")] = None,
) -> None:
    """Show one entity, now or as of a transaction."""
    try:
        with open_store(_settings()) as store:
            entity = store.require(uri, as_of)
    except MlgraphError as exc:
        raise _fail(exc) from None
    _print_json(entity.model_dump(mode="json"))


@app.command()
def history(uri: str) -> None:
    """Every transaction that changed an entity, and what it changed."""
    try:
        with open_store(_settings()) as store:
            versions = store.history(uri)
    except MlgraphError as exc:
        raise _fail(exc) from None
    if not versions:
        raise _fail(MlgraphError(f"no history for {uri}"))
    for v in versions:
        console.print(
            f"[bold]tx {v.tx}[/bold] {v.at.isoformat()} {v.op}"
            f" (source={v.provenance.source}, event={v.provenance.event_id})"
        )
        for name, (old, new) in v.changes.items():
            console.print(f"    {name}: {old!r} -> {new!r}")
        for e in v.edges_added:
            console.print(f"    + {e.relationship} {e.uri}")
        for e in v.edges_removed:
            console.print(f"    - {e.relationship} {e.uri}")


@app.command()
def traverse(
    uri: str,
    direction: Annotated[
        str, typer.Option(help="upstream, downstream, out, in or both")
    ] = "downstream",
    depth: Annotated[int, typer.Option(help="How many hops.")] = 3,
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 100,
) -> None:
    """Entities upstream or downstream of one entity."""
    try:
        with open_store(_settings()) as store:
            result = store.traverse(uri, direction, depth=depth, limit=limit)  # type: ignore[arg-type]
    except MlgraphError as exc:
        raise _fail(exc) from None
    for node in result.nodes:
        console.print(f"{'  ' * node.depth}{node.type}  {node.uri}  {node.name or ''}")
    if result.partial:
        console.print("[yellow]partial: the result cap was reached[/yellow]")


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the configured store."""
    from mlgraph.store import migrate
    from mlgraph.store.engine import create_engine

    settings = _settings()
    engine = create_engine(settings.resolved_store_url)
    try:
        migrate.upgrade(engine)
        console.print(f"store at revision {migrate.current_revision(engine)}")
    finally:
        engine.dispose()


@app.command()
def reconcile(
    source: Annotated[str | None, typer.Argument(help="One source (default: all).")] = None,
    hydrate: Annotated[
        bool, typer.Option(help="Also hydrate what was enqueued (else the server's workers do).")
    ] = True,
    every: Annotated[
        float | None, typer.Option(help="Repeat every this many seconds until Ctrl-C.")
    ] = None,
) -> None:
    """List a source's ids and enqueue the missing, changed and deleted ones."""
    import asyncio

    service = Service.open(_settings())
    try:
        while True:
            try:
                report = asyncio.run(service.reconcile(source, hydrate=hydrate))
            except MlgraphError as exc:
                raise _fail(exc) from None
            table = Table("resource", "listed", "stored", "missing", "changed", "gone")
            for name, r in report.resources.items():
                counts = (r.listed, r.stored, r.missing, r.changed, r.gone)
                table.add_row(name, *(("-" if r.error else str(v)) for v in counts))
            console.print(table)
            console.print(f"enqueued {report.enqueued} subjects")
            if report.failed:
                errors.print(f"[red]{len(report.failed)} resources could not be listed:[/red]")
                for name, error in report.failed.items():
                    errors.print(f"  {name}: {error}", soft_wrap=True)
            if every is None:
                if report.failed:
                    raise typer.Exit(1)
                return
            time.sleep(every)
    except KeyboardInterrupt:
        pass
    finally:
        service.close()


@app.command()
def enrich(
    rederive: Annotated[
        bool, typer.Option(help="Derive every inferred relationship again from scratch.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="With --rederive: only report what would change.")
    ] = False,
    hydrate: Annotated[
        bool, typer.Option(help="Also hydrate the stubs found (else the server's workers do).")
    ] = True,
) -> None:
    """Catch up with the change feed: hydrate new stubs, maintain inferred relationships."""
    import asyncio

    from mlgraph.enrich.inference import Inference

    service = Service.open(_settings())
    try:
        if rederive:
            report = Inference(service.store).rederive(dry_run=dry_run)
            verb = "would change" if dry_run else "changed"
            console.print(
                f"{report.starts} starts derived: {verb} {report.changes} inferred edges "
                f"(+{report.asserted} -{report.retracted} ~{report.updated})"
            )
            for rule, n in sorted(report.by_rule.items()):
                console.print(f"  {rule}: {n}")
            return
        try:
            stats = asyncio.run(service.enrich(hydrate=hydrate))
        except (MlgraphError, TimeoutError) as exc:
            raise _fail(exc) from None
        console.print(
            f"{stats.transactions} transactions enriched: {stats.inferred_changes} inferred edges "
            f"changed, {stats.stubs_requested} stubs asked for, {stats.unresolved} unresolved"
        )
    finally:
        service.close()


@dlq.command("list")
def dlq_list(limit: Annotated[int, typer.Option(help="At most this many.")] = 50) -> None:
    """Dead letters not yet replayed, oldest first."""
    service = Service.open(_settings())
    try:
        letters = service.inbox.dead_letters(limit)
    finally:
        service.close()
    if not letters:
        console.print("no dead letters")
    # One letter per entry, the reason on its own line: reasons are long.
    for dl in letters:
        when = dl.failed_at.isoformat(timespec="seconds")
        console.print(
            f"[bold]{dl.id}[/bold]  {when}  {dl.event_type or '?'}  "
            f"{dl.subject or '(no subject)'}  attempts={dl.attempts}",
            soft_wrap=True,
        )
        console.print(f"    {dl.reason}", soft_wrap=True)


@dlq.command("show")
def dlq_show(letter_id: int) -> None:
    """One dead letter, with its event."""
    service = Service.open(_settings())
    try:
        letter = service.inbox.dead_letter(letter_id)
    finally:
        service.close()
    if letter is None:
        raise _fail(MlgraphError(f"no dead letter {letter_id}"))
    _print_json(asdict(letter))


@dlq.command("replay")
def dlq_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Which (default: all).")] = None,
    hydrate: Annotated[bool, typer.Option(help="Also hydrate them now.")] = True,
) -> None:
    """Put dead letters back into the inbox, e.g. once a failing source is back."""
    import asyncio

    service = Service.open(_settings())
    try:
        replayed, stuck = service.intake.replay(ids or None)
        console.print(f"replayed {replayed}; {stuck} still have no connector")
        if hydrate and replayed:

            async def drain() -> None:
                async with service.fetching() as fetcher:
                    await service.make_worker(fetcher).drain()

            asyncio.run(drain())
            console.print(f"dead letters left: {service.inbox.stats().dead_letters}")
    finally:
        service.close()


if __name__ == "__main__":
    app()
