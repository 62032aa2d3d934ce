"""The magnitude of the terms behind each output value: the scale its rounding error lives on.

A kernel is rewritten so that, next to every statement `t = e`, a statement `t__mag = |e|_terms`
computes how large the terms were that produced each value: sums and products of magnitudes
through + - * / and reductions; through a function f of bounded slope (tanh, GELU, clamp, ...)
|f(a)| plus, for each computed argument, |df/da| times the argument's magnitude (its rounding,
carried to first order: a conv whose sum nearly cancels keeps its terms' scale through tanh or
GELU, where |f(a)| alone had failed correct f32 kernels); arguments read straight from the
inputs are exact and carry nothing; through every other function, |f(a)|. Softmax
probabilities stay the real probabilities; a dot product's magnitude is the sum of |a_k b_k|.
The derivatives are autodiff's rules; the rewritten kernel runs through the ordinary float64
reference.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from .. import ir
from ..autodiff.rules import adjoints
from ..dtypes import DType
from ..ops import OPS
from .reference import evaluate

F64 = DType.f64
# functions whose slope is at most ~1.2 in size: a computed argument's magnitude goes through
# them scaled by the slope. exp, log, pow and the roots keep |f(a)|: their relative rounding
# is already covered by rtol * |f(a)| (softmax logits up to ~300 in f32), while the slope would
# lend a bf16 attention's output its logits' scale, a tolerance 13x wider than its own terms'
BOUNDED_SLOPE = frozenset({"tanh", "sigmoid", "erf", "gelu", "gelu_tanh", "silu", "softplus",
                           "sin", "cos", "relu", "abs", "clamp", "maximum", "minimum"})


def _abs(e: ir.Expr) -> ir.Expr:
    if e.dtype == DType.bool:
        return ir.Cast(e, F64)
    return ir.Op("abs", (ir.Cast(e, F64) if e.dtype != F64 else e,), F64)


def _float64(e: ir.Expr) -> ir.Expr:
    """An expression built by autodiff's rules (placeholder f32 nodes), typed for the float64
    reference: comparisons give bools, other built nodes f64."""
    if isinstance(e, ir.Const) and e.dtype.is_float:
        return ir.Const(e.value, F64)
    if isinstance(e, ir.Op):
        args = tuple(_float64(a) for a in e.args)
        if not e.dtype.is_float:
            return dataclasses.replace(e, args=args)
        cmp = OPS[e.op].rule in ("cmp", "logic")
        return ir.Op(e.op, args, DType.bool if cmp else F64)
    return e


class _Rewriter:
    def __init__(self, inputs: set[str]):
        self.inputs = inputs

    def mag(self, e: ir.Expr) -> ir.Expr:
        if not e.dtype.is_float:
            return _abs(e)
        if isinstance(e, ir.Load) and e.tensor not in self.inputs:
            # a padded read's pad value is exact: it adds no magnitude
            pad = e.pad and ir.Pad(0.0, e.pad.dims)
            return ir.Load(e.tensor + "__mag", e.index, F64, pad)
        if isinstance(e, ir.ScalarRef) and e.name not in self.inputs:
            return ir.ScalarRef(e.name + "__mag", F64)
        if isinstance(e, ir.Cast):
            return self.mag(e.arg)
        if isinstance(e, ir.Const):
            # an infinite literal (attention's -inf mask) is exact: as a scale it would turn
            # every magnitude it meets into inf, or NaN where a derivative is 0
            return ir.Const(abs(float(e.value)) if math.isfinite(e.value) else 0.0, F64)
        if isinstance(e, ir.Reduce) and e.op in ("sum", "mean", "max", "min"):
            op = e.op if e.op in ("sum", "mean") else "max"
            return ir.Reduce(op, e.vars, self.mag(e.body), F64)
        if isinstance(e, ir.Scan) and e.op in ("sum", "max", "min"):
            op = "sum" if e.op == "sum" else "max"
            return dataclasses.replace(e, op=op, body=self.mag(e.body), dtype=F64)
        if isinstance(e, ir.Op):
            a = e.args
            if e.op in ("add", "sub"):
                return ir.Op("add", (self.mag(a[0]), self.mag(a[1])), F64)
            if e.op == "mul":
                return ir.Op("mul", (self.mag(a[0]), self.mag(a[1])), F64)
            if e.op == "div":
                return ir.Op("div", (self.mag(a[0]), _abs(a[1])), F64)
            if e.op == "neg":
                return self.mag(a[0])
            if e.op == "where":
                return ir.Op("where", (a[0], self.mag(a[1]), self.mag(a[2])), F64)
            if e.op in BOUNDED_SLOPE:
                return self.through(e)
        return _abs(e)

    def exact(self, e: ir.Expr) -> bool:
        """A value that carries no rounding: a literal (negated or not), or an input read as
        it is."""
        while (isinstance(e, ir.Cast) and e.arg.dtype.is_float) or (
                isinstance(e, ir.Op) and e.op == "neg"):
            e = e.arg if isinstance(e, ir.Cast) else e.args[0]
        if isinstance(e, ir.Load):
            return e.tensor in self.inputs
        if isinstance(e, ir.ScalarRef):
            return e.name in self.inputs
        return isinstance(e, (ir.Const, ir.IndexValue, ir.ShapeValue))

    def through(self, e: ir.Op) -> ir.Expr:
        """|f(a, ...)| + sum over computed arguments a_i of |df/da_i| * mag(a_i)."""
        total = _abs(e)
        for i, a in enumerate(e.args):
            if not a.dtype.is_float or self.exact(a):
                continue
            # the adjoint of a_i given z's adjoint g is g * df/da_i for these elementwise
            # functions: with g = mag(a_i) it is the forward sensitivity
            d = adjoints(e, self.mag(a))[i]
            if d is not None:
                total = ir.Op("add", (total, ir.Op("abs", (_float64(d),), F64)), F64)
        return total


def magnitude_kernel(kernel: ir.Kernel) -> ir.Kernel:
    """The kernel with a `__mag` twin after every statement; outputs are the float outputs'
    magnitudes."""
    inputs = {p.name for p in kernel.params}
    rw = _Rewriter(inputs)
    body: list[ir.Assign] = []
    for stmt in kernel.body:
        body.append(stmt)
        if stmt.value.dtype.is_float:
            body.append(dataclasses.replace(stmt, target=stmt.target + "__mag",
                                            value=rw.mag(stmt.value)))
    outputs = tuple(ir.TensorDecl(o.name + "__mag", F64, o.dims) for o in kernel.outputs
                    if o.dtype.is_float)
    return dataclasses.replace(kernel, outputs=outputs, body=tuple(body))


def magnitudes(kernel: ir.Kernel, tensors, scalars, env) -> dict[str, torch.Tensor]:
    """{output name: magnitude tensor} for the float outputs."""
    out = evaluate(magnitude_kernel(kernel), tensors, scalars, env)
    return {name[:-len("__mag")]: torch.nan_to_num(t, nan=0.0, posinf=0.0)
            for name, t in out.items()}
