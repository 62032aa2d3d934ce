"""The reference interpreter: evaluates typed IR in float64 (integers exactly, as int64) on the
device of its tensor arguments (CPU when there are none).

It defines the expected result of every kernel. It is vectorised: an expression evaluates to a
torch tensor whose dims are named by index variables; operators broadcast by name, tensor
accesses gather with affine index tensors, and a sum of products becomes one einsum (so a
convolution is a single contraction, not a loop).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import torch

from .. import ir
from ..dtypes import DType

Value = tuple[torch.Tensor, tuple[ir.IndexVar, ...]]

_SQRT2 = math.sqrt(2.0)
_GELU_TANH_C = math.sqrt(2.0 / math.pi)

# op -> implementation on aligned torch tensors (already in the compute dtype).
REFERENCE_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul,
    "div": lambda a, b: a.double() / b.double(),
    "mod": torch.remainder,
    "pow": lambda a, b: _pow(a, b),
    "neg": torch.neg,
    "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge, "eq": torch.eq, "ne": torch.ne,
    "and": torch.logical_and, "or": torch.logical_or, "not": torch.logical_not,
    "where": torch.where,
    "maximum": torch.maximum, "minimum": torch.minimum,
    "clamp": lambda x, lo, hi: torch.minimum(torch.maximum(x, lo), hi),
    "exp": torch.exp, "exp2": torch.exp2, "log": torch.log, "log2": torch.log2,
    "log1p": torch.log1p, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt, "sin": torch.sin,
    "cos": torch.cos, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "erf": torch.erf,
    "gelu": lambda x: 0.5 * x * (1.0 + torch.erf(x / _SQRT2)),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + torch.tanh(_GELU_TANH_C * (x + 0.044715 * x ** 3))),
    "silu": lambda x: x * torch.sigmoid(x),
    "softplus": lambda x: torch.logaddexp(x, torch.zeros_like(x)),
    "abs": torch.abs, "relu": lambda x: torch.clamp_min(x, 0),
    "floor": lambda x: torch.floor(x) if x.is_floating_point() else x,
    "ceil": lambda x: torch.ceil(x) if x.is_floating_point() else x,
}


def _pow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point() or b.is_floating_point():
        return torch.pow(a.double(), b.double())
    # Integer powers: exact for non-negative exponents; negative ones follow C's truncation.
    out = torch.pow(a.double(), b.double())
    return torch.trunc(out).to(torch.int64)


def compute_dtype(d: DType) -> torch.dtype:
    """The dtype the reference holds values of dtype d in."""
    if d.is_float:
        return torch.float64
    if d.is_int:
        return torch.int64
    return torch.bool


def cast_exact(t: torch.Tensor, d: DType) -> torch.Tensor:
    """Convert to dtype d as a store does (round to nearest even, truncate toward zero), then
    back to the compute dtype, so the value carries exactly the rounding of the cast."""
    if d.is_float:
        return t.to(d.torch).to(torch.float64)
    if d.is_int:
        if t.is_floating_point():
            t = torch.trunc(t)
        return t.to(torch.int64).to(d.torch).to(torch.int64)  # wraps like a C narrowing cast
    return t != 0


def align(value: Value, order: tuple[ir.IndexVar, ...]) -> torch.Tensor:
    """Permute value's dims into `order` (a superset of its vars), with size-1 dims elsewhere."""
    t, vars_ = value
    if vars_ == order:
        return t
    perm = sorted(range(len(vars_)), key=lambda d: order.index(vars_[d]))
    t = t.permute(perm) if perm != list(range(len(vars_))) else t
    present = {v: i for i, v in enumerate(sorted(vars_, key=order.index))}
    shape = [t.shape[present[v]] if v in present else 1 for v in order]
    return t.reshape(shape)


def union(*var_lists: tuple[ir.IndexVar, ...]) -> tuple[ir.IndexVar, ...]:
    out: list[ir.IndexVar] = []
    for vs in var_lists:
        out.extend(v for v in vs if v not in out)
    return tuple(out)


