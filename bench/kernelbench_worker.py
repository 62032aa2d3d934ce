"""The worker of bench/kernelbench_sizes.py: one problem, the requested backends in turn.

    python3 bench/kernelbench_worker.py PROBLEM BACKENDS DEVICE SCALE REPS SEED

Prints one line per backend on stdout: MARK followed by the result as JSON (anything else on
stdout is ignored by the driver). It runs in its own process because an illegal memory access
poisons the CUDA context for everything after it, and a hang can only be ended by a kill.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import torch  # noqa: E402

from kernelbench_problems import BY_NAME, Problem, load_kernel  # noqa: E402
from worker_common import compare, is_fatal, median_ms, short, sync  # noqa: E402

MARK = "@@kb-result "


def free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_backend(problem: Problem, backend: str, inputs: dict[str, Any], ref: torch.Tensor,
                device: torch.device, reps: int) -> dict[str, Any]:
    """Build, check against the eager reference, time; Python failures become rows."""
    import kspec
    try:
        fn = load_kernel(problem).build(backend)
    except kspec.BackendUnavailable as e:
        return {"status": "skipped", "detail": f"backend unavailable: {short(e)}"}
    except Exception as e:  # noqa: BLE001 - a build failure is a finding
        return {"status": "error", "detail": f"compile/build: {short(e)}"}
    try:
        t0 = time.perf_counter()
        out = problem.call(fn, inputs)           # warm-up: compile, load, first launch
        sync(device)
        row: dict[str, Any] = {"first_call_s": round(time.perf_counter() - t0, 2)}
        row.update(compare(out, ref))
        del out
        free(device)
        row["kspec_ms"] = median_ms(lambda: problem.call(fn, inputs), device, reps)
        return row
    except torch.cuda.OutOfMemoryError as e:
        return {"status": "error", "detail": f"out of memory: {short(e)}"}
    except Exception as e:  # noqa: BLE001
        fatal = is_fatal(e)
        return {"status": "crash" if fatal else "error", "detail": short(e), "fatal": fatal}


def eager_ms(problem: Problem, inputs: dict[str, Any], device: torch.device,
             reps: int) -> tuple[torch.Tensor, float]:
    """The reference output (first eager call) and the eager time, both in fp32 with TF32
    off, as KernelBench runs its fp32 problems."""
    ref = problem.eager(inputs)
    sync(device)
    ms = median_ms(lambda: problem.eager(inputs), device, reps)
    free(device)
    return ref, ms


def main(argv: list[str]) -> int:
    name, backends, device_name, scale, reps, seed = argv
    problem = BY_NAME[name]
    device = torch.device(device_name)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    gen = torch.Generator(device=device).manual_seed(int(seed))
    t0 = time.perf_counter()
    inputs = problem.make(problem.sizes[scale], device, gen)
    ref, e_ms = eager_ms(problem, inputs, device, int(reps))
    setup_s = round(time.perf_counter() - t0, 2)
    for backend in backends.split(","):
        t1 = time.perf_counter()
        row = run_backend(problem, backend, inputs, ref, device, int(reps))
        row.update({"problem": name, "backend": backend, "eager_ms": e_ms,
                    "setup_s": setup_s, "elapsed_s": round(time.perf_counter() - t1, 2)})
        if row.get("kspec_ms"):
            row["speedup"] = e_ms / row["kspec_ms"]
        if not row.get("fatal"):
            free(device)
        print(MARK + json.dumps(row), flush=True)
        if row.get("fatal"):        # the driver starts a fresh process for the rest
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
