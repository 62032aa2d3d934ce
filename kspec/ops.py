"""The operator table: every operator and function of the language, its arity, how its result
dtype follows from its operands, and how it is written in kspec source.

Each backend has its own table from these names to expressions; the reference interpreter has
one too (kspec/verify/reference.py). A name missing from a backend's table is a test failure.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpInfo:
    name: str
    arity: int
    rule: str             # "arith" "div" "cmp" "logic" "select" "float" "same"
    symbol: str | None = None   # infix/prefix spelling in kspec source; None for a call
    precedence: int = 0         # for the printer: higher binds tighter


_BIN = [
    ("or", "or", 1, "logic"), ("and", "and", 2, "logic"),
    ("lt", "<", 4, "cmp"), ("le", "<=", 4, "cmp"), ("gt", ">", 4, "cmp"),
    ("ge", ">=", 4, "cmp"), ("eq", "==", 4, "cmp"), ("ne", "!=", 4, "cmp"),
    ("add", "+", 5, "arith"), ("sub", "-", 5, "arith"),
    ("mul", "*", 6, "arith"), ("div", "/", 6, "div"), ("mod", "%", 6, "arith"),
    ("pow", "**", 8, "arith"),
]

OPS: dict[str, OpInfo] = {name: OpInfo(name, 2, rule, sym, prec) for name, sym, prec, rule in _BIN}
OPS["not"] = OpInfo("not", 1, "logic", "not", 3)
OPS["neg"] = OpInfo("neg", 1, "arith", "-", 7)
OPS["where"] = OpInfo("where", 3, "select")
OPS["maximum"] = OpInfo("maximum", 2, "arith")
OPS["minimum"] = OpInfo("minimum", 2, "arith")
OPS["clamp"] = OpInfo("clamp", 3, "arith")
for _f in ("exp exp2 log log2 log1p sqrt rsqrt sin cos tanh sigmoid erf gelu gelu_tanh silu "
           "softplus").split():
    OPS[_f] = OpInfo(_f, 1, "float")
for _f in ("abs", "relu", "floor", "ceil"):
    OPS[_f] = OpInfo(_f, 1, "same")

BINARY_SYMBOLS: dict[str, str] = {info.symbol: name for name, info in OPS.items()
                                  if info.arity == 2 and info.symbol}

# Source-level function names -> op names. `max(a, b)` is `maximum`; `max(e for k)` a reduction.
FUNCTIONS: dict[str, str] = {name: name for name, info in OPS.items() if info.symbol is None
                             and name not in ("maximum", "minimum")}
FUNCTIONS.update({"max": "maximum", "min": "minimum", "pow": "pow"})

REDUCTIONS = ("sum", "prod", "max", "min", "mean", "argmax", "argmin")
# The index of the first maximum (minimum) as i64, NaN counting as the maximum (and, as in
# PyTorch, as the minimum too): torch.argmax / torch.argmin over one index.
ARG_REDUCTIONS = ("argmax", "argmin")

SOURCE_NAME = {"maximum": "max", "minimum": "min"}
