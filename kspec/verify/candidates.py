"""Verifying a kernel source from outside kspec (hand-written, tuned, or proposed by a model)
against the spec: the gate of the optimisation loop.

    verdict = verify_candidate(kernel, "triton", source_text)
    verdict.status   # "accepted" | "compile_error" | "wrong" | "cheat" | "unverified"
    verdict.failure  # the shrunk failing case (replayable), when there is one

The candidate must keep the entry point and argument order the backend emits:
- triton: a Python module with `launch(*inputs, *shape_symbols)` (inputs in signature order,
  then the shape symbols in `kernel.ir.symbols` order) returning the outputs in declared order.
  CPU tensors run under Triton's interpreter, CUDA tensors on the GPU.
- cuda / hip: C++ with the `extern "C"` kernels of the generated source, same names and
  parameter lists (kspec's plan launcher calls them). Compiled with nvcc / hipcc (sm_90,
  gfx90a by default); they run only on a GPU ("unverified" when this machine has none).
- cpu: the C++ of kspec's CPU emulation dialect (`kspec.backends.cxx.emulate.source`), compiled
  with g++ and run on the CPU: C++ candidates can be gated on a machine without a GPU.

"unverified" means it compiled but nothing here could run it: never treat that as accepted.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import ir
from ..binding import bind
from ..errors import BackendUnavailable, KspecError
from .runner import (CHEAT, COMPILE_ERROR, WRONG, Failure, SearchResult, search,
                     search_branches)
from .strategies import schedule_block_sizes

ACCEPTED, UNVERIFIED = "accepted", "unverified"
STATUSES = (ACCEPTED, COMPILE_ERROR, WRONG, CHEAT, UNVERIFIED)


@dataclass
class Verdict:
    status: str
    target: str
    detail: str = ""
    failure: Failure | None = None
    examples: int = 0
    passed: int = 0
    worst: float = 0.0          # worst error over passing examples, in units of the tolerance
    seconds: float = 0.0
    ran_on: str = ""
    compiled_for: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def text(self) -> str:
        head = (f"{self.status}: {self.target} candidate"
                + (f" on {self.ran_on}" if self.ran_on else "")
                + f"; {self.passed}/{self.examples} examples passed, worst "
                  f"{self.worst:.3g} x tolerance ({self.seconds:.1f} s)")
        lines = [head]
        if self.failure:
            lines.append(self.failure.text())
        elif self.detail:
            lines.append(f"  {self.detail}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        d = {"status": self.status, "target": self.target, "detail": self.detail,
             "examples": self.examples, "passed": self.passed, "worst": self.worst,
             "seconds": self.seconds, "ran_on": self.ran_on, "compiled_for": self.compiled_for}
        if self.failure:
            d["failure"] = {"status": self.failure.status, "detail": self.failure.detail,
                            "case": str(self.failure.case), "replay": self.failure.case.replay(),
                            "hypothesis": self.failure.reproduce}
        return d


def load_triton_module(source: str, interpret: bool):
    """Import candidate Triton source the way the backend imports its own (launcher.load_module)."""
    from ..backends.triton.launcher import load_module

    module = load_module(source, interpret, prefix="kspec_candidate")
    name = module.__name__
    if not callable(getattr(module, "launch", None)):
        sys.modules.pop(name, None)
        raise KspecError("the module defines no launch(...) function")
    return module


def triton_launcher(kernel: ir.Kernel, module, schedule: dict | None = None) -> Callable:
    """Bind arguments like kspec's launcher, then call the module's launch(inputs..., symbols...)
    (with `schedule` when given: a launch-time branch forced, see verify_candidate)."""
    def launch(*args: Any):
        b = bind(kernel, args, {})
        call = [b.tensors[p.name] if isinstance(p, ir.TensorDecl) else b.scalars[p.name]
                for p in kernel.params] + [b.env[s] for s in kernel.symbols]
        return module.launch(*call, schedule=schedule) if schedule else module.launch(*call)

    return launch


def _gpu() -> bool:
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def _cxx_launcher(kernel: ir.Kernel, target: str, source: str, arch: str | None,
                  compiled_for: list[str]) -> tuple[Callable | None, str]:
    """Compile a C++ candidate; return (launcher or None when it cannot run here, device)."""
    from ..backends.cxx import CUDA, HIP, plan_for
    from ..backends.cxx.launch import PlanLauncher

    if target == "cpu":
        launch = _emulated(kernel, source)
        compiled_for.append("cpu (g++)")
        return launch, "cpu"
    if target == "cuda":
        from ..backends.cuda import launcher as cl, toolchain
        run_here = cl.unavailable_reason() is None
        arch = arch or (_device_arch() if run_here else toolchain.DEFAULT_ARCH)
        compiled = toolchain.compile_nvcc(source, arch)
        compiled_for.append(f"cuda {arch} (nvcc)")
        if not run_here:
            return None, ""
        plan = plan_for(kernel, CUDA, arch)
        rt = cl.CudaRuntime(compiled.binary, [f for u in plan.units for f in u.functions()])
        return PlanLauncher(plan, rt, "cuda", f"cuda candidate {arch}"), "cuda"
    if target == "hip":
        from ..backends.cuda import launcher as cl
        from ..backends.hip import toolchain
        run_here = cl.unavailable_reason() is None
        if run_here:
            arch = arch or _device_arch()
            compiled = toolchain.compile_hip_nvidia(source, arch)
            compiled_for.append(f"hip-on-nvidia {arch} (nvcc)")
            plan = plan_for(kernel, HIP, arch)
            rt = cl.CudaRuntime(compiled.binary, [f for u in plan.units for f in u.functions()])
            return PlanLauncher(plan, rt, "cuda", f"hip candidate {arch}"), "cuda"
        arch = arch or toolchain.DEFAULT_ARCH
        toolchain.compile_hipcc(source, arch)
        compiled_for.append(f"hip {arch} (hipcc)")
        return None, ""
    raise KspecError(f"unknown target '{target}'; expected triton, cuda, hip or cpu")


def _device_arch() -> str:
    from ..backends.cuda import device_arch
    return device_arch()


def _emulated(kernel: ir.Kernel, text: str) -> Callable:
    """emulate.build with the candidate's C++ instead of the generated text."""
    from ..backends.cxx import emulate

    return emulate.build(kernel, source=text, label="cpu-emulation candidate")


