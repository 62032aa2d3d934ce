"""Lowering plan -> one Triton module per kernel: @triton.jit functions and a host `launch`."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ... import ir
from ...lowering import Launch, Plan, plan_kernel
from ...lowering.policy import NARROW_GEMM
from .common import JitKernel, extent_code, torch_dtype
from .expressions import shape_code
from .tensorcore import TensorCorePatterns
from .ordered import OrderedPatterns
from .rows import RowPatterns
from .splitk import SplitKPatterns
from .writer import LaunchWriterBase

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


@dataclass
class _Ctx:
    plan: Plan
    kernels: list[JitKernel] = field(default_factory=list)
    host: list[str] = field(default_factory=list)
    # the launch-time schedule, as `--emit plan` prints it: each launch's values and the
    # branches between launches, from the same expressions the host lines are made of
    schedule: list[str] = field(default_factory=list)


def _write_launches(ctx: _Ctx) -> None:
    for n, launch in enumerate(ctx.plan.launches):
        _write_launch(ctx, n, launch)


def _write_launch(ctx: _Ctx, n: int | str, launch: Launch) -> None:
    if launch.pattern == "attention":
        _write_attention(ctx, n, launch)
    elif launch.pattern == "rows" and launch.fallback:
        _write_rows(ctx, n, launch)
    elif launch.pattern == "contraction" and launch.fallback:
        _write_contraction(ctx, n, launch)
    else:
        _LaunchWriter(ctx, n, launch).write()


def _write_attention(ctx: _Ctx, n: int | str, launch: Launch) -> None:
    """The fused kernel when its tiles fit the device's shared memory (the whole head dims in
    one tile, up to 256), else the three unfused launches."""
    att = launch.attention
    dk, dv = shape_code(att.scores.k.extent), shape_code(att.out.j.extent)
    writer = _LaunchWriter(ctx, n, launch)
    sizes = [f"ATTENTION_D = max(16, triton.next_power_of_2({dk}))",
             f"ATTENTION_DV = max(16, triton.next_power_of_2({dv}))",
             f"ATTENTION_TILE = _fit_attention_tile(device, "
             f"{writer.operand_bytes(writer.operand_dtype(att.scores))}, ATTENTION_D, "
             f"ATTENTION_DV, 128, 64, 3)"]
    fused = "max(ATTENTION_D, ATTENTION_DV) <= 256 and ATTENTION_TILE is not None"
    ctx.host += sizes + [f"if schedule.get('{n}.fuse', True) and {fused}:"]
    ctx.schedule += sizes + [f"if {fused}:  # fused"]
    _indented(ctx, writer.write)
    ctx.host.append("else:")
    ctx.schedule.append("else:  # the unfused launches")
    _indented(ctx, lambda: _write_parts(ctx, n, launch, None))


def _write_rows(ctx: _Ctx, n: int | str, launch: Launch) -> None:
    """One program per block of rows, or, when that leaves the GPU idle on long rows (chosen
    at launch from the sizes, `N.SPLIT` overrides), the plan's split fallback: several
    programs per row, each reading a slice."""
    writer = _LaunchWriter(ctx, n, launch)
    split = f"SPLIT_{n}"
    ctx.host.append(f"{split} = schedule.get('{n}.SPLIT', {writer.row_split_code()})")
    ctx.host.append(f"if {split} <= 1:")
    ctx.schedule += [f"{split} = {writer.row_split_code()}", f"if {split} <= 1:"]
    _indented(ctx, writer.write)
    ctx.host.append("else:")
    ctx.schedule.append("else:  # the split fallback")
    _indented(ctx, lambda: _write_parts(ctx, n, launch, split))


def _write_contraction(ctx: _Ctx, n: int | str, launch: Launch) -> None:
    """As a memory-bound matrix-vector product (`N.matvec`, by default when the product has at
    most NARROW_GEMM rows or columns) or on the tensor cores; either may split the depth
    (SPLIT_K), and then a splitk_sum launch adds the slices' partials (splitk.py)."""
    c = launch.contraction
    narrow = " or ".join(f"{extent_code(vs)} <= {NARROW_GEMM}" for vs in (c.iv, c.jv))
    writers = [_LaunchWriter(ctx, f"{n}m", launch, "matvec"), _LaunchWriter(ctx, n, launch),
               _LaunchWriter(ctx, f"{n}s", launch, "splitk_sum")]
    for writer in writers:
        writer.part = f"part_{n}"
    ctx.host.append(f"if schedule.get('{n}.matvec', {narrow}):")
    ctx.schedule.append(f"if {narrow}:  # a matrix-vector product")
    _indented(ctx, writers[0].write)
    ctx.host.append("else:")
    ctx.schedule.append("else:  # on the tensor cores")
    _indented(ctx, writers[1].write)
    ctx.host.append("if SPLIT_K > 1:")
    ctx.schedule.append("if SPLIT_K > 1:  # the slices' partials added")
    _indented(ctx, writers[2].write)


