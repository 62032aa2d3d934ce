"""The Triton backend: renders the lowering plan as a Python module of @triton.jit kernels.

CPU tensors run through Triton's interpreter, CUDA tensors on the GPU. Triton reads kernel
source with `inspect`, so generated modules are real files in a cache directory."""
from __future__ import annotations

from typing import Any, Callable

from ... import ir
from ..target import source_name
from .codegen import plan_text, render
from .asm import compile_module_asm
from .launcher import build
from .thresholds import branches


class TritonBackend:
    name = "triton"

    def source(self, kernel: ir.Kernel, **options: Any) -> str:
        # the header names the spec file, as the C++ family's does
        return render(kernel, file=options.get("file", source_name(kernel)))

    def plan(self, kernel: ir.Kernel, arch: str | None = None) -> str:
        """The plan this backend writes the module from, with its launch-time schedule (the
        module serves every arch: its choices are made at launch, from the device)."""
        return plan_text(kernel)

    def build(self, kernel: ir.Kernel, **options: Any) -> Callable:
        return build(kernel, self.source(kernel, **options), **options)

    def branches(self, kernel: ir.Kernel, multiprocessors: int = 4) -> list:
        """The launch's size-dependent choices as data (thresholds.py), for the verifier."""
        return branches(kernel, multiprocessors)

    def compile_asm(self, kernel: ir.Kernel, arch: str | None = None,
                    shape: dict[str, int] | None = None) -> dict[str, str]:
        """PTX or AMDGCN for `arch`; with `shape`, exactly the launches made at those sizes."""
        return compile_module_asm(kernel, self.source(kernel), arch or "sm_90", shape)


BACKEND = TritonBackend()
