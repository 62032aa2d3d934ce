"""The worker of bench/large.py: runs one case at a time, as the driver sends them.

    python3 bench/large_worker.py      # reads one JSON job per line on stdin

Each job is answered by one line on stdout, MARK followed by the result as JSON (anything
else a library prints is ignored by the driver). A CUDA error that poisons this process's
context (an illegal address) is answered as "crash" with "fatal": true, and the worker exits:
the driver starts a fresh one for the next case.
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import torch  # noqa: E402

from worker_common import is_fatal, short, sync  # noqa: E402

MARK = "@@large-result "


def as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def poison(device: torch.device, nbytes: list[int]) -> None:
    """Fill, then free, blocks of the outputs' sizes with 0xFF (NaN in every float dtype), so
    that what a kernel leaves unwritten (e.g. past an overflowed offset) reads as NaN."""
    if device.type == "cuda":
        blocks = [torch.full((n,), 255, dtype=torch.uint8, device=device) for n in nbytes]
        del blocks


def max_abs_error(got: torch.Tensor, want: torch.Tensor) -> float:
    if not got.dtype.is_floating_point:
        return float((got.to(torch.int64) - want.to(torch.int64)).abs().max()) \
            if got.numel() else 0.0
    err = (got.double() - want).abs()
    return float(torch.nan_to_num(err, nan=math.inf).max()) if err.numel() else 0.0


def check(kernel: Any, case: Any, sizes: dict[str, int], args: list[Any], outs: tuple,
          chunks: int) -> dict[str, Any]:
    """The outputs against the float64 reference, slice by slice along case.chunk: the
    gate's comparison (tolerance.compare with magnitudes), the max abs error and
    KernelBench's torch.allclose(atol = rtol = 1e-4) for f32 outputs."""
    from kspec.dtypes import DType
    from kspec.verify.tolerance import compare, magnitude
    from large_cases import chunk_dims, slice_args

    k = kernel.ir
    dims = chunk_dims(kernel, case.chunk) if case.chunk else {}
    n = sizes[case.chunk] if case.chunk else 1
    length = math.ceil(n / chunks)
    worst, max_abs, detail = 0.0, 0.0, ""
    kb: bool | None = True if any(o.dtype == DType.f32 for o in k.outputs) else None
    for start in range(0, n, length):
        part = min(length, n - start)
        part_args = slice_args(kernel, args, dims, start, part) if case.chunk else args
        want = as_tuple(kernel.reference(*part_args))
        mags = magnitude(kernel, part_args)
        for o, got, w, mag in zip(k.outputs, outs, want, mags):
            for d in dims.get(o.name, []):
                got = got.narrow(d, start, part)
            c = compare(got, w, o.dtype, mag)
            worst = max(worst, c.worst)
            if not c.ok and not detail:
                where = f" (slice {case.chunk}={start}..{start + part})" if case.chunk else ""
                detail = f"{o.name}{where}: {c.detail}"
            max_abs = max(max_abs, max_abs_error(got, w))
            if o.dtype == DType.f32 and kb:
                kb = bool(torch.allclose(got.double(), w, atol=1e-4, rtol=1e-4))
            del c
        del want, mags, part_args, w, mag
        if outs and outs[0].is_cuda:   # the next slice's reference reuses this memory
            torch.cuda.empty_cache()
    return {"status": "ok" if not detail else "wrong", "tol_ratio": worst,
            "max_abs_err": max_abs, "kb_allclose": kb, "detail": detail}


def kernel_ms(fn: Callable, args: list[Any], device: torch.device, reps: int) -> float:
    """Median of `reps` timed calls after one warm-up (CUDA events on a GPU). The outputs
    are dropped at once, so only one set is alive."""
    fn(*args)
    sync(device)
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(*args)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn(*args)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One case on one backend; the result row (without the driver's own fields)."""
    import kspec
    from large_cases import CASES, arguments

    case = next(c for c in CASES if c.key == job["key"])
    sizes = case.small if job["scale"] == "small" else case.sizes
    device = torch.device(job["device"])
    kernel = kspec.load(ROOT / "specs" / f"{case.spec}.kspec")[case.spec]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row: dict[str, Any] = {}
    try:
        fn = kernel.build(job["backend"])
    except kspec.BackendUnavailable as e:
        return {"status": "skipped", "detail": f"backend unavailable: {e.message}"}
    except Exception as e:  # noqa: BLE001 - a build failure is a finding
        return {"status": "error", "detail": f"build: {short(e)}",
                "trace": traceback.format_exc(-4)}
    args = arguments(kernel, case, sizes, device, job["seed"])
    nbytes = [math.prod(d.evaluate(sizes) for d in o.dims) * o.dtype.torch.itemsize
              for o in kernel.ir.outputs]
    poison(device, nbytes)
    outs = as_tuple(fn(*args))
    sync(device)
    row.update(check(kernel, case, sizes, args, outs, job["chunks"]))
    del outs
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if job["reps"] > 0:
        row["kernel_ms"] = kernel_ms(fn, args, device, job["reps"])
    if device.type == "cuda":
        row["peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
    del args
    return row


def answer(job: dict[str, Any]) -> dict[str, Any]:
    """run_job, with Python failures as rows: "error", or "crash" (fatal) when the CUDA
    context is gone."""
    t0 = time.time()
    try:
        row = run_job(job)
    except Exception as e:  # noqa: BLE001
        fatal = is_fatal(e)
        row = {"status": "crash" if fatal else "error", "detail": short(e),
               "trace": traceback.format_exc(-4), "fatal": fatal}
        if isinstance(e, torch.cuda.OutOfMemoryError):
            row["detail"] = f"out of memory: {short(e)}"
    row["wall_s"] = round(time.time() - t0, 2)
    if torch.cuda.is_available() and not row.get("fatal"):
        torch.cuda.empty_cache()
    return row


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        row = answer(json.loads(line))
        print(MARK + json.dumps(row), flush=True)
        if row.get("fatal"):
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
