"""The forward program in the shape reverse mode differentiates: every reduction a statement of
its own (`t[I] = sum(body for K)` with a reduction-free body), every other statement
reduction-free. `y[i, j] = e[i, j] / sum(e[i, k] for k)` becomes
`y_r0[i] = sum(e[i, k] for k)` and `y[i, j] = e[i, j] / y_r0[i]`."""
from __future__ import annotations

import dataclasses

from .. import ir
from ..dtypes import DType
from ..errors import KspecGradError
from ..shapes import Shape


@dataclasses.dataclass
class Forward:
    body: list[ir.Assign]
    dtypes: dict[str, DType]            # every tensor: params, outputs, intermediates
    dims: dict[str, tuple[Shape, ...]]

    def is_arg_index(self, name: str) -> bool:
        """Whether `name` is an argmax/argmin's result (an index: no derivative)."""
        return any(s.target == name and isinstance(s.value, ir.Reduce)
                   and s.value.op in ("argmax", "argmin") for s in self.body)


def split(k: ir.Kernel) -> Forward:
    decls = [*k.tensor_params, *k.outputs, *k.intermediates]
    fwd = Forward([], {d.name: d.dtype for d in decls}, {d.name: d.dims for d in decls})
    taken = {d.name for d in (*k.params, *k.outputs, *k.intermediates)}
    for stmt in k.body:
        lifter = _Lifter(stmt, fwd, taken)
        value = lifter.top(stmt.value)
        fwd.body.append(dataclasses.replace(stmt, value=value))
    return fwd


class _Lifter:
    def __init__(self, stmt: ir.Assign, fwd: Forward, taken: set[str]):
        self.stmt, self.fwd, self.taken = stmt, fwd, taken

    def top(self, e: ir.Expr) -> ir.Expr:
        if isinstance(e, ir.Reduce) and e is self.stmt.value \
                and ir.free_vars(e) == set(self.stmt.index):
            return dataclasses.replace(e, body=self.lift(e.body))
        return self.lift(e)

    def lift(self, e: ir.Expr) -> ir.Expr:
        """e with every reduction in it replaced by a read of a new statement's target."""
        if isinstance(e, ir.Scan):
            raise KspecGradError(f"{e.op}(... for {e.var.name} {e.relation} {e.bound.name}): "
                                 "scans have no derivative yet", self.stmt.pos)
        if isinstance(e, ir.Reduce):
            return self.hoist(dataclasses.replace(e, body=self.lift(e.body)))
        if isinstance(e, ir.Op):
            return dataclasses.replace(e, args=tuple(self.lift(a) for a in e.args))
        if isinstance(e, ir.Cast):
            return dataclasses.replace(e, arg=self.lift(e.arg))
        return e

    def hoist(self, r: ir.Reduce) -> ir.Expr:
        free = ir.free_vars(r)
        order = [*self.stmt.index, *sorted(free - set(self.stmt.index), key=lambda v: v.uid)]
        index = tuple(v for v in order if v in free)
        n = 0
        while f"{self.stmt.target}_r{n}" in self.taken:
            n += 1
        name = f"{self.stmt.target}_r{n}"
        self.taken.add(name)
        self.fwd.body.append(ir.Assign(name, index, r, self.stmt.pos))
        self.fwd.dtypes[name] = r.dtype
        self.fwd.dims[name] = tuple(v.extent for v in index)
        if not index:
            return ir.ScalarRef(name, r.dtype)
        return ir.Load(name, tuple(ir.Affine(((v, 1),), Shape.const(0)) for v in index), r.dtype)
