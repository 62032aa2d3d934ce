"""Building launchers for outside kernel sources (the candidates of the gate): a Triton
module's `launch` behind kspec's argument binding, C++ through kspec's plan launcher or CPU
emulation. Used in the gate's worker process (worker.py), never by the checker itself."""
from __future__ import annotations

import sys
from typing import Any, Callable

from .. import ir
from ..binding import bind
from ..errors import KspecError


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


def gpu_available() -> bool:
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def cxx_launcher(kernel: ir.Kernel, target: str, source: str, arch: str | None,
                  compiled_for: list[str], schedule: dict | None = None
                  ) -> tuple[Callable | None, str]:
    """Compile a C++ candidate; return (launcher or None when it cannot run here, device).
    `schedule`: what the source was generated and is launched with (a tuner's candidate: its
    contraction tiles name the kernels, its launch-time keys pick the variants)."""
    from ..backends.cxx import CUDA, HIP, plan_for
    from ..backends.cxx.launch import PlanLauncher

    schedule = dict(schedule or {})
    tiles = {k: v for k, v in schedule.items() if k == "tile" or k.endswith(".tile")} or None
    if target == "cpu":
        launch = emulated(kernel, source, schedule)
        compiled_for.append("cpu (g++)")
        return launch, "cpu"
    if target == "cuda":
        from ..backends.cuda import launcher as cl, toolchain
        run_here = cl.unavailable_reason() is None
        arch = arch or (device_arch() if run_here else toolchain.DEFAULT_ARCH)
        compiled = toolchain.compile_nvcc(source, arch)
        compiled_for.append(f"cuda {arch} (nvcc)")
        if not run_here:
            return None, ""
        plan = plan_for(kernel, CUDA, arch, schedule=tiles)
        rt = cl.CudaRuntime(compiled.binary, [f for u in plan.units for f in u.functions()])
        return PlanLauncher(plan, rt, "cuda", f"cuda candidate {arch}", schedule), "cuda"
    if target == "hip":
        from ..backends.cuda import launcher as cl
        from ..backends.hip import toolchain
        run_here = cl.unavailable_reason() is None
        if run_here:
            arch = arch or device_arch()
            compiled = toolchain.compile_hip_nvidia(source, arch)
            compiled_for.append(f"hip-on-nvidia {arch} (nvcc)")
            plan = plan_for(kernel, HIP, arch, schedule=tiles)
            rt = cl.CudaRuntime(compiled.binary, [f for u in plan.units for f in u.functions()])
            return PlanLauncher(plan, rt, "cuda", f"hip candidate {arch}", schedule), "cuda"
        arch = arch or toolchain.DEFAULT_ARCH
        toolchain.compile_hipcc(source, arch)
        compiled_for.append(f"hip {arch} (hipcc)")
        return None, ""
    raise KspecError(f"unknown target '{target}'; expected triton, cuda, hip or cpu")


def device_arch() -> str:
    from ..backends.cuda import device_arch
    return device_arch()


def emulated(kernel: ir.Kernel, text: str, schedule: dict | None = None) -> Callable:
    """emulate.build with the candidate's C++ instead of the generated text (and the schedule
    it is launched with)."""
    from ..backends.cxx import emulate

    return emulate.build(kernel, schedule=schedule or None, source=text,
                         label="cpu-emulation candidate")
