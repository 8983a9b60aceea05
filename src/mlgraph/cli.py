"""The ``mlgraph`` command."""

from __future__ import annotations

import json
import os
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


if __name__ == "__main__":
    app()
