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
from mlgraph.errors import MlgraphError, NotFound
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
    from rich.markup import escape  # a message may quote input with [brackets] in it

    errors.print(f"[red]error:[/red] {escape(str(exc))}")
    return typer.Exit(1)


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API server on the configured store (SQLite in the data directory by default).

    With the workers on, the feed's followers run in a process of their own
    (`mlgraph follow`, started and stopped with the server) unless the setting
    `followers` is `inline`.
    """
    import uvicorn

    from mlgraph.api import create_app
    from mlgraph.supervisor import FollowerProcess

    settings = _settings()
    service = Service.open(settings)
    host, port = host or settings.host, port or settings.port
    followers = None
    if settings.workers and settings.followers == "process" and service.follows_feed:
        followers = FollowerProcess()  # the app starts and stops it
    console.print(f"mlgraph on [bold]http://{host}:{port}[/bold]  store: {service.store.backend}")
    console.print(f"  curl http://{host}:{port}/healthz")
    console.print(f"  curl http://{host}:{port}/v1/summary")
    api = create_app(service, followers=followers is None, follower_process=followers)
    uvicorn.run(api, host=host, port=port, log_level="info")


@app.command()
def follow(
    parent: Annotated[
        int | None,
        typer.Option(
            help="The id of the process that started this one (serve passes its "
            "own): stop when it is gone."
        ),
    ] = None,
) -> None:
    """Follow the change feed: the enricher, the search indexer and the reverse follower.

    `mlgraph serve` starts this itself (the setting `followers`, "process" by
    default). Run it by hand beside servers whose workers are off, on another
    machine or in another container, against the same store and data directory.
    """
    import asyncio
    import logging

    from mlgraph.supervisor import follow as run

    settings = _settings()
    service = Service.open(settings)
    if not service.follows_feed:
        service.close()
        raise _fail(MlgraphError("nothing to follow: the settings enrich, search and "
                                 "reverse are all off"))  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s: %(message)s")
    if settings.follower_nice:
        os.nice(settings.follower_nice)
    asyncio.run(run(service, parent))


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


@app.command()
def percolate() -> None:
    """Catch up with the change feed for saved searches: record who entered and left each
    (the server does this as it runs, unless MLGRAPH_REVERSE=false)."""
    from mlgraph.reverse import ReverseFollower

    settings = _settings()
    try:
        with open_store(settings) as store:
            follower = ReverseFollower(store)
            with console.status("matching changes against saved searches"):
                stats = follower.catch_up()
    except MlgraphError as exc:
        raise _fail(exc) from None
    console.print(
        f"{stats.transactions} transactions matched against {len(follower.percolator)} saved "
        f"searches: {stats.entered} entered, {stats.left} left; {stats.built} searches built"
    )


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


# -- lineage, quality, similarity ----------------------------------------------------


def _uri_table(*columns: str, title: str | None = None) -> Table:
    """A table whose URI columns fold rather than truncate: a cut URI is useless."""
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


@app.command()
def impact(
    uri: str,
    depth: Annotated[int, typer.Option(help="Hops of downstream lineage to follow.")] = 5,
    limit: Annotated[int, typer.Option(help="At most this many affected entities.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What a change to an entity affects, by type, and the owners to tell."""
    from mlgraph.enrich.lineage import impact as impact_of

    try:
        with open_store(_settings()) as store:
            result = impact_of(store, uri, depth=depth, limit=limit)
    except MlgraphError as exc:
        raise _fail(exc) from None
    if as_json:
        _print_json(
            {
                "start": result.start,
                "partial": result.partial,
                "count": len(result.affected),
                "by_type": {
                    type_: [{k: v for k, v in asdict(a).items() if k != "type"} for a in items]
                    for type_, items in result.by_type.items()
                },
                "owners": [asdict(o) for o in result.owners],
            }
        )
        return
    title = f"{len(result.affected)} entities affected by {result.start}"
    table = _uri_table("type", "entity", "depth", "via", title=title)
    for type_, items in result.by_type.items():
        for a in items:
            via = "lineage" if a.via is None else f"{a.via} of {a.source}"
            table.add_row(type_, a.uri, str(a.depth), via)
    console.print(table)
    owners = _uri_table("owner", "type", "owns", title="owners to notify")
    for o in result.owners:
        owners.add_row(o.uri, o.type or "?", "\n".join(o.owns))
    console.print(owners if result.owners else "no owners to notify")
    if result.partial:
        console.print("[yellow]partial: a cap was reached, more may be affected[/yellow]")


