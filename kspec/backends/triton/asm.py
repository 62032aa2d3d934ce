"""Ahead-of-time compilation of a generated Triton module for a GPU this machine need not have:
`triton.compile` with a GPUTarget gives PTX (NVIDIA) or AMDGCN (AMD) text. Without sizes each
@triton.jit function compiles once at representative constexprs; with sizes (`--shape`) every
launch the module makes there compiles exactly as it would run (trace.py)."""
from __future__ import annotations

import os

from ... import ir
from ...errors import ToolchainError
from .codegen import jit_kernels
from .launcher import load_module
from ..target import env_text
from .trace import arch_info, compile_traced, trace_launches

def compile_module_asm(kernel: ir.Kernel, source: str, arch: str,
                       env: dict[str, int] | None = None) -> dict[str, str]:
    """{file name: text}: the module source plus, per compiled kernel, its PTX or AMDGCN; with
    `env`, also `<kernel>.<arch>.launches.txt` naming each launch's choices at those sizes."""
    backend, target_arch, warp, _, _ = arch_info(arch)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    module = load_module(source, interpret=False)
    files = {f"{kernel.name}.py": source}
    ext = "ptx" if backend == "cuda" else "amdgcn"
    jks = jit_kernels(kernel)
    if env is not None:
        params = {jk.name: [p.split(":")[0] for p in jk.params if "constexpr" not in p]
                  for jk in jks}
        calls = trace_launches(kernel, module, params, env, arch)
        compiled = compile_traced(module, {jk.name: jk.signature for jk in jks}, calls, arch)
        for name, c in compiled.items():
            files[f"{name}.{arch}.{ext}"] = c.asm[ext]
        files[f"{kernel.name}.{arch}.launches.txt"] = (
            f"# {kernel.name} at {env_text(env)} on {arch}\n"
            + "".join(c.describe() + "\n" for c in calls))
        return files
    for jk in jks:
        src = ASTSource(getattr(module, jk.name), jk.signature, jk.samples)
        try:
            compiled = triton.compile(src, target=GPUTarget(backend, target_arch, warp))
        except Exception as e:  # the compiler's own exception types vary by version
            raise ToolchainError(f"triton could not compile {jk.name} for {arch}: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        files[f"{jk.name}.{arch}.{ext}"] = compiled.asm[ext]
    return files
