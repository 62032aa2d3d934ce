"""C++ expression text with just enough structure to print few parentheses and exact literals.

`Code` is one rendered C++ expression: its text, the precedence of its outermost operator, its
C++ type, and, for literals, the value (so a literal converted to another type is re-spelled,
`2` -> `2.0f`, instead of wrapped in a cast).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from .dialect import Dialect

# C++ operator precedence, higher binds tighter (only the levels we print).
ATOM, UNARY, MUL, ADD, REL, EQ, AND, OR, COND = 100, 15, 13, 12, 10, 9, 5, 4, 3

Number = Union[int, float, bool]

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


@dataclass(frozen=True)
class Code:
    text: str
    ctype: str
    prec: int = ATOM
    literal: Number | None = None
    narrow: str | None = None   # for a widened narrow integer load: the text before widening

    def __str__(self) -> str:
        return self.text

    def wrapped(self, min_prec: int) -> str:
        """The text, parenthesised when its operator binds looser than `min_prec`."""
        return self.text if self.prec >= min_prec else f"({self.text})"


def literal(value: Number, ctype: str, dialect: Dialect) -> Code:
    """A constant spelled in `ctype`, exactly (floats print round-trip)."""
    if ctype == "bool":
        return Code("true" if value else "false", ctype, literal=bool(value))
    if ctype == "int64_t":
        v = int(value)
        if v == INT64_MIN:
            return Code("INT64_MIN", ctype, literal=v)
        text = str(v) if INT32_MIN <= v <= INT32_MAX else f"{v}LL"
        return Code(text, ctype, UNARY if v < 0 else ATOM, literal=v)
    f = float(value)
    single = ctype == "float"
    if math.isnan(f):
        return Code(dialect.nan_float if single else dialect.nan_double, ctype, literal=f)
    if math.isinf(f):
        inf = dialect.inf_float if single else dialect.inf_double
        if inf.startswith("("):
            return Code(inf if f > 0 else f"-{inf}", ctype, UNARY, literal=f)
        return Code(inf if f > 0 else f"-{inf}", ctype, ATOM if f > 0 else UNARY, literal=f)
    text = repr(f)
    if single:
        text += "f"
    return Code(text, ctype, UNARY if f < 0 or text.startswith("-") else ATOM, literal=f)


def convert(c: Code, ctype: str, dialect: Dialect) -> Code:
    """`c` as a value of another compute type (value-preserving where the type allows)."""
    if c.ctype == ctype:
        return c
    if c.literal is not None:
        if ctype == "int64_t" and isinstance(c.literal, float):
            return cast(c, ctype)  # keep C's truncation visible
        return literal(c.literal, ctype, dialect)
    if ctype == "bool":
        return binary(c, "!=", literal(0, c.ctype, dialect), EQ, "bool")
    if c.narrow is not None and ctype in ("float", "double"):
        # an int32 element converts to float exactly as its int64 widening does
        return Code(f"({ctype}){c.narrow}", ctype, UNARY)
    return cast(c, ctype)


def cast(c: Code, ctype: str) -> Code:
    return Code(f"({ctype}){c.wrapped(UNARY)}", ctype, UNARY)


def binary(a: Code, op: str, b: Code, prec: int, ctype: str) -> Code:
    """`a op b` for a left-associative operator of precedence `prec`."""
    return Code(f"{a.wrapped(prec)} {op} {b.wrapped(prec + 1)}", ctype, prec)


def unary(op: str, a: Code, ctype: str) -> Code:
    inner = a.wrapped(UNARY)
    if inner.startswith(op):   # `- -x` would read as a decrement
        inner = f"({a.text})"
    return Code(f"{op}{inner}", ctype, UNARY)


def call(fn: str, args: list[Code], ctype: str) -> Code:
    return Code(f"{fn}({', '.join(a.text for a in args)})", ctype)


def ternary(c: Code, a: Code, b: Code, ctype: str) -> Code:
    return Code(f"{c.wrapped(COND + 1)} ? {a.wrapped(COND + 1)} : {b.wrapped(COND)}", ctype, COND)
