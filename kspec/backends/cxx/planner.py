"""The C++ plan: kspec.lowering.plan's launches (as the C++ patterns render them:
cxx_launches) lowered to units, each by its pattern's module (patterns.py for pointwise,
rows.py, split_rows.py, scan.py, contraction.py, attention.py, generic.py for the loop
nest). Kept apart from the patterns so that they import patterns.py and this module imports
them: a DAG."""
from __future__ import annotations

from dataclasses import replace

from ... import ir
from ...dtypes import DType
from ...lowering import Launch, plan_kernel
from ...lowering.normalize import has_reduce
from ...lowering.plan import vector_axes
from ...lowering.policy import NARROW_GEMM
from . import attention, contraction
from .ctype import temporary_dtype
from .dialect import Dialect
from .generic import GenericPlan, Temporary, extent_product, lower_statement
from .patterns import LaunchContext, PatternUnit, launch_reads, lower_pointwise
from .rows import lower_rows, lower_split
from .scan import LOCALS as SCAN_LOCALS
from .scan import lower_scan
from .split_rows import LOCALS as SPLIT_ROWS_LOCALS
from .split_rows import lower_split_rows


def plan_patterns(kernel: ir.Kernel, d: Dialect, schedule: dict | None = None) -> GenericPlan:
    """`schedule` holds compile-time choices: {"<launch>.tile": "128x256x32w8s3"} compiles
    that tile alone for a tensor-core contraction (see contraction.py); {"precision": ...}
    (or "<launch>.precision") is the f32 contractions' precision policy (precision.py)."""
    plan = plan_kernel(kernel, rows_any_axes=True)
    program = plan.program
    # (launch, role): an attention the target fuses is followed by its unfused launches on
    # standby (launched by it for heads it does not compile); one it does not fuse is unfused
    entries: list[tuple[Launch, str]] = []
    for launch in cxx_launches(plan.launches):
        if launch.pattern == "scan" and has_reduce(launch.statements[0].value.body):
            entries += [(f, "plain") for f in launch.fallback]   # a scan of reductions
        elif launch.pattern != "attention":
            entries.append((launch, "plain"))
        elif attention.eligible(launch, d):
            entries += [(launch, "fused")] + [(f, "standby") for f in launch.fallback]
        else:
            entries += [(f, "plain") for f in launch.fallback]
    launches = [launch for launch, role in entries if role != "fused"]
    stored = {t for launch in launches for t in launch.stores}
    elements: dict[str, DType] = {}
    ranks: dict[str, int] = {}
    for dcl in (*kernel.tensor_params, *kernel.outputs):
        elements[dcl.name], ranks[dcl.name] = dcl.dtype, dcl.rank
    temps = [Temporary(n, temporary_dtype(program.buffers[n].dtype), program.buffers[n].dims)
             for n in program.temporaries if n in stored]
    for t in temps:
        elements[t.name], ranks[t.name] = t.dtype, len(t.dims)
    out = GenericPlan(kernel, d, [], temps, pattern="plan (kspec.lowering.plan's patterns)")
    scalars = {p.name for p in kernel.scalar_params}
    fused: list[attention.AttentionUnit] = []
    for k, (launch, role) in enumerate(entries):
        name = f"{kernel.name}_{k}_{launch.pattern}"
        tensor_cores = contraction.eligible(launch, d, schedule, k)
        if launch.pattern == "loop_nest" or (launch.pattern == "contraction"
                                             and not tensor_cores):
            (stmt,) = launch.statements
            unit = lower_statement(kernel, k, stmt, elements, ranks, d, out.helpers)
            if launch.pattern == "contraction":
                unit = replace(unit, note=contraction.loop_nest_reason(launch, d, schedule, k))
            out.units.append(replace(unit, standby=True) if role == "standby" else unit)
            if role == "standby":
                fused[-1].fallback.append(out.units[-1])
            continue
        after: list[PatternUnit] = []   # launched by this unit only (split-K's sum kernel)
        in_registers = {s.target for s in launch.statements} - set(launch.stores)
        reads = launch_reads(launch, scalars, in_registers)
        local_names = (contraction.LOCALS if tensor_cores else
                       attention.LOCALS if role == "fused" else
                       SPLIT_ROWS_LOCALS if launch.pattern == "split" else
                       SCAN_LOCALS if launch.pattern == "scan" else ())
        ctx = LaunchContext(kernel, elements, ranks, d, launch, reads, list(launch.stores),
                            local_names)
        if role == "fused":
            unit = attention.AttentionUnit(attention.lower_attention(ctx, name), [], [],
                                           [launch.attention.scores.k.extent,
                                            launch.attention.out.j.extent])
            fused.append(unit)
            out.units.append(unit)
        elif tensor_cores:
            unit, *after = contraction.lower_contraction(ctx, name, k, schedule)
            out.units.append(unit)
        else:
            lower = {"pointwise": lower_pointwise, "rows": lower_rows, "scan": lower_scan,
                     "split": lower_split_rows if launch.outer else lower_split
                     }[launch.pattern]
            out.units.append(lower(ctx, name))
        if role == "standby":
            out.units[-1].standby = True
            fused[-1].fallback.append(out.units[-1])
        out.units += after
        out.helpers |= ctx.r.helpers
    # a fused attention's temporaries are its fallback's scratch, allocated only for it
    for unit in fused:
        written = {t for u in unit.fallback for t in _writes(u)}
        unit.temporaries = [t for t in out.temporaries if t.name in written]
        out.temporaries = [t for t in out.temporaries if t.name not in written]
    return out


