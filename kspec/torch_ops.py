"""kspec kernels as PyTorch custom operators (torch.library), so that they compose with
torch.compile(fullgraph=True), torch.export and torch.library.opcheck.

    op = kspec.load("specs/softmax.kspec").softmax.op()     # kspec::softmax_1a2b3c4d
    y = op(x)                    # or torch.ops.kspec.softmax_1a2b3c4d(x)

Naming: `kspec::<kernel name>_<8 hex digits>`, the digits the start of a SHA-256 of the
kernel's printed IR, the target and the build options. Two kernels called `softmax` from
different sources get different ops; registering the same kernel again (in this process)
returns the op already registered.

Schema: tensor parameters are `Tensor`, scalar parameters `float`, `int` or `bool` by their
declared dtype (with their defaults), outputs the returned tensors in declared order.
The fake (meta) implementation allocates outputs from the spec's shape algebra: the declared
output dims evaluated with the shape symbols bound from the inputs' sizes (kspec.binding.bind,
which also runs the dtype and launch checks, so a wrong call fails while tracing too).
The real implementation is the target's `Kernel.build` launcher, one for every device type
(the launcher chooses: Triton interprets CPU tensors and compiles for CUDA tensors).

Autograd: the backward is the kernel's derived vector-Jacobian product (kspec/autodiff,
`kcompile --emit grad`), itself a kspec op of the same target. A kernel without a derivative
(integer outputs only, a transposed convolution's scatter, prod, scans) still registers: called with
inputs that require grad it raises, at the call, the reason the derivation gave.
"""
from __future__ import annotations

import hashlib
import threading
from typing import Any, Callable, Protocol

import torch

from . import ir
from .binding import bind
from .dtypes import DType
from .errors import KspecGradError
from .printer import format_kernel



class Kernel(Protocol):
    """What an op is made of: kspec.api.Kernel, named by its shape so that this module stays
    below kspec.api in the import graph (api imports it for Kernel.op)."""

    ir: ir.Kernel
    module: Any

    @property
    def name(self) -> str: ...

    def build(self, backend: str = "triton", **options: Any) -> Callable: ...

NAMESPACE = "kspec"
_OPS: dict[str, Any] = {}      # qualified name -> torch.library CustomOpDef
_LOCK = threading.RLock()   # re-entered: registering an op registers its VJP


def op_name(kernel: Kernel, target: str = "triton", **options: Any) -> str:
    """The op's name inside the kspec namespace: `<kernel>_<hash of IR, target, options>`."""
    text = "\n".join([format_kernel(kernel.ir), target, repr(sorted(options.items()))])
    return f"{kernel.name}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def schema(kernel: ir.Kernel) -> str:
    """The torch.library schema of a kernel: `(Tensor x, float eps=1e-05) -> (Tensor, Tensor)`."""
    params = ", ".join(f"Tensor {p.name}" if isinstance(p, ir.TensorDecl) else _scalar(p)
                       for p in kernel.params)
    outs = ["Tensor"] * len(kernel.outputs)
    returns = outs[0] if len(outs) == 1 else f"({', '.join(outs)})"
    return f"({params}) -> {returns}"


def _scalar(p: ir.ScalarParam) -> str:
    kind = "bool" if p.dtype == DType.bool else "int" if p.dtype.is_int else "float"
    if p.default is None:
        return f"{kind} {p.name}"
    default = repr(float(p.default)) if kind == "float" else repr(p.default)
    return f"{kind} {p.name}={default}"


def register(kernel: Kernel, target: str = "triton", *, backward: bool = True,
             **options: Any):
    """Register `kernel` as `kspec::<op_name>` (once per process) and return the op.
    backward=False: the op gets no derivative of its own (the VJP ops: no double backward)."""
    name = op_name(kernel, target, **options)
    qualname = f"{NAMESPACE}::{name}"
    with _LOCK:
        if qualname not in _OPS:
            _OPS[qualname] = _define(kernel, qualname, target, options, backward)
        return _OPS[qualname]


