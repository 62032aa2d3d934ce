"""The worker of bench/kernelbench/run.py: one KernelBench problem, its kspec translation on
the requested backends in turn, KernelBench's protocol.

    python3 bench/kernelbench/kb_worker.py JOB_JSON

Prints MARK + JSON lines on stdout: first the problem's own row (backend "eager": eager and
torch.compile times) when job["base"] is set, then one row per backend. It runs in its own
process because an illegal memory access poisons the CUDA context for everything after it,
and a hang can only be ended by a kill (bench/worker_driver.py).

Protocol (KernelBench's eval): seed, get_init_inputs, seed, Model(*init) once; `trials`
trials, each with its own seed drawn from the first, get_inputs() made on the device, the
model's output the reference; a backend is correct when every trial's output passes
allclose(atol = rtol = 1e-4 for fp32, 1e-2 for f16/bf16) and has no NaN. Times: medians of
CUDA-event-timed calls after a warm-up with a cold L2 each (KernelBench's timing), of the
model (eager), torch.compile(model) and each correct kernel on the bound arguments.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent), str(HERE)]

import torch  # noqa: E402

import kb_bind  # noqa: E402
from gpu_lock import GpuLock  # noqa: E402
from kb_load import SMALL_FLOORS, Problem, exec_problem, read_header  # noqa: E402
from worker_common import compare, is_fatal, median_ms, short, sync  # noqa: E402

MARK = "@@kb-run "
TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 1e-2}
WARMUP = 3                  # KernelBench's time_execution_with_cuda_event defaults
REPS = 100                  # KernelBench's num_perf_trials
GPU = GpuLock()             # workers sharing a GPU: timed loops have it to themselves


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed(seed)


def to_device(x: Any, device: torch.device) -> Any:
    return x.to(device) if isinstance(x, torch.Tensor) else x


class Setup:
    """The problem's objects in this process: model, init inputs, trial seeds. At --small
    the sizes are shrunk to the first floor at which the model runs (kb_load.SMALL_FLOORS:
    a dilated kernel may be wider than the smallest input)."""

    def __init__(self, job: dict[str, Any]):
        self.device = torch.device(job["device"])
        self.problem = Problem(job["level"], job["stem"], Path(job["path"]))
        self.floor: int | None = None
        if not job["small"]:
            self._make(job, None)
            return
        for i, floor in enumerate(SMALL_FLOORS):
            try:
                self._make(job, floor)
                self.eager(self.inputs(0))
                self.floor = floor
                return
            except Exception:  # noqa: BLE001 - too small for this problem: the next floor
                if i == len(SMALL_FLOORS) - 1:
                    raise

    def _make(self, job: dict[str, Any], floor: int | None) -> None:
        self.ns = exec_problem(self.problem, floor)
        set_seed(job["seed"])
        self.init = [to_device(x, self.device) for x in self.ns["get_init_inputs"]()]
        set_seed(job["seed"])
        with torch.device(self.device):      # weights made where they run
            self.model = self.ns["Model"](*self.init).to(self.device)
        set_seed(job["seed"])                 # the trials' seeds, as KernelBench draws them
        self.seeds = [int(torch.randint(0, 2**32 - 1, (1,)).item())
                      for _ in range(job["trials"])]
        self.n_inputs = len(self.inputs(0))    # forward's arguments, for the binding

    def inputs(self, trial: int) -> list[Any]:
        """get_inputs() under the trial's seed, made on the device (multi-GB inputs made on
        the CPU cost minutes)."""
        set_seed(self.seeds[trial])
        with torch.device(self.device):
            made = self.ns["get_inputs"]()
        return [to_device(x, self.device) for x in made]

    def eager(self, inputs: list[Any]) -> Any:
        out = self.model(*inputs)
        sync(self.device)
        return out


def time_ms(fn: Callable[[], Any], device: torch.device, job: dict[str, Any]) -> float:
    with GPU.exclusive():
        return median_ms(fn, device, job["reps"], warmup=WARMUP, flush_l2=True)


def base_row(setup: Setup, job: dict[str, Any]) -> dict[str, Any]:
    """Eager and torch.compile (default mode) times of the model on trial 0's inputs."""
    row: dict[str, Any] = {"backend": "eager", "status": "ok", "small_floor": setup.floor}
    if not job["time"]:
        return row
    with GPU.shared():
        inputs = setup.inputs(0)
    row["eager_ms"] = time_ms(lambda: setup.model(*inputs), setup.device, job)
    if job["compile"]:
        try:
            compiled = torch.compile(setup.model)
            t0 = time.perf_counter()
            with GPU.shared():
                compiled(*inputs)
                sync(setup.device)
            row["compile_first_call_s"] = round(time.perf_counter() - t0, 2)
            row["compile_ms"] = time_ms(lambda: compiled(*inputs), setup.device, job)
        except Exception as e:  # noqa: BLE001 - torch.compile failing is a finding, not ours
            row["compile_detail"] = short(e)
    return row


def build(kernel: Any, backend: str, device: torch.device) -> Callable:
    """The backend's launcher; on the CPU, cuda and hip run kspec's C++ emulation (g++)."""
    if device.type == "cpu" and backend in ("cuda", "hip"):
        from kspec.backends.cxx import emulate
        return emulate.build(kernel.ir)
    return kernel.build(backend)


