"""The in-memory graph's arrays and walk against a plain oracle (no database)."""

from __future__ import annotations

from array import array
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from mlgraph.store.memory_graph import (
    Adjacency,
    NodesBuilder,
    breadth_first,
    label_mask,
)

Key = tuple[int, int, int]  # (src, label, dst)
NODES = 12
LABELS = 4


def csr(edges: set[Key], near: int, far: int) -> Adjacency:
    """The arrays for ``edges`` seen from ``near`` (0 = src, 2 = dst)."""
    ordered = sorted((e[near], e[1], e[far]) for e in edges)
    counts = [0] * NODES
    for n, _, _ in ordered:
        counts[n] += 1
    offsets = array("q", [0])
    for c in counts:
        offsets.append(offsets[-1] + c)
    return Adjacency(
        offsets, array("i", [f for _, _, f in ordered]), array("H", [lb for _, lb, _ in ordered])
    )


def oracle(
    edges: set[Key], start: int, out: set[int], inward: set[int], depth: int
) -> dict[int, int]:
    """Nearest depth of every node within ``depth`` hops: a textbook BFS."""
    found = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if found[node] == depth:
            continue
        nxt = [d for s, lb, d in edges if s == node and lb in out]
        nxt += [s for s, lb, d in edges if d == node and lb in inward]
        for n in nxt:
            if n not in found:
                found[n] = found[node] + 1
                queue.append(n)
    del found[start]
    return found


keys = st.tuples(
    st.integers(0, NODES - 1), st.integers(1, LABELS), st.integers(0, NODES - 1)
).filter(lambda k: k[0] != k[2])
label_sets = st.sets(st.integers(1, LABELS))


@settings(max_examples=300, deadline=None)
@given(
    base=st.sets(keys, max_size=30),
    edits=st.lists(st.tuples(st.booleans(), keys), max_size=20),
    start=st.integers(0, NODES - 1),
    out=label_sets,
    inward=label_sets,
    depth=st.integers(1, 5),
)
def test_walk_with_edits_equals_a_bfs_over_the_edited_edges(
    base: set[Key],
    edits: list[tuple[bool, Key]],
    start: int,
    out: set[int],
    inward: set[int],
    depth: int,
) -> None:
    forward, backward = csr(base, 0, 2), csr(base, 2, 0)
    edges = set(base)
    for add, (s, lb, d) in edits:
        if add:
            forward.add(s, lb, d)
            backward.add(d, lb, s)
            edges.add((s, lb, d))
        else:
            forward.remove(s, lb, d)
            backward.remove(d, lb, s)
            edges.discard((s, lb, d))
    levels, cut = breadth_first(
        forward,
        backward,
        start,
        out_mask=label_mask(out, LABELS + 1) if out else None,
        in_mask=label_mask(inward, LABELS + 1) if inward else None,
        depth=depth,
        budget=1000,
    )
    got = {n: d for d, level in enumerate(levels, start=1) for n in level}
    assert sum(map(len, levels)) == len(got)  # each node once
    assert got == oracle(edges, start, out, inward, depth)
    assert not cut


def test_edits_are_idempotent_and_the_last_one_wins() -> None:
    adj = csr({(0, 1, 1)}, 0, 2)
    mask = label_mask([1], 2)

    def far(node: int) -> set[int]:
        into: set[int] = set()
        adj.extend(node, mask, into)
        return into

    adj.add(0, 1, 1)  # already there: replaying it changes nothing
    assert far(0) == {1}
    adj.remove(0, 1, 1)
    adj.remove(0, 1, 1)
    assert far(0) == set()
    adj.add(0, 1, 1)
    assert far(0) == {1}
    adj.add(3, 1, 20)  # beyond the arrays: a node created after the build
    assert far(3) == {20}


def test_the_budget_cuts_the_walk_and_says_so() -> None:
    star = {(0, 1, n) for n in range(1, 11)}
    forward, backward = csr(star, 0, 2), csr(star, 2, 0)
    mask = label_mask([1], 2)
    levels, cut = breadth_first(
        forward, backward, 0, out_mask=mask, in_mask=None, depth=3, budget=5
    )
    # The start and four more make five visits: the budget is spent.
    assert cut and levels == [{1, 2, 3, 4}]
    levels, cut = breadth_first(
        forward, backward, 0, out_mask=mask, in_mask=None, depth=3, budget=12
    )
    assert not cut and levels == [set(range(1, 11))]


def test_nodes_keep_uri_type_and_name_with_gaps_and_changes() -> None:
    builder = NodesBuilder()
    builder.add(1, "aip://dataset/x/a", "Dataset", "a")
    builder.add(3, "aip://dataset/x/c", None, None)  # id 2 was purged
    nodes = builder.build()
    assert nodes.get(1) == ("aip://dataset/x/a", "Dataset", "a")
    assert nodes.get(2) is None and nodes.get(0) is None and nodes.get(9) is None
    assert nodes.get(3) == ("aip://dataset/x/c", None, None)
    nodes.set(3, ("aip://dataset/x/c", "Dataset", ""))
    nodes.set(9, ("aip://dataset/x/n", "Feature", "n"))
    assert nodes.get(3) == ("aip://dataset/x/c", "Dataset", "")
    assert nodes.type_name(9) == "Feature" and nodes.type_name(1) == "Dataset"
    assert nodes.nbytes() > 0


@settings(max_examples=100, deadline=None)
@given(
    ids=st.one_of(
        st.tuples(st.integers(0, 5), st.integers(0, 25)).map(lambda a: list(range(a[0], sum(a)))),
        st.lists(st.integers(1, 40), unique=True, max_size=25).map(sorted),
    ),
    names=st.lists(st.none() | st.text(max_size=4), min_size=25, max_size=25),
    cut=st.integers(0, 25),
)
def test_nodes_read_in_chunks_equal_nodes_added_one_by_one(
    ids: list[int], names: list[str | None], cut: int
) -> None:
    rows = [(i, f"aip://dataset/x/é{i}", "Dataset" if i % 3 else None, names[k])
            for k, i in enumerate(ids)]  # fmt: skip
    one_by_one, chunked = NodesBuilder(), NodesBuilder()
    for row in rows:
        one_by_one.add(*row)
    chunked.add_many(rows[:cut])  # a run of consecutive ids goes in a column at a time
    chunked.add_many(rows[cut:])
    a, b = one_by_one.build(), chunked.build()
    for node in range(45):
        assert a.get(node) == b.get(node)
        assert b.get(node) == (next((r[1:] for r in rows if r[0] == node), None))
