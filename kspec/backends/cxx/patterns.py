"""The plan lowering: kspec.lowering.plan's launches rendered as C++ kernels, one pattern each.

    pointwise    grid-stride over (outer rows, chunks of the last index); each thread moves V
                 consecutive elements with 16-byte loads and stores where every vectorised
                 tensor is contiguous along the last index and aligned (decided at launch),
                 else V = 1 (templates/pointwise.j2)
    rows         a warp (short rows) or a block per row; per-row values in registers; the row
                 cached in registers when it fits, else looped (rows.py, templates/rows.j2)
    split        a reduction to a scalar: partials from many blocks, then one block (rows.py);
                 per row (a rows launch's fallback, cxx_launches): a warp or a thread per
                 (row, slice), then a thread per row (split_rows.py, templates/split_rows.j2)
    scan         a warp per row, lanes on chunks of the row, a warp scan of the chunk totals
                 and a carry across tiles (scan.py, templates/scan.j2)
    loop_nest    the generic kernel of one statement (generic.py)
    contraction  f16/bf16 operands where the dialect has a tensor-core path: tiles on the
                 tensor cores (contraction.py, templates/contraction.j2); otherwise the generic
                 kernel of its statement
    attention    NVIDIA: one kernel (attention.py) with its unfused launches on standby for
                 heads wider than 128; elsewhere the unfused launches (the plan's fallback)

Every unit implements the launch interface of generic.Unit: functions(), scratch(env, info),
launches(env, buffers, info) -> [(function, grid, block, launch values)].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ... import ir
from ...dtypes import DType
from ...lowering import Launch
from ...printer import format_expr
from ...shapes import Shape
from .code import MUL, Code
from .ctype import storage_ctype
from .dialect import Dialect
from .generic import (MAX_BLOCKS, Arg, extent_product, grid_size, kernel_args,
                      product_text)
from .loops import Buffer, StatementRenderer
from .names import Namer, reserved_for

THREADS = 256


@dataclass
class PatternUnit:
    """One launch of the plan: its kernel functions (variants or phases) share one parameter
    list; `pick` chooses what to launch from the shapes, the buffers and the device."""

    name: str
    pattern: str
    statement: str                       # the kspec statements, for comments
    template: str
    args: tuple[Arg, ...]
    param_lines: tuple[str, ...]
    data: dict[str, Any]                 # what the template renders
    variants: list[str]                  # the extern "C" functions
    pick: Callable = field(repr=False, default=None)
    scratch_fn: Callable | None = field(repr=False, default=None)
    standby: bool = False                # launched only by another unit (attention's fallback)
    # a unit with per-launch schedule keys (a tensor-core contraction): its position in this
    # plan, the keys' prefix ("<index>.tile"), and the plan launch it renders, so that the
    # tuner reads both from the unit instead of re-deriving the plan's numbering
    index: int | None = None
    launch: Launch | None = field(repr=False, default=None)

    def functions(self) -> list[str]:
        return list(self.variants)

    def scratch(self, env: dict[str, int], info=None) -> dict:
        return self.scratch_fn(env, info) if self.scratch_fn else {}

    def launches(self, env: dict[str, int], buffers: dict, info) -> list:
        return self.pick(env, buffers, info)


def statement_text(stmt: ir.Assign) -> str:
    target = stmt.target + (f"[{', '.join(v.name for v in stmt.index)}]" if stmt.index else "")
    return f"{target} = {format_expr(stmt.value)}"


class LaunchContext:
    """Names, buffers and a statement renderer for one launch's kernel text."""

    def __init__(self, kernel: ir.Kernel, elements: dict[str, DType], ranks: dict[str, int],
                 d: Dialect, launch: Launch, memory_reads: list[str], writes: list[str],
                 template_locals: tuple[str, ...] = ()):
        self.kernel, self.d, self.launch = kernel, d, launch
        self.namer = Namer(reserved_for(d))
        for reserved in ("lane", "lanes", "teams", "row", "rows", "p", "j0", "c", "q", "parts",
                         "n_inner", "per_row", "n", "kg", "ke", "IDX", "V", "VPT",
                         "WARP_ROWS", *template_locals):
            self.namer.taken.add(reserved)
        scalar_params = {p.name: p for p in kernel.scalar_params}
        self.tensors = list(writes) + [t for t in memory_reads if t not in writes]
        self.writes = set(writes)
        self.pointers = {t: self.namer.fresh(t) for t in self.tensors}
        self.strides = {t: tuple(self.namer.fresh(f"{t}_s{i}") for i in range(ranks[t]))
                        for t in self.tensors}
        self.symbols = {s: self.namer.fresh(s) for s in kernel.symbols}
        self.scalars = {n: (self.namer.fresh(n), p.dtype) for n, p in scalar_params.items()}
        self.elements = elements
        self.var_names: dict[ir.IndexVar, str] = {}
        buffers = {t: Buffer(self.pointers[t], self.strides[t], elements[t])
                   for t in self.tensors}
        self.r = StatementRenderer(d, self.namer, buffers, self.scalars, self.symbols,
                                   self.var_names, frozenset())

    def name_vars(self, vars_: list[ir.IndexVar], names: list[str] | None = None) -> list[str]:
        out = []
        for k, v in enumerate(vars_):
            if names is not None:
                self.var_names[v] = names[k]
            elif v not in self.var_names:
                self.var_names[v] = self.namer.fresh(v.name)
            out.append(self.var_names[v])
        return out

    def decompose(self, linear: str, vars_: list[ir.IndexVar], mutable: bool = False
                  ) -> list[str]:
        """Lines splitting `linear` into the variables (row-major, last fastest); `mutable`
        declares them non-const, for a loop that then steps them (split_rows.advance_lines)."""
        names = self.name_vars(vars_)
        if not vars_:
            return []
        decl = "int64_t" if mutable else "const int64_t"
        if len(vars_) == 1:
            return [f"{decl} {names[0]} = {linear};"]
        rest = self.namer.fresh("rest")
        lines = [f"int64_t {rest} = {linear};"]
        for v, name in zip(reversed(vars_[1:]), reversed(names[1:])):
            ext = self.r.shape(v.extent).wrapped(MUL + 1)
            lines += [f"{decl} {name} = {rest} % {ext};", f"{rest} /= {ext};"]
        lines.append(f"{decl} {names[0]} = {rest};")
        return lines

    def total(self, extents: list[Shape]) -> str:
        return product_text([self.r.shape(e) for e in extents])

    def store(self, target: str, index: list[ir.IndexVar] | list[str], value: Code,
              dtype: DType) -> str:
        codes = [Code(v if isinstance(v, str) else self.var_names[v], "int64_t") for v in index]
        lhs = self.r.element(target, codes)
        return f"{lhs} = {self.r.to_storage(value, dtype, self.elements[target])};"

    def finish_args(self, text: str, extra: tuple[Arg, ...] = ()
                    ) -> tuple[tuple[Arg, ...], tuple[str, ...]]:
        return kernel_args(self.d, [(t, self.elements[t], t in self.writes)
                                    for t in self.tensors],
                           self.pointers, self.strides, self.symbols, self.scalars, text, extra)


