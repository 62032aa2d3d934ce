"""Lowering plan -> one Triton module per kernel: @triton.jit functions and a host `launch`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ... import ir
from ...lowering import Plan, plan_kernel
from .common import JitKernel, torch_dtype
from .expressions import shape_code
from .tensorcore import TensorCorePatterns
from .writer import LaunchWriterBase

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


@dataclass
class _Ctx:
    plan: Plan
    kernels: list[JitKernel] = field(default_factory=list)
    host: list[str] = field(default_factory=list)


def _write_launches(ctx: _Ctx) -> None:
    for n, launch in enumerate(ctx.plan.launches):
        if launch.pattern != "attention":
            _LaunchWriter(ctx, n, launch).write()
            continue
        # The fused kernel when the head dims fit one tile, else the three unfused launches.
        att = launch.attention
        dims = [shape_code(att.scores.k.extent), shape_code(att.out.j.extent)]
        ctx.host.append(f"if schedule.get('{n}.fuse', True) and max({', '.join(dims)}) <= 256:")
        start = len(ctx.host)
        _LaunchWriter(ctx, n, launch).write()
        ctx.host[start:] = ["    " + line for line in ctx.host[start:]]
        ctx.host.append("else:")
        start = len(ctx.host)
        for m, part in enumerate(launch.fallback):
            for target in part.stores:
                if target not in launch.stores:
                    ctx.host.append(_alloc(target, ctx.plan.program.buffers[target]))
            _LaunchWriter(ctx, f"{n}{'abc'[m]}", part).write()
        ctx.host[start:] = ["    " + line for line in ctx.host[start:]]


def _alloc(name: str, decl: ir.TensorDecl) -> str:
    shape = ", ".join(shape_code(d) for d in decl.dims)
    return (f"{name} = torch.empty(({shape}{',' if len(decl.dims) == 1 else ''}), "
            f"dtype={torch_dtype(decl.dtype)}, device=device)")


def jit_kernels(kernel: ir.Kernel) -> list[JitKernel]:
    """The @triton.jit functions of a kernel's module, with their argument types."""
    ctx = _Ctx(plan_kernel(kernel))
    _write_launches(ctx)
    return ctx.kernels


def render(kernel: ir.Kernel, file: str = "<string>") -> str:
    plan = plan_kernel(kernel)
    ctx = _Ctx(plan)
    _write_launches(ctx)
    outputs = [o.name for o in kernel.outputs]
    host_params = [p.name for p in kernel.params] + list(kernel.symbols)
    allocs = []
    in_memory = {t for launch in plan.launches for t in launch.stores}
    for name, decl in plan.program.buffers.items():
        if name in in_memory:
            allocs.append(_alloc(name, decl))
    first_tensor = next((p.name for p in kernel.tensor_params), None)
    return _ENV.get_template("module.py.j2").render(
        file=file, kernel=kernel.name, plan_lines=str(plan).splitlines(),
        kernels=ctx.kernels, host_params=host_params,
        first_input=first_tensor or "torch.empty(0)",
        host_body=allocs + ctx.host,
        returns=outputs[0] if len(outputs) == 1 else "(" + ", ".join(outputs) + ")")


class _LaunchWriter(TensorCorePatterns, LaunchWriterBase):
    """Writes one launch: every pattern of the plan."""
