"""The generic loop-nest lowering: correct for any valid kspec program, fast for none.

Each statement becomes one C++ kernel with one thread per element of its left-hand side (a
grid-stride loop over the flattened index space); every reduction is a for-loop (nested
reductions are nested loops). Intermediates are materialised into temporaries that the launcher
allocates; the statements' kernels are launched in source order on one stream. Strides are
kernel arguments, so non-contiguous inputs work without copies.

The result is a `GenericPlan`: the kernels' text pieces for the templates plus everything the
launcher needs (argument lists, index-space sizes, temporaries), independent of the vendor.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ... import ir
from ...dtypes import DType
from ...printer import format_expr
from ...shapes import Shape
from .code import MUL, Code
from .ctype import compute_ctype, storage_ctype, temporary_dtype
from .dialect import Dialect
from .loops import Buffer, StatementRenderer
from .names import Namer, reserved_for

THREADS = 256   # threads per block of every generic kernel
MAX_BLOCKS = 65535 * 8   # grid-stride loops cover anything larger


def extent_product(extents, env: dict[str, int]) -> int:
    """The number of elements of an index space: its extents evaluated at env, multiplied."""
    return math.prod(e.evaluate(env) for e in extents)


def grid_size(n: int, threads: int) -> int:
    return max(1, min((n + threads - 1) // threads, MAX_BLOCKS))


@dataclass(frozen=True)
class Arg:
    """One kernel parameter, in order. `kind` says where its value comes from at launch:
    "tensor" (a data pointer), "stride" (of tensor `ref`, dim `dim`, in elements),
    "symbol" (a shape symbol's value), "scalar" (a scalar parameter's value)."""

    kind: str
    name: str       # the C++ parameter name
    decl: str       # the C++ declaration, e.g. "const float* __restrict__ x"
    ctype: str      # the C++ value type for by-value args ("int64_t", "float", ...)
    ref: str        # the kspec name it comes from
    dim: int = -1


@dataclass(frozen=True)
class Unit:
    """One statement's kernel."""

    name: str                       # the extern "C" symbol
    statement: str                  # the kspec statement, for comments
    target: str
    args: tuple[Arg, ...]
    param_lines: tuple[str, ...]    # the parameter list, one tensor (with strides) per line
    extents: tuple[Shape, ...]      # the left-hand side's index space
    total: str                      # C++ expression of its element count
    index_lines: tuple[str, ...]    # linear index -> index variables
    body_lines: tuple[str, ...]     # reductions, at the body's indentation
    store: str                      # the final assignment
    template: str = "generic_kernel.j2"
    standby: bool = False           # launched only by another unit (attention's fallback)
    note: str = ""                  # why the plan's pattern runs as this loop nest, if it does

    def size(self, env: dict[str, int]) -> int:
        return extent_product(self.extents, env)

    # The launch interface every unit kind implements (see launch.PlanLauncher).
    def functions(self) -> list[str]:
        return [self.name]

    def scratch(self, env: dict[str, int], info=None) -> dict:
        return {}

    def launches(self, env: dict[str, int], buffers: dict, info) -> list:
        n = self.size(env)
        if n == 0:
            return []
        return [(self.name, grid_size(n, THREADS), THREADS, {})]


@dataclass(frozen=True)
class Temporary:
    name: str
    dtype: DType                    # the buffer's element dtype (a compute dtype)
    dims: tuple[Shape, ...]


@dataclass
class GenericPlan:
    kernel: ir.Kernel
    dialect: Dialect
    units: list[Unit]
    temporaries: list[Temporary]
    helpers: set[str] = field(default_factory=set)
    threads: int = THREADS
    pattern: str = "generic"


def plan_generic(kernel: ir.Kernel, dialect: Dialect,
                 body: tuple[ir.Assign, ...] | None = None,
                 temporaries: list[ir.TensorDecl] | None = None) -> GenericPlan:
    """One kernel per statement of `body` (default: the kernel's own statements; a rewritten
    body, such as kspec.lowering.normalize's, may be passed with the temporaries it writes)."""
    body = kernel.body if body is None else body
    temp_decls = list(kernel.intermediates) if temporaries is None else temporaries
    elements: dict[str, DType] = {}
    ranks: dict[str, int] = {}
    for d in (*kernel.tensor_params, *kernel.outputs):
        elements[d.name], ranks[d.name] = d.dtype, d.rank
    temps = [Temporary(t.name, temporary_dtype(t.dtype), t.dims) for t in temp_decls]
    for t in temps:
        elements[t.name], ranks[t.name] = t.dtype, len(t.dims)
    plan = GenericPlan(kernel, dialect, [], temps)
    for k, stmt in enumerate(body):
        plan.units.append(lower_statement(kernel, k, stmt, elements, ranks, dialect,
                                          plan.helpers))
    return plan


def _reads(e: ir.Expr, scalars: set[str]) -> list[str]:
    """Tensors an expression reads, in order of first appearance."""
    out: list[str] = []
    for node in ir.walk(e):
        name = node.tensor if isinstance(node, ir.Load) else (
            node.name if isinstance(node, ir.ScalarRef) and node.name not in scalars else None)
        if name is not None and name not in out:
            out.append(name)
    return out


