"""The graph in compact arrays: edges per node (CSR) and each node's URI, type and name.

Pure data structures, no database: ``graph_cache`` fills them from the store
and keeps them exact by following the change feed.

Edges of one direction are kept as CSR: ``targets[offsets[n]:offsets[n + 1]]``
are the far ends of node ``n``'s edges and ``labels`` (same slice) their label
ids. Edits since the arrays were built go to two small per-node sets (added,
removed), so a commit costs a dict update, not a rebuild. A walk filters a
node's edges by label with ``itertools.compress`` over a byte mask, so the
per-edge work runs in C.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Collection, Iterable, Sequence
from itertools import accumulate, compress

EdgeEnd = tuple[int, int]  # (label id, far node id)

NodeInfo = tuple[str, str | None, str | None]  # uri, type (None: no entity now), name


def label_mask(labels: Collection[int], size: int) -> bytes:
    """A byte per label id: 1 for the labels to follow."""
    mask = bytearray(max([size, *(label + 1 for label in labels)]))
    for label in labels:
        mask[label] = 1
    return bytes(mask)


class Adjacency:
    """One direction's edges: node -> (label, far node), in CSR arrays plus edits."""

    __slots__ = ("added", "labels", "offsets", "removed", "targets")

    def __init__(self, offsets: array[int], targets: array[int], labels: array[int]) -> None:
        self.offsets = offsets
        self.targets = targets
        self.labels = labels
        self.added: dict[int, set[EdgeEnd]] = {}
        self.removed: dict[int, set[EdgeEnd]] = {}

    @property
    def base_edges(self) -> int:
        return len(self.targets)

    @property
    def edits(self) -> int:
        return sum(map(len, self.added.values())) + sum(map(len, self.removed.values()))

    def add(self, near: int, label: int, far: int) -> None:
        # Idempotent, so replaying a change the arrays already hold is harmless.
        end = (label, far)
        gone = self.removed.get(near)
        if gone is not None:
            gone.discard(end)
        self.added.setdefault(near, set()).add(end)

    def remove(self, near: int, label: int, far: int) -> None:
        end = (label, far)
        extra = self.added.get(near)
        if extra is not None:
            extra.discard(end)
        self.removed.setdefault(near, set()).add(end)

    def extend(self, node: int, mask: bytes, into: set[int]) -> None:
        """Add to ``into`` the far ends of ``node``'s edges whose label ``mask`` selects."""
        offsets = self.offsets
        if node + 1 < len(offsets):
            start, end = offsets[node], offsets[node + 1]
            if start != end:
                targets = self.targets[start:end]
                labels = self.labels[start:end]
                gone = self.removed.get(node)
                if gone:
                    into.update(
                        far
                        for label, far in zip(labels, targets, strict=True)
                        if mask[label] and (label, far) not in gone
                    )
                else:
                    into.update(compress(targets, map(mask.__getitem__, labels)))
        extra = self.added.get(node)
        if extra:
            size = len(mask)
            into.update(far for label, far in extra if label < size and mask[label])

    def nbytes(self) -> int:
        arrays = (self.offsets, self.targets, self.labels)
        edits = self.edits * 100  # a tuple in a set, roughly
        return sum(a.itemsize * len(a) for a in arrays) + edits


class Nodes:
    """Each node id's URI, type and name: two long strings sliced by offsets.

    A million URIs as separate ``str`` objects take about 100 bytes each; as one
    string and an offset they take their length plus 8. Changes since the
    build go to a dict that takes precedence.
    """

    __slots__ = (
        "changed",
        "name_offsets",
        "named",
        "names",
        "type_of",
        "types",
        "uri_offsets",
        "uris",
    )

    def __init__(
        self,
        uris: str,
        uri_offsets: array[int],
        names: str,
        name_offsets: array[int],
        named: bytearray,
        type_of: array[int],
        types: list[str | None],
    ) -> None:
        self.uris = uris
        self.uri_offsets = uri_offsets
        self.names = names
        self.name_offsets = name_offsets
        self.named = named  # 1 where the name is not None
        self.type_of = type_of  # index into types; 0 is None (no entity now)
        self.types = types
        self.changed: dict[int, NodeInfo | None] = {}  # None: the node is gone

    def __len__(self) -> int:
        return len(self.type_of)

    def set(self, node: int, info: NodeInfo) -> None:
        self.changed[node] = info

    def get(self, node: int) -> NodeInfo | None:
        """URI, type and name of ``node``; None if the node is unknown."""
        if node in self.changed:
            return self.changed[node]
        if not 0 <= node < len(self.type_of):
            return None
        u = self.uri_offsets
        uri = self.uris[u[node] : u[node + 1]]
        if not uri:
            return None  # a gap in the ids (a purged node)
        name = None
        if self.named[node]:
            n = self.name_offsets
            name = self.names[n[node] : n[node + 1]]
        return uri, self.types[self.type_of[node]], name

    def type_name(self, node: int) -> str | None:
        if node in self.changed:
            info = self.changed[node]
            return None if info is None else info[1]
        if 0 <= node < len(self.type_of):
            return self.types[self.type_of[node]]
        return None

    def nbytes(self) -> int:
        arrays = (self.uri_offsets, self.name_offsets, self.type_of)
        return (
            sys.getsizeof(self.uris)
            + sys.getsizeof(self.names)
            + len(self.named)
            + sum(a.itemsize * len(a) for a in arrays)
            + 250 * len(self.changed)  # key, tuple and strings, roughly
        )


