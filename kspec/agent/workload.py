"""A tuning workload: a kernel's random arguments at a benchmark shape, the default shape, and
the timing of a launcher on them (CUDA events over input sets spanning several times the L2 on
a GPU, the host clock under the interpreter). Used by the tuner and by the gate's worker
process, which times candidates away from the tuner."""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import torch

from .. import ir


def make_inputs(kernel, env: dict[str, int], device: str, seed: int = 0) -> list[Any]:
    """Random arguments of the kernel's signature at `env` (scalars: their defaults, else 0.125
    / 1). Float inputs are scaled by K**-0.25 style factors only through their normal draw."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    args: list[Any] = []
    for p in kernel.ir.params:
        if isinstance(p, ir.TensorDecl):
            shape = tuple(d.evaluate(env) for d in p.dims)
            dt = p.dtype.torch
            if dt.is_floating_point:
                t = torch.randn(shape, generator=g, dtype=torch.float32) * 0.5
            elif dt == torch.bool:
                t = torch.rand(shape, generator=g) < 0.5
            else:
                t = torch.randint(0, 7, shape, generator=g)
            args.append(t.to(dt).to(device))
        else:
            default = p.default
            args.append(default if default is not None else
                        (0.125 if p.dtype.is_float else (True if p.dtype.name == "bool" else 1)))
    return args


def _l2_bytes(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20))


def time_launch(fn: Callable, kernel, env: dict[str, int], device: str, *,
                rep_ms: float = 100.0, max_reps: int = 500, seed: int = 0) -> dict[str, Any]:
    """Median milliseconds of fn(*inputs) (CUDA events on a GPU, host clock on CPU)."""
    dev = torch.device(device)
    first = make_inputs(kernel, env, device, seed)
    nbytes = sum(a.numel() * a.element_size() for a in first if isinstance(a, torch.Tensor))
    sets = 1 if dev.type != "cuda" else max(2, min(8, math.ceil(4 * _l2_bytes(dev) / max(nbytes, 1))))
    arg_sets = [first] + [make_inputs(kernel, env, device, seed + i) for i in range(1, sets)]
    if dev.type != "cuda":
        t0 = time.perf_counter()
        fn(*first)
        ms = (time.perf_counter() - t0) * 1e3
        return {"ms": ms, "reps": 1, "sets": 1, "clock": "host (interpreter)"}
    fn(*first)                                   # compile
    torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for i in range(3):
        fn(*arg_sets[i % sets])
    torch.cuda.synchronize(dev)
    est = max((time.perf_counter() - t0) * 1e3 / 3, 1e-3)
    for i in range(int(20 / est)):
        fn(*arg_sets[i % sets])
    reps = max(10, min(max_reps, int(rep_ms / est)))
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(reps)]
    for i, (a, b) in enumerate(events):
        args = arg_sets[i % sets]
        a.record()
        fn(*args)
        b.record()
    torch.cuda.synchronize(dev)
    times = sorted(a.elapsed_time(b) for a, b in events)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"ms": statistics.median(times), "p25": q[0], "p75": q[2], "reps": reps,
            "sets": sets, "clock": "cuda events"}


def default_env(kernel, device: str) -> dict[str, int]:
    """The same power of two for every shape symbol, the largest keeping every tensor within
    2^26 elements on a GPU (2^10 under the interpreter)."""
    budget = 1 << (26 if device == "cuda" else 10)
    syms = kernel.ir.symbols
    for e in range(14, 0, -1):
        env = {s: 1 << e for s in syms}
        try:
            if all(math.prod(d.evaluate(env) for d in t.dims) <= budget
                   for t in (*kernel.ir.tensor_params, *kernel.ir.outputs)) and \
                    all(c.holds(env) for c in kernel.ir.checks):
                return env
        except Exception:  # noqa: BLE001
            continue
    return {s: 1 for s in syms}
