"""What the bench workers (bench/large_worker.py, bench/kernelbench_worker.py,
bench/kernelbench/kb_worker.py) share: how an exception is told in one line, whether it left
the CUDA context unusable, a device synchronize, KernelBench's output check and the timing of
one callable."""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import torch

# sticky CUDA errors, as torch and the kspec launchers (cuda-python's error names) word them
FATAL = ("illegal memory access", "illegal address", "illegal instruction",
         "unspecified launch failure", "misaligned address", "device-side assert",
         "ILLEGAL_ADDRESS", "ILLEGAL_INSTRUCTION", "LAUNCH_FAILED", "MISALIGNED_ADDRESS",
         "ERROR_ASSERT", "hipErrorIllegalAddress")
TIME_BUDGET_S = 10.0        # stop timing a slow callable early (at least one call is timed)
L2_FLUSH_BYTES = 256 << 20  # what KernelBench writes between timed calls (cold L2)


def short(e: BaseException) -> str:
    lines = str(e).strip().splitlines() or [""]
    return f"{type(e).__name__}: {lines[0][:300]}"


def is_fatal(e: BaseException) -> bool:
    """The process's CUDA context is gone after e: the worker must exit."""
    return any(s in str(e) for s in FATAL) or type(e).__name__ == "AcceleratorError"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _where(shape: tuple[int, ...], flat: int) -> list[int]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return index[::-1]


def compare(out: torch.Tensor, ref: torch.Tensor, atol: float = 1e-4,
            rtol: float = 1e-4) -> dict[str, Any]:
    """KernelBench's check (same shape, allclose(atol, rtol), no NaN), the max errors and
    the index of the largest absolute error."""
    if tuple(out.shape) != tuple(ref.shape) or out.dtype != ref.dtype:
        return {"status": "wrong", "correct": False,
                "detail": f"output {tuple(out.shape)} {out.dtype}, "
                          f"expected {tuple(ref.shape)} {ref.dtype}"}
    nan = bool(torch.isnan(out).any())
    err = (out - ref).abs()
    max_abs = math.inf if nan else float(err.max()) if err.numel() else 0.0
    where = _where(tuple(ref.shape), int(err.nan_to_num(math.inf).argmax())) if err.numel() else []
    rel = err / ref.abs()
    rel = rel[ref != 0]
    max_rel = math.inf if nan else float(rel.max()) if rel.numel() else 0.0
    del err, rel
    correct = not nan and bool(torch.allclose(out, ref, atol=atol, rtol=rtol))
    row = {"status": "ok" if correct else "wrong", "correct": correct,
           "max_abs_err": max_abs, "max_rel_err": max_rel, "where": where}
    if nan:
        row["detail"] = "NaN in the output"
    return row


def median_ms(fn: Callable[[], Any], device: torch.device, reps: int, warmup: int = 0,
              flush_l2: bool = False, budget_s: float = TIME_BUDGET_S) -> float:
    """Median of up to `reps` calls after up to `warmup` untimed ones (CUDA events on a GPU,
    the host clock on the CPU). flush_l2 writes L2_FLUSH_BYTES before each timed call, as
    KernelBench does to time a cold cache. Stops once `budget_s` is spent, so that a
    pathologically slow kernel costs a few seconds."""
    started = time.perf_counter()
    for _ in range(warmup):
        fn()
        sync(device)
        if time.perf_counter() - started > budget_s / 2:   # a slow callable is warm by now
            break
    flush = (torch.empty(L2_FLUSH_BYTES // 8, dtype=torch.int64, device=device)
             if flush_l2 and device.type == "cuda" else None)
    times: list[float] = []
    spent = time.perf_counter()
    for _ in range(max(1, reps)):
        if flush is not None:
            flush.fill_(42)
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) * 1e3)
        del out                       # one output alive at a time
        if time.perf_counter() - spent > budget_s:
            break
    return statistics.median(times)
