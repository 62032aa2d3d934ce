"""Derivatives of the operators and functions: for `z = op(a, b, ...)` and the adjoint `g` of z,
the adjoint each operand receives (None: that operand is not differentiable, or gets zero).

Built expressions carry placeholder dtypes (f32): the derived program is printed and re-checked
by the front end, which types it. Conventions at the points where a function has no derivative
follow PyTorch's autograd (derivatives.yaml), so the reference's `torch.autograd` agrees:
`maximum`/`minimum` on ties give each side half; `abs'(0) = 0`; `relu'(0) = 0` (torch.relu);
`clamp` is `min(max(x, lo), hi)`, as the reference computes it; floor and ceil give zero.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from .. import ir
from ..dtypes import DType
from ..errors import KspecGradError

Adjoints = tuple[Optional[ir.Expr], ...]
PLACEHOLDER = DType.f32   # the dtype of built nodes (the front end retypes them)


def const(v: float) -> ir.Const:
    return ir.Const(float(v), PLACEHOLDER)


def _is_const(e: ir.Expr, v: float) -> bool:
    return isinstance(e, ir.Const) and not isinstance(e.value, bool) and e.value == v


def op(name: str, *args: ir.Expr) -> ir.Expr:
    return ir.Op(name, tuple(args), PLACEHOLDER)


def add(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return op("add", a, b)


def sub(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return op("sub", a, b)


def neg(a: ir.Expr) -> ir.Expr:
    if isinstance(a, ir.Op) and a.op == "neg":
        return a.args[0]
    return op("neg", a)


def mul(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    """a * b without the factors of 1 (and -1 as a negation)."""
    if _is_const(a, 1):
        return b
    if _is_const(b, 1):
        return a
    if _is_const(b, -1):
        return neg(a)
    if _is_const(a, -1):
        return neg(b)
    return op("mul", a, b)


def div(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return a if _is_const(b, 1) else op("div", a, b)


def where(c: ir.Expr, a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return op("where", c, a, b)


def square(a: ir.Expr) -> ir.Expr:
    return op("mul", a, a)


_SQRT2 = math.sqrt(2.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = math.sqrt(2.0 / math.pi)
_LN2 = math.log(2.0)


def _pow(z: ir.Op, g: ir.Expr, value: Optional[ir.Expr] = None) -> Adjoints:
    a, b = z.args
    if isinstance(b, ir.Const):
        c = float(b.value)
        da = mul(g, const(c)) if c - 1 == 0 else mul(
            g, mul(const(c), a if c - 1 == 1 else op("pow", a, const(c - 1))))
        return da if c != 0 else None, None
    da = mul(g, mul(b, op("pow", a, sub(b, const(1)))))
    return da, mul(g, mul(z if value is None else value, op("log", a)))


def _gelu(x: ir.Expr, g: ir.Expr) -> ir.Expr:
    cdf = mul(const(0.5), add(const(1), op("erf", div(x, const(_SQRT2)))))
    pdf = mul(const(_INV_SQRT_2PI), op("exp", mul(const(-0.5), square(x))))
    return mul(g, add(cdf, mul(x, pdf)))


def _gelu_tanh(x: ir.Expr, g: ir.Expr) -> ir.Expr:
    cube = op("pow", x, const(3))
    t = op("tanh", mul(const(_GELU_TANH_C), add(x, mul(const(0.044715), cube))))
    inner = mul(const(_GELU_TANH_C), add(const(1), mul(const(3 * 0.044715), square(x))))
    d = add(mul(const(0.5), add(const(1), t)),
            mul(mul(const(0.5), x), mul(sub(const(1), square(t)), inner)))
    return mul(g, d)


def _extreme(z: ir.Op, g: ir.Expr, wins: str) -> Adjoints:
    """maximum (wins="gt") / minimum ("lt"): the larger (smaller) side takes g, ties half each."""
    a, b = z.args
    half = mul(g, const(0.5))
    da = where(op(wins, a, b), g, where(op("eq", a, b), half, const(0)))
    db = where(op(wins, b, a), g, where(op("eq", a, b), half, const(0)))
    return da, db


def _clamp(z: ir.Op, g: ir.Expr) -> Adjoints:
    x, lo, hi = z.args
    inner = op("maximum", x, lo)
    d_inner, d_hi = _extreme(op("minimum", inner, hi), g, "lt")   # type: ignore[arg-type]
    dx, d_lo = _extreme(inner, d_inner, "gt")   # type: ignore[arg-type]
    return dx, d_lo, d_hi


def _unary(f: Callable[[ir.Expr, ir.Expr, ir.Expr], ir.Expr]) -> Callable[..., Adjoints]:
    return lambda z, g, value=None: (f(z.args[0], z if value is None else value, g),)


# rule(z, g) or rule(z, g, value): `value` (where given) is an expression equal to z to use
# instead of recomputing it: a read of the statement's target when z is its whole value
RULES: dict[str, Callable[..., Adjoints]] = {
    "add": lambda z, g: (g, g),
    "sub": lambda z, g: (g, neg(g)),
    "mul": lambda z, g: (mul(g, z.args[1]), mul(g, z.args[0])),
    "div": lambda z, g: (div(g, z.args[1]),
                         neg(div(mul(g, z.args[0]), square(z.args[1])))),
    "mod": lambda z, g: (g, neg(mul(g, op("floor", div(z.args[0], z.args[1]))))),
    "pow": _pow,
    "neg": lambda z, g: (neg(g),),
    "where": lambda z, g: (None, where(z.args[0], g, const(0)), where(z.args[0], const(0), g)),
    "maximum": lambda z, g: _extreme(z, g, "gt"),
    "minimum": lambda z, g: _extreme(z, g, "lt"),
    "clamp": _clamp,
    "exp": _unary(lambda x, z, g: mul(g, z)),
    "exp2": _unary(lambda x, z, g: mul(g, mul(z, const(_LN2)))),
    "log": _unary(lambda x, z, g: div(g, x)),
    "log2": _unary(lambda x, z, g: div(g, mul(x, const(_LN2)))),
    "log1p": _unary(lambda x, z, g: div(g, add(const(1), x))),
    "sqrt": _unary(lambda x, z, g: div(mul(g, const(0.5)), z)),
    "rsqrt": _unary(lambda x, z, g: mul(g, mul(const(-0.5), div(z, x)))),
    "sin": _unary(lambda x, z, g: mul(g, op("cos", x))),
    "cos": _unary(lambda x, z, g: neg(mul(g, op("sin", x)))),
    "tanh": _unary(lambda x, z, g: mul(g, sub(const(1), square(z)))),
    "sigmoid": _unary(lambda x, z, g: mul(g, mul(z, sub(const(1), z)))),
    "erf": _unary(lambda x, z, g: mul(g, mul(const(_TWO_OVER_SQRT_PI),
                                             op("exp", neg(square(x)))))),
    "gelu": _unary(lambda x, z, g: _gelu(x, g)),
    "gelu_tanh": _unary(lambda x, z, g: _gelu_tanh(x, g)),
    "silu": _unary(lambda x, z, g: mul(g, mul(op("sigmoid", x), add(
        const(1), mul(x, sub(const(1), op("sigmoid", x))))))),
    "softplus": _unary(lambda x, z, g: mul(g, op("sigmoid", x))),
    "abs": _unary(lambda x, z, g: where(op("gt", x, const(0)), g,
                                        where(op("lt", x, const(0)), neg(g), const(0)))),
    "relu": _unary(lambda x, z, g: where(op("gt", x, const(0)), g, const(0))),
    "floor": lambda z, g: (None,),
    "ceil": lambda z, g: (None,),
}
# comparisons and logic give bools: nothing flows back through them
for _name in ("lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"):
    RULES[_name] = lambda z, g: tuple(None for _ in z.args)


_USES_VALUE = {"pow", "exp", "exp2", "sqrt", "rsqrt", "tanh", "sigmoid"}


def adjoints(z: ir.Op, g: ir.Expr, value: Optional[ir.Expr] = None, pos=None) -> Adjoints:
    """The adjoint of each operand of z given the adjoint g of z; `value`, when given, is
    an expression equal to z (a stored result) that the rules read instead of recomputing z."""
    rule = RULES.get(z.op)
    if rule is None:
        raise KspecGradError(f"{z.op} has no derivative", pos)
    return rule(z, g, value) if value is not None and z.op in _USES_VALUE else rule(z, g)
