"""bench/gpu_lock.py: a timed loop (exclusive) never overlaps another worker's GPU section
(shared); shared sections overlap each other."""
from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

from bench_scripts import load

gpu_lock = load("gpu_lock")


def _worker(path: str, kind: str, log: str, hold: float) -> None:
    lock = gpu_lock.GpuLock(path)
    section = lock.exclusive() if kind == "exclusive" else lock.shared()
    with section:
        start = time.monotonic()
        time.sleep(hold)
        end = time.monotonic()
    with open(log, "a") as f:
        f.write(f"{kind} {start} {end}\n")


def _run(tmp_path: Path, kinds: list[str], hold: float = 0.3) -> list[tuple[str, float, float]]:
    path, log = str(tmp_path / "gpu.lock"), str(tmp_path / "log")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, k, log, hold)) for k in kinds]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    rows = [line.split() for line in Path(log).read_text().splitlines()]
    return [(k, float(s), float(e)) for k, s, e in rows]


def test_exclusive_sections_overlap_nothing(tmp_path: Path) -> None:
    rows = _run(tmp_path, ["shared", "exclusive", "shared", "exclusive", "shared"])
    assert len(rows) == 5
    for kind, start, end in rows:
        if kind != "exclusive":
            continue
        others = [(s, e) for k, s, e in rows if (k, s, e) != (kind, start, end)]
        assert all(e <= start or s >= end for s, e in others), rows


def test_shared_sections_run_side_by_side(tmp_path: Path) -> None:
    rows = _run(tmp_path, ["shared"] * 3, hold=1.0)
    starts, ends = [s for _, s, _ in rows], [e for _, _, e in rows]
    assert max(starts) < min(ends), rows      # all three held the lock at one moment


def test_without_a_path_every_section_is_a_no_op(monkeypatch) -> None:
    monkeypatch.delenv(gpu_lock.ENV, raising=False)
    lock = gpu_lock.GpuLock()
    with lock.shared():
        with lock.shared():
            pass
    with lock.exclusive():
        pass
