"""The kernel store: accepted (verified) kernels on disk, in one SQLite file.

An entry is keyed by (spec hash, kernel, target, arch, shape class) and holds the full source
(self-contained: a tuned schedule is baked into the Triton module, see `space.schedule_source`,
or written after the C++ text as a comment its launcher reads back, `space.cxx_schedule_source`),
the schedule, the verification record and the timings. Only verified kernels are ever put here.
For cuda / hip, arch "cpu" means the C++ of the CPU emulation, verified on it.

    store = KernelStore()                       # $KSPEC_STORE or ~/.cache/kspec/store.sqlite
    store.best(spec_hash(k), "softmax", "triton", "sm_90", "M=16384,N=4096")

Running the stored kernels (`Kernel.build(..., use_store=True)`) is kspec/agent/stored.py's.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
create table if not exists kernels (
    spec_hash text not null, kernel text not null, target text not null, arch text not null,
    shape_class text not null, source_hash text not null,
    source text not null, schedule text not null, verification text not null,
    timings text not null, ms real, baseline_ms real, timed integer not null,
    proposer text not null, created real not null,
    spec text not null default '', launches text not null default '{}',
    primary key (spec_hash, kernel, target, arch, shape_class, source_hash))
"""
# columns added since the first schema: (name, declaration), added to older stores on open
_ADDED = (("spec", "text not null default ''"), ("launches", "text not null default '{}'"))
_COLUMNS = ("spec_hash, kernel, target, arch, shape_class, source, schedule, verification, "
            "timings, ms, baseline_ms, proposer, created, spec, launches")
# the file extension of an exported source, by target (arch "cpu": the emulation's C++)
SOURCE_EXT = {"triton": "py", "cuda": "cu", "hip": "hip"}


