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

Autograd: no backward exists yet. An op called with inputs that require grad (in grad mode)
raises at the call instead of returning an output cut from the graph.
"""
from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any, Callable

import torch

from . import ir
from .binding import bind, check_no_grad
from .dtypes import DType
from .printer import format_kernel

if TYPE_CHECKING:
    from .api import Kernel

NAMESPACE = "kspec"
_OPS: dict[str, Any] = {}      # qualified name -> torch.library CustomOpDef
_LOCK = threading.Lock()


def op_name(kernel: "Kernel", target: str = "triton", **options: Any) -> str:
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


def register(kernel: "Kernel", target: str = "triton", **options: Any):
    """Register `kernel` as `kspec::<op_name>` (once per process) and return the op."""
    name = op_name(kernel, target, **options)
    qualname = f"{NAMESPACE}::{name}"
    with _LOCK:
        if qualname not in _OPS:
            _OPS[qualname] = _define(kernel, qualname, target, options)
        return _OPS[qualname]


def _define(kernel: "Kernel", qualname: str, target: str, options: dict[str, Any]):
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

    _refuse_backward(op, k, qualname)
    return op


def _refuse_backward(op: Any, k: ir.Kernel, qualname: str) -> None:
    """Autograd runs setup_context only when some input requires grad (in grad mode), right
    after the forward: raising there reports the missing backward at the call, before any
    loss is computed from an output that looks differentiable."""
    names = [p.name for p in k.params]

    def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
        tensors = {n: a for n, a in zip(names, inputs) if isinstance(a, torch.Tensor)}
        with torch.enable_grad():   # autograd.Function runs this with grad mode off
            check_no_grad(k, tensors, label=qualname)

    def backward(ctx: Any, *grads: Any) -> Any:   # unreachable: setup_context raised
        raise NotImplementedError(f"{qualname} has no backward yet")

    op.register_autograd(backward, setup_context=setup_context)
