"""An indexer in a process of its own, for the kill -9 test: ``python -m
tests.search.follower STORE_URL INDEX_DIR``. It prints the cursor after each step."""

from __future__ import annotations

import sys
from pathlib import Path

from mlgraph.search import CURSOR, Discovery
from mlgraph.store import Store


def main(url: str, root: str) -> None:
    with Store.open(url) as store:
        indexer = Discovery(Path(root), store).indexer(batch=5)
        while True:
            if indexer.step():
                print(store.cursor(CURSOR), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
