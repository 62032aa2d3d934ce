"""What the optimisation loop needs to know about one target, behind one interface, so that the
loop, the evaluator and the store serve Triton, CUDA and HIP alike:

    t = tuning(kernel, "cuda", device="cpu", arch="sm_90")
    t.target()                      # space.Target: the resource limits pruning uses
    t.spaces(env)                   # the LaunchSpaces of the search
    t.fixed_schedule(env)           # what the backend picks by itself at env
    t.same(env, fixed)              # -> callable: why a schedule runs the same kernels as another
    t.candidate_source(schedule)    # a self-contained candidate (schedule baked in)
    t.verify(source, ...)           # the gate: a kspec.verify Verdict
    t.launcher(source)              # a callable for timing (None: nothing here runs it)

Triton: the generated module, `kspec.verify.verify_candidate` and the Triton interpreter on CPU.

CUDA / HIP: a candidate is the C++ text `BACKEND.source(kernel, arch, schedule=tiles)` plus the
whole schedule in a trailing comment (space.cxx_schedule_source), which `cxx_launcher` reads to
build the plan (function names, tiles) and the launcher (launch-time "rows", "vector"). On a GPU
it is compiled for the device and timed; on CPU, a schedule without tiles runs as the C++ of
kspec's CPU emulation (g++), and a tiled one is compiled for `arch` (nvcc / hipcc) and stays
"unverified" (tensor cores run only on the GPU). Either way a tiled candidate whose tile
functions spill registers (ptxas / clang's report) is rejected after compiling.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable

from .. import ir
from ..binding import bind
from ..errors import BackendUnavailable, KspecError
from .space import (SIZE_CHOICES, Target, compile_time, cxx_launch_spaces, cxx_schedule,
                    cxx_schedule_source, launch_spaces, schedule_source)
from .workload import make_inputs

CXX_TARGETS = ("cuda", "hip")
LAUNCH_TIMEOUT = 120.0        # seconds one launch of a candidate may take in the gate's worker


class Rejected(Exception):
    """A candidate that compiled but is rejected by the compiler's resource report."""


def tuning(kernel, target: str, device: str, arch: str | None = None):
    if target == "triton":
        if arch is not None:
            raise KspecError("--arch applies to the C++ targets (cuda, hip); Triton tunes for "
                             "the device it runs on")
        return TritonTuning(kernel, device)
    if target in CXX_TARGETS:
        return CxxTuning(kernel, target, device, arch)
    raise KspecError(f"kcompile tune: unknown target '{target}'; expected triton, cuda or hip")


# --- Triton ----------------------------------------------------------------------------------
class TritonTuning:
    name = "triton"
    arch: str | None = None
    cpu_timed = True          # the interpreter's wall time is recorded (it decides nothing)

    def env_device(self) -> str:
        """What the default benchmark shape is sized for (loop.default_env)."""
        return self.device

    def __init__(self, kernel, device: str):
        self.kernel, self.device = kernel, device
        self._base: str | None = None

    def target(self) -> Target:
        import torch
        return Target.of_device(self.device if self.device == "cpu" else torch.device("cuda"))

    def store_arch(self, tgt: Target) -> str:
        return tgt.arch

    def base_source(self) -> str:
        if self._base is None:
            self._base = self.kernel.source("triton")
        return self._base

    def spaces(self, env: dict[str, int]):
        return launch_spaces(self.kernel.ir, self.base_source(), env)

    def fixed_schedule(self, env: dict[str, int]) -> dict[str, Any]:
        return fixed_schedule(self.kernel, self.base_source(), env, self.device)

    def same(self, env: dict[str, int], fixed: dict[str, Any], tgt: Target):
        def same(schedule: dict[str, Any]) -> str | None:
            return "the fixed schedule" if all(fixed.get(k) == v for k, v in schedule.items()) \
                else None
        return same

    def candidate_source(self, schedule: dict[str, Any]) -> str:
        return schedule_source(self.base_source(), schedule)

    def verify(self, source: str, **kw: Any):
        from ..verify.candidates import verify_candidate
        return verify_candidate(self.kernel, "triton", source, device=self.device, **kw)

    def launcher(self, source: str) -> Callable:
        from ..verify.candidates import load_triton_module, triton_launcher
        return triton_launcher(self.kernel.ir,
                               load_triton_module(source, interpret=self.device == "cpu"))


