"""Ahead-of-time compilation of a generated Triton module for a GPU this machine need not have:
`triton.compile` with a GPUTarget gives PTX (NVIDIA) or AMDGCN (AMD) text."""
from __future__ import annotations

import os

from ... import ir
from ...errors import KspecError, ToolchainError
from .codegen import jit_kernels

# arch name -> (backend, arch argument of GPUTarget, warp size)
ARCHS = {
    "sm_80": ("cuda", 80, 32), "sm_86": ("cuda", 86, 32), "sm_89": ("cuda", 89, 32),
    "sm_90": ("cuda", 90, 32), "sm_90a": ("cuda", 90, 32), "sm_100": ("cuda", 100, 32),
    "gfx90a": ("hip", "gfx90a", 64), "gfx942": ("hip", "gfx942", 64),
    "gfx1100": ("hip", "gfx1100", 32),
}


def compile_module_asm(kernel: ir.Kernel, source: str, arch: str) -> dict[str, str]:
    """{file name: text}: the module source plus, per @triton.jit function, its PTX or AMDGCN."""
    if arch not in ARCHS:
        raise KspecError(f"unknown arch '{arch}' for the triton backend; expected one of "
                         f"{', '.join(ARCHS)}")
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from .launcher import load_module

    backend, target_arch, warp = ARCHS[arch]
    module = load_module(source, interpret=False)
    files = {f"{kernel.name}.py": source}
    for jk in jit_kernels(kernel):
        fn = getattr(module, jk.name)
        src = ASTSource(fn, jk.signature, jk.samples)
        try:
            compiled = triton.compile(src, target=GPUTarget(backend, target_arch, warp))
        except Exception as e:  # the compiler's own exception types vary by version
            raise ToolchainError(f"triton could not compile {jk.name} for {arch}: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        ext = "ptx" if backend == "cuda" else "amdgcn"
        files[f"{jk.name}.{arch}.{ext}"] = compiled.asm[ext]
    return files
