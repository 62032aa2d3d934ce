"""The on-disk compilation cache: compiler outputs keyed by a hash of everything that made them
(source text, compiler path and version, flags). Lives in $KSPEC_CACHE or ~/.cache/kspec."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("KSPEC_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "kspec"


def cache_key(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def entry_dir(kind: str, key: str) -> Path:
    return cache_root() / kind / key[:2] / key


def lookup(kind: str, key: str, names: list[str]) -> dict[str, bytes] | None:
    """The cached files of an entry, or None unless all of `names` are there."""
    d = entry_dir(kind, key)
    try:
        return {n: (d / n).read_bytes() for n in names}
    except OSError:
        return None


def store(kind: str, key: str, files: dict[str, bytes]) -> None:
    """Write an entry atomically (a finished directory is renamed into place), so a concurrent
    or interrupted compile never leaves a half-written entry. Failures to cache are ignored:
    the cache only saves time."""
    d = entry_dir(kind, key)
    try:
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=d.parent, prefix=".tmp-"))
        for n, data in files.items():
            (tmp / n).write_bytes(data)
        try:
            os.replace(tmp, d)
        except OSError:           # another process stored it first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass


def scratch_dir(kind: str) -> Path:
    """A fresh directory for one compiler run (kept out of the cache entries)."""
    base = cache_root() / kind / "work"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=base))
