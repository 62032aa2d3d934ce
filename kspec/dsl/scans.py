"""Semantic checks of prefix reductions (scans): `sum(x[i, k] for k <= j)` where `j` is an index
of the left-hand side. `k <= j` is inclusive, `k < j` exclusive, `k >= j` and `k > j` the same
from the end of the row; sum, prod, max and min have scan forms."""
from __future__ import annotations

from .. import ir
from ..dtypes import DType, Level, accumulator
from ..errors import KspecSemanticError
from . import ast

SCAN_OPS = ("sum", "prod", "max", "min")
RELATIONS = ("<=", "<", ">=", ">")


def is_scan(node: ast.Generator, scope: dict) -> bool:
    """A generator whose range is bounded by a free index (or written with <=, >=, >)."""
    return any(rv.relation != "<" or (isinstance(rv.bound, ast.Name) and rv.bound.id in scope
                                      and not scope[rv.bound.id].reduced)
               for rv in node.vars)


def check_scan(checker, node: ast.Generator, scope: dict, st) -> tuple[ir.Expr, Level]:
    """The typed Scan of a generator `is_scan` accepts; `checker` is the kernel's checker."""
    if len(node.vars) != 1:
        raise KspecSemanticError(f"a scan runs over one index, {len(node.vars)} given; write "
                                 f"{node.fn}(expr for k <= j)", node.vars[1].pos)
    (rv,) = node.vars
    if rv.relation not in RELATIONS:
        raise KspecSemanticError(f"'for {rv.name} {rv.relation} ...' is not a range; a scan "
                                 f"is written with <=, <, >= or >", rv.pos)
    bound = rv.bound
    if not (isinstance(bound, ast.Name) and bound.id in scope and not scope[bound.id].reduced):
        raise KspecSemanticError(f"the bound of a scan must be an index of the left-hand side "
                                 f"(for {rv.name} {rv.relation} j)", ast_start(bound))
    if node.fn not in SCAN_OPS:
        raise KspecSemanticError(f"'{node.fn}' has no scan form; scans are "
                                 f"{', '.join(SCAN_OPS)}", node.pos)
    if node.fn in ("max", "min") and rv.relation in ("<", ">"):
        raise KspecSemanticError(f"an exclusive {node.fn} scan has no value at the row's "
                                 f"{'first' if rv.relation == '<' else 'last'} element; "
                                 f"use {rv.relation}=", rv.pos)
    if rv.name in scope:
        raise KspecSemanticError(f"scan index '{rv.name}' is already an index of the "
                                 f"statement; scan over another name", rv.pos)
    checker.check_index_name(rv.name, rv.pos)
    j = scope[bound.id]
    var = checker.new_var(st, rv.name, rv.pos)
    var.reduced = True
    body, lv = checker.expr(node.body, {**scope, rv.name: var}, st)
    if any(v.uid == j.uid for v in ir.free_vars(body)):
        raise KspecSemanticError(f"the body of a scan over {rv.name} {rv.relation} {j.name} "
                                 f"cannot depend on '{j.name}'", ast_start(node.body))
    if body.dtype == DType.bool and node.fn != "sum":
        raise KspecSemanticError(f"{node.fn} of bool values; convert with i32(...)", node.pos)
    dt = body.dtype if node.fn in ("max", "min") or body.dtype.is_float \
        else accumulator(body.dtype)
    st.scans.append((var, j, rv.pos))
    return ir.Scan(node.fn, var.ir or checker.ir_var(var), rv.relation,
                   j.ir or checker.ir_var(j), body, dt), lv


def check_scan_ranges(checker, st) -> None:
    """After the statement's ranges are solved: a scan's index ranges like its bound."""
    for k, j, pos in st.scans:
        if k.extent != j.extent:
            checker.unify(k, k.extent, "its uses", j.extent, f"its bound '{j.name}'", pos)


def ast_start(node: ast.Node):
    while isinstance(node, ast.BinOp):
        node = node.a
    return node.pos
