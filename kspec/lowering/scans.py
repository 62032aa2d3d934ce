"""Scans in the plan: a statement `t[.., j] = scan(op, k rel j, body)` is a launch of its own,
one program per row of the other indices walking j in blocks and carrying the running value.
Its fallback (for backends without a scan pattern) is the same statement as a masked
reduction over the whole row, `op(where(k rel j, body, identity) for k)`: quadratic work, but
any loop nest computes it."""
from __future__ import annotations

import dataclasses

from .. import ir
from ..dtypes import DType


def scan_identity(op: str, dtype: DType) -> ir.Const:
    """The term that changes nothing: 0, 1, or the lowest (highest) value of the type."""
    if op == "sum":
        return ir.Const(False if dtype == DType.bool else 0.0 if dtype.is_float else 0, dtype)
    if op == "prod":
        return ir.Const(1.0 if dtype.is_float else 1, dtype)
    if dtype.is_float:
        return ir.Const(float("-inf") if op == "max" else float("inf"), dtype)
    low, high = -(2 ** (dtype.bits - 1)), 2 ** (dtype.bits - 1) - 1
    if dtype == DType.u8:
        low, high = 0, 255
    return ir.Const(low if op == "max" else high, dtype)


_CMP = {"<=": "le", "<": "lt", ">=": "ge", ">": "gt"}


def scan_as_reduce(s: ir.Scan) -> ir.Reduce:
    """The scan as a masked reduction over its whole row (the quadratic form)."""
    keep = ir.Op(_CMP[s.relation], (ir.IndexValue(s.var), ir.IndexValue(s.bound)), DType.bool)
    body = ir.Op("where", (keep, s.body, scan_identity(s.op, s.body.dtype)), s.body.dtype)
    return ir.Reduce(s.op, (s.var,), body, s.dtype)


def without_scans(e: ir.Expr) -> ir.Expr:
    """e with every scan replaced by its masked reduction."""
    if isinstance(e, ir.Scan):
        return scan_as_reduce(dataclasses.replace(e, body=without_scans(e.body)))
    if isinstance(e, ir.Op):
        return dataclasses.replace(e, args=tuple(without_scans(a) for a in e.args))
    if isinstance(e, (ir.Cast,)):
        return dataclasses.replace(e, arg=without_scans(e.arg))
    if isinstance(e, ir.Reduce):
        return dataclasses.replace(e, body=without_scans(e.body))
    return e