class _Recorder(dict):
    """A schedule dict that records every default the module reads (the fixed schedule)."""

    def __init__(self):
        super().__init__()
        self.seen: dict[str, Any] = {}

    def __bool__(self) -> bool:       # the module does `schedule = schedule or {}`
        return True

    def get(self, key, default=None):
        self.seen.setdefault(key, default)
        return default


def fixed_schedule(kernel, source: str, env: dict[str, int], device: str) -> dict[str, Any]:
    """The values the generated module picks by itself at `env` (one recorded launch)."""
    from ..verify.candidates import load_triton_module

    rec = _Recorder()
    module = load_triton_module(source, interpret=device == "cpu")
    b = bind(kernel.ir, tuple(make_inputs(kernel, env, device)), {})
    call = [b.tensors[p.name] if p.name in b.tensors else b.scalars[p.name]
            for p in kernel.ir.params]
    module.launch(*call, *[b.env[s] for s in kernel.ir.symbols], schedule=rec)
    return {k: v for k, v in rec.seen.items()
            if k != "allow_tf32" and k.rpartition(".")[2] not in SIZE_CHOICES}


# --- CUDA / HIP ------------------------------------------------------------------------------
def _backend(target: str):
    if target == "cuda":
        from ..backends.cuda import BACKEND
    else:
        from ..backends.hip import BACKEND
    return BACKEND


def is_emulation(source: str) -> bool:
    """C++ of kspec's CPU emulation dialect (kspec.backends.cxx.emulate.source)."""
    return re.search(r'^#include [<"]kspec_cpu_emulation\.h[>"]', source, re.M) is not None


def default_arch(target: str, device: str) -> str:
    """The architecture a C++ target is compiled for: the GPU's as its backend names it (e.g.
    sm_90a on Hopper), else the toolchain's default."""
    if device == "cuda":
        import torch
        if target == "hip" and torch.version.hip is not None:
            from ..backends.hip import launcher as hip_launcher
            return hip_launcher.device_arch()
        from ..backends.cuda import device_arch
        return device_arch()
    if target == "cuda":
        from ..backends.cuda import toolchain
    else:
        from ..backends.hip import toolchain
    return toolchain.DEFAULT_ARCH


def compile_cxx(target: str, source: str, arch: str):
    """Compile C++ text for `arch` without a GPU: nvcc (cuda; hip for sm_*) or hipcc (gfx*)."""
    if target == "cuda":
        from ..backends.cuda import toolchain
        return toolchain.compile_nvcc(source, arch)
    from ..backends.hip import toolchain as hip_toolchain
    if arch.startswith("sm_"):
        return hip_toolchain.compile_hip_nvidia(source, arch)
    return hip_toolchain.compile_hipcc(source, arch)


def require_gpu(target: str) -> None:
    """BackendUnavailable (with the reason) unless this machine can launch `target` kernels:
    HIP on an AMD GPU with ROCm, or CUDA / HIP-on-NVIDIA on an NVIDIA GPU."""
    import torch

    if target == "hip" and torch.version.hip is not None:
        from ..backends.hip import launcher as hip_launcher
        reason = hip_launcher.unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        return
    from ..backends.cuda import launcher as cuda_launcher
    cuda_launcher.require()


def _runtime(target: str, compiled, functions: list[str]):
    import torch

    require_gpu(target)
    if target == "hip" and torch.version.hip is not None:       # ROCm: an AMD GPU
        from ..backends.hip import launcher as hip_launcher
        return hip_launcher.HipRuntime(compiled.binary, functions)
    from ..backends.cuda import launcher as cuda_launcher
    return cuda_launcher.CudaRuntime(compiled.binary, functions)


def cxx_launcher(kernel: ir.Kernel, target: str, source: str, arch: str | None = None,
                 compiled=None) -> Callable:
    """The launcher of a C++ candidate `source` (as `cxx_schedule_source` writes it) for
    `target` on `arch`: "cpu" runs it through the CPU emulation (the text must be the emulation
    dialect's), otherwise it is compiled for `arch` (default: this GPU's; unless `compiled` is
    given) and launched on this machine's GPU with the plan of its schedule. What the store
    rebuilds kernels with."""
    from ..backends.cxx import plan_for
    from ..backends.cxx.launch import PlanLauncher

    body, schedule = cxx_schedule(source)
    if arch is None:
        require_gpu(target)
        arch = default_arch(target, "cuda")
    if arch == "cpu":
        from ..backends.cxx import emulate
        return emulate.build(kernel, schedule=schedule, source=body,
                             label=f"cpu-emulation ({target} schedule)")
    plan = plan_for(kernel, _backend(target).dialect, arch, "plan", compile_time(schedule) or None)
    compiled = compiled or compile_cxx(target, body, arch)
    runtime = _runtime(target, compiled, [f for u in plan.units for f in u.functions()])
    return PlanLauncher(plan, runtime, "cuda", f"{target} {arch} (tuned)", schedule)