def cxx_launches(launches: list[Launch]) -> list[Launch]:
    """The plan's launches as the C++ patterns render them (the plan is made with
    rows_any_axes, as Triton's): a rows launch the rows pattern cannot render (several reduced
    indices, a row vector whose inner index is not its last) or one reduction alone over an
    index some load has before its last dim (likely strided: the split per row picks its
    orientation and slice count at launch) becomes its fallback, each reduction a split
    launch of its own (a fused pair's second statement reads the first from memory) and each
    row vector a pointwise launch; a
    contraction with at most NARROW_GEMM rows or columns (a matrix-vector product) is a
    rows launch, as Triton runs it."""
    out: list[Launch] = []
    for launch in launches:
        if launch.pattern == "contraction" and _narrow(launch) and launch.fallback:
            launch = launch.fallback[0]
        if launch.pattern != "rows" or _rows_render(launch):
            out.append(launch)
            continue
        parts = [Launch(p.pattern, [s], outer=s.index, inner=p.inner, reduced=p.reduced)
                 if p.pattern == "split" else p
                 for p in launch.fallback for s in p.statements]
        for n, part in enumerate(parts):
            later = {name for p in parts[n + 1:] for s in p.statements
                     for name in _loaded(s.value)}
            part.stores = tuple(s.target for s in part.statements
                                if s.target in launch.stores or s.target in later)
        out += parts
    return out


def _rows_render(launch: Launch) -> bool:
    """The rows pattern renders the launch: one reduced index, every row vector's inner index
    its last, and more than one reduction statement or a row vector to keep in registers."""
    if len(launch.reduced) != 1:
        return False
    vectors = [s for s in launch.statements if not has_reduce(s.value)]
    if not vectors and len(launch.statements) == 1 and _across(launch.statements[0]):
        return False
    outer = tuple(v.extent for v in launch.outer)
    return all(vector_axes(s, outer, (launch.inner.extent,), any_axes=False) is not None
               for s in vectors)


def _across(stmt: ir.Assign) -> bool:
    """Some load of a reduction has its innermost reduced index before its last dim (likely
    strided: a sum over a middle axis). The split per row picks its orientation from the
    strides at launch; along a last dim the rows pattern's packed loads read better."""
    return any(isinstance(n, ir.Load) and any(a.bare == red.vars[-1] for a in n.index[:-1])
               for red in ir.walk(stmt.value) if isinstance(red, ir.Reduce)
               for n in ir.walk(red.body))


def _narrow(launch: Launch) -> bool:
    c = launch.contraction
    return any(all(v.extent.is_const for v in vs) and
               extent_product([v.extent for v in vs], {}) <= NARROW_GEMM for vs in (c.iv, c.jv))


def _loaded(e: ir.Expr) -> set[str]:
    return {n.tensor if isinstance(n, ir.Load) else n.name for n in ir.walk(e)
            if isinstance(n, (ir.Load, ir.ScalarRef))}


def _writes(unit) -> set[str]:
    return {a.ref for a in unit.args if a.kind == "tensor" and "const " not in a.decl}