def _write_parts(ctx: _Ctx, n: int | str, launch: Launch, split: str | None) -> None:
    """A launch's fallback launches, with the temporaries they keep in memory."""
    for m, part in enumerate(launch.fallback):
        for target in part.stores:
            if target not in launch.stores:
                ctx.host.append(_alloc(target, ctx.plan.program.buffers[target]))
        name = f"{n}{chr(ord('a') + m)}"
        if part.pattern == "split":
            writer = _LaunchWriter(ctx, name, part)
            writer.split_default = split
            writer.write()
        else:
            _write_launch(ctx, name, part)


def _indented(ctx: _Ctx, write) -> None:
    start, noted = len(ctx.host), len(ctx.schedule)
    write()
    ctx.host[start:] = ["    " + line for line in ctx.host[start:]]
    ctx.schedule[noted:] = ["    " + line for line in ctx.schedule[noted:]]


@functools.lru_cache(maxsize=None)
def _helper_sources() -> dict[str, str]:
    """Each helper of templates/helpers.py.j2 by its Python name, rendered (once a process:
    every module render asks)."""
    template = _ENV.get_template("helpers.py.j2")
    names = re.findall(r"\{% macro (\w+)\(", Path(template.filename).read_text())
    return {f"_{name}": str(getattr(template.module, name)()).strip() for name in names}


def used_helpers(code: str) -> list[str]:
    """The sources of the helpers that code calls and of those they call, in the helper file's
    order."""
    sources = _helper_sources()
    calls = re.compile(r"\b(_[a-z0-9_]+)\b")   # called, or passed as a combiner
    found: set[str] = set()
    todo = [n for n in calls.findall(code) if n in sources]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += [n for n in calls.findall(sources[name]) if n in sources and n != name]
    return [source for n, source in sources.items() if n in found]


def _alloc(name: str, decl: ir.TensorDecl) -> str:
    shape = ", ".join(shape_code(d) for d in decl.dims)
    return (f"{name} = torch.empty(({shape}{',' if len(decl.dims) == 1 else ''}), "
            f"dtype={torch_dtype(decl.dtype)}, device=device)")


def jit_kernels(kernel: ir.Kernel) -> list[JitKernel]:
    """The @triton.jit functions of a kernel's module, with their argument types."""
    ctx = _Ctx(plan_kernel(kernel, rows_any_axes=True))
    _write_launches(ctx)
    return ctx.kernels


def plan_text(kernel: ir.Kernel) -> str:
    """The Triton plan: its launches (the plan the module is written from) and, per launch,
    the schedule the host code computes at launch time and the branches between launches."""
    ctx = _Ctx(plan_kernel(kernel, rows_any_axes=True))
    _write_launches(ctx)
    return f"{ctx.plan}\nlaunch-time schedule (triton):\n" + \
        "".join(f"  {line}\n" for line in ctx.schedule)


def render(kernel: ir.Kernel, file: str = "<string>") -> str:
    plan = plan_kernel(kernel, rows_any_axes=True)
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
    code = "\n".join(line for k in ctx.kernels for line in k.body) + "\n".join(ctx.host)
    return _ENV.get_template("module.py.j2").render(
        file=file, kernel=kernel.name, plan_lines=str(plan).splitlines(),
        helpers=used_helpers(code),
        kernels=ctx.kernels, host_params=host_params,
        first_input=first_tensor or "torch.empty(0)",
        host_body=allocs + ctx.host,
        returns=outputs[0] if len(outputs) == 1 else "(" + ", ".join(outputs) + ")")


class _LaunchWriter(TensorCorePatterns, SplitKPatterns, RowPatterns, OrderedPatterns,
                    LaunchWriterBase):
    """Writes one launch: every pattern of the plan."""
