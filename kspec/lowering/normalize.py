"""Rewrites of a kernel's statements before they are grouped into GPU launches.

1. Inline: an intermediate defined without reductions is substituted into its uses (its value is
   recomputed in registers and never touches memory).
2. Hoist: a reduction that is invariant along some output index (softmax's `sum(e[i, k] for k)`
   inside `y[i, j]`), or nested in another reduction, becomes its own statement writing a
   temporary, so no launch recomputes it per output element.

Afterwards every statement is `t[v] = f(loads, R1, ..., Rn)` where each Ri reduces a
reduction-free body and depends on exactly the indices v.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .. import ir
from ..dtypes import DType
from ..shapes import Shape


@dataclass(frozen=True)
class Program:
    """A kernel's statements after normalization, with every buffer they write."""

    kernel: ir.Kernel
    body: tuple[ir.Assign, ...]
    buffers: dict[str, ir.TensorDecl]   # outputs and temporaries, by name
    temporaries: tuple[str, ...]        # written and read here, not returned


def storage_dtype(d: DType) -> DType:
    """Temporaries keep f32 precision for halves: rounding an intermediate is not in the spec."""
    return DType.f32 if d.is_half else d


def has_reduce(e: ir.Expr) -> bool:
    """Whether e reduces (a scan counts: it is never inlined or recomputed per use)."""
    return any(isinstance(n, (ir.Reduce, ir.Scan)) for n in ir.walk(e))


def has_scan(e: ir.Expr) -> bool:
    return any(isinstance(n, ir.Scan) for n in ir.walk(e))


def normalize(kernel: ir.Kernel) -> Program:
    outputs = {o.name for o in kernel.outputs}
    # a tensor read through pad(...) stays in memory: inlined, its definition would be
    # evaluated outside its own index ranges; so does one read at a gathered index (its
    # indices would become a gather's, which `compose` does not substitute)
    padded = {n.tensor for stmt in kernel.body for n in ir.walk(stmt.value)
              if isinstance(n, ir.Load) and (n.pad is not None or ir.gathers(n))}
    inline: dict[str, ir.Assign] = {}
    body: list[ir.Assign] = []
    for stmt in kernel.body:
        value = substitute(stmt.value, inline)
        stmt = dataclasses.replace(stmt, value=value)
        if stmt.target not in outputs | padded and not has_reduce(value):
            inline[stmt.target] = stmt
            continue
        body.append(stmt)
    body = _fuse_single_uses(body, outputs)
    hoisted: list[ir.Assign] = []
    buffers = {o.name: o for o in kernel.outputs}
    for stmt in body:
        hoister = _Hoister(stmt, buffers)
        value = hoister.top(stmt.value)
        hoisted.extend(hoister.new)
        hoisted.append(dataclasses.replace(stmt, value=value))
    for stmt in hoisted:
        if stmt.target not in buffers:
            buffers[stmt.target] = ir.TensorDecl(
                stmt.target, storage_dtype(stmt.value.dtype),
                tuple(v.extent for v in stmt.index), stmt.pos)
    temps = tuple(n for n in buffers if n not in outputs)
    return Program(kernel, tuple(hoisted), buffers, temps)


# --- inlining ---------------------------------------------------------------------------------
def _fuse_single_uses(body: list[ir.Assign], outputs: set[str]) -> list[ir.Assign]:
    """An intermediate with reductions read exactly once, outside any reduction, at exactly the
    reader's own indices (`c[i, j] = gelu(acc[i, j] + bias[j])`) moves into its reader: that
    is how a contraction gets its epilogue and a normalisation its per-row statistics."""
    changed = True
    while changed:
        changed = False
        for n, stmt in enumerate(body):
            if stmt.target in outputs or has_scan(stmt.value):
                continue   # a scan stays a statement of its own: its launch is the scan
            uses = [(m, u) for m, other in enumerate(body) for u in _uses(other.value, stmt.target)]
            if len(uses) != 1:
                continue
            m, (node, inside_reduce) = uses[0]
            reader = body[m]
            index = node.index if isinstance(node, ir.Load) else ()
            padded = isinstance(node, ir.Load) and node.pad is not None
            if inside_reduce or padded or tuple(a.bare for a in index) != tuple(reader.index):
                continue
            body[m] = dataclasses.replace(reader, value=substitute(reader.value, {stmt.target: stmt}))
            del body[n]
            changed = True
            break
    return body


def _uses(e: ir.Expr, name: str, inside: bool = False) -> list[tuple[ir.Expr, bool]]:
    here = [(e, inside)] if (isinstance(e, ir.Load) and e.tensor == name) or (
        isinstance(e, ir.ScalarRef) and e.name == name) else []
    nested = inside or isinstance(e, ir.Reduce)
    return here + [u for c in ir.children(e) for u in _uses(c, name, nested)]


