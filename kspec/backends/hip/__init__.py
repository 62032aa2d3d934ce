"""The HIP backend: C++ from the shared family (kspec/backends/cxx) in the HIP dialect.

One HIP source, two ways to run it:
  - AMD GPU with ROCm: hipcc --genco for the device's gfx arch, launched through HIP's Python
    bindings (hip-python).
  - NVIDIA GPU: the same source compiled by nvcc on HIP's NVIDIA platform (a small prelude makes
    it build with CUDA 13) and launched with the CUDA launcher. This is how HIP kernels are
    verified on the NVIDIA machines here.

    BACKEND.source(kernel_ir, arch=None)           -> .hip text (arch sets the wavefront size)
    BACKEND.build(kernel_ir, arch=None, headers="auto"|"system"|"stand-in",
                  lowering="plan"|"generic"|"normalized") -> launcher
    BACKEND.compile_asm(kernel_ir, arch="gfx90a", shape=None)
                                                   -> {file: text}: source, AMDGCN, resources
                                                      (arch sm_*: PTX of the NVIDIA path);
                                                      with shape, the launches there
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ... import ir
from ...errors import BackendUnavailable, KspecError
from ..cuda import device_arch as cuda_device_arch
from ..cuda import launcher as cuda_launcher
from ..cuda import toolchain as cuda_toolchain
from ..cxx import HIP, plan_for, render_plan
from ..cxx.describe import plan_text
from ..cxx.branches import plan_branches
from ..cxx.launch import PlanLauncher
from ..cxx.shape import launches_at, launches_text
from ..cxx.tools import Compiled
from . import launcher, toolchain


def _options(kernel: ir.Kernel, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise KspecError(f"{kernel.name}: unknown option(s) {', '.join(unknown)} for the hip "
                         f"backend; it takes {', '.join(allowed)}")


def _is_nvidia(arch: str) -> bool:
    return arch.startswith("sm_")


class HipBackend:
    name = "hip"
    dialect = HIP

    def source(self, kernel: ir.Kernel, arch: str | None = None, lowering: str = "plan",
               schedule: dict | None = None, **options: Any) -> str:
        _options(kernel, options, ("arch", "headers", "lowering", "schedule"))
        return render_plan(plan_for(kernel, HIP, arch, lowering, schedule), arch)

    def plan(self, kernel: ir.Kernel, arch: str | None = None,
             schedule: dict | None = None) -> str:
        """The units this backend renders for `arch` (default {toolchain.DEFAULT_ARCH}), with
        the schedule their launcher follows (cxx/describe.py)."""
        return plan_text(kernel, HIP, arch or toolchain.DEFAULT_ARCH, schedule)

    def compile(self, kernel: ir.Kernel, arch: str = toolchain.DEFAULT_ARCH, *,
                asm: bool = False, headers: str = "auto", lowering: str = "plan",
                schedule: dict | None = None) -> Compiled:
        """Compile without a GPU: for gfx* through hipcc (code object, AMDGCN when asked,
        resource usage); for sm_* through nvcc on HIP's NVIDIA platform (cubin, PTX)."""
        src = self.source(kernel, arch, lowering, schedule)
        if _is_nvidia(arch):
            return toolchain.compile_hip_nvidia(src, arch, ptx=asm, headers=headers)
        return toolchain.compile_hipcc(src, arch, asm=asm)

    def build(self, kernel: ir.Kernel, arch: str | None = None, headers: str = "auto",
              lowering: str = "plan", schedule: dict | None = None, **options: Any
              ) -> Callable:
        """`schedule`: as for the cuda backend."""
        _options(kernel, options, ("allow_tf32",))
        if options.get("allow_tf32"):   # f32 contractions: one TF32 product (precision.py)
            schedule = {**(schedule or {}), "allow_tf32": True}
        if torch.version.hip is not None:               # ROCm PyTorch: an AMD GPU
            reason = launcher.unavailable_reason()
            if reason:
                raise BackendUnavailable(reason)
            arch = arch or launcher.device_arch()
            plan = plan_for(kernel, HIP, arch, lowering, schedule)
            compiled = self.compile(kernel, arch, lowering=lowering, schedule=schedule)
            runtime: Any = launcher.HipRuntime(compiled.binary, [f for u in plan.units for f in u.functions()])
            return PlanLauncher(plan, runtime, "cuda", f"hip {arch}", schedule)
        reason = cuda_launcher.unavailable_reason()
        if reason:
            raise BackendUnavailable(f"HIP kernels run on an AMD GPU with ROCm, or on an "
                                     f"NVIDIA GPU through HIP's NVIDIA platform; neither is "
                                     f"here: {reason}")
        arch = arch or cuda_device_arch()
        if not _is_nvidia(arch):
            raise KspecError(f"{kernel.name}: arch {arch} is not an NVIDIA architecture, but "
                             f"this machine's GPU is NVIDIA")
        plan = plan_for(kernel, HIP, arch, lowering, schedule)
        compiled = self.compile(kernel, arch, headers=headers, lowering=lowering,
                                schedule=schedule)
        runtime = cuda_launcher.CudaRuntime(compiled.binary, [f for u in plan.units for f in u.functions()])
        return PlanLauncher(plan, runtime, "cuda", f"hip-on-nvidia {arch}", schedule)

    def branches(self, kernel: ir.Kernel, multiprocessors: int = 4, arch: str | None = None
                 ) -> list:
        """The launch's size-dependent choices as data (cxx/branches.py), for the verifier:
        for `arch`, else this machine's GPU (AMD, or NVIDIA through HIP's NVIDIA platform),
        else the default."""
        if arch is None and torch.version.hip is not None and not launcher.unavailable_reason():
            arch = launcher.device_arch()
        elif arch is None and cuda_launcher.unavailable_reason() is None:
            arch = cuda_device_arch()
        return plan_branches(plan_for(kernel, HIP, arch or toolchain.DEFAULT_ARCH))

    def compile_asm(self, kernel: ir.Kernel, arch: str | None = None,
                    shape: dict[str, int] | None = None) -> dict[str, str]:
        """As for the cuda backend: with `shape`, also `<kernel>.<arch>.launches.txt`."""
        arch = arch or toolchain.DEFAULT_ARCH
        launches = launches_at(kernel, HIP, arch, shape) if shape is not None else None
        c = self.compile(kernel, arch, asm=True)
        name = kernel.name
        files = {f"{name}.hip": self.source(kernel, arch)}
        if _is_nvidia(arch):
            files[f"{name}.ptx"] = c.asm
            files[f"{name}.resources.txt"] = cuda_toolchain.resource_report(
                c, f"{name} (HIP on NVIDIA): registers, shared memory and spills (ptxas -v)")
        else:
            files[f"{name}.s"] = c.asm
            files[f"{name}.resources.txt"] = toolchain.resource_report(
                c, f"{name}: VGPRs, SGPRs, LDS, scratch and occupancy (kernel-resource-usage)")
        if launches is not None:
            files[f"{name}.{arch}.launches.txt"] = launches_text(kernel, arch, shape, launches)
        return files


BACKEND = HipBackend()