def is_compile_error(e: BaseException) -> bool:
    """A compiler's rejection at the first call (Triton compiles there; nvcc and hipcc at
    build), as opposed to a failure of the compiled kernel."""
    import kspec
    return isinstance(e, kspec.ToolchainError) or type(e).__name__ == "CompilationError"


def check_trial(setup: Setup, kernel: Any, header: Any, fn: Callable, bind: Callable,
                trial: int) -> dict[str, Any]:
    """One trial: fresh inputs, the model's output, the kernel's, KernelBench's check."""
    inputs = setup.inputs(trial)
    ref = kb_bind.as_tuple(setup.eager(inputs))
    got = kb_bind.result(kernel, header, fn(*bind(inputs)), ref if len(ref) > 1 else ref[0])
    sync(setup.device)
    if len(got) != len(ref):
        return {"status": "wrong", "correct": False,
                "detail": f"{len(got)} outputs compared with the model's {len(ref)}"}
    for i, (g, r) in enumerate(zip(got, ref)):
        tol = TOLERANCE.get(r.dtype, 1e-4)
        row = compare(g, r, atol=tol, rtol=tol)
        if not row["correct"]:
            row.update(trial=trial, output=i)
            row.update(float64_errors(setup.model, inputs, g, r, i))
            return row
    return row


def float64_errors(model: torch.nn.Module, inputs: list[Any], got: torch.Tensor,
                   ref: torch.Tensor, index: int) -> dict[str, Any]:
    """For a wrong verdict: the model run in float64 on the same inputs, and how far the
    kernel's output and eager's are from it (max abs). KernelBench's check compares with
    eager's f32 output, whose own rounding can exceed its 1e-4 (a sum of 8192 GEMM columns
    that cancel to ~10): the row then says which of the two is nearer the truth."""
    import copy
    try:
        wide = copy.deepcopy(model).double()
        args = [x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
                for x in inputs]
        with torch.no_grad():
            truth = kb_bind.as_tuple(wide(*args))[index]
        sync(got.device)
        kspec_err = (got.double() - truth).abs().max().item()
        eager_err = (ref.double() - truth).abs().max().item()
    except Exception as e:  # noqa: BLE001 - no float64 run (memory, an op without it)
        return {"f64_detail": short(e)}
    return {"f64_err_kspec": kspec_err, "f64_err_eager": eager_err,
            "nearer_f64": "kspec" if kspec_err < eager_err else "eager"}


def run_backend(setup: Setup, job: dict[str, Any], backend: str) -> dict[str, Any]:
    """Build (compile error), every trial (error / wrong), then the time of a correct one."""
    import kspec
    path = Path(job["translation"])
    try:
        header = read_header(path)
        kernel = next(iter(kspec.load(path)))
        bind = kb_bind.binder(kernel, header, setup.model, setup.init, setup.n_inputs)
        t0 = time.perf_counter()
        with GPU.shared():
            fn = build(kernel, backend, setup.device)
        row: dict[str, Any] = {"build_s": round(time.perf_counter() - t0, 2)}
    except Exception as e:  # noqa: BLE001 - a build failure is a finding
        return {"status": "compile error", "detail": short(e)}
    try:
        for trial in range(job["trials"]):
            with GPU.shared():
                check = check_trial(setup, kernel, header, fn, bind, trial)
            if not check["correct"]:
                row.update(check)
                return row
        row.update(check, status="correct")
        row.pop("where", None)
        row.pop("correct", None)
        if job["time"]:
            with GPU.shared():
                inputs = setup.inputs(0)
                args = bind(inputs)                   # binding once, outside the timing
            row["kspec_ms"] = time_ms(lambda: fn(*args), setup.device, job)
        return row
    except torch.cuda.OutOfMemoryError as e:
        return {**row, "status": "error", "detail": f"out of memory: {short(e)}"}
    except Exception as e:  # noqa: BLE001
        if is_compile_error(e):
            return {**row, "status": "compile error", "detail": short(e)}
        return {**row, "status": "error", "detail": short(e), "fatal": is_fatal(e)}


def emit(row: dict[str, Any], job: dict[str, Any], started: float) -> None:
    row.update(problem=job["key"], elapsed_s=round(time.perf_counter() - started, 2))
    print(MARK + json.dumps(row), flush=True)


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    torch.backends.cuda.matmul.allow_tf32 = job["allow_tf32"]
    torch.backends.cudnn.allow_tf32 = job["allow_tf32"]
    started = time.perf_counter()
    with torch.no_grad():
        try:
            with GPU.shared():
                setup = Setup(job)
            base = base_row(setup, job) if job["base"] else None
        except Exception as e:  # noqa: BLE001 - the problem itself fails here
            for backend in (["eager"] if job["base"] else []) + job["backends"]:
                emit({"backend": backend, "status": "error",
                      "detail": f"the problem itself: {short(e)}"}, job, started)
            return 2
        if base is not None:
            emit(base, job, started)
        for backend in job["backends"]:
            started = time.perf_counter()
            row = run_backend(setup, job, backend)
            emit({"backend": backend, **row}, job, started)
            if row.get("fatal"):             # the driver starts a fresh process for the rest
                return 3
            if setup.device.type == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
