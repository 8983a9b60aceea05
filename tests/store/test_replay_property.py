"""Property: reading ``as_of=t`` equals replaying the transactions up to t in memory.

The model below is the store's contract written as plainly as possible: an
entity upsert replaces the entity and the relationships it states, unknown
targets become stubs, a retraction removes the entity and its own edges (and
leaves a stub where others still point to it), explicit edges come and go.
Hypothesis drives random sequences of such transactions through the real
store (SQLite and PostgreSQL) and compares every entity and every neighbour
list at every transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.catalog import Entity, LifecycleState, Schema, load_schema
from mlgraph.catalog.validation import OWNERS, target_type
from mlgraph.store import Edge, Store
from tests.builders import uri
from tests.conftest import StoreFactory

SCHEMA = load_schema()
USERS = [uri("User", u) for u in ("u0", "u1")]
DATASETS = [uri("Dataset", d) for d in ("d0", "d1")]
FEATURES = [uri("Feature", f) for f in ("f0", "f1")]
INSTANCES = [uri("ModelInstance", m) for m in ("m0", "m1")]
UNIVERSE = USERS + DATASETS + FEATURES + INSTANCES

Key = tuple[str, str, str]  # (src uri, label, dst uri)


@dataclass
class Model:
    """The graph as plain dictionaries."""

    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[Key, tuple[str, Any]] = field(default_factory=dict)  # -> (origin, provenance)

    def copy(self) -> Model:
        return Model(dict(self.entities), dict(self.edges))

    def ensure(self, rel_label: str, dst: str) -> None:
        if dst not in self.entities:
            rel = SCHEMA.edge(rel_label)
            self.entities[dst] = {"type": target_type(SCHEMA, rel, dst, "model"), "stub": True}

    def upsert(self, e: Entity) -> None:
        self.entities[e.uri] = {
            "type": e.type, "stub": False, "name": e.name, "description": e.description,
            "tags": dict(e.tags), "attributes": dict(e.attributes),
        }  # fmt: skip
        stated = {OWNERS: e.owners, **e.references}
        etype = SCHEMA.type(e.type)
        for name, targets in stated.items():
            label = etype.relationship(name).labels[0]
            for key in [k for k, v in self.edges.items() if k[:2] == (e.uri, label)]:
                if self.edges[key][0] == "asserted":
                    del self.edges[key]
            for dst in targets:
                self.ensure(label, dst)
                self.edges[(e.uri, label, dst)] = ("asserted", None)

    def retract(self, target: str) -> None:
        if target not in self.entities:
            return
        for key in [k for k in self.edges if k[0] == target]:
            del self.edges[key]
        if any(k[2] == target for k in self.edges):
            # Still referenced: the referrers' edges stay, and it stays as a stub.
            self.entities[target] = {"type": self.entities[target]["type"], "stub": True}
        else:
            del self.entities[target]

    def label(self, edge: Edge) -> str:
        return SCHEMA.type(self.entities[edge.src]["type"]).relationship(edge.rel).labels[0]

    def assert_edge(self, edge: Edge) -> None:
        label = self.label(edge)
        self.ensure(label, edge.dst)
        self.edges[(edge.src, label, edge.dst)] = (edge.origin, edge.provenance)

    def retract_edge(self, edge: Edge) -> None:
        self.edges.pop((edge.src, self.label(edge), edge.dst), None)

    def expected(self, target: str) -> Entity | None:
        e = self.entities.get(target)
        if e is None:
            return None
        refs: dict[str, list[str]] = {}
        for (src, label, dst), (origin, _) in self.edges.items():
            if src == target and origin == "asserted":
                refs.setdefault(SCHEMA.edge(label).name, []).append(dst)
        owners = tuple(sorted(refs.pop(OWNERS, [])))
        references = {k: tuple(sorted(v)) for k, v in sorted(refs.items())}
        if e["stub"]:
            return Entity(uri=target, type=e["type"], state=LifecycleState.STUB,
                          owners=owners, references=references)  # fmt: skip
        return Entity(
            uri=target, type=e["type"], name=e["name"], description=e["description"],
            tags=e["tags"], attributes=e["attributes"], owners=owners, references=references,
        )  # fmt: skip

    def touching(self, target: str) -> set[tuple[str, str, str]]:
        out = set()
        for (src, label, dst), (origin, _) in self.edges.items():
            if src == target:
                out.add((label, dst, origin))
            if dst == target:
                out.add((label, src, origin))
        return out


def type_of(target: str) -> str:
    kind = target.split("/")[2]
    return {"user": "User", "dataset": "Dataset", "feature": "Feature", "model": "ModelInstance"}[
        kind
    ]


@st.composite
def entities(draw: st.DrawFn) -> Entity:
    target = draw(st.sampled_from(DATASETS + FEATURES + INSTANCES + USERS))
    type_name = type_of(target)
    refs: dict[str, tuple[str, ...]] = {}
    if type_name == "Feature" and draw(st.integers(0, 3)) > 0:
        refs["data"] = tuple(draw(st.lists(st.sampled_from(DATASETS), max_size=2)))
    if type_name == "ModelInstance" and draw(st.booleans()):
        refs["features"] = tuple(draw(st.lists(st.sampled_from(FEATURES), max_size=3)))
    attributes: dict[str, Any] = {}
    if type_name == "Dataset" and draw(st.booleans()):
        attributes["format"] = draw(st.sampled_from(["parquet", "csv"]))
    return Entity(
        uri=target,
        type=type_name,
        name=draw(st.sampled_from(["a", "b", None])),
        description=draw(st.sampled_from([None, "x", "y"])),
        owners=tuple(draw(st.lists(st.sampled_from(USERS), max_size=2))),
        tags=draw(st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["p", "q"]),
                                  max_size=2)),
        attributes=attributes,
        references=refs,
    )  # fmt: skip


# Every run starts from hydrated features, so that explicit edges from them are
# always valid and interleave with later upserts that restate the same edges.
SEED = [Entity(uri=f, type="Feature", name=f[-2:]) for f in FEATURES]

edges = st.builds(
    Edge,
    src=st.sampled_from(FEATURES),
    rel=st.just("data"),
    dst=st.sampled_from(DATASETS),
    origin=st.sampled_from(["asserted", "inferred"]),
    provenance=st.sampled_from([None, {"rule": "r1"}, {"rule": "r2"}]),
)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.lists(entities(), min_size=1, max_size=3,
                                              unique_by=lambda e: e.uri)),
        st.tuples(st.just("retract"), st.sampled_from(UNIVERSE)),
        st.tuples(st.just("assert_edge"), edges),
        st.tuples(st.just("retract_edge"), edges),
    ),
    min_size=1,
    max_size=15,
).map(lambda rest: [("upsert", SEED), *rest])  # fmt: skip


def apply(store: Store, model: Model, step: tuple[str, Any]) -> int | None:
    """Apply one step to both; return the tx id, or None when nothing changed."""
    kind, arg = step
    if kind == "upsert":
        for e in arg:
            model.upsert(e)
        return store.transact(upsert=arg).tx
    if kind == "retract":
        model.retract(arg)
        return store.transact(retract=[arg]).tx
    if arg.src not in model.entities:
        return None  # the store refuses an edge from an unknown source (tested elsewhere)
    if kind == "assert_edge":
        model.assert_edge(arg)
        return store.transact(assert_edges=[arg]).tx
    model.retract_edge(arg)
    return store.transact(retract_edges=[arg]).tx


def check(store: Store, model: Model, as_of: int | None) -> None:
    for target in UNIVERSE:
        assert store.get(target, as_of=as_of) == model.expected(target), (target, as_of)
        got = {(n.label, n.uri, n.origin) for n in store.neighbors(target, as_of=as_of)}
        assert got == model.touching(target), (target, as_of)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps)
def test_as_of_reads_equal_a_replay(
    store_factory: StoreFactory, plan: list[tuple[str, Any]]
) -> None:
    with store_factory() as store:
        model = Model()
        snapshots: list[tuple[int, Model]] = []
        for step in plan:
            before = model.copy()
            tx = apply(store, model, step)
            if tx is None:
                assert model == before, f"the store saw no change but the model did: {step}"
            else:
                snapshots.append((tx, model.copy()))
        assert [tx for tx, _ in snapshots] == list(range(1, len(snapshots) + 1))
        for tx, snapshot in snapshots:
            check(store, snapshot, tx)
        check(store, model, None)


def test_the_schema_used_by_the_model_is_the_builtin(schema: Schema) -> None:
    assert SCHEMA.labels == schema.labels
