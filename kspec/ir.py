"""The typed IR: what the semantic checks produce and what lowering and the reference consume.

A kernel is a list of single-assignment statements `target[i, j] = expr` over index variables
with known extents. Expressions are immutable trees; every node carries its dtype. Positions are
kept for error messages but take no part in equality, so a re-parsed printout compares equal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Union

from .dtypes import DType
from .errors import SourcePos
from .shapes import Shape


@dataclass(frozen=True, eq=False)
class IndexVar:
    """One binding of an index name: a left-hand-side index or a reduction's `for` variable.
    Identity is by `uid` (unique within a kernel, assigned in source order)."""

    name: str
    uid: int
    extent: Shape
    given: bool = False   # the range is written in source (`for k < E`), not inferred

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IndexVar) and (self.uid, self.name, self.extent, self.given) == (
            other.uid, other.name, other.extent, other.given)

    def __hash__(self) -> int:
        return hash((self.uid, self.name))

    def __repr__(self) -> str:
        return f"{self.name}#{self.uid}"


@dataclass(frozen=True)
class Affine:
    """sum(coeff * var) + offset: one index of a tensor access."""

    terms: tuple[tuple[IndexVar, int], ...]
    offset: Shape
    # An exact division `(p + PAD - r) / S` (only in a padded read): the index is
    # (terms + offset) / div where that divides; where it does not, the read takes its pad value.
    div: Shape | None = None
    # A gather `x[i, t[i] + 1]`: the value read from an integer input tensor is added to the
    # index (never with `div`); the read has plain affine indices itself (no nested gather).
    gather: "Load | None" = None
    pos: SourcePos | None = field(default=None, compare=False)

    @property
    def bare(self) -> IndexVar | None:
        """The variable when the index is exactly one variable with coefficient 1."""
        if len(self.terms) == 1 and self.terms[0][1] == 1 and self.offset == 0 \
                and self.div is None and self.gather is None:
            return self.terms[0][0]
        return None

    def vars(self) -> list[IndexVar]:
        """Every variable the index depends on, a gather's own indices included."""
        inner = [v for a in self.gather.index for v in a.vars()] if self.gather else []
        return [v for v, _ in self.terms] + [v for v in inner if v not in dict(self.terms)]


# --- expressions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Const:
    value: Union[int, float, bool]
    dtype: DType


@dataclass(frozen=True)
class ShapeValue:
    """A shape expression used as a value (`/ N`): i64."""

    shape: Shape
    dtype: DType = DType.i64


@dataclass(frozen=True)
class ScalarRef:
    """A scalar parameter, or a scalar (0-dim) intermediate."""

    name: str
    dtype: DType


@dataclass(frozen=True)
class IndexValue:
    """An index variable used as a value (`where(j <= i, ...)`): i64."""

    var: IndexVar
    dtype: DType = DType.i64


@dataclass(frozen=True)
class Pad:
    """What a padded read (`pad(x, 0)[...]`) takes outside the tensor: `value` (in the tensor's
    dtype) wherever an index is outside `dims` (the tensor's dims) or a division is inexact."""

    value: Union[int, float, bool]
    dims: tuple[Shape, ...]


@dataclass(frozen=True)
class Load:
    tensor: str
    index: tuple[Affine, ...]
    dtype: DType
    pad: Pad | None = None


@dataclass(frozen=True)
class Op:
    """Every operator and function: `op` is a key of kspec.ops.OPS (add, lt, where, exp, ...)."""

    op: str
    args: tuple["Expr", ...]
    dtype: DType


@dataclass(frozen=True)
class Cast:
    arg: "Expr"
    dtype: DType


@dataclass(frozen=True)
class Reduce:
    """op in sum prod max min mean over `vars`; f16/bf16 and integer bodies accumulate wider."""

    op: str
    vars: tuple[IndexVar, ...]
    body: "Expr"
    dtype: DType


@dataclass(frozen=True)
class Scan:
    """A prefix reduction: op in sum prod max min over `var` for `var <relation> bound`, where
    `bound` is a free index of the statement ranging like `var` (relation "<=", "<", ">=",
    ">"); the body does not depend on `bound`. `sum(x[i, k] for k <= j)` is a cumsum along j."""

    op: str
    var: IndexVar
    relation: str
    bound: IndexVar
    body: "Expr"
    dtype: DType

    @property
    def reverse(self) -> bool:
        return self.relation in (">=", ">")

    @property
    def exclusive(self) -> bool:
        return self.relation in ("<", ">")


