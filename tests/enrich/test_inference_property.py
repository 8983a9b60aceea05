"""Incremental maintenance of inferred edges equals deriving them all again, always.

Random sequences of edge asserts and retracts (and entities retracted and
re-created) over a small ML graph; after each, the enricher follows the feed.
At the end the inferred edges must equal (a) a full re-derivation, which must
find nothing to change, and (b) an oracle computed here in plain Python from
the asserted edges, independently of the enricher's code.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.catalog import Entity
from mlgraph.enrich.enricher import Enricher
from mlgraph.enrich.inference import Inference
from mlgraph.store import Edge, Store
from tests.conftest import StoreFactory

NODES = {
    "ModelInstance": ["aip://model/registry/i0", "aip://model/registry/i1",
                      "aip://model/registry/i2"],
    "Model": ["aip://model/registry/m0", "aip://model/registry/m1"],
    "PipelineRun": ["aip://pipeline-run/orchestrator/r0", "aip://pipeline-run/orchestrator/r1"],
    "AbTestCell": ["aip://ab-test-cell/experimentation/t0-1",
                   "aip://ab-test-cell/experimentation/t0-2",
                   "aip://ab-test-cell/experimentation/t1-1"],
    "AbTest": ["aip://ab-test/experimentation/t0", "aip://ab-test/experimentation/t1"],
    "Feature": ["aip://feature/featurestore/f0", "aip://feature/featurestore/f1"],
    "Pipeline": ["aip://pipeline/orchestrator/p0", "aip://pipeline/orchestrator/p1"],
}  # fmt: skip
TYPE_OF = {uri: type_ for type_, uris in NODES.items() for uri in uris}
# Asserted relationships the rules read: (source type, name, target type).
ASSERTED = [
    ("ModelInstance", "pipeline_run", "PipelineRun"),
    ("ModelInstance", "model", "Model"),
    ("ModelInstance", "features", "Feature"),
    ("PipelineRun", "ab_test_cells", "AbTestCell"),
    ("AbTestCell", "test", "AbTest"),
    ("PipelineRun", "pipeline", "Pipeline"),
]

edges = st.sampled_from(ASSERTED).flatmap(
    lambda r: st.tuples(st.sampled_from(NODES[r[0]]), st.just(r[1]), st.sampled_from(NODES[r[2]]))
)
ops = st.one_of(
    st.tuples(st.just("assert"), edges),
    st.tuples(st.just("retract"), edges),
    st.tuples(st.just("recreate"), st.sampled_from(sorted(TYPE_OF))),
)


def entity(uri: str) -> Entity:
    return Entity(uri=uri, type=TYPE_OF[uri], name=uri.rsplit("/", 1)[1])


def oracle(asserted: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """The four rules of types.yaml, composed by hand."""

    def out(src: str, rel: str) -> set[str]:
        return {d for s, r, d in asserted if s == src and r == rel}

    inferred: set[tuple[str, str, str]] = set()
    instance_tests: dict[str, set[str]] = {}
    for i in NODES["ModelInstance"]:
        tests = {t for r in out(i, "pipeline_run") for c in out(r, "ab_test_cells")
                 for t in out(c, "test")}  # fmt: skip
        instance_tests[i] = tests
        inferred |= {(i, "associated_ab_tests", t) for t in tests}
    for i, tests in instance_tests.items():
        for m in out(i, "model"):
            inferred |= {(m, "associated_ab_tests", t) for t in tests}
    for i in NODES["ModelInstance"]:
        inferred |= {(i, "pipeline", p) for r in out(i, "pipeline_run") for p in out(r, "pipeline")}
        for f in out(i, "features"):
            inferred |= {(f, "consuming_models", m) for m in out(i, "model")}
    return inferred


def stored_inferred(store: Store) -> set[tuple[str, str, str]]:
    found = set()
    for rule in store.schema.rules:
        for src, dst in store.inferred_edges(rule.label):
            found.add((src, rule.relationship.name, dst))
    return found


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ops, min_size=1, max_size=25))
def test_incremental_maintenance_equals_full_rederivation(
    store_factory: StoreFactory, plan: list[tuple[str, Any]]
) -> None:
    with store_factory() as store:
        store.transact(upsert=[entity(uri) for uri in TYPE_OF])
        enricher = Enricher(store)
        asserted: set[tuple[str, str, str]] = set()
        for op, arg in plan:
            if op == "assert":
                store.transact(assert_edges=[Edge(*arg)])
                asserted.add(arg)
            elif op == "retract":
                store.transact(retract_edges=[Edge(*arg)])
                asserted.discard(arg)
            else:
                # Retracted, its own edges go (it may stay a stub while referenced);
                # re-created, it starts with none.
                store.retract(arg)
                store.transact(upsert=[entity(arg)])
                asserted = {e for e in asserted if e[0] != arg}
            enricher.catch_up()
        assert stored_inferred(store) == oracle(asserted)
        assert Inference(store).rederive(dry_run=True).changes == 0
