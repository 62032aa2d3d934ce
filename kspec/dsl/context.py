"""What the semantic checks share (semantics.py, expressions.py, ranges.py): the reserved
names, error helpers, shape expressions from source, and the per-statement bookkeeping."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from .. import ir
from ..dtypes import DTYPES, DType
from ..errors import KspecSemanticError, SourcePos
from ..ops import FUNCTIONS, REDUCTIONS
from ..shapes import FloorDiv, Shape
from . import ast

LITERAL_NAMES = {"inf": (float("inf"), DType.f32), "true": (True, DType.bool),
                 "false": (False, DType.bool)}
KEYWORDS = {"kernel", "for", "and", "or", "not"}
RESERVED = (set(FUNCTIONS) | set(REDUCTIONS) | set(DTYPES) | set(LITERAL_NAMES) | {"gelu_tanh"}
            | KEYWORDS)


def builtin_kind(name: str) -> str:
    """What a reserved name is, for messages: "a keyword", "a dtype", ..."""
    if name in KEYWORDS:
        return "a keyword"
    if name in DTYPES:
        return "a dtype"
    if name in LITERAL_NAMES:
        return "a literal"
    if name in REDUCTIONS and name not in FUNCTIONS:
        return "a reduction"
    return "a built-in function"


def start(node: ast.Node) -> SourcePos:
    """Where an expression begins (a BinOp's own position is its operator)."""
    while isinstance(node, ast.BinOp):
        node = node.a
    return node.pos


def ordered_symbols(shape: Shape) -> list[str]:
    out: list[str] = []
    for mono, _ in shape.terms:
        for atom in mono:
            if isinstance(atom, str):
                out.append(atom)
            else:
                parts = (atom.num, atom.den) if isinstance(atom, FloorDiv) else (atom.a, atom.b)
                out += [s for p in parts for s in ordered_symbols(p)]
    return out


def did_you_mean(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def dims_text(n: int) -> str:
    return f"{n} dim" if n == 1 else f"{n} dims"


def error(message: str, pos: SourcePos | None) -> KspecSemanticError:
    return KspecSemanticError(message, pos)


# --- shape expressions -------------------------------------------------------------------------
def shape_of(node: ast.Node, symbols: dict[str, SourcePos], what: str,
             names: dict[str, str] | None = None) -> Shape:
    """A dim or range written in source -> Shape. Unknown upper-or-lower-case names become shape
    symbols (recorded in `symbols`) unless `names` says they are something else."""
    if isinstance(node, ast.Num):
        if not isinstance(node.value, int):
            raise error(f"{what} must be an integer, not '{node.text}'", node.pos)
        return Shape.const(node.value)
    if isinstance(node, ast.Name):
        kind = (names or {}).get(node.id)
        if node.id in RESERVED or (kind is not None and kind != "a shape symbol"):
            raise error(f"'{node.id}' is {kind or builtin_kind(node.id)}; {what} may use "
                        f"only integers and shape symbols", node.pos)
        symbols.setdefault(node.id, node.pos)
        return Shape.sym(node.id)
    if isinstance(node, ast.UnOp) and node.op in "+-":
        inner = shape_of(node.a, symbols, what, names)
        return -inner if node.op == "-" else inner
    if isinstance(node, ast.BinOp) and node.op in ("+", "-", "*", "//"):
        a = shape_of(node.a, symbols, what, names)
        b = shape_of(node.b, symbols, what, names)
        if node.op == "//":
            if b.is_const and b.value == 0:
                raise error("division by zero in a shape expression", node.pos)
            return a // b
        return a + b if node.op == "+" else a - b if node.op == "-" else a * b
    if isinstance(node, ast.Call) and node.name in ("min",) and len(node.args) == 2:
        return shape_of(node.args[0], symbols, what, names).min(
            shape_of(node.args[1], symbols, what, names))
    raise error(f"{what} may use only integers, shape symbols, + - * // and parentheses",
                node.pos)


def constant_value(node: ast.Node, what: str = "a default value") -> int | float | bool:
    """A scalar parameter's default (or a pad value): a number, optionally negated, or
    inf/true/false."""
    if isinstance(node, ast.Num):
        return node.value
    if isinstance(node, ast.Name) and node.id in LITERAL_NAMES:
        return LITERAL_NAMES[node.id][0]
    if isinstance(node, ast.UnOp) and node.op in "+-":
        v = constant_value(node.a, what)
        if isinstance(v, bool):
            raise error(f"{what} cannot be a negated bool", node.pos)
        return -v if node.op == "-" else v
    raise error(f"{what} must be a constant: a number, inf, true or false, "
                "optionally negated", start(node))


@dataclass
class Var:
    """An index variable of the statement being checked."""
    name: str
    uid: int
    pos: SourcePos
    extent: Shape | None = None      # fixed: output dims or an explicit `for k < E`
    explicit: bool = False           # the extent is given, not inferred
    reduced: bool = False            # bound by a reduction's `for`, not the left-hand side
    bounded: bool = False            # given by `for k < E`: bare uses are only bounds-checked
    ir: ir.IndexVar | None = None


@dataclass
class Access:
    """One tensor read or write, its indices affine in the variables' uids."""
    tensor: str
    dims: tuple[Shape, ...]
    index: list[tuple[dict[int, int], Shape, SourcePos]]  # per dim: {uid: coeff}, offset, pos
    pos: SourcePos


@dataclass
class StatementScope:
    """What one statement's check collects: its index variables and tensor accesses."""
    vars: list[Var] = field(default_factory=list)
    accesses: list[Access] = field(default_factory=list)
    scans: list[tuple[Var, Var, SourcePos]] = field(default_factory=list)  # (k, j, where)
    padded: set[int] = field(default_factory=set)   # uids used in padded reads
    gathered: set[int] = field(default_factory=set)  # uids added to a gathered index

