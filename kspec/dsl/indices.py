"""Tensor indices: affine index expressions (with shape expressions and, in padded reads, one
exact division) and the pad value of a padded read `pad(x, v)[...]`.

Split from semantics.py, which checks everything else about a statement.
"""
from __future__ import annotations

from typing import Callable, Union

from .. import ir
from ..dtypes import DType
from ..errors import KspecSemanticError, SourcePos
from ..shapes import Shape
from . import ast

# ({index variable uid: coefficient}, offset, divisor or None)
IndexForm = tuple[dict[int, int], Shape, Union[Shape, None]]


def error(message: str, pos: SourcePos | None) -> KspecSemanticError:
    return KspecSemanticError(message, pos)


def start(node: ast.Node) -> SourcePos:
    """Where an expression begins (a BinOp's own position is its operator)."""
    while isinstance(node, ast.BinOp):
        node = node.a
    return node.pos


class IndexReader:
    """Turns one index expression into affine form. `uid_of` gives the uid of an index
    variable in scope (or None), `is_symbol` tells shape symbols, `other` says what any other
    known name is (for messages), or None for an unknown name."""

    def __init__(self, uid_of: Callable[[str], "int | None"], is_symbol: Callable[[str], bool],
                 other: Callable[[str], "str | None"]):
        self.uid_of, self.is_symbol, self.other = uid_of, is_symbol, other

    def index(self, node: ast.Node, padded: bool) -> IndexForm:
        """The whole index of one dim: affine, or `(affine) / S` in a padded read."""
        if isinstance(node, ast.BinOp) and node.op == "/":
            if not padded:
                raise error("an index divided with '/' needs a padded read: "
                            "pad(x, 0)[..., (e) / S, ...] takes the pad value where e is not "
                            "divisible by S", node.pos)
            coeffs, offset = self.affine(node.a)
            den_coeffs, den = self.affine(node.b)
            if den_coeffs:
                raise error("the divisor of an index must be a constant or a shape "
                            "expression, not an index variable", start(node.b))
            if den.is_const and den.value < 1:
                raise error(f"the divisor of an index must be at least 1, not {den}",
                            start(node.b))
            if not (den - 1).provably_nonneg():
                raise error(f"the divisor of an index must be at least 1; {den} may be less",
                            start(node.b))
            if den == 1:
                return coeffs, offset, None
            return coeffs, offset, den
        coeffs, offset = self.affine(node)
        return coeffs, offset, None

    def affine(self, node: ast.Node) -> tuple[dict[int, int], Shape]:
        """An index expression -> ({var uid: coefficient}, offset)."""
        if isinstance(node, ast.Num):
            if not isinstance(node.value, int):
                raise error(f"an index must be an integer expression, not '{node.text}'",
                            node.pos)
            return {}, Shape.const(node.value)
        if isinstance(node, ast.Name):
            uid = self.uid_of(node.id)
            if uid is not None:
                return {uid: 1}, Shape.const(0)
            if self.is_symbol(node.id):
                return {}, Shape.sym(node.id)
            if self.other(node.id) is not None:
                raise error(f"'{node.id}' cannot be used in an index: indices are affine in "
                            f"index variables and shape symbols", node.pos)
            raise error(f"unknown index '{node.id}'; index variables come from the "
                        f"left-hand side or a reduction's 'for'", node.pos)
        if isinstance(node, ast.UnOp) and node.op in "+-":
            c, o = self.affine(node.a)
            return ({k: -v for k, v in c.items()}, -o) if node.op == "-" else (c, o)
        if isinstance(node, ast.BinOp) and node.op in "+-":
            return self.sum(node)
        if isinstance(node, ast.BinOp) and node.op == "*":
            return self.product(node)
        if isinstance(node, ast.BinOp) and node.op == "//":
            return {}, self.shape_part(node.a, "//") // self.shape_part(node.b, "//", True)
        if isinstance(node, ast.Call) and node.name == "min" and len(node.args) == 2:
            return {}, self.shape_part(node.args[0], "min").min(
                self.shape_part(node.args[1], "min"))
        if isinstance(node, ast.Index):
            raise error(f"a gathered index {node.name}[...] may only be added to an affine "
                        f"index, once per index (x[i, t[i] + 1]); it cannot be scaled, "
                        f"subtracted or divided", node.pos)
        if isinstance(node, ast.BinOp) and node.op == "/":
            raise error("an exact division must be the whole index: write (e) / S with "
                        "every other term inside e", node.pos)
        raise error("an index must be affine: integers, shape symbols and index variables "
                    "with + - and constant *, shape expressions with // and min, and in a "
                    "padded read one exact division (e) / S", node.pos)

    def sum(self, node: ast.BinOp) -> tuple[dict[int, int], Shape]:
        c1, o1 = self.affine(node.a)
        c2, o2 = self.affine(node.b)
        sign = 1 if node.op == "+" else -1
        out = dict(c1)
        for k, v in c2.items():
            out[k] = out.get(k, 0) + sign * v
        return {k: v for k, v in out.items() if v}, o1 + o2 if sign == 1 else o1 - o2

    def product(self, node: ast.BinOp) -> tuple[dict[int, int], Shape]:
        c1, o1 = self.affine(node.a)
        c2, o2 = self.affine(node.b)
        if c1 and c2:
            raise error("an index must be affine: a product of two index variables is not",
                        node.pos)
        (cv, ov), (cc, oc) = ((c1, o1), (c2, o2)) if c1 else ((c2, o2), (c1, o1))
        if cv and not oc.is_const:
            raise error("an index variable's coefficient must be an integer constant",
                        node.pos)
        if cv:
            k = oc.value
            return {u: v * k for u, v in cv.items() if v * k}, ov * oc
        return {}, ov * oc

    def shape_part(self, node: ast.Node, op: str, divisor: bool = False) -> Shape:
        """An operand of // or min in an index: a shape expression, free of index variables."""
        coeffs, shape = self.affine(node)
        if coeffs:
            raise error(f"'{op}' in an index applies to shape expressions only, not to index "
                        f"variables", start(node))
        if divisor and shape.is_const and shape.value == 0:
            raise error("division by zero in a shape expression", start(node))
        return shape


