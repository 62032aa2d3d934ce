"""The expression table of the C++ family: one entry per operator of kspec.ops.OPS.

Every entry receives its operands already converted to the operation's compute type (see
`operand_ctype`) and an `OpContext` for spellings that depend on that type (math function names,
literals). Operators with a non-obvious or multi-use definition (NaN-propagating max, Python's
modulo, gelu, softplus ...) become calls of `kspec_*` helper functions, defined once per file by
templates/helpers.j2, so the generated code reads like the kspec source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ...dtypes import DType
from ...ops import OPS
from .code import ADD, AND, COND, EQ, MUL, OR, REL, Code, binary, call, literal, ternary, unary
from .ctype import compute_ctype
from .dialect import Dialect


@dataclass
class OpContext:
    """What an expression-table entry may ask for while rendering one operation."""

    dialect: Dialect
    ctype: str                                   # the operation's compute type
    helpers: set[str] = field(default_factory=set)  # helper functions the file must define

    def fn(self, name: str) -> str:
        return self.dialect.math_fn(name, self.ctype)

    def lit(self, value: float | int) -> Code:
        return literal(value, self.ctype, self.dialect)

    def helper(self, name: str, args: list[Code]) -> Code:
        self.helpers.add(name)
        return call(name, args, self.ctype)

    @property
    def is_float(self) -> bool:
        return self.ctype in ("float", "double")


Entry = Callable[[OpContext, list[Code]], Code]


def _infix(op: str, prec: int, result: str | None = None) -> Entry:
    return lambda r, a: binary(a[0], op, a[1], prec, result or r.ctype)


def _math(name: str) -> Entry:
    return lambda r, a: call(r.fn(name), a, r.ctype)


def _helper(name: str) -> Entry:
    return lambda r, a: r.helper(name, a)


def _pow(r: OpContext, a: list[Code]) -> Code:
    # Integer powers follow the reference: computed in double, truncated toward zero.
    if r.is_float and getattr(a[1], "literal", None) == 2:
        return r.helper("kspec_square", a[:1])   # x * x: exactly pow(x, 2), without the call
    return call(r.fn("pow"), a, r.ctype) if r.is_float else r.helper("kspec_ipow", a)


def _div(r: OpContext, a: list[Code]) -> Code:
    # f32: the dialect's approximate division (about 2 ulp), as Triton's div.full.f32
    if r.ctype == "float" and r.dialect.fast_div:
        return Code(r.dialect.fast_div.format(a=a[0].text, b=a[1].text), "float")
    return binary(a[0], "/", a[1], MUL, r.ctype)


def _abs(r: OpContext, a: list[Code]) -> Code:
    return call(r.fn("abs"), a, r.ctype) if r.is_float else r.helper("kspec_abs", a)


def _rounding(name: str) -> Entry:
    # floor/ceil of an integer is the integer itself.
    return lambda r, a: call(r.fn(name), a, r.ctype) if r.is_float else a[0]


EXPR_TABLE: dict[str, Entry] = {
    "add": _infix("+", ADD), "sub": _infix("-", ADD), "mul": _infix("*", MUL),
    "div": _div,
    "mod": _helper("kspec_mod"),          # sign of the divisor, like torch.remainder
    "pow": _pow,
    "neg": lambda r, a: unary("-", a[0], r.ctype),
    "lt": _infix("<", REL, "bool"), "le": _infix("<=", REL, "bool"),
    "gt": _infix(">", REL, "bool"), "ge": _infix(">=", REL, "bool"),
    "eq": _infix("==", EQ, "bool"), "ne": _infix("!=", EQ, "bool"),
    "and": _infix("&&", AND, "bool"), "or": _infix("||", OR, "bool"),
    "not": lambda r, a: unary("!", a[0], "bool"),
    "where": lambda r, a: ternary(a[0], a[1], a[2], r.ctype),
    "maximum": _helper("kspec_max"), "minimum": _helper("kspec_min"),   # NaN-propagating
    "clamp": lambda r, a: r.helper("kspec_min", [r.helper("kspec_max", a[:2]), a[2]]),
    "exp": _math("exp"), "exp2": _math("exp2"), "log": _math("log"), "log2": _math("log2"),
    "log1p": _math("log1p"), "sqrt": _math("sqrt"), "rsqrt": _math("rsqrt"),
    "sin": _math("sin"), "cos": _math("cos"), "tanh": _math("tanh"), "erf": _math("erf"),
    "sigmoid": _helper("kspec_sigmoid"), "silu": _helper("kspec_silu"),
    "gelu": _helper("kspec_gelu"),        # erf form
    "gelu_tanh": _helper("kspec_gelu_tanh"),
    "softplus": _helper("kspec_softplus"),  # max(x, 0) + log1p(exp(-|x|)): no overflow
    "abs": _abs,
    "relu": lambda r, a: r.helper("kspec_max", [a[0], r.lit(0)]),   # relu(NaN) is NaN
    "floor": _rounding("floor"), "ceil": _rounding("ceil"),
}

missing = set(OPS) - set(EXPR_TABLE)
assert not missing, f"C++ expression table lacks {sorted(missing)}"


def operand_ctype(op: str, result: DType, operands: list[DType]) -> str:
    """The compute type an operation's operands are converted to before the entry is applied."""
    rule = OPS[op].rule
    if rule == "logic":
        return "bool"
    if rule == "cmp":
        # Operands meet in one type, as in the reference (which uses f64 for any float).
        if any(d == DType.f64 for d in operands):
            return "double"
        if any(d.is_float for d in operands):
            return "float"
        if all(d == DType.bool for d in operands):
            return "bool"
        return "int64_t"
    return compute_ctype(result)


