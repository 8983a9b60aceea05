"""The writers' lock: one queue across threads and processes on a SQLite file, none
on PostgreSQL (it locks rows, and has no file to put a lock beside)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlgraph.store.engine import create_engine, write_lock

TAKE_IT = """
import sys, time
from mlgraph.store.engine import create_engine, write_lock
engine = create_engine(sys.argv[1])
print("waiting", flush=True)
with write_lock(engine):
    print(time.time(), flush=True)
"""


def test_a_writer_in_another_process_waits_for_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_engine(url)
    with write_lock(engine):
        other = subprocess.Popen([sys.executable, "-c", TAKE_IT, url], stdout=subprocess.PIPE,
                                 text=True)  # fmt: skip
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "waiting"
        time.sleep(0.5)
        released = time.time()
    got_it = float(other.stdout.readline())
    assert other.wait(10) == 0
    assert got_it >= released
    assert (tmp_path / "store.db-writer.lock").exists()


def test_postgresql_writers_take_no_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = create_engine("postgresql://mlgraph@127.0.0.1:5432/mlgraph")  # not connected to
    with write_lock(engine):
        pass
    assert list(tmp_path.iterdir()) == []