class NodesBuilder:
    """Collects ``(id, uri, type, name)`` rows in id order into ``Nodes``."""

    def __init__(self) -> None:
        self.uri_parts: list[str] = []
        self.name_parts: list[str] = []
        self.uri_offsets = array("q", [0])
        self.name_offsets = array("q", [0])
        self.named = bytearray()
        self.type_of = array("H")
        self.types: list[str | None] = [None]
        self.type_index: dict[str | None, int] = {None: 0}
        self.uri_end = self.name_end = 0

    def add_many(self, rows: Sequence[tuple[int, str, str | None, str | None]]) -> None:
        """Rows in id order; a run of consecutive ids is added a column at a time."""
        if not rows:
            return
        first, last = rows[0][0], rows[-1][0]
        while len(self.type_of) < first:  # ids purged away (or never used) leave gaps
            self._slot("", None, None)
        if first != len(self.type_of) or last - first + 1 != len(rows):
            for row in rows:  # gaps: one at a time
                self.add(*row)
            return
        _, uris, types, names = zip(*rows, strict=True)
        self.uri_parts.extend(uris)
        self.uri_offsets.extend(accumulate(map(len, uris), initial=self.uri_end))
        self.uri_offsets.pop(len(self.uri_offsets) - len(rows) - 1)  # the start, already there
        self.uri_end = self.uri_offsets[-1]
        present = [n for n in names if n is not None]
        self.name_parts.extend(present)
        self.named.extend(n is not None for n in names)
        self.name_offsets.extend(
            accumulate((0 if n is None else len(n) for n in names), initial=self.name_end)
        )
        self.name_offsets.pop(len(self.name_offsets) - len(rows) - 1)
        self.name_end = self.name_offsets[-1]
        for type_ in set(types) - self.type_index.keys():
            self.type_index[type_] = len(self.types)
            self.types.append(type_)
        self.type_of.extend(map(self.type_index.__getitem__, types))

    def add(self, node: int, uri: str, type_: str | None, name: str | None) -> None:
        while len(self.type_of) < node:  # ids purged away leave gaps
            self._slot("", None, None)
        self._slot(uri, type_, name)

    def _slot(self, uri: str, type_: str | None, name: str | None) -> None:
        self.uri_parts.append(uri)
        self.uri_end += len(uri)
        self.uri_offsets.append(self.uri_end)
        if name is not None:
            self.name_parts.append(name)
            self.name_end += len(name)
        self.name_offsets.append(self.name_end)
        self.named.append(name is not None)
        index = self.type_index.get(type_)
        if index is None:
            index = self.type_index[type_] = len(self.types)
            self.types.append(type_)
        self.type_of.append(index)

    def build(self) -> Nodes:
        return Nodes(
            "".join(self.uri_parts),
            self.uri_offsets,
            "".join(self.name_parts),
            self.name_offsets,
            self.named,
            self.type_of,
            self.types,
        )


def breadth_first(
    out: Adjacency,
    inward: Adjacency,
    start: int,
    *,
    out_mask: bytes | None,
    in_mask: bytes | None,
    depth: int,
    budget: int,
) -> tuple[list[set[int]], bool]:
    """The nodes first reached at each depth 1..``depth`` (each node once, at its
    nearest depth), and whether the visit budget (nodes reached, the start
    included) cut the walk short."""
    sides = [(adj, mask) for adj, mask in ((out, out_mask), (inward, in_mask)) if mask is not None]
    seen = {start}
    frontier: Iterable[int] = (start,)
    levels: list[set[int]] = []
    for _ in range(depth):
        found: set[int] = set()
        for adj, mask in sides:
            _expand(adj, mask, frontier, found)
        found -= seen
        if not found:
            break
        room = budget - len(seen)
        if len(found) >= room:
            # Keep the lowest ids, so a cut walk is the same walk every time.
            levels.append(set(sorted(found)[: max(room, 0)]))
            return levels, True
        seen |= found
        levels.append(found)
        frontier = found
    return levels, False


def _expand(adj: Adjacency, mask: bytes, frontier: Iterable[int], found: set[int]) -> None:
    """Add to ``found`` the far ends of the ``frontier``'s edges that ``mask`` selects.

    ``Adjacency.extend`` inlined, with its attributes in locals: this loop runs
    once per reached node and is most of a walk's time.
    """
    offsets, targets, labels = adj.offsets, adj.targets, adj.labels
    added, removed = adj.added, adj.removed
    if added or removed:
        for node in frontier:
            adj.extend(node, mask, found)
        return
    last = len(offsets) - 1
    add, update, selected = found.add, found.update, mask.__getitem__
    for node in frontier:
        if node >= last:
            continue
        a = offsets[node]
        b = offsets[node + 1]
        if b - a == 1:
            if mask[labels[a]]:
                add(targets[a])
        elif a != b:
            update(compress(targets[a:b], map(selected, labels[a:b])))