def _define(kernel: Kernel, qualname: str, target: str, options: dict[str, Any],
            backward: bool):
    k = kernel.ir
    launcher: list[Callable] = []    # built at the first real call: building may compile

    def run(*args: Any) -> Any:
        if not launcher:
            launcher.append(kernel.build(target, **options))
        # the launcher returns fresh tensors (custom ops must not alias their inputs)
        return launcher[0](*args)

    op = torch.library.custom_op(qualname, run, mutates_args=(), schema=schema(k))

    @op.register_fake
    def _(*args: Any) -> Any:
        b = bind(k, args, {}, check_grad=False)   # grad is the autograd layer's business
        device = next((t.device for t in b.tensors.values()), torch.device("cpu"))
        outs = tuple(torch.empty(b.output_shape(o), dtype=o.dtype.torch, device=device)
                     for o in k.outputs)
        return outs[0] if len(outs) == 1 else outs

    if backward:
        _register_backward(op, kernel, qualname, target, options)
    else:
        _refuse_backward(op, k, qualname, KspecGradError(
            "it is a derived VJP: double backward is not supported"))
    return op


def _register_backward(op: Any, kernel: Kernel, qualname: str, target: str,
                       options: dict[str, Any]) -> None:
    """The backward is the derived VJP kernel (kspec/autodiff), registered as an op of its own
    with the same target and options, so torch.compile traces it like the forward.
    setup_context saves the inputs: the VJP recomputes what it needs of the forward."""
    from .autodiff import vjp_kernel

    k = kernel.ir
    try:
        vjp = vjp_kernel(k)
    except KspecGradError as e:
        _refuse_backward(op, k, qualname, e)
        return
    # the VJP as a kernel of the forward's own class (this module sits below kspec.api)
    vjp_op = register(type(kernel)(vjp, kernel.module), target, backward=False, **options)
    names = [p.name for p in k.params]
    kept = [p.name for p in vjp.params if p.name in names]
    wrt = {p.name for p in k.tensor_params if p.dtype.is_float}

    def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
        ctx.scalars = {n: a for n, a in zip(names, inputs) if not isinstance(a, torch.Tensor)}
        ctx.tensor_names = [n for n, a in zip(names, inputs) if isinstance(a, torch.Tensor)]
        ctx.save_for_backward(*(a for a in inputs if isinstance(a, torch.Tensor)))
        outs = output if isinstance(output, tuple) else (output,)
        ctx.out_meta = [(o.shape, o.dtype, o.device) for o in outs]

    def backward(ctx: Any, *grads: Any) -> Any:
        given = dict(zip(ctx.tensor_names, ctx.saved_tensors), **ctx.scalars)
        seeds = []
        for o, g in zip(k.outputs, grads):
            if not o.dtype.is_float:
                continue
            shape, dtype, device = ctx.out_meta[k.outputs.index(o)]
            g = torch.zeros(shape, dtype=dtype, device=device) if g is None else g
            seeds.append(g.to(dtype).contiguous().reshape(shape if o.dims else (1,)))
        dxs = vjp_op(*(given[n] for n in kept), *seeds)
        dxs = iter(dxs if isinstance(dxs, tuple) else (dxs,))
        return tuple(next(dxs) if n in wrt else None for n in names)

    op.register_autograd(backward, setup_context=setup_context)


def _refuse_backward(op: Any, k: ir.Kernel, qualname: str, why: KspecGradError) -> None:
    """Autograd runs setup_context only when some input requires grad (in grad mode), right
    after the forward: raising there reports the missing derivative at the call, before any
    loss is computed from an output that looks differentiable."""
    names = [p.name for p in k.params]

    def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
        grads = [n for n, a in zip(names, inputs) if isinstance(a, torch.Tensor)
                 and a.requires_grad]
        if grads:
            raise KspecGradError(f"{qualname} has no backward ({', '.join(grads)} "
                                 f"require grad): {why.message}", why.pos)

    def backward(ctx: Any, *grads: Any) -> Any:   # unreachable: setup_context raised
        raise NotImplementedError(f"{qualname} has no backward")

    op.register_autograd(backward, setup_context=setup_context)