class Interpreter:
    """Evaluates one kernel. `tensors` maps input names to tensors, `scalars` scalar params to
    Python numbers, `env` shape symbols to ints."""

    def __init__(self, kernel: ir.Kernel, env: Mapping[str, int], keep_grad: bool = False):
        self.kernel = kernel
        self.keep_grad = keep_grad   # inputs stay in the autograd graph (the derivative's truth)
        self.env = dict(env)
        self.values: dict[str, torch.Tensor] = {}
        self.device = torch.device("cpu")

    def extent(self, v: ir.IndexVar) -> int:
        return v.extent.evaluate(self.env)

    def run(self, tensors: Mapping[str, torch.Tensor], scalars: Mapping[str, object]
            ) -> dict[str, torch.Tensor]:
        k = self.kernel
        # where the inputs are (a GPU's float64 is fast enough for large checks); every
        # tensor the interpreter creates goes there too
        self.device = next((tensors[p.name].device for p in k.tensor_params),
                           torch.device("cpu"))
        for p in k.tensor_params:
            t = tensors[p.name] if self.keep_grad else tensors[p.name].detach()
            self.values[p.name] = t.to(self.device, compute_dtype(p.dtype))
        for p in k.scalar_params:
            self.values[p.name] = self.tensor(scalars[p.name], compute_dtype(p.dtype))
        integral_outputs = {o.name: o.dtype for o in k.outputs if not o.dtype.is_float}
        for stmt in k.body:
            value = self.eval(stmt.value)
            t = align(value, stmt.index) if stmt.index else value[0].reshape(())
            if stmt.index:
                t = t.expand([self.extent(v) for v in stmt.index])
            t = t.to(compute_dtype(stmt.value.dtype))
            if stmt.target in integral_outputs:  # later statements read the stored value
                t = cast_exact(t, integral_outputs[stmt.target])
            self.values[stmt.target] = t.contiguous()
        out = {}
        for o in k.outputs:
            t = self.values[o.name]
            out[o.name] = t.to(torch.float64) if o.dtype.is_float else cast_exact(t, o.dtype).to(
                o.dtype.torch)
        return out

    def tensor(self, value: object, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(value, dtype=dtype, device=self.device)

    def arange(self, v: ir.IndexVar) -> torch.Tensor:
        return torch.arange(self.extent(v), dtype=torch.int64, device=self.device)

    # --- expressions -----------------------------------------------------------------------
    def eval(self, e: ir.Expr) -> Value:
        if isinstance(e, ir.Const):
            return self.tensor(e.value, compute_dtype(e.dtype)), ()
        if isinstance(e, ir.ShapeValue):
            return self.tensor(e.shape.evaluate(self.env), torch.int64), ()
        if isinstance(e, ir.ScalarRef):
            return self.values[e.name], ()
        if isinstance(e, ir.IndexValue):
            return self.arange(e.var), (e.var,)
        if isinstance(e, ir.Load):
            return self.load(e)
        if isinstance(e, ir.Cast):
            t, vs = self.eval(e.arg)
            return cast_exact(t, e.dtype), vs
        if isinstance(e, ir.Reduce):
            return self.reduce(e)
        if isinstance(e, ir.Scan):
            return self.scan(e)
        assert isinstance(e, ir.Op)
        return self.op(e)

    def op(self, e: ir.Op) -> Value:
        args = [self.eval(a) for a in e.args]
        order = union(*(vs for _, vs in args))
        tensors = [align(a, order) for a in args]
        if e.op == "where":
            c, a, b = tensors
            dt = compute_dtype(e.dtype)
            return torch.where(c, a.to(dt), b.to(dt)), order
        if e.op not in ("and", "or", "not"):
            # Operands meet in one compute dtype: f64 if any is float, else int64.
            floaty = any(t.is_floating_point() for t in tensors)
            dt = torch.float64 if floaty or e.dtype.is_float else torch.int64
            if not all(t.dtype == torch.bool for t in tensors) or e.op not in ("eq", "ne"):
                tensors = [t.to(dt) for t in tensors]
        return REFERENCE_OPS[e.op](*tensors), order

    def load(self, e: ir.Load) -> Value:
        base = self.values[e.tensor]
        bare = [a.bare for a in e.index]
        if e.pad is not None:
            return self.padded_load(e, base)
        if all(bare) and len(set(bare)) == len(bare):
            # a `for k < E` index may cover only the start of the dim it indexes
            for d, v in enumerate(bare):
                if self.extent(v) != base.shape[d]:
                    base = base.narrow(d, 0, self.extent(v))
            return base, tuple(bare)  # type: ignore[arg-type]
        vars_ = union(*(tuple(a.vars()) for a in e.index))
        idx = []
        for d, a in enumerate(e.index):
            shape = [1] * len(vars_)
            t = self.tensor(a.offset.evaluate(self.env), torch.int64).reshape(shape)
            for v, c in a.terms:
                s = list(shape)
                s[vars_.index(v)] = self.extent(v)
                t = t + c * self.arange(v).reshape(s)
            if a.gather is not None:   # bind() has checked the index tensor's values
                t = t + align(self.load(a.gather), vars_)
                # (meta tensors, as bench/large.py's dry run traces, have no values to test)
                assert t.device.type == "meta" or bool(((t >= 0) & (t < base.shape[d])).all()), \
                    "gather out of bounds"
            idx.append(t)
        if not vars_:
            return base[tuple(int(t) for t in idx)], ()
        out = base[tuple(idx)]
        full = [self.extent(v) for v in vars_]
        return out.expand(full), vars_

    def padded_load(self, e: ir.Load, base: torch.Tensor) -> Value:
        """pad(x, v)[...]: x where every index is inside x (and every division exact), else v."""
        assert e.pad is not None
        vars_ = union(*(tuple(a.vars()) for a in e.index))
        full = [self.extent(v) for v in vars_]
        valid = torch.ones(full, dtype=torch.bool, device=self.device)
        idx = []
        for d, a in enumerate(e.index):
            t = self.tensor(a.offset.evaluate(self.env), torch.int64).reshape([1] * len(vars_))
            for v, c in a.terms:
                s = [1] * len(vars_)
                s[vars_.index(v)] = self.extent(v)
                t = t + c * self.arange(v).reshape(s)
            if a.div is not None:
                den = a.div.evaluate(self.env)
                valid = valid & (t % den == 0)
                t = torch.div(t, den, rounding_mode="floor")
            valid = valid & (t >= 0) & (t < base.shape[d])
            idx.append(t.clamp(0, base.shape[d] - 1).expand(full))
        out = base[tuple(idx)] if idx else base
        pad = self.tensor(e.pad.value, base.dtype)
        return torch.where(valid, out, pad), vars_

    def reduce(self, e: ir.Reduce) -> Value:
        if e.op in ("sum", "mean") and e.dtype.is_float:
            factors = _product_factors(e.body)
            if len(factors) > 1:
                return self.contract(e, factors)
        t, vs = self.eval(e.body)
        order = union(vs, e.vars)
        t = align((t, vs), order)
        # A reduced index the body does not depend on still counts its range.
        t = t.expand([self.extent(v) if v in e.vars else t.shape[i]
                      for i, v in enumerate(order)])
        dims = [order.index(v) for v in e.vars]
        keep = tuple(v for v in order if v not in e.vars)
        if e.op in ("sum", "mean"):
            t = t.to(torch.float64 if e.dtype.is_float else torch.int64)
            r = t.sum(dim=dims)
            if e.op == "mean":
                r = r.double() / math.prod(self.extent(v) for v in e.vars)
        elif e.op == "prod":
            t = t.to(torch.float64 if e.dtype.is_float else torch.int64)
            r = _prod_over(t, dims)
        elif e.op in ("argmax", "argmin"):
            # float64 keeps PyTorch's rules: the first extreme index, NaN as the extreme
            t = t.to(torch.float64) if t.is_floating_point() else t
            r = t.argmax(dim=dims[0]) if e.op == "argmax" else t.argmin(dim=dims[0])
        else:
            r = t.amax(dim=dims) if e.op == "max" else t.amin(dim=dims)
        return r, keep

    def scan(self, e: ir.Scan) -> Value:
        """torch.cumsum / cumprod / cummax / cummin along the scanned index, flipped for
        `>=`; an exclusive scan is the inclusive one shifted by one, the identity first.
        The result is indexed by the bound (which ranges like the scanned index)."""
        t, vs = self.eval(e.body)
        order = union(vs, (e.var,))
        t = align((t, vs), order)
        t = t.expand([self.extent(v) if v == e.var else t.shape[i]
                      for i, v in enumerate(order)])
        d = order.index(e.var)
        if e.op in ("sum", "prod"):
            t = t.to(torch.float64 if e.dtype.is_float else torch.int64)
        elif t.is_floating_point():
            t = t.to(torch.float64)
        if e.reverse:
            t = t.flip(d)
        if e.op == "sum":
            r = t.cumsum(d)
        elif e.op == "prod":
            r = t.cumprod(d)
        else:
            r = (t.cummax(d) if e.op == "max" else t.cummin(d)).values
        if e.exclusive:
            first = torch.zeros_like(r.narrow(d, 0, 1)) + (1 if e.op == "prod" else 0)
            r = torch.cat([first, r.narrow(d, 0, r.shape[d] - 1)], d)
        if e.reverse:
            r = r.flip(d)
        return r, tuple(e.bound if v == e.var else v for v in order)

    def contract(self, e: ir.Reduce, factors: list[ir.Expr]) -> Value:
        values = [self.eval(f) for f in factors]
        all_vars = union(*(vs for _, vs in values))
        keep = tuple(v for v in all_vars if v not in e.vars)
        letters = {v: chr(ord("a") + i) if i < 26 else chr(ord("A") + i - 26)
                   for i, v in enumerate(all_vars)}
        operands, specs = [], []
        for t, vs in values:
            operands.append(t.to(torch.float64).expand(
                [self.extent(v) for v in vs]) if vs else t.to(torch.float64))
            specs.append("".join(letters[v] for v in vs))
        equation = ",".join(specs) + "->" + "".join(letters[v] for v in keep)
        r = _einsum_in_parts(equation, operands, [vs for _, vs in values],
                             [v for v in e.vars if v in all_vars], self.extent)
        # Reduced indices no factor depends on multiply the sum by their range.
        missing = [v for v in e.vars if v not in all_vars]
        scale = math.prod(self.extent(v) for v in missing)
        if e.op == "mean":
            scale /= math.prod(self.extent(v) for v in e.vars)
        return (r * scale if scale != 1 else r), keep


def _prod_over(t: torch.Tensor, dims: list[int]) -> torch.Tensor:
    for d in sorted(dims, reverse=True):
        t = t.prod(dim=d)
    return t


def _product_factors(e: ir.Expr) -> list[ir.Expr]:
    """The factors of a product tree of float multiplications (a*b*c -> [a, b, c])."""
    if isinstance(e, ir.Op) and e.op == "mul" and e.dtype.is_float:
        return _product_factors(e.args[0]) + _product_factors(e.args[1])
    return [e]


def evaluate(kernel: ir.Kernel, tensors: Mapping[str, torch.Tensor],
             scalars: Mapping[str, object], env: Mapping[str, int],
             keep_grad: bool = False) -> dict[str, torch.Tensor]:
    """Run the reference on bound arguments; returns {output name: tensor}. Float outputs are
    float64 (the exact value before rounding to the declared dtype); integer and bool outputs
    have the declared dtype. keep_grad: float outputs stay differentiable in the tensors
    given (torch.autograd through the interpreter is the truth for derived gradients)."""
    return Interpreter(kernel, env, keep_grad).run(tensors, scalars)


def _einsum_in_parts(equation: str, operands: list[torch.Tensor], operand_vars: list,
                     reduced: list, extent) -> torch.Tensor:
    """torch.einsum, in slices of the longest reduced index when the contraction reaches 2^31
    terms: BLAS takes 32-bit sizes (cuBLAS refused a 2^31-deep float64 product)."""
    depth = math.prod(extent(v) for v in reduced)
    if depth < 2 ** 31 or not reduced:
        return torch.einsum(equation, *operands)
    v = max(reduced, key=extent)
    parts = -(-depth // 2 ** 30)
    step = -(-extent(v) // parts)
    total = None
    for start in range(0, extent(v), step):
        length = min(step, extent(v) - start)
        sliced = [t.narrow(vs.index(v), start, length) if v in vs else t
                  for t, vs in zip(operands, operand_vars)]
        r = torch.einsum(equation, *sliced)
        total = r if total is None else total + r
    return total