def split_gather(node: ast.Node) -> tuple[ast.Index | None, ast.Node]:
    """A gather in one index, `t[i] + k - 1`: (the read t[i], the affine rest k - 1 with the
    read replaced by 0), or (None, node). Only a term added at the top is a gather; any other
    read in an index is an error of `IndexReader.affine`."""
    if isinstance(node, ast.Index):
        return node, ast.Num("0", 0, node.pos)
    if isinstance(node, ast.BinOp) and node.op in "+-":
        found, rest = split_gather(node.a)
        if found is not None:
            return found, ast.BinOp(node.op, rest, node.b, node.pos)
        if node.op == "+":
            found, rest = split_gather(node.b)
            if found is not None:
                return found, ast.BinOp("+", node.a, rest, node.pos)
    return None, node


def check_gather(read: ast.Index, decl: object, outer: str) -> None:
    """The index tensor of a gather into `outer`: an integer input tensor (the launch checks
    its values before anything runs; an intermediate's values are not known then)."""
    if not isinstance(decl, ir.TensorDecl):
        return   # not a tensor: the load reports it
    if decl.dtype == DType.bool or decl.dtype.is_float:
        raise error(f"the index tensor '{read.name}' of a gather into '{outer}' must be an "
                    f"integer tensor, not {decl.dtype}, as a PyTorch index tensor", read.pos)


def gather_read(checker, read: ast.Index, outer: str, scope: dict, st, padded: bool,
                gather_in: str | None) -> ir.Load:
    """The index read of a gather `outer[..., read + e, ...]`, checked (`checker` is the
    kernel's checker; `gather_in` the tensor whose index `outer` is in, if any)."""
    if gather_in is not None:
        raise error(f"a gather's index cannot itself gather: '{read.name}' is read in an "
                    f"index of '{outer}', which is read in an index of "
                    f"'{gather_in}'; read it into a tensor of its own first", read.pos)
    if padded:
        raise error(f"a padded read cannot gather: pad({outer}, ...) takes its pad value "
                    f"outside '{outer}', but a gathered index out of range is an error",
                    read.pos)
    if read.name in checker.decls and read.name not in {p.name for p in checker.kdef.params}:
        raise error(f"the index tensor '{read.name}' of a gather into '{outer}' must be "
                    f"an input tensor; its values are checked before the launch",
                    read.pos)
    check_gather(read, checker.decls.get(read.name), outer)
    load, _ = checker.load(read, scope, st, gather_in=outer)
    assert isinstance(load, ir.Load)
    return load


def pad_value(node: ast.Padded, decl: ir.TensorDecl, value: Union[int, float, bool]) -> ir.Pad:
    """The Pad of `pad(x, v)[...]`, `x` being the tensor `decl` and `value` the constant v:
    it must be of x's kind (a number for numbers, an integer for integers, true/false for bool)."""
    where = start(node.call.args[1])
    if decl.dtype == DType.bool:
        if not isinstance(value, bool):
            raise error(f"the pad value of bool tensor '{decl.name}' must be true or false",
                        where)
    elif isinstance(value, bool):
        raise error(f"the pad value of {decl.dtype} tensor '{decl.name}' must be a number, "
                    f"not {str(value).lower()}", where)
    elif decl.dtype.is_int and not isinstance(value, int):
        raise error(f"the pad value of {decl.dtype} tensor '{decl.name}' must be an integer",
                    where)
    elif decl.dtype.is_float:
        value = float(value)
    return ir.Pad(value, decl.dims)
