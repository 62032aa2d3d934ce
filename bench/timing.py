"""Timing and the card's ceilings.

On CUDA every call is bracketed by its own pair of CUDA events (recorded back to back on the
current stream, read after one synchronize at the end) and the median is reported; on CPU (the
--dry-run path) the host clock is used. Calls rotate over several argument sets whose total
size is several times the L2, so that no call finds its inputs left in the cache by the one
before.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch


@dataclass
class Timing:
    ms: float        # median
    p25: float
    p75: float
    reps: int
    sets: int        # argument sets rotated over

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Budget:
    warmup_ms: float = 25.0
    rep_ms: float = 150.0
    min_reps: int = 10
    max_reps: int = 2000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def l2_bytes(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20))


def rotation_count(set_bytes: int, device: torch.device, at_least: int = 2, at_most: int = 8,
                   l2_multiple: float = 4.0) -> int:
    """How many argument sets to rotate over so that they span l2_multiple x the L2."""
    if set_bytes <= 0:
        return at_least
    need = math.ceil(l2_multiple * l2_bytes(device) / set_bytes)
    return max(at_least, min(at_most, need))


def bench(fn: Callable[..., Any], arg_sets: list[list[Any]], device: torch.device,
          budget: Budget) -> Timing:
    """Median time of fn(*arg_sets[i % n]) after warm-up, in milliseconds."""
    n = len(arg_sets)
    t0 = time.perf_counter()
    fn(*arg_sets[0])                      # first call: compilation, module load, handles
    sync(device)
    estimate = (time.perf_counter() - t0) * 1e3
    if estimate < budget.rep_ms:          # not slow (as the interpreter is): estimate anew
        t0 = time.perf_counter()
        for i in range(3):
            fn(*arg_sets[i % n])
        sync(device)
        estimate = (time.perf_counter() - t0) * 1e3 / 3
    estimate = max(estimate, 1e-3)
    for i in range(int(budget.warmup_ms / estimate)):
        fn(*arg_sets[i % n])
    reps = min(budget.max_reps, int(budget.rep_ms / estimate))
    # at least min_reps, unless a call is so slow (a generic loop nest at full size) that
    # those would take 5x the budget: then at most 3, enough for a median
    slow = estimate * budget.min_reps > 5 * budget.rep_ms
    reps = max(reps, min(3, budget.min_reps) if slow else budget.min_reps)
    times: list[float] = []
    if device.type == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        sync(device)
        for i in range(reps):
            args = arg_sets[i % n]
            starts[i].record()
            fn(*args)
            ends[i].record()
        sync(device)
        times = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    else:
        for i in range(reps):
            args = arg_sets[i % n]
            t = time.perf_counter()
            fn(*args)
            times.append((time.perf_counter() - t) * 1e3)
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return Timing(statistics.median(times), q[0], q[2], reps, n)


def measure_ceilings(device: torch.device, dry: bool, budget: Budget) -> dict[str, Any]:
    """Device-to-device copy bandwidth (read + write) and f16/bf16/f32 matmul TFLOP/s via torch
    (f32 as configured: run.py turns TF32 off)."""
    out: dict[str, Any] = {}
    n = (1 << 16) if dry else (1 << 28)           # f32 elements: 1 GiB on the GPU
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    t = bench(lambda: dst.copy_(src), [[]], device, budget)
    out["copy"] = {"bytes": 2 * src.nbytes, "ms": t.ms, "gbps": 2 * src.nbytes / t.ms / 1e6}
    del src, dst
    size = 256 if dry else 8192
    for name, dt in (("f16", torch.float16), ("bf16", torch.bfloat16), ("f32", torch.float32)):
        a = torch.randn(size, size, device=device).to(dt)
        b = torch.randn(size, size, device=device).to(dt)
        c = torch.empty(size, size, device=device, dtype=dt)
        t = bench(lambda: torch.matmul(a, b, out=c), [[]], device, budget)
        flops = 2.0 * size ** 3
        out[f"matmul_{name}"] = {"size": size, "ms": t.ms, "tflops": flops / t.ms / 1e9}
        del a, b, c
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def device_info(device: torch.device) -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version()}
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(name=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                    memory_gb=round(p.total_memory / 1e9, 1), l2_mb=l2_bytes(device) / 2 ** 20,
                    allow_tf32=_flag(lambda: torch.backends.cuda.matmul.allow_tf32),
                    cudnn_allow_tf32=_flag(lambda: torch.backends.cudnn.allow_tf32))
    else:
        info.update(name=f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
                    cuda=None)
    return info


def _flag(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except RuntimeError as e:  # torch's TF32 flags refuse reads after mixed legacy/new writes
        return f"unreadable: {str(e)[:80]}"
