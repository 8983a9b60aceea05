"""How common each presearch key is among the documents seen: the percolator's selectivity.

A value-frequency table over a sample of documents. Before any document is
seen, a prior by kind of key stands in: an exact value is rare, a type or a
lifecycle state is common, "the field exists" is very common.

The table only guides which keys a search is filed under, never an answer,
and counting a document's keys costs about what reading it does: after the
first ``WARMUP`` documents, only one in ``STRIDE`` offered is counted.
"""

from __future__ import annotations

from collections import Counter

from mlgraph.reverse.keys import Key, every_key
from mlgraph.reverse.predicate import Prepared

SAMPLE = 5_000  # documents: enough to tell a rare value from a common one
WARMUP = 256  # documents counted one by one before sampling starts
STRIDE = 8  # then one document in this many is counted

# Fields with few distinct values: an equality on them says little.
BROAD_FIELDS = frozenset({"type", "state"})

PRIORS = {"=": 0.01, "?": 0.6, "^": 0.03, "3": 0.05, "r": 0.05}


class Statistics:
    def __init__(self, sample: int = SAMPLE, stride: int = STRIDE) -> None:
        self.sample = sample
        self.stride = stride
        self.documents = 0
        self.offered = 0  # documents offered past the warm-up
        self.counts: Counter[Key] = Counter()

    @property
    def full(self) -> bool:
        return self.documents >= self.sample

    def wants(self) -> bool:
        """Whether the next document offered should be counted (``observe``)."""
        if self.full:
            return False
        if self.documents < WARMUP:
            return True
        self.offered += 1
        return self.offered % self.stride == 0

    def observe(self, doc: Prepared) -> bool:
        """Count the keys of ``doc``; False once the sample is complete."""
        if self.full:
            return False
        self.documents += 1
        self.counts.update(every_key(doc))
        return True

    def frequency(self, key: Key) -> float:
        """The share of documents estimated to have ``key``."""
        if self.documents == 0:
            return _prior(key)
        # Half a document for a key never seen: rare, but not free.
        return (self.counts.get(key, 0) + 0.5) / (self.documents + 1)


def _prior(key: Key) -> float:
    field, family = key[0], key[1]
    if family == "=" and (field in BROAD_FIELDS or isinstance(key[2], bool)):
        return 0.3
    return PRIORS.get(family, 0.1)