# Reductions: (identity, combine) per compute type. `{acc}` and `{x}` are filled in.
def identity(op: str, ctype: str, dialect: Dialect) -> Code:
    if op in ("sum", "mean"):
        return literal(0, ctype, dialect)
    if op == "prod":
        return literal(1, ctype, dialect)
    low = op == "max"
    if ctype == "bool":
        return literal(not low, ctype, dialect)
    if ctype == "int64_t":
        return Code("INT64_MIN" if low else "INT64_MAX", ctype)
    return literal(float("-inf") if low else float("inf"), ctype, dialect)


def compensated(op: str, ctype: str) -> bool:
    """Whether a reduction's per-thread accumulator carries a compensation term: f32 sums and
    means (f16/bf16 inputs accumulate in f32 too).

    Why: one thread may fold thousands to millions of terms (a 4M-element row over 512
    threads, a 16M-element batch-norm statistic in one loop-nest thread, every term in the CPU
    emulation); a plain f32 running sum loses up to half an ulp of the *running sum* per term,
    so its error grows with the count (2.7e-3 on a 4M-element layernorm, far past 1e-4).
    Kahan's compensated summation (kspec_sum_add in templates/helpers.j2) carries each
    addition's rounding error into the next term: the error is about 2 ulps of sum(|x|) plus
    a term in n * ulp^2, independent of the count for any n below 1/ulp (16M), for three more
    additions and a select per term (these loops are memory bound). The compilers must keep
    the additions as written: kspec compiles without fast-math, and nvcc -O3 keeps all four
    (checked in the SASS for sm_90). Kahan rather than Neumaier's variant:
    Neumaier's separate error sum is itself a plain f32 sum that grows with n (on 4M terms of
    mean 100 it left 12 ulps in the mean); Kahan's correction stays below an ulp of the sum.
    Rather than a blocked (two-level) sum: its error still grows with n / block and it would
    need the loops restructured. f64 sums stay plain (their rounding is far below f64's
    tolerance and f64 arithmetic is slow on many GPUs); integer sums are exact. Across lanes,
    warps and blocks the reduction tree (log2 of the team in depth) adds the compensated
    per-thread totals."""
    return op in ("sum", "mean") and ctype == "float"


@dataclass(frozen=True)
class Accumulator:
    """One thread's accumulator of a reduction: `name` of type `ctype`, starting at
    `identity`; for compensated sums (see `compensated`) also `comp`, the part of the last
    term that its addition rounded away (taken into the next term)."""

    op: str
    name: str
    ctype: str
    identity: str
    comp: str | None = None

    @staticmethod
    def make(op: str, name: str, ctype: str, dialect: Dialect,
             comp_name: Callable[[str], str] | None = None) -> "Accumulator":
        """`comp_name(name)` gives a fresh name for the compensation variable."""
        comp = None
        if compensated(op, ctype):
            comp = comp_name(f"{name}_comp") if comp_name else f"{name}_comp"
        return Accumulator(op, name, ctype, identity(op, ctype, dialect).text, comp)

    def declare(self) -> str:
        if self.comp is None:
            return f"{self.ctype} {self.name} = {self.identity};"
        return f"{self.ctype} {self.name} = {self.identity}, {self.comp} = {self.identity};"

    def fold(self, x: Code, ctx: OpContext) -> str:
        """The statement folding one value (of the accumulator's type) in."""
        if self.comp is None:
            return combine(self.op, self.name, x, ctx)
        ctx.helpers.add("kspec_sum_add")
        return f"kspec_sum_add({self.name}, {self.comp}, {x.text});"

    def total(self) -> str | None:
        """The statement taking the last correction off the sum, after the thread's last fold
        (None when there is none)."""
        if self.comp is None:
            return None
        return f"{self.name} -= {self.comp};"


def combine(op: str, acc: str, x: Code, ctx: OpContext) -> str:
    """The statement folding one value into the accumulator."""
    if op in ("sum", "mean"):
        return f"{acc} += {x.wrapped(COND + 1)};"
    if op == "prod":
        return f"{acc} *= {x.wrapped(COND + 1)};"
    if ctx.ctype == "bool":
        return f"{acc} = {acc} {'||' if op == 'max' else '&&'} {x.wrapped(AND + 1)};"
    fn = "kspec_max" if op == "max" else "kspec_min"
    ctx.helpers.add(fn)
    return f"{acc} = {fn}({acc}, {x});"
