"""Reductions one loop can compute together, so that a row is read once for both:

- "centred": after `mu = mean(E)`, a `mean((E - mu) ** 2)` (or sum) over the same indices,
  from Welford's running (count, mean, centred sum of squares) beside the mean's sum;
- "exp_sum": after `m = max(E)`, a `sum(exp(E - m))`, from running (max, rescaled sum): the
  online softmax.

Backend-neutral matching on the IR; the Triton rows and split writers use it.
"""
from __future__ import annotations

from .. import ir


def fused_pairs(statements: list[ir.Assign]) -> dict[int, tuple[str, ir.Reduce]]:
    """id(r) -> (kind, s): statement `t = r` (r a mean or max, the whole value) and a later
    reduction s that r's loop computes too. Each r takes the first such s."""
    pairs: dict[int, tuple[str, ir.Reduce]] = {}
    taken: set[int] = set()
    for k, first in enumerate(statements):
        r = first.value
        if not (isinstance(r, ir.Reduce) and r.op in FUSED and r.dtype.is_float):
            continue
        kind, ops, match = FUSED[r.op]
        later = [s for st in statements[k + 1:] for s in ir.walk(st.value)
                 if isinstance(s, ir.Reduce) and id(s) not in taken and s.op in ops
                 and match(s, r, first, st.index)]
        if later:
            pairs[id(r)] = (kind, later[0])
            taken.add(id(later[0]))
    return pairs


def _is_exp_of_shifted(r: ir.Reduce, top: ir.Reduce, m_stmt: ir.Assign,
                       outer: tuple[ir.IndexVar, ...]) -> bool:
    """r's body is exp(E - m[outer]), E being top's body (renamed as in _shifted)."""
    body = r.body
    if not (isinstance(body, ir.Op) and body.op == "exp"):
        return False
    return _shifted(body.args[0], r, top, m_stmt, outer)


def _shifted(diff: ir.Expr, r: ir.Reduce, top: ir.Reduce, stmt: ir.Assign,
             outer: tuple[ir.IndexVar, ...]) -> bool:
    """diff is E - t[outer]: t is stmt's target, E top's body with r's indices."""
    if not (isinstance(diff, ir.Op) and diff.op == "sub" and len(r.vars) == len(top.vars)):
        return False
    e, t = diff.args
    if not (isinstance(t, ir.Load) and t.tensor == stmt.target and
            tuple(a.bare for a in t.index) == tuple(outer)):
        return False
    if tuple(v.extent for v in r.vars) != tuple(v.extent for v in top.vars):
        return False
    rename = {**dict(zip(r.vars, top.vars)), **dict(zip(outer, stmt.index))}
    return _same(e, top.body, rename)


def _is_centred_square(r: ir.Reduce, mean: ir.Reduce, mu_stmt: ir.Assign,
                       outer: tuple[ir.IndexVar, ...]) -> bool:
    """r's body is (E - mu[outer]) ** 2 (or the product of two such), E being mean's body
    with r's indices (reduced, and outer: r's statement's) in place of mean's."""
    body = r.body
    if isinstance(body, ir.Op) and body.op == "pow" and isinstance(body.args[1], ir.Const) \
            and body.args[1].value in (2, 2.0):
        return _shifted(body.args[0], r, mean, mu_stmt, outer)
    if isinstance(body, ir.Op) and body.op == "mul" and body.args[0] == body.args[1]:
        return _shifted(body.args[0], r, mean, mu_stmt, outer)
    return False


def _same(a: ir.Expr, b: ir.Expr, rename: dict[ir.IndexVar, ir.IndexVar]) -> bool:
    """a equals b once a's variables are renamed."""
    if type(a) is not type(b):
        return False
    if isinstance(a, ir.Load):
        return a.tensor == b.tensor and a.dtype == b.dtype and len(a.index) == len(b.index) \
            and all(_same_affine(x, y, rename) for x, y in zip(a.index, b.index))
    if isinstance(a, ir.IndexValue):
        return rename.get(a.var, a.var) == b.var
    if isinstance(a, ir.Op):
        return a.op == b.op and a.dtype == b.dtype and len(a.args) == len(b.args) and \
            all(_same(x, y, rename) for x, y in zip(a.args, b.args))
    if isinstance(a, ir.Cast):
        return a.dtype == b.dtype and _same(a.arg, b.arg, rename)
    if isinstance(a, ir.Reduce):
        return False
    return a == b


def _same_affine(a: ir.Affine, b: ir.Affine, rename: dict[ir.IndexVar, ir.IndexVar]) -> bool:
    return a.offset == b.offset and \
        sorted((rename.get(v, v).uid, c) for v, c in a.terms) == \
        sorted((v.uid, c) for v, c in b.terms)


# reduction op -> (kind, ops of the later reduction, its matcher) for fused_pairs
FUSED = {"mean": ("centred", ("sum", "mean"), _is_centred_square),
         "max": ("exp_sum", ("sum",), _is_exp_of_shifted)}