Expr = Union[Const, ShapeValue, ScalarRef, IndexValue, Load, Op, Cast, Reduce, Scan]


def gathers(e: "Load") -> tuple["Load", ...]:
    """The index-tensor reads of a gather `x[i, t[i]]`: (t[i],)."""
    return tuple(a.gather for a in e.index if a.gather is not None)


def children(e: Expr) -> tuple[Expr, ...]:
    """Sub-expressions; a gather's index reads are children of its load (walks see them)."""
    if isinstance(e, Load):
        return gathers(e)
    if isinstance(e, Op):
        return e.args
    if isinstance(e, (Cast,)):
        return (e.arg,)
    if isinstance(e, (Reduce, Scan)):
        return (e.body,)
    return ()


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of an expression, parents before children."""
    yield e
    for c in children(e):
        yield from walk(c)


def free_vars(e: Expr) -> set[IndexVar]:
    """Index variables an expression depends on, minus those its reductions bind."""
    if isinstance(e, Load):
        return {v for a in e.index for v in a.vars()}
    if isinstance(e, IndexValue):
        return {e.var}
    if isinstance(e, Reduce):
        return free_vars(e.body) - set(e.vars)
    if isinstance(e, Scan):
        return (free_vars(e.body) - {e.var}) | {e.bound}
    out: set[IndexVar] = set()
    for c in children(e):
        out |= free_vars(c)
    return out


# --- kernels ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorDecl:
    """A tensor parameter, output or intermediate. `dims == ()` is a scalar."""

    name: str
    dtype: DType
    dims: tuple[Shape, ...]
    pos: SourcePos | None = field(default=None, compare=False)

    @property
    def rank(self) -> int:
        return len(self.dims)


@dataclass(frozen=True)
class ScalarParam:
    name: str
    dtype: DType
    default: Union[int, float, bool, None] = None
    pos: SourcePos | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Assign:
    target: str
    index: tuple[IndexVar, ...]
    value: Expr
    pos: SourcePos | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Check:
    """A fact the compiler could not prove, checked at launch: `expr >= 0` (or `== 0`)."""

    expr: Shape
    relation: str  # ">=" or "=="
    message: str
    pos: SourcePos | None = field(default=None, compare=False)

    def holds(self, env: dict[str, int]) -> bool:
        v = self.expr.evaluate(env)
        return v >= 0 if self.relation == ">=" else v == 0


@dataclass(frozen=True)
class Kernel:
    name: str
    params: tuple[Union[TensorDecl, ScalarParam], ...]
    outputs: tuple[TensorDecl, ...]
    intermediates: tuple[TensorDecl, ...]
    body: tuple[Assign, ...]
    symbols: tuple[str, ...]           # shape symbols, in order of first appearance
    checks: tuple[Check, ...] = ()
    pos: SourcePos | None = field(default=None, compare=False)

    @property
    def tensor_params(self) -> list[TensorDecl]:
        return [p for p in self.params if isinstance(p, TensorDecl)]

    @property
    def scalar_params(self) -> list[ScalarParam]:
        return [p for p in self.params if isinstance(p, ScalarParam)]

    def decl(self, name: str) -> Union[TensorDecl, ScalarParam]:
        for d in (*self.params, *self.outputs, *self.intermediates):
            if d.name == name:
                return d
        raise KeyError(name)

    def size_errors(self, env: dict[str, int]) -> list[str]:
        """What is wrong with `env` as this kernel's sizes: unknown or missing symbols, launch
        checks that fail. Empty when the kernel can launch at these sizes."""
        unknown = [s for s in env if s not in self.symbols]
        if unknown:
            return [f"kernel {self.name} has no symbol {', '.join(unknown)} "
                    f"(its symbols: {', '.join(self.symbols) or 'none'})"]
        missing = [s for s in self.symbols if s not in env]
        if missing:
            return [f"kernel {self.name} needs a value for {', '.join(missing)} "
                    f"(its symbols: {', '.join(self.symbols)})"]
        return [f"launch check fails: {c}" for c in self.checks if not c.holds(env)]


@dataclass(frozen=True)
class Module:
    kernels: tuple[Kernel, ...]
    file: str = field(default="<string>", compare=False)