def lower_statement(kernel: ir.Kernel, k: int, stmt: ir.Assign, elements: dict[str, DType],
                    ranks: dict[str, int], d: Dialect, helpers: set[str]) -> Unit:
    """Statement `k` as its generic kernel: one thread per element of its left-hand side,
    reductions as loops (the plan lowering's loop_nest, and every unit of plan_generic);
    the helpers it calls are added to `helpers`."""
    namer = Namer(reserved_for(d))
    scalar_params = {p.name: p for p in kernel.scalar_params}
    tensors = [stmt.target] + [t for t in _reads(stmt.value, set(scalar_params))
                               if t != stmt.target]
    pointers = {t: namer.fresh(t) for t in tensors}
    strides = {t: tuple(namer.fresh(f"{t}_s{i}") for i in range(ranks[t])) for t in tensors}
    symbols = {s: namer.fresh(s) for s in kernel.symbols}
    scalars = {n: (namer.fresh(n), p.dtype) for n, p in scalar_params.items()}
    var_names = {v: namer.fresh(v.name) for v in stmt.index}
    buffers = {t: Buffer(pointers[t], strides[t], elements[t]) for t in tensors}

    r = StatementRenderer(d, namer, buffers, scalars, symbols, var_names, frozenset(stmt.index))
    value = r.render(stmt.value)
    target = buffers[stmt.target]
    lhs = r.element(stmt.target, [Code(var_names[v], "int64_t") for v in stmt.index])
    store = f"{lhs} = {r.to_storage(value, stmt.value.dtype, target.element)};"
    total = product_text([r.shape(v.extent) for v in stmt.index])
    index_lines = _index_lines(r, stmt.index, var_names)
    body = tuple(r.lines(""))
    helpers |= r.helpers

    # Parameters: only what the kernel text uses, in a fixed order (see module.j2's header).
    text = "\n".join((*index_lines, *body, store, total))
    args, param_lines = kernel_args(d, [(t, elements[t], t == stmt.target) for t in tensors],
                                    pointers, strides, symbols, scalars, text)
    target_text = stmt.target + (f"[{', '.join(v.name for v in stmt.index)}]"
                                 if stmt.index else "")
    return Unit(name=f"{kernel.name}_{k}_{stmt.target}",
                statement=f"{target_text} = {format_expr(stmt.value)}",
                target=stmt.target, args=args, param_lines=param_lines,
                extents=tuple(v.extent for v in stmt.index), total=total,
                index_lines=index_lines, body_lines=body, store=store)


def kernel_args(d: Dialect, tensors: list[tuple[str, DType, bool]], pointers: dict[str, str],
                strides: dict[str, tuple[str, ...]], symbols: dict[str, str],
                scalars: dict[str, tuple[str, DType]], text: str,
                extra: tuple[Arg, ...] = ()) -> tuple[tuple[Arg, ...], tuple[str, ...]]:
    """A kernel's parameters, only those `text` uses, in the documented order: tensors (written
    ones non-const) each with its strides, shape symbols, scalar parameters, then `extra`
    (launch-time values). Returns the arguments and the parameter list, one group a line."""
    args: list[Arg] = []
    for t, dtype, written in tensors:
        ctype = storage_ctype(dtype, d)
        qual = "" if written else "const "
        args.append(Arg("tensor", pointers[t], f"{qual}{ctype}* {d.restrict} {pointers[t]}",
                        ctype, t))
        for i, s in enumerate(strides[t]):
            if _uses(text, s):
                args.append(Arg("stride", s, f"int64_t {s}", "int64_t", t, i))
    for s, name in symbols.items():
        if _uses(text, name):
            args.append(Arg("symbol", name, f"int64_t {name}", "int64_t", s))
    for n, (name, dt) in scalars.items():
        if _uses(text, name):
            args.append(Arg("scalar", name, f"{compute_ctype(dt)} {name}", compute_ctype(dt), n))
    args += [a for a in extra if _uses(text, a.name)]
    groups: list[list[str]] = []
    prev_kind = ""
    for a in args:
        same = groups and (a.kind == "stride" or a.kind == prev_kind != "tensor")
        if same:
            groups[-1].append(a.decl)
        else:
            groups.append([a.decl])
        prev_kind = a.kind
    return tuple(args), tuple(", ".join(g) for g in groups)


def _index_lines(r: StatementRenderer, index: tuple[ir.IndexVar, ...],
                 names: dict[ir.IndexVar, str]) -> tuple[str, ...]:
    """Split the linear element number into index variables, last dim fastest (row-major)."""
    if not index:
        return ()
    if len(index) == 1:
        return (f"const int64_t {names[index[0]]} = linear;",)
    lines = ["int64_t rest = linear;"]
    for v in reversed(index[1:]):
        extent = r.shape(v.extent).wrapped(MUL + 1)
        lines += [f"const int64_t {names[v]} = rest % {extent};", f"rest /= {extent};"]
    lines.append(f"const int64_t {names[index[0]]} = rest;")
    return tuple(lines)


def product_text(factors: list[Code]) -> str:
    """C++ text of the product of `factors` (an element count), "1" for none."""
    if not factors:
        return "1"
    return " * ".join(f.wrapped(MUL) for f in factors)


def _uses(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None