@app.command()
def paths(
    frm: Annotated[str, typer.Argument(metavar="FROM", help="Where the paths start.")],
    to: Annotated[str, typer.Argument(metavar="TO", help="Where the paths end.")],
    lineage: Annotated[
        bool, typer.Option(help="Follow lineage only (downstream, else upstream).")
    ] = False,
    max_depth: Annotated[int, typer.Option(help="Longest path to look for.")] = 6,
    max_paths: Annotated[int, typer.Option(help="At most this many paths.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The shortest paths between two entities, each hop named as read from its start."""
    from mlgraph.enrich.lineage import paths as paths_between

    try:
        with open_store(_settings()) as store:
            result = paths_between(store, frm, to, edges="lineage" if lineage else "all",
                                   max_depth=max_depth, max_paths=max_paths)  # fmt: skip
    except MlgraphError as exc:
        raise _fail(exc) from None
    if as_json:
        _print_json(
            {
                "from": result.start,
                "to": result.end,
                "edges": result.edges,
                "length": result.length,
                "partial": result.partial,
                "paths": [[asdict(hop) for hop in path] for path in result.paths],
            }
        )
        return
    if result.partial:
        console.print("[yellow]partial: the search budget ran out before an answer[/yellow]")
    if not result.paths:
        console.print(f"no path within {max_depth} hops")
        return
    console.print(
        f"{len(result.paths)} shortest path(s) of length {result.length} "
        f"from {result.start} to {result.end}",
        soft_wrap=True,
    )
    for n, path in enumerate(result.paths, start=1):
        console.print(f"{n}. {result.start}", soft_wrap=True)
        for hop in path:
            console.print(f"     --{hop.relationship}--> {hop.to}", soft_wrap=True)


@app.command()
def similar(
    uri: str,
    k: Annotated[int, typer.Option("-k", help="How many similar models.")] = 10,
    recommend: Annotated[int, typer.Option(help="How many features to recommend.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Models (or instances) sharing features with this one, and features they suggest."""
    from mlgraph.enrich.similarity import similarity

    try:
        with open_store(_settings()) as store:
            result = similarity(store, uri, k=k, recommend=recommend)
    except MlgraphError as exc:
        raise _fail(exc) from None
    if as_json:
        _print_json(asdict(result))
        return
    console.print(f"{result.uri} ({result.type}) uses {len(result.features)} features",
                  soft_wrap=True)  # fmt: skip
    table = _uri_table("similar", "score", "shared features", title="similar")
    for s in result.similar:
        table.add_row(s.uri, f"{s.score:.3f}", "\n".join(s.shared))
    console.print(table if result.similar else "no model shares a feature with it")
    if recommend:
        table = _uri_table("feature", "score", "used by", title="recommended features")
        for r in result.recommendations:
            table.add_row(r.feature, f"{r.score:.3f}", "\n".join(r.used_by))
        console.print(table if result.recommendations else "no features to recommend")


@app.command()
def quality(
    stale_days: Annotated[float, typer.Option(help="Hydrated longer ago than this is stale.")] = 7,
    idle_days: Annotated[
        float, typer.Option(help="Unchanged for this long, with no consumers: a candidate.")
    ] = 90,
    limit: Annotated[int, typer.Option(help="Examples per section.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The quality report: missing owners and descriptions, stale, unresolved, orphans,
    deprecation candidates."""
    from datetime import timedelta

    from mlgraph.enrich.quality import quality_report

    try:
        with open_store(_settings()) as store:
            report = quality_report(store, stale_after=timedelta(days=stale_days),
                                    idle_after=timedelta(days=idle_days), limit=limit)  # fmt: skip
    except (MlgraphError, OverflowError) as exc:
        raise _fail(exc) from None
    if as_json:
        _print_json(report.to_json())
        return
    overview = Table("section", "count", "by type", title="quality")
    for s in report.sections:
        by_type = ", ".join(f"{t} {n}" for t, n in s.by_type.items())
        overview.add_row(s.title, str(s.count), by_type)
    console.print(overview)
    for s in report.sections:
        if not s.examples:
            continue
        title = (
            s.title if len(s.examples) == s.count else f"{s.title}: {len(s.examples)} of {s.count}"
        )
        table = _uri_table("entity", "type", "state", "name", "when", title=title)
        for e in s.examples:
            when = "" if e.at is None else e.at.strftime("%Y-%m-%d %H:%M")
            table.add_row(e.uri, e.type, e.state, e.name or "", when)
        console.print(table)


# -- search ----------------------------------------------------------------------------


@app.command()
def search(
    query: Annotated[
        str, typer.Argument(help='Words and filters, e.g. "ranking type:Model".')
    ] = "",
    limit: Annotated[int, typer.Option(help="Hits per page.")] = 10,
    cursor: Annotated[str | None, typer.Option(help="The next page, as printed.")] = None,
    owners: Annotated[bool, typer.Option(help="Search users and groups only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    dsl: Annotated[
        str | None,
        typer.Option("--filter", help="A saved-search filter, e.g. \"status == 'failed'\"."),
    ] = None,
) -> None:
    """Search the discovery index (filters: type:, owner:, tag:key=value, state:), narrowed
    by a saved-search --filter if given (docs/dsl.md); with --filter the words may be left out."""
    from rich.markup import escape

    from mlgraph.reverse.forward import search_filter
    from mlgraph.search import Discovery

    settings = _settings()
    try:
        with open_store(settings) as store:
            page = Discovery(settings.data_dir / "search", store).search(
                query, limit=limit, cursor=cursor, index="owners" if owners else "entities",
                where=search_filter(store.schema, dsl),
            )  # fmt: skip
    except MlgraphError as exc:
        raise _fail(exc) from None
    if as_json:
        _print_json(asdict(page))
        return
    table = _uri_table("type", "name", "uri", "score", title=f"{page.total} hits for {query!r}")
    for hit in page.hits:
        table.add_row(hit.type, escape(hit.name), hit.uri, f"{hit.score:.2f}")
    console.print(table)
    for facet, counts in page.facets.items():
        if counts:
            shown = ", ".join(f"{k} {n}" for k, n in list(counts.items())[:8])
            console.print(f"[dim]{facet}:[/dim] {escape(shown)}", soft_wrap=True)
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")


@app.command()
def reindex() -> None:
    """Build a new search index version from the store and switch to it (the old one keeps
    serving until then)."""
    from mlgraph.reverse.recompile import cut_over_hook
    from mlgraph.search import Discovery

    settings = _settings()
    try:
        with open_store(settings) as store:
            discovery = Discovery(settings.data_dir / "search", store)
            # Saved searches are compiled against the new mapping before it serves.
            discovery.versions.before_cut_over = cut_over_hook(store)
            with console.status("indexing") as status:
                report = discovery.rebuild(lambda n: status.update(f"indexed {n} entities"))
    except MlgraphError as exc:
        raise _fail(exc) from None
    console.print(
        f"search index {report.version} serves {report.documents} entities "
        f"({report.owners} users and groups) as of tx {report.position}, "
        f"built in {report.seconds:.1f} s"
        + (f"; it replaced {report.previous}" if report.previous else "")
    )


# -- saved searches --------------------------------------------------------------------

searches_cli = typer.Typer(
    help="Saved searches: save, list, members, transitions, and their upkeep (docs/reverse.md).",
    no_args_is_help=True,
)
app.add_typer(searches_cli, name="searches")

DEFAULT_OWNER = "anonymous"  # what the API calls a caller without a token


@searches_cli.command("save")
def searches_save(
    name: str,
    dsl: Annotated[str, typer.Argument(help="The filter, in the DSL (docs/dsl.md).")],
    owner: Annotated[str, typer.Option(help="Whose search it is (a token's name).")] = (
        DEFAULT_OWNER
    ),
) -> None:
    """Save a search as OWNER's NAME, or change its filter. The running service builds its
    members silently, then records who enters and leaves it."""
    from mlgraph.reverse import SavedSearches

    try:
        with open_store(_settings()) as store:
            saved = SavedSearches(store).save(owner, name, dsl)
    except MlgraphError as exc:
        raise _fail(exc) from None
    console.print(f"saved search {saved.id} ({saved.owner}/{saved.name}), rev {saved.revision}")


@searches_cli.command("list")
def searches_list(
    owner: Annotated[str | None, typer.Option(help="Only this owner's.")] = None,
) -> None:
    """Saved searches, with their filters and how many entities match each now."""
    from rich.markup import escape

    from mlgraph.reverse import SavedSearches

    with open_store(_settings()) as store:
        searches = SavedSearches(store)
        rows = [(s, searches.member_count(s.id)) for s in searches.all(owner)]
    table = Table("id", "owner", "name", "members", "filter", show_lines=True)
    for s, members in rows:
        shown = "not built yet" if s.built_tx is None else str(members)
        flag = f"\n[red]invalid:[/red] {escape(s.invalid_reason)}" if s.invalid_reason else ""
        table.add_row(str(s.id), s.owner, s.name, shown, escape(s.dsl) + flag)
    console.print(table)


@searches_cli.command("members")
def searches_members(search_id: int) -> None:
    """The entities a saved search matches now (as of the reverse follower's last round)."""
    from mlgraph.reverse import SavedSearches

    try:
        with open_store(_settings()) as store:
            searches = SavedSearches(store)
            searches.require(search_id)
            uris = searches.members(search_id)
    except MlgraphError as exc:
        raise _fail(exc) from None
    for uri in uris:
        console.print(uri, highlight=False)
    errors.print(f"{len(uris)} members")


@searches_cli.command("transitions")
def searches_transitions(
    search_id: int,
    after: Annotated[int, typer.Option(help="Only those after this transition id.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
) -> None:
    """Who entered and left a saved search, oldest first (the notifications' outbox)."""
    from mlgraph.reverse import SavedSearches

    try:
        with open_store(_settings()) as store:
            searches = SavedSearches(store)
            searches.require(search_id)
            found = searches.transitions(search_id, after=after, limit=limit)
    except MlgraphError as exc:
        raise _fail(exc) from None
    table = Table("id", "at", "tx", "transition", "entity")
    for t in found:
        table.add_row(str(t.id), t.at.isoformat(timespec="seconds"), str(t.tx), t.transition, t.uri)
    console.print(table)


@searches_cli.command("delete")
def searches_delete(search_id: int) -> None:
    """Delete a saved search and its membership (its past transitions stay)."""
    from mlgraph.reverse import SavedSearches

    with open_store(_settings()) as store:
        deleted = SavedSearches(store).delete(search_id)
    if not deleted:
        raise _fail(NotFound(f"no saved search {search_id}"))
    console.print(f"deleted saved search {search_id}")


@searches_cli.command("recompile")
def searches_recompile(
    dry_run: Annotated[bool, typer.Option(help="Say what would change; change nothing.")] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="Every search, not only those compiled elsewhere.")
    ] = False,
) -> None:
    """Compile saved searches again against the current mapping; those that no longer
    compile go to the dead letters and their owners are told."""
    from rich.markup import escape

    from mlgraph.reverse.recompile import Recompiler

    try:
        with open_store(_settings()) as store:
            report = Recompiler(store).run(dry_run=dry_run, force=all_)
    except MlgraphError as exc:
        raise _fail(exc) from None
    verb = "would be" if dry_run else "were"
    console.print(
        f"mapping {report.mapping_digest}: {report.checked} searches checked; "
        f"{len(report.refreshed)} unchanged, {len(report.rebuilt)} {verb} rebuilt, "
        f"{len(report.invalid)} {verb} newly invalid, {len(report.still_invalid)} still invalid"
    )
    for search_id, reason in sorted(report.reasons.items()):
        errors.print(f"[red]search {search_id}:[/red] {escape(reason)}")
    if report.invalid and not dry_run:
        raise typer.Exit(1)


@searches_cli.command("dead-letters")
def searches_dead_letters(
    owner: Annotated[str | None, typer.Option(help="Only this owner's.")] = None,
) -> None:
    """Saved searches that no longer compile, with why and where."""
    from rich.markup import escape

    from mlgraph.reverse.recompile import Recompiler

    with open_store(_settings()) as store:
        letters = Recompiler(store).dead_letters(owner)
    table = Table("search", "owner", "name", "since", "mapping", "reason", show_lines=True)
    for d in letters:
        since = d.at.isoformat(timespec="seconds")
        table.add_row(str(d.search), d.owner, d.name, since, d.mapping_digest, escape(d.reason))
    console.print(table)


@searches_cli.command("replay")
def searches_replay(search_id: int) -> None:
    """Compile a dead-lettered search's text again, against the mapping as it is now (after
    the mapping or the compiler was fixed; an owner who fixes the text just saves it)."""
    from mlgraph.reverse.recompile import Recompiler

    try:
        with open_store(_settings()) as store:
            outcome = Recompiler(store).replay(search_id)
    except MlgraphError as exc:
        raise _fail(exc) from None
    console.print(f"search {search_id}: {outcome}")
    if outcome in ("invalid", "still invalid"):
        raise typer.Exit(1)


# -- API tokens ------------------------------------------------------------------------

token = typer.Typer(help="API tokens (docs/api.md#auth).", no_args_is_help=True)
app.add_typer(token, name="token")


@token.command("create")
def token_create(
    scope: Annotated[
        list[str], typer.Option(help="read, write or admin (admin includes read and write).")
    ],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "api token",
) -> None:
    """Create a token and print it, once: only its hash is kept."""
    from mlgraph.api.tokens import Tokens

    try:
        with open_store(_settings()) as store:
            created = Tokens(store.engine).create(name, scope)
    except MlgraphError as exc:
        raise _fail(exc) from None
    info = created.info
    scopes = ", ".join(sorted(s.value for s in info.scopes))
    errors.print(f"token {info.id} {info.name!r} ({scopes}); shown only now:")
    print(created.secret)  # alone on stdout, for scripts: TOKEN=$(mlgraph token create …)


@token.command("list")
def token_list(
    revoked: Annotated[bool, typer.Option(help="Include revoked tokens.")] = False,
) -> None:
    """Tokens by id, with their scopes (never the tokens themselves)."""
    from mlgraph.api.tokens import Tokens

    with open_store(_settings()) as store:
        found = Tokens(store.engine).listing(include_revoked=revoked)
    table = Table("id", "name", "token", "scopes", "created", "revoked")
    for t in found:
        scopes = " ".join(sorted(s.value for s in t.scopes))
        revoked_at = t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else ""
        created = t.created_at.isoformat(timespec="seconds")
        table.add_row(str(t.id), t.name, f"{t.prefix}…", scopes, created, revoked_at)
    console.print(table)


@token.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token for good (a running server notices within a few seconds)."""
    from mlgraph.api.tokens import Tokens

    try:
        with open_store(_settings()) as store:
            info = Tokens(store.engine).revoke(token_id)
    except MlgraphError as exc:
        raise _fail(exc) from None
    console.print(f"revoked token {info.id} {info.name!r}")


# -- webhooks of saved searches ----------------------------------------------------------

webhooks_cli = typer.Typer(
    help="Webhooks of saved searches and their deliveries (docs/reverse.md#notifications).",
    no_args_is_help=True,
)
app.add_typer(webhooks_cli, name="webhooks")


@webhooks_cli.command("list")
def webhooks_list(
    search: Annotated[int | None, typer.Option(help="Only this saved search's.")] = None,
) -> None:
    """Webhooks, with their deliveries counted by status."""
    from mlgraph.reverse.delivery import Webhooks

    with open_store(_settings()) as store:
        hooks = Webhooks(store)
        rows = [(h, hooks.counts(h.id)) for h in hooks.listing(search)]
    if not rows:
        console.print("no webhooks")
    # One webhook per entry, whole URLs and reasons: a table would cut them.
    for h, n in rows:
        counts = "  ".join(f"{status}={count}" for status, count in n.items())
        console.print(f"[bold]{h.id}[/bold]  search {h.search}  {h.url}  owner={h.owner}  "
                      f"{counts}", soft_wrap=True)  # fmt: skip
        if not h.active:
            console.print(f"    stopped: {h.disabled_reason}", soft_wrap=True)


@webhooks_cli.command("deliveries")
def webhooks_deliveries(
    webhook: int,
    status: Annotated[
        str | None, typer.Option(help="pending, delivered, dead or withheld.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """A webhook's deliveries, oldest first, with the last error."""
    from mlgraph.reverse.delivery.webhooks import STATUSES, Webhooks

    if status is not None and status not in STATUSES:
        raise _fail(MlgraphError(f"--status must be one of {', '.join(STATUSES)}"))
    with open_store(_settings()) as store:
        found = Webhooks(store).deliveries(webhook, status, limit)
    for d in found:
        console.print(
            f"[bold]{d.id}[/bold]  transition {d.transition}  {d.status}  "
            f"attempts={d.attempts}", soft_wrap=True,
        )  # fmt: skip
        if d.last_error:
            console.print(f"    {d.last_error}", soft_wrap=True)
    if not found:
        console.print("no deliveries")


@webhooks_cli.command("replay")
def webhooks_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Deliveries (default: all dead).")] = None,
    webhook: Annotated[int | None, typer.Option(help="Only this webhook's.")] = None,
    delivered: Annotated[bool, typer.Option(help="Send delivered ones again too.")] = False,
) -> None:
    """Make dead deliveries pending again, with their delivery ids: the service sends them."""
    from mlgraph.reverse.delivery import Webhooks

    try:
        with open_store(_settings()) as store:
            hooks = Webhooks(store)
            if webhook is not None:
                hooks.require(webhook)
            replayed = hooks.replay(webhook, ids or None, delivered_too=delivered)
    except MlgraphError as exc:
        raise _fail(exc) from None
    console.print(f"replayed {replayed}; a running service sends them within a second")


@webhooks_cli.command("delete")
def webhooks_delete(webhook: int) -> None:
    """Delete a webhook and its deliveries."""
    from mlgraph.reverse.delivery import Webhooks

    with open_store(_settings()) as store:
        gone = Webhooks(store).delete(webhook)
    if not gone:
        raise _fail(MlgraphError(f"no webhook {webhook}"))
    console.print(f"deleted webhook {webhook}")


if __name__ == "__main__":
    app()