@dataclass
class Entry:
    spec_hash: str
    kernel: str
    target: str
    arch: str
    shape_class: str
    source: str
    schedule: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    ms: float | None = None            # the candidate's median time (None: untimed, CPU)
    baseline_ms: float | None = None   # the deterministic lowering's, same run
    proposer: str = "autotune"
    created: float = 0.0
    spec: str = ""                     # the kernel as kspec prints it (the memory's examples)
    launches: dict[str, str] = field(default_factory=dict)   # schedule prefix -> pattern

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    @property
    def speedup(self) -> float | None:
        return self.baseline_ms / self.ms if self.ms and self.baseline_ms else None

    def as_dict(self, with_source: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["source_hash"] = self.source_hash
        if not with_source:
            d.pop("source")
        return d


def spec_hash(kernel) -> str:
    """A kspec.Kernel's (or ir.Kernel's) identity: the hash of its checked, printed IR."""
    from ..printer import format_kernel

    k = getattr(kernel, "ir", kernel)
    return hashlib.sha256(format_kernel(k, annotate=True).encode()).hexdigest()[:16]


def shape_class(env: dict[str, int]) -> str:
    """Shape symbols rounded up to powers of two: 'M=16384,N=4096' (tuned for that bucket)."""
    return ",".join(f"{s}={1 << max(0, int(v) - 1).bit_length()}" for s, v in sorted(env.items()))


def device_arch(device: Any = None) -> str:
    """'cpu' for the Triton interpreter, else the CUDA device's 'sm_XY' (or gfx name)."""
    import torch

    if device is None or getattr(device, "type", device) == "cpu":
        return "cpu"
    props = torch.cuda.get_device_properties(device)
    arch = getattr(props, "gcnArchName", "") or ""
    if arch.startswith("gfx"):
        return arch.split(":")[0]
    return f"sm_{props.major}{props.minor}"


def default_path() -> Path:
    env = os.environ.get("KSPEC_STORE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "kspec" / "store.sqlite"


class KernelStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        if self.path.suffix != ".sqlite":     # a directory was named
            self.path = self.path / "store.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(_SCHEMA)
            have = {r[1] for r in db.execute("pragma table_info(kernels)")}
            for name, decl in _ADDED:
                if name not in have:
                    db.execute(f"alter table kernels add column {name} {decl}")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def put(self, e: Entry) -> Entry:
        e.created = e.created or time.time()
        row = (e.spec_hash, e.kernel, e.target, e.arch, e.shape_class, e.source_hash, e.source,
               json.dumps(e.schedule, sort_keys=True), json.dumps(e.verification, default=str),
               json.dumps(e.timings, default=str), e.ms, e.baseline_ms, int(e.ms is not None),
               e.proposer, e.created, e.spec, json.dumps(e.launches, sort_keys=True))
        with self._lock, self._connect() as db:
            db.execute("insert or replace into kernels (spec_hash, kernel, target, arch, "
                       "shape_class, source_hash, source, schedule, verification, timings, ms, "
                       "baseline_ms, timed, proposer, created, spec, launches) values "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return e

    def entries(self, **where: Any) -> list[Entry]:
        cols = ("spec_hash", "kernel", "target", "arch", "shape_class")
        clauses = [f"{c} = ?" for c in cols if where.get(c) is not None]
        args = [where[c] for c in cols if where.get(c) is not None]
        sql = (f"select {_COLUMNS} from kernels"
               + (" where " + " and ".join(clauses) if clauses else "")
               # best first: timed before untimed, fastest, then newest (deterministic)
               + " order by kernel, target, arch, shape_class, timed desc, ms asc, created desc")
        with self._lock, self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]),
                      json.loads(r[8]), r[9], r[10], r[11], r[12], r[13], json.loads(r[14]))
                for r in rows]

    def best(self, spec_hash: str, kernel: str, target: str, arch: str,
             shape_class: str) -> Entry | None:
        found = self.entries(spec_hash=spec_hash, kernel=kernel, target=target, arch=arch,
                             shape_class=shape_class)
        return found[0] if found else None

    def clear(self, **where: Any) -> int:
        cols = ("spec_hash", "kernel", "target", "arch", "shape_class")
        clauses = [f"{c} = ?" for c in cols if where.get(c) is not None]
        args = [where[c] for c in cols if where.get(c) is not None]
        with self._lock, self._connect() as db:
            cur = db.execute("delete from kernels" +
                             (" where " + " and ".join(clauses) if clauses else ""), args)
            return cur.rowcount

    def export(self, directory: str | Path, **where: Any) -> list[Path]:
        """Write each entry's source (.py, .cu, .hip; .cpp for the CPU emulation's) with its
        JSON record beside it, and index.json (every record, its source's file name): a
        directory another store imports (`import_dir`)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written, index = [], []
        for e in self.entries(**where):
            stem = (f"{e.kernel}-{e.target}-{e.arch}-{e.shape_class.replace(',', '_')}-"
                    f"{e.source_hash}").replace("=", "")
            ext = "cpp" if e.arch == "cpu" and e.target != "triton" else \
                SOURCE_EXT.get(e.target, "txt")
            record = {**e.as_dict(with_source=False), "file": f"{stem}.{ext}"}
            (out / record["file"]).write_text(e.source)
            (out / f"{stem}.json").write_text(json.dumps(record, indent=2, default=str))
            written.append(out / record["file"])
            index.append(record)
        (out / "index.json").write_text(json.dumps({"kspec_store": 1, "kernels": index},
                                                   indent=2, default=str))
        return written

    def import_dir(self, directory: str | Path) -> list[Entry]:
        """Put every kernel of an exported directory (its index.json) into this store."""
        from ..errors import KspecError

        root = Path(directory)
        index = root / "index.json"
        if not index.is_file():
            raise KspecError(f"{root}: no index.json (not a directory `kcompile store export` "
                             f"wrote)")
        try:
            records = json.loads(index.read_text())["kernels"]
        except (ValueError, KeyError, TypeError) as e:
            raise KspecError(f"{index}: not a kernel store index ({e})") from None
        names = {f.name for f in Entry.__dataclass_fields__.values()} - {"source"}
        out = []
        for r in records:
            src = root / str(r.get("file", ""))
            if not src.is_file():
                raise KspecError(f"{index}: {r.get('kernel')}'s source {src.name} is missing")
            e = Entry(**{k: v for k, v in r.items() if k in names}, source=src.read_text())
            if e.source_hash != r.get("source_hash", e.source_hash):
                raise KspecError(f"{src}: the source does not match its record's hash "
                                 f"({r['source_hash']})")
            out.append(self.put(e))
        return out

    def table(self, **where: Any) -> str:
        lines = [f"{'kernel':16s} {'target':7s} {'arch':7s} {'shape class':24s} {'ms':>9s} "
                 f"{'speedup':>8s} proposer  spec"]
        for e in self.entries(**where):
            ms = f"{e.ms:.4f}" if e.ms is not None else "untimed"
            sp = f"{e.speedup:.2f}x" if e.speedup else "-"
            lines.append(f"{e.kernel:16s} {e.target:7s} {e.arch:7s} {e.shape_class:24s} "
                         f"{ms:>9s} {sp:>8s} {e.proposer:9s} {e.spec_hash}")
        return "\n".join(lines)
