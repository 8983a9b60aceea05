"""Index versions behind an alias, and the lock that lets one writer change them.

    {root}/alias.json                 which version serves: {"version": "v000003", "mapping": ...}
    {root}/versions/v000003/          entities/ and owners/ (tantivy), meta.json
    {root}/indexer.lock               held by whoever writes the serving version

A rebuild writes a new version next to the serving one, then cuts over by
replacing ``alias.json`` with ``os.replace``: a reader sees the old version or
the new one, never a mix. The previous version is kept for readers that still
have it open; older ones are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ALIAS = "alias.json"
META = "meta.json"
LOCK = "indexer.lock"


@dataclass(frozen=True, slots=True)
class Version:
    name: str
    path: Path
    mapping: str
    store: str = ""  # which store it was built from (its URL, password hidden)

    @property
    def entities(self) -> Path:
        return self.path / "entities"

    @property
    def owners(self) -> Path:
        return self.path / "owners"

    def meta(self) -> dict[str, Any]:
        try:
            found: dict[str, Any] = json.loads((self.path / META).read_text())
        except (OSError, ValueError):
            return {}
        return found

    def write_meta(self, **values: Any) -> None:
        _write_json(self.path / META, {**self.meta(), **values})


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Write ``path`` whole or not at all: a temporary file, fsynced, renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)  # atomic: readers see the old file or the new one


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Called with the version about to serve, before the alias moves to it: the
# service recompiles saved searches there (``search`` cannot import ``reverse``).
# If it raises, there is no cut-over.
BeforeCutOver = Callable[["Version"], None]


class Versions:
    """The versions under ``root`` and the alias that names the serving one."""

    def __init__(self, root: Path, before_cut_over: BeforeCutOver | None = None) -> None:
        self.root = root
        self.alias_path = root / ALIAS
        self.versions_dir = root / "versions"
        self.before_cut_over = before_cut_over

    def current(self) -> Version | None:
        try:
            alias = json.loads(self.alias_path.read_text())
        except FileNotFoundError:
            return None
        name = str(alias["version"])
        return Version(
            name, self.versions_dir / name, str(alias["mapping"]), str(alias.get("store", ""))
        )

    def stamp(self) -> int | None:
        """Changes whenever the alias is replaced: readers compare it before each query."""
        try:
            return self.alias_path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def create(self, mapping: str, store: str) -> Version:
        """A new, empty version, marked as being built by this process."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name[1:]) for p in self.versions_dir.glob("v*") if p.name[1:].isdigit()]
        number = max(taken, default=0) + 1
        while True:
            path = self.versions_dir / f"v{number:06d}"
            try:
                path.mkdir()  # atomic: two builders never share a directory
                break
            except FileExistsError:
                number += 1
        version = Version(path.name, path, mapping, store)
        version.write_meta(
            mapping=mapping,
            store=store,
            state="building",
            pid=os.getpid(),
            created_at=datetime.now(UTC).isoformat(),
        )
        return version

    def cut_over(self, version: Version, **facts: Any) -> None:
        """Make ``version`` the serving one (hold ``lock()``), keeping the one it replaces."""
        if self.before_cut_over is not None:
            self.before_cut_over(version)
        previous = self.current()
        version.write_meta(
            state="serving",
            served_from=datetime.now(UTC).isoformat(),
            previous=None if previous is None else previous.name,
            **facts,
        )
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(
            self.alias_path,
            {"version": version.name, "mapping": version.mapping, "store": version.store},
        )
        self.prune()

    def discard(self, version: Version) -> None:
        shutil.rmtree(version.path, ignore_errors=True)

    def prune(self) -> None:
        """Remove versions nobody serves or builds: all but the current one, the one
        before it, and builds whose process is still alive."""
        current = self.current()
        keep = set()
        if current is not None:
            keep.add(current.name)
            previous = current.meta().get("previous")
            if previous:
                keep.add(str(previous))
        for path in self.versions_dir.glob("v*"):
            if path.name in keep:
                continue
            meta = Version(path.name, path, "").meta()
            if meta.get("state") == "building" and _alive(int(meta.get("pid", 0))):
                continue
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The writer's lock: one process at a time writes the serving version or cuts over."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
