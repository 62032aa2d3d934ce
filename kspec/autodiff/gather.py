"""The adjoint of a read at shifted or strided indices, `x[n, c, S*p + r, q + s]` (a
convolution), written as a gather over the read tensor's own index instead of a scatter:

    dx[n, c, h, w] = sum(pad(dy, 0)[n, o, (h - r) / S, w - s] * w[o, c, r, s] for o, r, s)

Each dim whose index is not a bare variable is given a fresh variable `h` for the position
read; one variable of the index (`p`, the statement's own index where it has one) is solved
for, `p = (h - r) / S`, and every read of `p` in the contribution becomes a padded read at that
exact division, which takes 0 wherever `h - r` is not a multiple of S or the quotient is outside
`p`'s range: the pairs (p, r) with S*p + r = h, and no others. The other variables (`r`) are
summed over, as the reading statement's indices are.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from .. import ir
from ..dtypes import DType
from ..errors import KspecGradError
from ..printer import format_expr
from ..shapes import Shape


@dataclasses.dataclass
class Gather:
    value: ir.Expr                       # the contribution, the solved variables replaced
    at: tuple[ir.IndexVar, ...]          # one variable per dim of the read tensor
    solved: tuple[ir.IndexVar, ...]      # the variables no longer in the contribution


def as_gather(node: ir.Load, value: ir.Expr, dims: tuple[Shape, ...],
              own: tuple[ir.IndexVar, ...], dims_of: Callable[[str], tuple[Shape, ...]],
              new_var: Callable[[str, Shape], ir.IndexVar], taken: set[str], pos) -> Gather:
    """The read `node` of a tensor of `dims` whose contribution is `value`: `own` is the reading
    statement's index, `dims_of` gives a tensor's dims, `new_var` makes a fresh index whose
    name is none of `taken` (the program's tensor and scalar names)."""
    text = format_expr(node)
    if any(a.gather is not None or a.div is not None for a in node.index):
        raise _scatter(text, "a divided or gathered index", pos)
    # a padded read's pad value is a constant: only the positions inside the tensor get an
    # adjoint, and `h` ranges over those alone
    avoid = {*taken, *(v.name for a in node.index for v in a.vars()),
             *(v.name for n in ir.walk(value) if isinstance(n, ir.Load)
               for a in n.index for v in a.vars())}
    at: list[ir.IndexVar] = []
    solved: dict[ir.IndexVar, ir.Affine] = {}
    for k, (a, d) in enumerate(zip(node.index, dims)):
        if a.bare is not None:
            at.append(a.bare)
            continue
        p, coeff = _pick(a, own, text, pos)
        h = new_var(_name(d, k, avoid), d)
        avoid.add(h.name)
        at.append(h)
        # S*p + rest = h  =>  p = (h - rest) / S, negated where S < 0
        sign = 1 if coeff > 0 else -1
        terms = [(h, sign)] + [(v, -sign * c) for v, c in a.terms if v != p]
        offset = a.offset * (-sign)
        solved[p] = ir.Affine(tuple(terms), offset, Shape.const(abs(coeff))
                              if abs(coeff) != 1 else None)
    named = [v for v in at if v not in solved]
    every = [v for a in node.index for v, _ in a.terms]
    if len(set(named)) != len(named) or any(every.count(p) != 1 for p in solved):
        raise _scatter(text, "an index variable in two dims", pos)
    return Gather(_substitute(value, solved, dims_of, text, pos), tuple(at), tuple(solved))


def _pick(a: ir.Affine, own: tuple[ir.IndexVar, ...], text: str, pos) -> tuple[ir.IndexVar,
                                                                               int]:
    """The variable to solve for: the statement's own index (its adjoint is read there), the
    largest coefficient first (the stride)."""
    if not a.terms:
        raise _scatter(text, "a constant index", pos)
    ranked = sorted(a.terms, key=lambda t: (t[0] not in own, -abs(t[1])))
    return ranked[0]


def _name(d: Shape, k: int, avoid: set[str]) -> str:
    """The dim's symbol in lower case (`h` for H), made distinct from `avoid`."""
    base = str(d).lower() if str(d).isidentifier() else f"i{k}"
    name, n = base, 2
    while name in avoid:
        name, n = f"{base}{n}", n + 1
    return name


def _substitute(e: ir.Expr, solved: dict[ir.IndexVar, ir.Affine],
                dims_of: Callable[[str], tuple[Shape, ...]], text: str, pos) -> ir.Expr:
    """e with each solved variable's reads made padded reads at its division; each must be a
    bare index of an unpadded read along a dim of the variable's extent (the pad then keeps
    the quotient inside the variable's range)."""
    if isinstance(e, ir.Load):
        index = list(e.index)
        hit = False
        for k, a in enumerate(e.index):
            inside = [v for v in a.vars() if v in solved]
            if not inside:
                continue
            v = a.bare
            if v is None or e.pad is not None or dims_of(e.tensor)[k] != v.extent:
                raise _scatter(text, f"its adjoint reads {v or inside[0]} in {format_expr(e)}",
                               pos)
            index[k], hit = solved[v], True
        if not hit:
            return e
        return dataclasses.replace(e, index=tuple(index),
                                   pad=ir.Pad(_zero(e), dims_of(e.tensor)))
    if isinstance(e, ir.IndexValue) and e.var in solved:
        raise _scatter(text, f"its adjoint uses {e.var.name} as a value", pos)
    if isinstance(e, ir.Op):
        return dataclasses.replace(e, args=tuple(_substitute(a, solved, dims_of, text, pos)
                                                 for a in e.args))
    if isinstance(e, ir.Cast):
        return dataclasses.replace(e, arg=_substitute(e.arg, solved, dims_of, text, pos))
    if isinstance(e, ir.Reduce):
        return dataclasses.replace(e, body=_substitute(e.body, solved, dims_of, text, pos))
    return e


def _zero(e: ir.Load) -> float | int | bool:
    return 0.0 if e.dtype.is_float else (False if e.dtype == DType.bool else 0)


def _scatter(text: str, why: str, pos) -> KspecGradError:
    return KspecGradError(f"the read {text} has no derivative yet: its adjoint is a scatter "
                          f"({why})", pos)