def launch_reads(launch: Launch, scalars: set[str], in_registers: set[str]) -> list[str]:
    """Tensors the launch loads from memory, in order of first appearance."""
    out: list[str] = []
    for s in launch.statements:
        for node in ir.walk(s.value):
            name = node.tensor if isinstance(node, ir.Load) else (
                node.name if isinstance(node, ir.ScalarRef) and node.name not in scalars
                else None)
            if name is not None and name not in in_registers and name not in out:
                out.append(name)
    return out


# --- pointwise ----------------------------------------------------------------------------------
def _vector_load(e: ir.Expr, inner: ir.IndexVar) -> bool:
    """A load whose last index is exactly the inner variable and whose others do not use it."""
    return (isinstance(e, ir.Load) and e.pad is None and bool(e.index)
            and e.index[-1].bare == inner
            and all(inner not in a.vars() for a in e.index[:-1]))


def lower_pointwise(ctx: LaunchContext, name: str) -> PatternUnit:
    (stmt,) = ctx.launch.statements
    d, r = ctx.d, ctx.r
    outer, inner = list(stmt.index[:-1]), stmt.index[-1]
    vec_loads: dict[object, ir.Load] = {}
    for node in ir.walk(stmt.value):
        if _vector_load(node, inner) and node.tensor != stmt.target:
            vec_loads.setdefault((node.tensor, node.index), node)
    vec_tensors = sorted({ld.tensor for ld in vec_loads.values()} | {stmt.target})
    width = 16 // max(element_size(ctx.elements[t], d) for t in vec_tensors)
    width = max(1, width)
    j0 = ctx.name_vars([inner], ["j0"])[0]
    outer_lines = ctx.decompose("p", outer)
    packs, pack_of = [], {}
    for key, ld in vec_loads.items():
        pname = ctx.namer.fresh(f"{ld.tensor}_v")
        ctype = storage_ctype(ctx.elements[ld.tensor], d)
        addr = r.element(ld.tensor, [r.affine(a) for a in ld.index])
        packs.append(f"const kspec_pack<{ctype}, V> {pname} = "
                     f"*reinterpret_cast<const kspec_pack<{ctype}, V>*>(&{addr});")
        pack_of[key] = (pname, ld)
    target_ctype = storage_ctype(ctx.elements[stmt.target], d)
    store_addr = r.element(stmt.target, [Code(ctx.var_names[v], "int64_t") for v in stmt.index])
    jname = ctx.namer.fresh(inner.name)
    ctx.name_vars([inner], [jname])
    scalar_value = r.render(stmt.value)
    scalar_store = ctx.store(stmt.target, list(stmt.index), scalar_value, stmt.value.dtype)

    def hook(e):
        if isinstance(e, ir.Load) and (e.tensor, e.index) in pack_of:
            pname, ld = pack_of[(e.tensor, e.index)]
            return r.from_storage(f"{pname}.v[c]", ctx.elements[ld.tensor])
        return None

    r.load_hook = hook
    vector_value = r.render(stmt.value)
    r.load_hook = None
    out = ctx.namer.fresh(f"{stmt.target}_v")
    vector_store = (f"{out}.v[c] = "
                    f"{r.to_storage(vector_value, stmt.value.dtype, ctx.elements[stmt.target])};")
    r.helpers.add("kspec_pack")
    data = dict(n_inner=r.shape(inner.extent).text, n_outer=ctx.total([v.extent for v in outer]),
                has_outer=bool(outer), outer_lines=outer_lines, packs=packs,
                scalar_store=scalar_store, vector_store=vector_store, out=out,
                out_ctype=target_ctype, store_addr=store_addr, width=width, j=jname)
    text = "\n".join([*outer_lines, *packs, scalar_store, vector_store, store_addr,
                      data["n_inner"], data["n_outer"]])
    args, params = ctx.finish_args(text)
    variants = [f"{name}_v1"] + ([f"{name}_v{width}"] if width > 1 else [])
    n_inner_shape, n_outer_shapes = inner.extent, [v.extent for v in outer]

    def pick(env, buffers, info):
        n_in = n_inner_shape.evaluate(env)
        rows = extent_product(n_outer_shapes, env)
        if n_in * rows == 0:
            return []
        v = width
        if v > 1 and (not info.schedule.get("vector", True) or n_in % v != 0 or not all(
                aligned(buffers[t], v) for t in vec_tensors)):
            v = 1
        chunks = rows * (n_in // v)
        if info.cpu:
            return [(f"{name}_v{v}", 1, 1, {})]
        return [(f"{name}_v{v}", grid_size(chunks, THREADS), THREADS, {})]

    return PatternUnit(name, "pointwise", statement_text(stmt), "pointwise.j2", args, params,
                       data, variants, pick)


def element_size(dtype: DType, d: Dialect) -> int:
    return dtype.bits // 8 if dtype != DType.bool else 1


def aligned(t, v: int) -> bool:
    """Chunks of v elements along the last dim start on v * element-size byte boundaries."""
    if t.dim() == 0:
        return False
    size = t.element_size()
    if t.stride(-1) != 1 and t.shape[-1] != 1:
        return False
    if t.shape[-1] == 1 and v > 1:
        return False
    return (t.data_ptr() % (v * size) == 0
            and all(t.stride(k) % v == 0 or t.shape[k] == 1 for k in range(t.dim() - 1)))


__all__ = ["PatternUnit", "LaunchContext", "lower_pointwise", "launch_reads", "MAX_BLOCKS"]