def _tile_functions(compiled, schedule: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The compiler's resource report for the functions of the schedule's tiles."""
    tiles = [str(v) for v in compile_time(schedule).values()]
    return {fn: r for fn, r in sorted(compiled.resources.items())
            if any(f"_{t}_" in fn for t in tiles)}


def spills(compiled, schedule: dict[str, Any]) -> list[str]:
    """The functions of the schedule's tiles that spill registers, as 'name (what)'."""
    out = []
    for fn, r in _tile_functions(compiled, schedule).items():
        amount = r.get("spill_stores", 0) + r.get("spill_loads", 0) + \
            r.get("vgpr_spill", 0) + r.get("sgpr_spill", 0)
        if amount:
            regs = r.get("registers", r.get("vgprs", 0))
            out.append(f"{fn} ({amount} B of spills at {regs} registers)")
    return out


def planned_launches(kernel: ir.Kernel, plan, env: dict[str, int], sms: int,
                     schedule: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(function, grid, block) of every launch the plan would make at `env` on a GPU with `sms`
    multiprocessors and this schedule: the units' own choices, run on meta tensors."""
    import torch

    from ..backends.cxx.ctype import TORCH_DTYPES, compute_ctype
    from ..backends.cxx.launch import DeviceInfo

    def empty(shape, dtype):
        return torch.empty(tuple(shape), dtype=dtype, device="meta")

    buffers = {}
    for t in (*kernel.tensor_params, *kernel.outputs):
        buffers[t.name] = empty((d.evaluate(env) for d in t.dims), t.dtype.torch)
    for t in plan.temporaries:
        buffers[t.name] = empty((d.evaluate(env) for d in t.dims),
                                TORCH_DTYPES[compute_ctype(t.dtype)])
    info = DeviceInfo(False, sms, schedule)
    out = []
    for unit in plan.units:
        if unit.standby:
            continue
        for name, (shape, ctype) in unit.scratch(env, info).items():
            buffers[name] = empty(shape, TORCH_DTYPES[ctype])
        out += [tuple(x[:3]) for x in unit.launches(env, buffers, info)]
    return out


class CxxTuning:
    cpu_timed = False         # the emulation's time says nothing; shapes are the GPU's

    def env_device(self) -> str:
        """The shape is the GPU problem the tiles are pruned and costed for, also on CPU (the
        emulation verifies at its own sizes and is not timed)."""
        return "cuda"

    def __init__(self, kernel, target: str, device: str, arch: str | None = None):
        self.kernel, self.name, self.device = kernel, target, device
        if device == "cuda":
            require_gpu(target)
        here = default_arch(target, device)
        if device == "cuda" and arch is not None and arch != here:
            raise KspecError(f"--arch {arch}: candidates run on this machine's GPU, which is "
                             f"{here}")
        self.arch = arch or here
        self.backend = _backend(target)
        self.dialect = self.backend.dialect
        self._plans: dict[str, Any] = {}
        self._emulated: str | None = None

    def target(self) -> Target:
        if self.device == "cuda":
            import torch
            t = Target.of_device(torch.device("cuda"))
            return Target(self.arch, t.smem, t.sms, t.max_warps)
        return Target.for_arch(self.arch)

    def store_arch(self, tgt: Target) -> str:
        """Where the stored kernel ran, as the store names devices (store.device_arch: sm_90
        for an H100, which the backend compiles for as sm_90a), or "cpu" (the emulation)."""
        if self.device == "cpu":
            return "cpu"
        import torch

        from .store import device_arch
        return device_arch(torch.device("cuda"))

    def plan(self, schedule: dict[str, Any] | None = None):
        from ..backends.cxx import plan_for

        tiles = compile_time(schedule or {})
        key = repr(sorted(tiles.items()))
        if key not in self._plans:
            self._plans[key] = plan_for(self.kernel.ir, self.dialect, self.arch, "plan",
                                        tiles or None)
        return self._plans[key]

    def base_source(self) -> str:
        return self.candidate_source({})

    def spaces(self, env: dict[str, int]):
        return cxx_launch_spaces(self.plan(), env)

    def fixed_schedule(self, env: dict[str, int]) -> dict[str, Any]:
        """The tile each tensor-core contraction launches at env by the backend's heuristic
        (the launch-time keys are at their defaults)."""
        out: dict[str, Any] = {}
        plan = self.plan()
        try:
            launched = planned_launches(self.kernel.ir, plan, env, self.target().sms, {})
        except Exception:  # noqa: BLE001 - a shape the plan cannot take: no fixed tiles
            return out
        for unit in plan.units:
            if getattr(unit, "pattern", "") != "contraction":
                continue
            for fn, *_ in launched:
                if fn in unit.functions():    # <unit name>_<tile key>_<async|safe>
                    out[f"{unit.index}.tile"] = fn[len(unit.name) + 1:].rsplit("_", 1)[0]
        return out

    def same(self, env: dict[str, int], fixed: dict[str, Any], tgt: Target):
        """Schedules are the same when the plan would launch the same functions with the same
        grids at env (e.g. "rows": "block" where the row does not fit a block anyway)."""
        seen: dict[tuple, str] = {}
        try:
            seen[tuple(planned_launches(self.kernel.ir, self.plan(), env, tgt.sms, {}))] = \
                "the fixed schedule"
        except Exception:  # noqa: BLE001
            pass

        def same(schedule: dict[str, Any]) -> str | None:
            try:
                key = tuple(planned_launches(self.kernel.ir, self.plan(schedule), env, tgt.sms,
                                             schedule))
            except Exception:  # noqa: BLE001 - cannot tell: keep it
                return None
            if key in seen:
                return f"launches the same kernels as {seen[key]}"
            seen[key] = str(schedule)
            return None
        return same

    def emulation_source(self) -> str:
        if self._emulated is None:
            from ..backends.cxx import emulate
            self._emulated = emulate.source(self.kernel.ir)
        return self._emulated

    def candidate_source(self, schedule: dict[str, Any]) -> str:
        """On CPU without tiles: the emulation's C++ (what runs here); otherwise the target's
        text for `arch`, generated with the schedule's tiles."""
        tiles = compile_time(schedule)
        if self.device == "cpu" and not tiles:
            text = self.emulation_source()
        else:
            text = self.backend.source(self.kernel.ir, self.arch, schedule=tiles or None)
        return cxx_schedule_source(text, schedule)

    def _build(self, source: str, compiled_for: list[str], isolated: bool = False
               ) -> tuple[Callable | None, str, str]:
        """(launcher or None when nothing here runs it, the device it runs on, a note).
        `isolated`: the launcher is the gate's worker process (kspec.verify.isolation), which
        builds the candidate there; else it is built in this process. Raises on compile errors
        found here; Rejected when the schedule's tiles spill."""
        from ..verify.isolation import IsolatedCandidate

        body, schedule = cxx_schedule(source)
        if is_emulation(body):
            compiled_for.append("cpu (g++ emulation)")
            if isolated:
                return IsolatedCandidate(self.kernel, "cpu", body, device="cpu",
                                         launch_timeout=LAUNCH_TIMEOUT, schedule=schedule), \
                    "cpu", ""
            return cxx_launcher(self.kernel.ir, self.name, source, "cpu"), "cpu", ""
        tool = "hipcc" if self.name == "hip" and not self.arch.startswith("sm_") else "nvcc"
        compiled = compile_cxx(self.name, body, self.arch)
        compiled_for.append(f"{self.name} {self.arch} ({tool})")
        bad = spills(compiled, schedule)
        if bad:
            raise Rejected(f"spills, by {tool}'s resource report: " + "; ".join(bad))
        if self.device == "cpu":
            regs = sorted({r.get("registers", r.get("vgprs", 0))
                           for r in (_tile_functions(compiled, schedule)
                                     or compiled.resources).values()})
            span = f"{regs[0]}-{regs[-1]}" if regs and regs[0] != regs[-1] else \
                (str(regs[0]) if regs else "")
            note = (f"compiled for {self.arch} ({tool}"
                    + (f", {span} registers" if span else "") + ", no spills); "
                    + ("tensor-core tiles run only on a GPU" if compile_time(schedule)
                       else "nothing here runs it"))
            return None, "", note
        if isolated:
            return IsolatedCandidate(self.kernel, self.name, body, device="cuda", arch=self.arch,
                                     launch_timeout=LAUNCH_TIMEOUT, schedule=schedule), "cuda", ""
        return (cxx_launcher(self.kernel.ir, self.name, source, self.arch, compiled), "cuda", "")

    def verify(self, source: str, *, examples: int = 10, seed: int = 0,
               max_elements: int = 4096, max_seconds: float | None = None):
        """The gate of kspec.verify.candidates (every guard, the same statuses), the candidate
        run in the gate's worker process with its schedule applied: verify_candidate builds
        C++ launchers without a schedule, so this starts the worker with one and runs
        kspec.verify's search on it. Compiled here first for the compiler's resource report
        (the worker's build of the same text is a cache hit)."""
        from ..verify.candidates import (ACCEPTED, BUDGET_MB, CHEAT, COMPILE_ERROR, UNVERIFIED,
                                         Verdict)
        from ..verify.isolation import CandidateError
        from ..verify.runner import search
        from ..verify.static import problems
        from ..verify.strategies import boundary_cases

        t0 = time.perf_counter()
        finding = problems(self.name, cxx_schedule(source)[0])
        if finding:
            return Verdict(CHEAT, self.name, f"static check: {finding}",
                           seconds=time.perf_counter() - t0)
        compiled_for: list[str] = []
        try:
            launch, dev, note = self._build(source, compiled_for, isolated=True)
        except BackendUnavailable as e:
            if self.device == "cuda":
                raise
            return Verdict(UNVERIFIED, self.name, f"not compiled: {e}",
                           seconds=time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - the compiler's failure, or Rejected
            return Verdict(COMPILE_ERROR, self.name, first_error(e),
                           seconds=time.perf_counter() - t0, compiled_for=compiled_for)
        if launch is None:
            return Verdict(UNVERIFIED, self.name, note, seconds=time.perf_counter() - t0,
                           compiled_for=compiled_for)
        try:
            launch.load()
            # the sizes past each launch-time threshold (looped rows, packed vectors ...), as
            # the Triton gate runs them: compiled C++ takes the gate's budget even on the CPU
            fixed = [("branch boundary", c) for c in boundary_cases(
                self.kernel.ir, "", int(BUDGET_MB["cpu"] * 2 ** 20))]
            res = search(self.kernel, launch, examples=examples, seed=seed, device=dev,
                         max_elements=max_elements, block_sizes=self._block_sizes(source),
                         max_seconds=max_seconds, fixed=fixed)
        except CandidateError as e:
            return Verdict(e.status, self.name, e.detail, seconds=time.perf_counter() - t0,
                           compiled_for=compiled_for)
        finally:
            launch.close()
        status = ACCEPTED if res.ok else res.failure.status
        return Verdict(status, self.name, "" if res.ok else res.failure.detail, res.failure,
                       res.examples, res.passed, res.worst, time.perf_counter() - t0, dev,
                       compiled_for, res.records)

    def isolated(self, source: str):
        """The candidate in the gate's worker process, for timing (None: nothing here runs it)."""
        launch, _, _ = self._build(source, [], isolated=True)
        return launch

    def _block_sizes(self, source: str) -> set[int]:
        """Sizes around which partial tiles show: the schedule's tile dimensions."""
        from ..backends.cxx.contraction import parse_tile

        path = self.plan().dialect.tensor_cores or "mma_sync"
        out: set[int] = set()
        for v in compile_time(cxx_schedule(source)[1]).values():
            try:
                t = parse_tile(str(v), path)
            except ValueError:
                continue
            out |= {t.bm, t.bn, t.bk}
        return out

    def launcher(self, source: str) -> Callable | None:
        """For timing: None when nothing here runs the candidate (compiled only)."""
        launch, _, _ = self._build(source, [])
        return launch


def first_error(e: Exception) -> str:
    """The exception's first line, and the compiler's first error line when there is one."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    if isinstance(e, Rejected):
        return lines[0]
    text = f"{type(e).__name__}: {lines[0] if lines else ''}"
    err = next((ln for ln in lines[1:] if "error" in ln.lower()), None)
    return f"{text} | {err}" if err else text