def verify_candidate(kernel, target: str, source: str, *, examples: int = 10, seed: int = 0,
                     max_elements: int = 4096, max_work: int | None = None,
                     max_seconds: float | None = None, device: str | None = None,
                     arch: str | None = None, shrink_budget: int = 25) -> Verdict:
    """Check a candidate source for `target` against `kernel`'s spec (a kspec.Kernel).

    Runs the all-ones case and a two-launch (no caching) check, then `examples` Hypothesis
    cases under every guard; stops at the first failure and shrinks it."""
    import time

    t0 = time.perf_counter()
    compiled_for: list[str] = []
    try:
        if target == "triton":
            on_gpu = device == "cuda" or (device is None and _gpu())
            module = load_triton_module(source, interpret=not on_gpu)
            launch, dev = triton_launcher(kernel.ir, module), ("cuda" if on_gpu else "cpu")
            compiled_for.append("triton " + ("(GPU JIT)" if on_gpu else "(interpreter)"))
        else:
            launch, dev = _cxx_launcher(kernel.ir, target, source, arch, compiled_for)
    except BackendUnavailable:
        raise
    except SyntaxError as e:
        return Verdict(COMPILE_ERROR, target, f"SyntaxError: {e.msg} (line {e.lineno})",
                       seconds=time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - a compiler's or an import's failure
        text = str(e).strip().splitlines()
        return Verdict(COMPILE_ERROR, target, f"{type(e).__name__}: {text[0] if text else ''}",
                       seconds=time.perf_counter() - t0)
    if launch is None:
        return Verdict(UNVERIFIED, target, "compiled; no device here can run it",
                       seconds=time.perf_counter() - t0, compiled_for=compiled_for)
    blocks = schedule_block_sizes(source) if target == "triton" else ()
    res: SearchResult = search(kernel, launch, examples=examples, seed=seed, device=dev,
                               max_elements=max_elements, max_work=max_work,
                               block_sizes=blocks, shrink_budget=shrink_budget,
                               max_seconds=max_seconds)
    if res.ok and target == "triton":
        res = _forced_branches(kernel, module, source, res, dev, examples, seed,
                               max_elements=max_elements, max_work=max_work, block_sizes=blocks,
                               shrink_budget=shrink_budget, max_seconds=max_seconds)
    status = ACCEPTED if res.ok else res.failure.status
    return Verdict(status, target, "" if res.ok else res.failure.detail, res.failure,
                   res.examples, res.passed, res.worst, time.perf_counter() - t0, dev,
                   compiled_for)


def _forced_branches(kernel, module, source: str, res: SearchResult, dev: str, examples: int,
                     seed: int, **options: Any) -> SearchResult:
    """A candidate that keeps kspec's schedule keys is also run with each launch-time branch
    that small shapes never take (64-bit indices, compensated contractions, looped rows)
    forced, on a few cases each; the first failure is the verdict's. A candidate that ignores
    the keys runs its own code again: nothing is lost, and its sizes were checked above."""
    for branch, forced in search_branches(
            kernel, source, lambda schedule: triton_launcher(kernel.ir, module, schedule),
            examples=examples, seed=seed, device=dev, **options):
        res.examples += forced.examples
        res.passed += forced.passed
        res.worst = max(res.worst, forced.worst)
        if not forced.ok:
            forced.failure.detail = f"[{branch}] {forced.failure.detail}"
            res.failure = forced.failure
            return res
    return res


def verify_file(kernel, target: str, path: str | Path, **kw: Any) -> Verdict:
    return verify_candidate(kernel, target, Path(path).read_text(), **kw)
