"""Arguments matched to a kernel's signature: tensors and scalars checked against their
declarations, every shape symbol bound from the inputs' sizes, and the launch-time checks
(every backend's launcher and the reference call `bind` before anything runs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import ir
from .dtypes import DType, from_torch
from .errors import KspecLaunchError
from .printer import format_index


@dataclass
class Bound:
    """Arguments matched to a kernel's signature, with every shape symbol's value."""

    tensors: dict[str, torch.Tensor]
    scalars: dict[str, Any]
    env: dict[str, int]

    def output_shape(self, decl: ir.TensorDecl) -> tuple[int, ...]:
        return tuple(d.evaluate(self.env) for d in decl.dims)

    def is_empty(self, kernel: ir.Kernel) -> bool:
        """Some shape symbol is 0, or some input or output has no elements: launchers return
        `empty_result` instead of launching (the compiler's proofs, grids and loops assume
        every symbol is at least 1, so a launch only ever sees such sizes)."""
        return (0 in self.env.values() or any(t.numel() == 0 for t in self.tensors.values())
                or any(0 in self.output_shape(o) for o in kernel.outputs))


def bind(kernel: ir.Kernel, args: tuple, kwargs: dict, strict_dtypes: bool = True,
         check_grad: bool = True) -> Bound:
    """Match arguments to parameters, bind shape symbols and run the launch-time checks.

    Tensor parameters also take numpy arrays (their own dtype, checked like a tensor's) and
    Python sequences (the declared dtype), converted with torch.as_tensor on the CPU; scalar
    parameters take Python numbers and 0-dim tensors or arrays. All tensors must be on one
    device. check_grad: refuse inputs that require grad while grad mode is on (no backward
    exists yet; a silent requires_grad=False output would lose the gradient)."""
    params = kernel.params
    sig = ", ".join(p.name if not isinstance(p, ir.ScalarParam) or p.default is None
                    else f"{p.name}={p.default}" for p in params)
    if len(args) > len(params):
        raise KspecLaunchError(f"{kernel.name}({sig}) takes {len(params)} arguments, "
                               f"{len(args)} given")
    values: dict[str, Any] = {}
    for p, a in zip(params, args):
        values[p.name] = a
    for name, a in kwargs.items():
        if name not in {p.name for p in params}:
            raise KspecLaunchError(f"{kernel.name}({sig}) has no parameter '{name}'")
        if name in values:
            raise KspecLaunchError(f"{kernel.name}: argument '{name}' given twice")
        values[name] = a
    tensors, scalars = {}, {}
    for p in params:
        if p.name not in values:
            if isinstance(p, ir.ScalarParam) and p.default is not None:
                values[p.name] = p.default
            else:
                raise KspecLaunchError(f"{kernel.name}({sig}): missing argument '{p.name}'")
        if isinstance(p, ir.TensorDecl):
            tensors[p.name] = _tensor_arg(kernel, p, values[p.name], strict_dtypes)
        else:
            scalars[p.name] = _scalar_arg(kernel, p, values[p.name])
    _check_devices(kernel, tensors)
    if check_grad:
        check_no_grad(kernel, tensors)
    env = bind_symbols(kernel, tensors)
    for check in kernel.checks:
        if not check.holds(env):
            where = f" ({check.pos})" if check.pos else ""
            raise KspecLaunchError(f"{kernel.name}: {check.message}{where}; with "
                                   f"{_env_text(check.expr.symbols(), env)}")
    check_gathers(kernel, tensors, env)
    return Bound(tensors, scalars, env)


def _env_text(names: set[str], env: dict[str, int]) -> str:
    return ", ".join(f"{n} = {env[n]}" for n in sorted(names)) or "these sizes"


def _check_devices(kernel: ir.Kernel, tensors: dict[str, torch.Tensor]) -> None:
    """One device for every tensor, compared in full (cuda:0 and cuda:1 differ): the one
    check every backend relies on."""
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        raise KspecLaunchError(f"{kernel.name}: tensors are on several devices: "
                               f"{', '.join(f'{n} on {t.device}' for n, t in tensors.items())}")


def check_no_grad(kernel: ir.Kernel, tensors: dict[str, torch.Tensor],
                  label: str | None = None) -> None:
    """Kernels have no backward yet: refuse inputs that require grad (in grad mode) rather
    than return outputs that silently cut the autograd graph."""
    if not torch.is_grad_enabled():
        return
    names = [n for n, t in tensors.items() if t.requires_grad]
    if names:
        raise KspecLaunchError(
            f"{label or kernel.name} has no backward yet; {', '.join(names)} "
            f"require{'s' if len(names) == 1 else ''} grad. Call it under torch.no_grad() or "
            f"pass detached tensors ({names[0]}.detach())")


def _is_array_like(a: Any) -> bool:
    # numpy arrays and scalars (and other __array__ objects), lists and tuples; checked by
    # duck type so kspec does not import numpy
    return isinstance(a, (list, tuple)) or hasattr(a, "__array__")


def _tensor_arg(kernel: ir.Kernel, p: ir.TensorDecl, a: Any, strict: bool) -> torch.Tensor:
    if not isinstance(a, torch.Tensor) and _is_array_like(a):
        try:   # a sequence has no dtype of its own: it takes the declared one
            dtype = p.dtype.torch if isinstance(a, (list, tuple)) else None
            a = torch.as_tensor(a, dtype=dtype)
        except (TypeError, ValueError, RuntimeError) as e:
            raise KspecLaunchError(f"{kernel.name}: argument '{p.name}' cannot be converted to "
                                   f"a tensor ({p.dtype}[{', '.join(map(str, p.dims))}]): "
                                   f"{e}") from None
    if not isinstance(a, torch.Tensor):
        raise KspecLaunchError(f"{kernel.name}: argument '{p.name}' must be a torch tensor "
                               f"({p.dtype}[{', '.join(map(str, p.dims))}]), got "
                               f"{type(a).__name__}")
    if a.dim() != p.rank:
        raise KspecLaunchError(f"{kernel.name}: argument '{p.name}' has {a.dim()} dims; the "
                               f"kernel declares {p.rank} ({p.dtype}[{', '.join(map(str, p.dims))}])")
    if strict and from_torch(a.dtype) != p.dtype:
        raise KspecLaunchError(f"{kernel.name}: argument '{p.name}' has dtype {a.dtype}; the "
                               f"kernel declares {p.dtype} ({p.dtype.torch})")
    return a


def _scalar_arg(kernel: ir.Kernel, p: ir.ScalarParam, a: Any) -> Any:
    # 0-dim tensors, numpy scalars and 0-dim arrays give their Python value
    if (isinstance(a, torch.Tensor) or hasattr(a, "__array__")) and getattr(a, "ndim", 1) == 0:
        a = a.item()
    ok = (isinstance(a, bool) if p.dtype == DType.bool else
          isinstance(a, int) and not isinstance(a, bool) if p.dtype.is_int else
          isinstance(a, (int, float)) and not isinstance(a, bool))
    if not ok:
        raise KspecLaunchError(f"{kernel.name}: scalar '{p.name}' is {p.dtype}; got "
                               f"{type(a).__name__} {a!r}")
    return float(a) if p.dtype.is_float else a


def bind_symbols(kernel: ir.Kernel, tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    """Shape symbols from the input tensors' sizes: bare dims first, then dims linear in one
    still-unknown symbol; every dim is then checked against its declaration."""
    env: dict[str, int] = {}
    source: dict[str, str] = {}
    dims = [(p, d, i) for p in kernel.tensor_params for i, d in enumerate(p.dims)]
    progress = True
    while progress:
        progress = False
        for p, d, i in dims:
            unknown = d.symbols() - set(env)
            if len(unknown) != 1:
                continue
            (sym,) = unknown
            lin = d.linear_in(sym)
            if lin is None or lin[0] == 0:
                continue
            a, rest = lin
            size = tensors[p.name].shape[i]
            num = size - rest.evaluate(env)
            if num % a != 0:
                raise KspecLaunchError(f"{kernel.name}: '{p.name}' dim {i} is {size}, which "
                                       f"does not fit {d} for any integer {sym}")
            env[sym] = num // a
            source[sym] = f"{p.name} (dim {i})"
            if env[sym] < 0:   # 0 is a size (an empty tensor, as in PyTorch)
                raise KspecLaunchError(f"{kernel.name}: shape symbol {sym} is {env[sym]} from "
                                       f"{source[sym]}; sizes cannot be negative")
            progress = True
    for p, d, i in dims:
        want, got = d.evaluate(env), tensors[p.name].shape[i]
        if want != got:
            if len(d.symbols()) == 1 and d == ir.Shape.sym(next(iter(d.symbols()))):
                sym = next(iter(d.symbols()))
                raise KspecLaunchError(f"{kernel.name}: shape symbol {sym} is {want} from "
                                       f"{source[sym]} but {got} from {p.name} (dim {i})")
            raise KspecLaunchError(f"{kernel.name}: '{p.name}' dim {i} is {got} but {d} = "
                                   f"{want} with {_env_text(d.symbols(), env)}")
    return env


def empty_result(kernel: ir.Kernel, b: Bound):
    """The outputs of a call with a zero-size dimension, without launching: empty outputs are
    allocated; non-empty ones come from the reference (a reduction over an empty range gives
    its identity, as PyTorch does: sum 0, prod 1, mean NaN). max and min over an empty range
    have no identity: refused, as torch.amax refuses."""
    device = next((t.device for t in b.tensors.values()), torch.device("cpu"))
    _refuse_negative_ranges(kernel, b)
    shapes = [b.output_shape(o) for o in kernel.outputs]
    if all(0 in s for s in shapes):
        outs = tuple(torch.empty(s, dtype=o.dtype.torch, device=device)
                     for s, o in zip(shapes, kernel.outputs))
    else:
        _refuse_empty_max(kernel, b.env)
        from .verify.reference import evaluate

        ref = evaluate(kernel, b.tensors, b.scalars, b.env)
        outs = tuple(ref[o.name].to(device, o.dtype.torch).contiguous() for o in kernel.outputs)
    return outs[0] if len(outs) == 1 else outs


def _refuse_negative_ranges(kernel: ir.Kernel, b: Bound) -> None:
    # a derived size (N - 1, a convolution's H - K + 1) proved non-negative assuming every
    # symbol >= 1 may be negative with a symbol at 0
    sizes = [(f"{o.name} dim {i}", d) for o in kernel.outputs for i, d in enumerate(o.dims)]
    sizes += [(f"the range of {v.name} in {stmt.target}", v.extent) for stmt in kernel.body
              for e in ir.walk(stmt.value) if isinstance(e, ir.Reduce) for v in e.vars]
    sizes += [(f"the range of {v.name} in {stmt.target}", v.extent)
              for stmt in kernel.body for v in stmt.index]
    for what, d in sizes:
        if d.evaluate(b.env) < 0:
            raise KspecLaunchError(f"{kernel.name}: {what} is {d} = {d.evaluate(b.env)} with "
                                   f"{_env_text(d.symbols(), b.env)}; sizes cannot be negative")


def _refuse_empty_max(kernel: ir.Kernel, env: dict[str, int]) -> None:
    for stmt in kernel.body:
        if any(v.extent.evaluate(env) == 0 for v in stmt.index):
            continue           # an empty statement computes nothing
        for e in ir.walk(stmt.value):
            if isinstance(e, ir.Reduce) and e.op in ("max", "min", "argmax", "argmin"):
                empty = [v.name for v in e.vars if v.extent.evaluate(env) == 0]
                torch_name = e.op if e.op.startswith("arg") else "a" + e.op
                if empty:
                    raise KspecLaunchError(
                        f"{kernel.name}: {e.op}(... for {', '.join(empty)}) in {stmt.target} "
                        f"reduces over an empty range, which has no identity (torch.{torch_name} "
                        f"raises too); with {_env_text(_range_symbols(e), env)}")


def _range_symbols(e: ir.Reduce) -> set[str]:
    return set().union(*(v.extent.symbols() for v in e.vars))


def gathers_of(kernel: ir.Kernel) -> list[tuple[ir.Load, int]]:
    """Every gathered index of the kernel: (the load, the dim whose index gathers)."""
    return [(n, d) for stmt in kernel.body for n in ir.walk(stmt.value)
            if isinstance(n, ir.Load) for d, a in enumerate(n.index) if a.gather is not None]


def check_gathers(kernel: ir.Kernel, tensors: dict[str, torch.Tensor],
                  env: dict[str, int]) -> None:
    """Every value of a gather's index tensor (all of it, read or not) keeps the gathered
    index inside the dim it indexes, over the whole range of the affine rest (`t[i] + k`:
    t + 0 and t + K - 1). Negative values are errors, as in torch.gather and cross_entropy
    (plain PyTorch indexing would wrap them). One test on the tensor's device per gather."""
    for load, d in gathers_of(kernel):
        a = load.index[d]
        assert a.gather is not None
        t = tensors[a.gather.tensor]
        if t.numel() == 0 or t.is_meta:   # meta: a launch planned, not run (no values)
            continue
        size = kernel.decl(load.tensor).dims[d].evaluate(env)
        off = a.offset.evaluate(env)
        lo = off + sum(c * (v.extent.evaluate(env) - 1) for v, c in a.terms if c < 0)
        hi = off + sum(c * (v.extent.evaluate(env) - 1) for v, c in a.terms if c > 0)
        bad = (t < -lo) | (t > size - 1 - hi)
        if not bool(bad.any()):
            continue
        at = tuple(int(k) for k in bad.nonzero()[0])
        value = int(t[at])
        reach = f"{value + lo}" if lo == hi else f"{value + lo}..{value + hi}"
        where = f" ({a.pos})" if a.pos else ""
        raise KspecLaunchError(
            f"{kernel.name}: gathered index out of bounds: {load.tensor} (dim {d}, size "
            f"{size}) is indexed by {format_index(a)}, and {a.gather.tensor}[{', '.join(map(str, at))}] "
            f"= {value} puts it at {reach}; valid indices are 0..{size - 1}{where}")
