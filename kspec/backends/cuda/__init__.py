"""The CUDA backend: C++ from the shared family (kspec/backends/cxx) in the CUDA dialect,
compiled by nvcc (or NVRTC) to a cubin and launched through the CUDA driver API.

    BACKEND.source(kernel_ir, arch=None)            -> .cu text
    BACKEND.build(kernel_ir, arch=None, compiler="nvcc"|"nvrtc", lowering="plan"|"generic"|"normalized")
                                                    -> launcher(*args, **kwargs)
    BACKEND.compile_asm(kernel_ir, arch="sm_90", shape=None)
                                                    -> {file name: text}: source, PTX, SASS,
                                                       and the register/smem/spill report;
                                                       with shape {"M": ..}, the launches there
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Any, Callable

import torch

from ... import ir
from ...errors import KspecError
from ..cxx import CUDA, plan_for, render_plan
from ..cxx.describe import plan_text
from ..cxx.branches import plan_branches
from ..cxx.launch import PlanLauncher
from ..cxx.shape import launches_at, launches_text
from ..cxx.tools import Compiled
from . import launcher, toolchain


def _options(kernel: ir.Kernel, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise KspecError(f"{kernel.name}: unknown option(s) {', '.join(unknown)} for the cuda "
                         f"backend; it takes {', '.join(allowed)}")


def device_arch(index: int | None = None) -> str:
    """The GPU's own target; on Hopper (9.0) the architecture-specific sm_90a, whose wgmma the
    contraction uses (code built for it runs on 9.0 devices only, as this build does)."""
    major, minor = torch.cuda.get_device_capability(index)
    return f"sm_{major}{minor}" + ("a" if (major, minor) == (9, 0) else "")


class CudaBackend:
    name = "cuda"
    dialect = CUDA

    def source(self, kernel: ir.Kernel, arch: str | None = None, lowering: str = "plan",
               schedule: dict | None = None, **options: Any) -> str:
        _options(kernel, options, ("arch", "compiler", "lowering", "schedule"))
        return render_plan(plan_for(kernel, CUDA, arch, lowering, schedule), arch)

    def plan(self, kernel: ir.Kernel, arch: str | None = None,
             schedule: dict | None = None) -> str:
        """The units this backend renders for `arch` (default {toolchain.DEFAULT_ARCH}), with
        the schedule their launcher follows (cxx/describe.py)."""
        return plan_text(kernel, CUDA, arch or toolchain.DEFAULT_ARCH, schedule)

    def compile(self, kernel: ir.Kernel, arch: str = toolchain.DEFAULT_ARCH, *,
                ptx: bool = False, compiler: str = "nvcc", lowering: str = "plan",
                schedule: dict | None = None) -> Compiled:
        """Compile without a GPU: the cubin, PTX when asked, and ptxas's report."""
        src = self.source(kernel, arch, lowering, schedule)
        if compiler == "nvrtc":
            return toolchain.compile_nvrtc(src, arch)
        if compiler != "nvcc":
            raise KspecError(f"compiler must be 'nvcc' or 'nvrtc', not {compiler!r}")
        return toolchain.compile_nvcc(src, arch, ptx=ptx)

    def build(self, kernel: ir.Kernel, arch: str | None = None, compiler: str = "nvcc",
              lowering: str = "plan", schedule: dict | None = None, **options: Any
              ) -> Callable:
        """`schedule`: the plan lowering's choices, compile-time ({"0.tile": "128x128x32w4s4"}
        for launch 0's contraction, {"precision": "ieee" | "tf32x3" | "tf32"} for the f32 ones)
        and launch-time ({"vector": False}, {"rows": "loop"}). `allow_tf32=True`: f32
        contractions take one TF32 product (cxx/precision.py), as Triton's option does."""
        _options(kernel, options, ("allow_tf32",))
        if options.get("allow_tf32"):   # f32 contractions: one TF32 product (precision.py)
            schedule = {**(schedule or {}), "allow_tf32": True}
        launcher.require()   # BackendUnavailable, with the reason, before any compile
        arch = arch or device_arch()
        plan = plan_for(kernel, CUDA, arch, lowering, schedule)
        compiled = self.compile(kernel, arch, compiler=compiler, lowering=lowering,
                                schedule=schedule)
        runtime = launcher.CudaRuntime(compiled.binary, [f for u in plan.units for f in u.functions()])
        return PlanLauncher(plan, runtime, "cuda", f"cuda {arch}", schedule)

    def branches(self, kernel: ir.Kernel, multiprocessors: int = 4, arch: str | None = None
                 ) -> list:
        """The launch's size-dependent choices as data (cxx/branches.py), for the verifier:
        for `arch`, else this machine's GPU (else the default)."""
        if arch is None and launcher.unavailable_reason() is None:
            arch = device_arch()
        return plan_branches(plan_for(kernel, CUDA, arch))

    def compile_asm(self, kernel: ir.Kernel, arch: str | None = None,
                    shape: dict[str, int] | None = None) -> dict[str, str]:
        """Source, PTX, SASS and ptxas's report for `arch`; with `shape`, also
        `<kernel>.<arch>.launches.txt`: the launches made at those sizes, checked against the
        target (planned first, so that a shape error costs no compile)."""
        arch = arch or toolchain.DEFAULT_ARCH
        launches = launches_at(kernel, CUDA, arch, shape) if shape is not None else None
        c = self.compile(kernel, arch, ptx=True)
        files = {f"{kernel.name}.cu": self.source(kernel, arch), f"{kernel.name}.ptx": c.asm,
                 f"{kernel.name}.resources.txt": toolchain.resource_report(
                     c, f"{kernel.name}: registers, shared memory and spills (ptxas -v)")}
        sass = disassemble(c.binary)
        if sass:
            files[f"{kernel.name}.sass"] = sass
        if launches is not None:
            files[f"{kernel.name}.{arch}.launches.txt"] = launches_text(kernel, arch, shape,
                                                                        launches)
        return files


def disassemble(cubin: bytes) -> str:
    """SASS of a cubin through cuobjdump (shipped with nvcc), or "" when it is missing."""
    from ..cxx import cache
    from ..cxx.tools import which

    tool = which("cuobjdump", "CUDA_HOME", ("/usr/local/cuda/bin", _triton_bin()))
    if tool is None:
        return ""

    work = cache.scratch_dir("cuda")
    (work / "kernel.cubin").write_bytes(cubin)
    try:
        out = subprocess.run([tool, "-sass", "kernel.cubin"], cwd=work, capture_output=True,
                             text=True, timeout=120)
        return out.stdout if out.returncode == 0 else ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _triton_bin() -> str:
    """Triton's wheel ships cuobjdump; a fallback where the toolkit's is missing."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("triton")
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.submodule_search_locations:
        return ""
    from pathlib import Path
    return str(Path(list(spec.submodule_search_locations)[0]) / "backends" / "nvidia" / "bin")


BACKEND = CudaBackend()