def substitute(e: ir.Expr, inline: dict[str, ir.Assign]) -> ir.Expr:
    """Replace loads of inlined intermediates by their defining expressions."""
    if isinstance(e, ir.Load) and e.tensor in inline:
        d = inline[e.tensor]
        mapping = dict(zip(d.index, e.index))
        return _rebind(d.value, mapping)
    if isinstance(e, ir.ScalarRef) and e.name in inline:
        return inline[e.name].value
    return _map_children(e, lambda c: substitute(c, inline))


def _map_children(e: ir.Expr, f) -> ir.Expr:
    if isinstance(e, ir.Op):
        return dataclasses.replace(e, args=tuple(f(a) for a in e.args))
    if isinstance(e, ir.Cast):
        return dataclasses.replace(e, arg=f(e.arg))
    if isinstance(e, (ir.Reduce, ir.Scan)):
        return dataclasses.replace(e, body=f(e.body))
    return e


def compose(a: ir.Affine, mapping: dict[ir.IndexVar, ir.Affine]) -> ir.Affine:
    """a with each mapped variable replaced by its affine expression."""
    terms: dict[ir.IndexVar, int] = {}
    offset = a.offset
    for v, c in a.terms:
        if v in mapping:
            m = mapping[v]
            offset = offset + m.offset * c
            for w, d in m.terms:
                terms[w] = terms.get(w, 0) + c * d
        else:
            terms[v] = terms.get(v, 0) + c
    gather = a.gather and dataclasses.replace(
        a.gather, index=tuple(compose(g, mapping) for g in a.gather.index))
    return ir.Affine(tuple((v, c) for v, c in terms.items() if c != 0), offset, a.div, gather)


def affine_value(a: ir.Affine) -> ir.Expr:
    """An affine index as an i64 value expression."""
    parts: list[ir.Expr] = []
    for v, c in a.terms:
        term: ir.Expr = ir.IndexValue(v)
        if c != 1:
            term = ir.Op("mul", (ir.Const(c, DType.i64), term), DType.i64)
        parts.append(term)
    if a.offset != 0 or not parts:
        parts.append(ir.ShapeValue(a.offset) if not a.offset.is_const
                     else ir.Const(a.offset.value, DType.i64))
    out = parts[0]
    for p in parts[1:]:
        out = ir.Op("add", (out, p), DType.i64)
    return out


def _rebind(e: ir.Expr, mapping: dict[ir.IndexVar, ir.Affine]) -> ir.Expr:
    if isinstance(e, ir.Load):
        return dataclasses.replace(e, index=tuple(compose(a, mapping) for a in e.index))
    if isinstance(e, ir.IndexValue) and e.var in mapping:
        return affine_value(mapping[e.var])
    return _map_children(e, lambda c: _rebind(c, mapping))


# --- hoisting ---------------------------------------------------------------------------------
class _Hoister:
    def __init__(self, stmt: ir.Assign, buffers: dict[str, ir.TensorDecl]):
        self.stmt = stmt
        self.buffers = buffers
        self.new: list[ir.Assign] = []

    def fresh(self) -> str:
        n = 0
        names = set(self.buffers) | {a.target for a in self.new}
        while f"{self.stmt.target}_r{n}" in names:
            n += 1
        return f"{self.stmt.target}_r{n}"

    def top(self, e: ir.Expr) -> ir.Expr:
        lhs = set(self.stmt.index)
        if isinstance(e, ir.Scan):
            # a scan is its statement's whole value, or a temporary of its own
            whole = e is self.stmt.value
            e = dataclasses.replace(e, body=self.inner(e.body))
            return e if whole and ir.free_vars(e) == lhs else self.hoist(e)
        if isinstance(e, ir.Reduce):
            body = self.inner(e.body)
            e = dataclasses.replace(e, body=body)
            if ir.free_vars(e) != lhs:
                return self.hoist(e)
            return e
        return _map_children(e, self.top)

    def inner(self, e: ir.Expr) -> ir.Expr:
        """Inside a reduction body: every nested reduction becomes a temporary."""
        if isinstance(e, (ir.Reduce, ir.Scan)):
            return self.hoist(dataclasses.replace(e, body=self.inner(e.body)))
        return _map_children(e, self.inner)

    def hoist(self, r: ir.Reduce | ir.Scan) -> ir.Expr:
        order = [v for v in self.stmt.index] + sorted(
            (v for v in ir.free_vars(r) if v not in self.stmt.index), key=lambda v: v.uid)
        index = tuple(v for v in order if v in ir.free_vars(r))
        name = self.fresh()
        self.new.append(ir.Assign(name, index, r, self.stmt.pos))
        self.buffers[name] = ir.TensorDecl(name, storage_dtype(r.dtype),
                                           tuple(v.extent for v in index), self.stmt.pos)
        if not index:
            return ir.ScalarRef(name, storage_dtype(r.dtype))
        return ir.Load(name, tuple(ir.Affine(((v, 1),), Shape.const(0)) for v in index),
                       storage_dtype(r.dtype))
