"""Saved searches compiled again when the mapping changes, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mlgraph.catalog import load_schema
from mlgraph.errors import ValidationError
from mlgraph.reverse import ReverseFollower, SavedSearches
from mlgraph.reverse import tables as rt
from mlgraph.reverse.recompile import Recompiler, recompile_if_stale
from mlgraph.search import Discovery
from mlgraph.search.filter_fields import document_mapping
from mlgraph.store import Store
from mlgraph.store.engine import writing
from tests.builders import entity, uri

TYPES = Path(__file__).parents[2] / "src" / "mlgraph" / "catalog" / "types.yaml"
RANKING = uri("Model", "ranking")


def variant(tmp_path: Path, old: str, new: str) -> Path:
    """The built-in schema with one line of the Model type changed (or removed)."""
    text = TYPES.read_text()
    assert text.count(old) == 1
    path = tmp_path / "types.yaml"
    path.write_text(text.replace(old, new))
    return path


def without_framework(tmp_path: Path) -> Path:
    return variant(tmp_path, "      framework: string\n", "")


@pytest.fixture
def searches(store: Store) -> dict[str, int]:
    """Three saved searches, their membership built, and one model matching each."""
    saved = SavedSearches(store)
    ids = {
        "torch": saved.save(
            "alice", "torch models", "type == 'Model' AND\nframework == 'torch'"
        ).id,
        "models": saved.save("bob", "models", "type == 'Model'").id,
        "ranking": saved.save("carol", "ranking", "task == 'ranking'").id,
    }
    model = entity("Model", "ranking", attributes={"framework": "torch", "task": "ranking"})
    store.transact(upsert=[model])
    ReverseFollower(store).catch_up()
    for search_id in ids.values():
        assert saved.members(search_id) == [RANKING]
    return ids


def reopened(store: Store, schema_file: Path) -> Store:
    """The same database, opened with another type schema (as a restart with a new one)."""
    url = store.engine.url.render_as_string(hide_password=False)
    return Store.open(url, load_schema(schema_file))


def dead_letter_rows(store: Store) -> list[sa.Row[tuple[object, ...]]]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(rt.dead_letter).order_by(rt.dead_letter.c.id)))


def test_a_search_on_a_removed_field_goes_to_the_dead_letters(
    store: Store, searches: dict[str, int], tmp_path: Path
) -> None:
    with reopened(store, without_framework(tmp_path)) as changed:
        recompiler = Recompiler(changed)
        assert recompiler.stale() == 3
        report = recompiler.run()
        assert report.invalid == [searches["torch"]]
        assert sorted(report.refreshed) == sorted([searches["models"], searches["ranking"]])
        assert recompiler.stale() == 0

        [letter] = recompiler.dead_letters()
        assert (letter.search, letter.owner, letter.name) == (
            searches["torch"],
            "alice",
            "torch models",
        )
        assert letter.dsl == "type == 'Model' AND\nframework == 'torch'"
        assert "framework" in letter.reason and "line 2, column 1" in letter.reason
        assert letter.position == len("type == 'Model' AND\n")
        assert letter.mapping_digest == document_mapping(changed.schema).digest

        saved = SavedSearches(changed)
        torch = saved.require(searches["torch"])
        assert torch.invalid_reason == letter.reason and torch.dsl == letter.dsl
        assert saved.members(searches["torch"]) == []
        [told] = [t for t in saved.transitions() if t.transition == "invalid"]
        assert (told.search, told.uri, told.tx) == (searches["torch"], "", changed.last_tx())
        with pytest.raises(ValidationError, match="no longer compiles"):
            saved.compiled(searches["torch"])

        # The others keep working; the invalid one takes no part.
        follower = ReverseFollower(changed)
        follower.catch_up()
        assert searches["torch"] not in follower.percolator
        other = entity("Model", "other", attributes={"task": "ranking"})
        changed.transact(upsert=[other])
        follower.catch_up()
        assert saved.members(searches["ranking"]) == sorted([RANKING, other.uri])
        assert saved.members(searches["torch"]) == []

        # Run again: nothing stale, nobody told twice.
        assert recompiler.run().checked == 0
        assert recompile_if_stale(changed) is None
        assert len([t for t in saved.transitions() if t.transition == "invalid"]) == 1

        # The owner fixes the text: the dead letter goes, the search is built again.
        saved.save("alice", "torch models", "type == 'Model' AND task == 'ranking'")
        assert recompiler.dead_letters() == []
        assert saved.require(searches["torch"]).invalid_reason is None
        follower.catch_up()
        assert saved.members(searches["torch"]) == sorted([RANKING, other.uri])


def test_a_dry_run_changes_nothing(store: Store, searches: dict[str, int], tmp_path: Path) -> None:
    with reopened(store, without_framework(tmp_path)) as changed:
        recompiler = Recompiler(changed)
        report = recompiler.run(dry_run=True)
        assert report.invalid == [searches["torch"]] and report.dry_run
        assert "framework" in report.reasons[searches["torch"]]
        assert recompiler.stale() == 3
        assert dead_letter_rows(changed) == []
        assert SavedSearches(changed).require(searches["torch"]).invalid_reason is None


def test_a_search_whose_meaning_changed_is_rebuilt(
    store: Store, searches: dict[str, int], tmp_path: Path
) -> None:
    saved = SavedSearches(store)
    before = {i: saved.require(i).revision for i in searches.values()}
    # `task` becomes a list of keywords: the same text, another tree.
    with reopened(store, variant(tmp_path, "      task: string\n", "      task: strings\n")) as s:
        report = Recompiler(s).run()
        assert report.rebuilt == [searches["ranking"]]
        assert sorted(report.refreshed) == sorted([searches["torch"], searches["models"]])
        after = SavedSearches(s)
        ranking = after.require(searches["ranking"])
        assert ranking.revision > before[searches["ranking"]] and ranking.built_tx is None
        assert after.require(searches["models"]).revision == before[searches["models"]]
        ReverseFollower(s).catch_up()  # rebuilt silently
        assert after.members(searches["ranking"]) == [RANKING]
        assert after.require(searches["ranking"]).built_tx is not None
        assert [t.transition for t in after.transitions()] == ["entered"] * 3


def test_replaying_a_dead_letter_once_the_mapping_allows_it(
    store: Store, searches: dict[str, int], tmp_path: Path
) -> None:
    with reopened(store, without_framework(tmp_path)) as changed:
        Recompiler(changed).run()
        assert Recompiler(changed).replay(searches["torch"]) == "still invalid"
        assert len(dead_letter_rows(changed)) == 1
    # The field is back (the same mapping as before): it compiles again.
    recompiler = Recompiler(store)
    assert recompiler.replay(searches["torch"]) == "rebuilt"
    assert recompiler.dead_letters() == []
    ReverseFollower(store).catch_up()
    assert SavedSearches(store).members(searches["torch"]) == [RANKING]


def test_a_reindex_cut_over_recompiles_first(
    store: Store, searches: dict[str, int], tmp_path: Path
) -> None:
    with reopened(store, without_framework(tmp_path)) as changed:
        discovery = Discovery(tmp_path / "search", changed)
        calls: list[str] = []

        def hook(version: object) -> None:
            calls.append(str(getattr(version, "name", "")))
            assert discovery.versions.current() is None  # not cut over yet
            from mlgraph.reverse.recompile import cut_over_hook

            cut_over_hook(changed)(version)

        discovery.versions.before_cut_over = hook
        report = discovery.rebuild()
        assert calls == [report.version]
        assert [d.search for d in Recompiler(changed).dead_letters()] == [searches["torch"]]


def test_a_failing_hook_stops_the_cut_over(store: Store, tmp_path: Path) -> None:
    discovery = Discovery(tmp_path / "search", store)

    def refuse(_version: object) -> None:
        raise RuntimeError("recompiling failed")

    discovery.versions.before_cut_over = refuse
    with pytest.raises(RuntimeError, match="recompiling failed"):
        discovery.rebuild()
    assert discovery.versions.current() is None


def test_deleting_an_invalid_search_deletes_its_dead_letter(
    store: Store, searches: dict[str, int], tmp_path: Path
) -> None:
    with reopened(store, without_framework(tmp_path)) as changed:
        Recompiler(changed).run()
        assert SavedSearches(changed).delete(searches["torch"])
        assert dead_letter_rows(changed) == []
        with writing(changed.engine) as conn:  # its notification stays, as history
            told = conn.execute(
                sa.select(rt.transition.c.transition).where(
                    rt.transition.c.search == searches["torch"]
                )
            ).scalars()
            assert "invalid" in list(told)
