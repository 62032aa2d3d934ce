"""Reverse mode over a kernel's statements: the vector-Jacobian product as a kspec program.

    kernel softmax_vjp(x: f32[M, N], dy: f32[M, N]) -> dx: f32[M, N] { ... }

takes the forward's tensor inputs it reads and one `d<out>` per float output (a scalar output's
as `f32[1]`), and returns `d<x>` for every float tensor input. Its statements are the forward's
(recomputed, not saved: the derived program is one fusable kernel like any other, and the
compiler fuses and inlines the recomputation as it does the forward's), then one adjoint
statement per tensor in reverse order, each the sum of every read's contribution:

* a read `x[A]` in `t[I] = f(...)` or `t[I] = sum(body for K)`, with A distinct bare indices,
  contributes `sum(dt[I] * d(body)/d(x[A]) for (I + K) - A)` to `dx[A]` (a reduction's adjoint
  broadcasts along K; a read at a permutation is a plain statement, a contraction a sum);
* `mean` divides by the range's size; `max`/`min` send the adjoint to the elements equal to the
  result, split evenly among ties (PyTorch's amax/amin rule), with the tie count a statement;
* a read at shifted or strided indices (`x[n, c, 2*p + r, q + s]`, a convolution) contributes a
  padded gather over the output index (gather.py: `pad(dy, 0)[n, o, (h - r) / 2, w - s]`);
  other scatters (`x[i, i]`, divided indices), `prod` and scans have no rule yet: build-time
  errors, as are kernels without float outputs.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Optional

from .. import ir
from ..dtypes import DType
from ..errors import KspecGradError
from ..printer import format_expr
from ..shapes import Shape
from . import rules
from .gather import as_gather
from .split import Forward, split

_UID = 1 << 40   # fresh index variables, above any the front end assigns


def derive(k: ir.Kernel) -> ir.Kernel:
    """The VJP of k as unchecked IR (print it with kspec.printer; kspec.autodiff.vjp_kernel
    gives it checked)."""
    floats = [o for o in k.outputs if o.dtype.is_float]
    if not floats:
        outs = ", ".join(f"{o.name}: {o.dtype}" for o in k.outputs)
        raise KspecGradError(f"kernel {k.name} has no derivative: no output is a float "
                             f"({outs})", k.pos)
    return _Reverse(k, split(k)).kernel()


def _bare(vars_: tuple[ir.IndexVar, ...]) -> tuple[ir.Affine, ...]:
    return tuple(ir.Affine(((v, 1),), Shape.const(0)) for v in vars_)


def _read(name: str, index: tuple[ir.IndexVar, ...], dtype: DType) -> ir.Expr:
    return ir.Load(name, _bare(index), dtype) if index else ir.ScalarRef(name, dtype)


@dataclasses.dataclass
class _Contribution:
    value: ir.Expr                          # in the reading statement's indices
    at: tuple[ir.IndexVar, ...]             # the read's index, one variable per dim
    summed: tuple[ir.IndexVar, ...]         # the reading statement's other indices


class _Reverse:
    def __init__(self, k: ir.Kernel, fwd: Forward):
        self.k, self.fwd = k, fwd
        self.taken = {*fwd.dtypes, *(p.name for p in k.scalar_params)}
        self.uid = _UID
        self.contribs: dict[str, list[_Contribution]] = {}
        self.extra: dict[str, ir.Assign] = {}        # tie counts, after their max statement
        self.adjoint: dict[str, str] = {}            # tensor -> the name of its adjoint
        self.broadcast: dict[str, ir.Assign] = {}    # adjoints computed where they are read
        self.seeds: dict[str, ir.TensorDecl] = {}    # float output -> its grad param
        for o in k.outputs:
            if o.dtype.is_float:
                dims = o.dims or (Shape.const(1),)
                self.seeds[o.name] = ir.TensorDecl(self.fresh(f"d{o.name}"), o.dtype, dims)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def var(self, name: str, extent: Shape, given: bool = False) -> ir.IndexVar:
        self.uid += 1
        return ir.IndexVar(name, self.uid, extent, given)

    def differentiable(self, name: str) -> bool:
        return name in self.fwd.dtypes and self.fwd.dtypes[name].is_float

    # --- the program ---------------------------------------------------------------------
    def kernel(self) -> ir.Kernel:
        k = self.k
        adjoints: list[ir.Assign] = []
        for stmt in reversed(self.fwd.body):
            if not self.differentiable(stmt.target):
                continue
            total = self.total(stmt.target, stmt.pos)
            if total is None:
                continue   # nothing the outputs depend on flows through this statement
            if total is not True:
                adjoints.append(total)
            self.statement(stmt)
        inputs = [p for p in k.tensor_params if p.dtype.is_float]
        outs, grads = [], []
        for p in inputs:
            name = self.fresh(f"d{p.name}")
            outs.append(ir.TensorDecl(name, p.dtype, p.dims, p.pos))
            grads.append(self.combine(name, p.name, p.dims, None, k.pos))
        body = [*adjoints, *grads]
        forward = self.needed(body)
        params = [p for p in k.params if _reads(body + forward, p.name) or
                  (isinstance(p, ir.TensorDecl) and p.dtype.is_float)]
        # no defaults: the grad parameters follow, and the backward passes every value
        params = [dataclasses.replace(p, default=None) if isinstance(p, ir.ScalarParam) else p
                  for p in params]
        return ir.Kernel(f"{k.name}_vjp", (*params, *self.seeds.values()), tuple(outs), (),
                         tuple(forward + body), k.symbols, (), k.pos)

    def needed(self, body: list[ir.Assign]) -> list[ir.Assign]:
        """The forward statements (and tie counts) the adjoint statements read, in order."""
        stmts: list[ir.Assign] = []
        for s in self.fwd.body:
            stmts.append(s)
            if s.target in self.extra:
                stmts.append(self.extra[s.target])
        keep: list[ir.Assign] = []
        readers = list(body)
        for s in reversed(stmts):
            if _reads(readers, s.target):
                keep.append(s)
                readers.append(s)
        return keep[::-1]

    def total(self, t: str, pos) -> ir.Assign | bool | None:
        """The adjoint statement of t (True: the adjoint is a grad parameter as it is; None: t
        gets no adjoint)."""
        seed = self.seeds.get(t)
        if not self.contribs.get(t):
            if seed is None:
                return None
            self.adjoint[t] = seed.name
            return True
        name = self.fresh(f"d{t}_total" if seed is not None else f"d{t}")
        self.adjoint[t] = name
        stmt = self.combine(name, t, self.fwd.dims[t], seed, pos)
        v = stmt.value
        if isinstance(v, ir.Load) and v.pad is None and \
                tuple(a.bare for a in v.index) == stmt.index:
            self.adjoint[t] = v.tensor   # a copy (`dy_r0 = dy`, a sum's through a + b): alias
            return True
        bare = {a.bare for n in ir.walk(stmt.value) if isinstance(n, ir.Load) for a in n.index}
        if not set(stmt.index) <= bare and not any(isinstance(n, ir.Reduce)
                                                   for n in ir.walk(stmt.value)):
            # constant along some index (a mean's adjoint): no statement could range over it;
            # its readers compute it instead
            self.broadcast[t] = stmt
            return True
        return stmt

    def combine(self, name: str, t: str, dims: tuple[Shape, ...], seed: Optional[ir.TensorDecl],
                pos) -> ir.Assign:
        """`name[L] = seed[L] + c1 + c2 + ...` over fresh indices L, one per dim of t."""
        contribs = self.contribs.get(t, [])
        names = _names(contribs, len(dims))
        lhs = tuple(self.var(n, d) for n, d in zip(names, dims))
        terms: list[ir.Expr] = []
        if seed is not None:
            terms.append(_read(seed.name, lhs, seed.dtype) if lhs else
                         ir.Load(seed.name, (ir.Affine((), Shape.const(0)),), seed.dtype))
        for c in contribs:
            terms.append(self.place(c, lhs))
        value = terms[0] if terms else rules.const(0)
        for term in terms[1:]:
            value = rules.add(value, term)
        return ir.Assign(name, lhs, value, pos)

    def place(self, c: _Contribution, lhs: tuple[ir.IndexVar, ...]) -> ir.Expr:
        mapping = dict(zip(c.at, lhs))
        used = {v.name for v in lhs}
        summed = []
        for v in c.summed:
            name, n = v.name, 2
            while name in used:
                name, n = f"{v.name}{n}", n + 1
            used.add(name)
            mapping[v] = self.var(name, v.extent, v.given)
            summed.append(mapping[v])
        value = _rename(c.value, mapping)
        if not summed:
            return value
        bare = {a.bare for n in ir.walk(value) if isinstance(n, ir.Load) for a in n.index}
        summed = [w if w in bare else dataclasses.replace(w, given=True) for w in summed]
        value = _rename(value, {w: s for w, s in zip(mapping.values(), summed) if w != s}) \
            if any(s.given for s in summed) else value
        return ir.Reduce("sum", tuple(summed), value, rules.PLACEHOLDER)

    # --- one statement's reads -----------------------------------------------------------
    def statement(self, stmt: ir.Assign) -> None:
        g = self.adjoint_read(stmt.target, stmt.index)
        v = stmt.value
        if isinstance(v, ir.Reduce):
            body, seed = v.body, self.reduce_seed(stmt, v, g)
            around, stored = (*stmt.index, *v.vars), None
        else:
            body, seed, around = v, g, stmt.index
            stored = _read(stmt.target, stmt.index, self.fwd.dtypes[stmt.target])
        for node, adj in self.back(body, seed, stmt.pos, stored):
            name = node.tensor if isinstance(node, ir.Load) else node.name
            at, solved = (), ()
            if isinstance(node, ir.Load) and any(a.bare is None for a in node.index):
                g = as_gather(node, adj, self.fwd.dims[name], stmt.index, self.dims_of,
                              self.var, self.taken, stmt.pos)
                adj, at, solved = g.value, g.at, g.solved
            if isinstance(node, ir.Load):
                at = self.read_index(node, at, stmt.pos)
            summed = tuple(x for x in around if x not in at and x not in solved)
            self.contribs.setdefault(name, []).append(_Contribution(adj, at, summed))

    def adjoint_read(self, t: str, index: tuple[ir.IndexVar, ...]) -> ir.Expr:
        name, dtype = self.adjoint[t], self.fwd.dtypes[t]
        if t in self.broadcast:
            b = self.broadcast[t]
            return _rename(b.value, dict(zip(b.index, index)))
        if not index and t in self.seeds and name == self.seeds[t].name:
            return ir.Load(name, (ir.Affine((), Shape.const(0)),), dtype)   # `dloss[0]`
        return _read(name, index, dtype)

    def reduce_seed(self, stmt: ir.Assign, r: ir.Reduce, g: ir.Expr) -> ir.Expr:
        if r.op == "sum":
            return g
        if r.op == "mean":
            for v in r.vars:
                if not (v.extent.is_const or len(v.extent.symbols()) == 1 and
                        str(v.extent) in v.extent.symbols()):
                    raise KspecGradError(f"mean over {v.name} < {v.extent}: no derivative over "
                                         "a derived range yet", stmt.pos)
                g = rules.div(g, ir.ShapeValue(v.extent))
            return g
        if r.op in ("max", "min"):
            result = _read(stmt.target, stmt.index, r.dtype)
            hit = rules.op("eq", r.body, result)
            ties = self.fresh(f"{stmt.target}_ties")
            count = ir.Reduce("sum", r.vars, rules.where(hit, rules.const(1), rules.const(0)),
                              rules.PLACEHOLDER)
            self.extra[stmt.target] = ir.Assign(ties, stmt.index, count, stmt.pos)
            return rules.where(hit, rules.div(g, _read(ties, stmt.index, DType.f32)),
                               rules.const(0))
        raise KspecGradError(f"{r.op}({', '.join(v.name for v in r.vars)}) has no derivative"
                             + (" (its result is an integer index)" if r.op.startswith("arg")
                                else " yet"), stmt.pos)

    def dims_of(self, name: str) -> tuple[Shape, ...]:
        """The dims of a forward tensor, a grad parameter or an adjoint."""
        if name in self.fwd.dims:
            return self.fwd.dims[name]
        for seed in self.seeds.values():
            if seed.name == name:
                return seed.dims
        return next(self.fwd.dims[t] for t, a in self.adjoint.items() if a == name)

    def read_index(self, node: ir.Load, at: tuple[ir.IndexVar, ...], pos
                   ) -> tuple[ir.IndexVar, ...]:
        """The read's index, one variable per dim (`at`: as_gather's, where it has shifted or
        strided dims), checked: distinct variables, each over its whole dim."""
        bare = at or tuple(a.bare for a in node.index)
        text = format_expr(node)
        if len(set(bare)) != len(bare):
            raise KspecGradError(
                f"the read {text} has no derivative yet: its adjoint is a scatter (an index "
                "variable in two dims)", pos)
        for v, d in zip(bare, self.fwd.dims[node.tensor]):
            if v.extent != d:  # type: ignore[union-attr]
                raise KspecGradError(f"the read {text} covers part of a dim ({v.name} < "
                                     f"{v.extent} of {d}): no derivative yet", pos)
        return bare   # type: ignore[return-value]

    def back(self, e: ir.Expr, g: ir.Expr, pos, stored: Optional[ir.Expr] = None
             ) -> Iterator[tuple[ir.Expr, ir.Expr]]:
        """(read, its adjoint) for every differentiable read in the reduction-free e; `stored`
        is a read of e's value where the statement stores it (e is the statement's value)."""
        if isinstance(e, ir.Load) and self.differentiable(e.tensor):
            yield e, g
        elif isinstance(e, ir.ScalarRef) and self.differentiable(e.name):
            yield e, g
        elif isinstance(e, ir.Cast) and e.dtype.is_float:
            if e.arg.dtype.is_float:
                yield from self.back(e.arg, g, pos)
            elif any(isinstance(n, (ir.Load, ir.ScalarRef)) and self.fwd.is_arg_index(
                    n.tensor if isinstance(n, ir.Load) else n.name) for n in ir.walk(e)):
                raise KspecGradError("argmax/argmin have no derivative: a float output "
                                     "depends on an integer index", pos)
        elif isinstance(e, ir.Op) and e.dtype.is_float:
            for arg, adj in zip(e.args, rules.adjoints(e, g, stored, pos)):
                if adj is not None and arg.dtype.is_float:
                    yield from self.back(arg, adj, pos)


def _reads(stmts: list[ir.Assign], name: str) -> bool:
    return any((isinstance(n, ir.Load) and n.tensor == name) or
               (isinstance(n, ir.ScalarRef) and n.name == name)
               for s in stmts for n in ir.walk(s.value))


def _names(contribs: list[_Contribution], rank: int) -> list[str]:
    """Left-hand-side index names: the first read's, made distinct."""
    base = [v.name for v in contribs[0].at] if contribs else list("ijklmnpq"[:rank])
    base += [f"i{n}" for n in range(len(base), rank)]
    out: list[str] = []
    for n in base:
        name, m = n, 2
        while name in out:
            name, m = f"{n}{m}", m + 1
        out.append(name)
    return out


def _rename(e: ir.Expr, m: dict[ir.IndexVar, ir.IndexVar]) -> ir.Expr:
    if isinstance(e, ir.Load):
        return dataclasses.replace(e, index=tuple(dataclasses.replace(
            a, terms=tuple((m.get(v, v), c) for v, c in a.terms),
            gather=a.gather and _rename(a.gather, m)) for a in e.index))
    if isinstance(e, ir.IndexValue):
        return dataclasses.replace(e, var=m.get(e.var, e.var))
    if isinstance(e, ir.Op):
        return dataclasses.replace(e, args=tuple(_rename(a, m) for a in e.args))
    if isinstance(e, ir.Cast):
        return dataclasses.replace(e, arg=_rename(e.arg, m))
    if isinstance(e, ir.Reduce):
        return dataclasses.replace(e, vars=tuple(m.get(v, v) for v in e.vars),
                                   body=_rename(e.body, m))
    return e
