"""Making a translation's kernel inputs from a KernelBench problem's own objects, and the
tensor(s) compared with the model's output.

A kernel input NAME is, in order: the `# bind: NAME = EXPR` line's EXPR (Python, evaluated
over the forward arguments by parameter name, `model`, `init`, `torch` and `F`); else the
forward argument of that name; else the model parameter or buffer whose state_dict key with
'.' replaced by '_' is NAME; else (scalars) the spec's default.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
import torch.nn.functional as F

from kb_load import Header, KernelBenchError


def forward_names(model: torch.nn.Module, count: int) -> list[str]:
    """The names of Model.forward's first `count` positional parameters."""
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) < count and not any(p.kind == p.VAR_POSITIONAL for p in
                                       inspect.signature(model.forward).parameters.values()):
        raise KernelBenchError(f"get_inputs gives {count} values; Model.forward takes "
                               f"{len(params)}")
    names = [p.name for p in params[:count]]
    return names + [f"arg{i}" for i in range(len(names), count)]


def _evaluate(expr: str, scope: dict[str, Any], what: str) -> Any:
    try:
        return eval(expr, {"__builtins__": __builtins__}, scope)
    except Exception as e:  # noqa: BLE001 - a bad expression in a header is the user's error
        raise KernelBenchError(f"{what} '{expr}': {type(e).__name__}: {e}") from None


def binder(kernel: Any, header: Header, model: torch.nn.Module,
           init: list[Any], n_inputs: int) -> Callable[[list[Any]], list[Any]]:
    """A function from get_inputs()'s list to the kernel's arguments in signature order.
    What can be decided without the inputs (names, parameters, defaults) is decided here,
    so that a translation naming an input nothing provides fails before any run."""
    names = forward_names(model, n_inputs)
    state = {key.replace(".", "_"): value for key, value in model.state_dict().items()}
    unknown = [n for n in header.binds if n not in {p.name for p in kernel.ir.params}]
    if unknown:
        raise KernelBenchError(f"'# bind:' names {', '.join(unknown)}, not an input of kernel "
                               f"{kernel.name}")
    plan: list[tuple[str, Any]] = []          # (how, what) per kernel input
    for p in kernel.ir.params:
        if p.name in header.binds:
            plan.append(("expr", header.binds[p.name]))
        elif p.name in names:
            plan.append(("arg", names.index(p.name)))
        elif p.name in state:
            plan.append(("value", state[p.name]))
        elif getattr(p, "default", None) is not None:
            plan.append(("value", p.default))
        else:
            raise KernelBenchError(
                f"kernel input '{p.name}' of {kernel.name}: no '# bind:' line, no forward "
                f"argument ({', '.join(names) or 'none'}), no model parameter or buffer "
                f"({', '.join(state) or 'none'}) and no default")

    def bind(inputs: list[Any]) -> list[Any]:
        scope = {"model": model, "init": init, "torch": torch, "F": F,
                 **dict(zip(names, inputs))}
        args = []
        for (how, what), p in zip(plan, kernel.ir.params):
            if how == "expr":
                args.append(_evaluate(what, scope, f"'# bind: {p.name}'"))
            else:
                args.append(inputs[what] if how == "arg" else what)
        return args

    return bind


def as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def result(kernel: Any, header: Header, outputs: Any, ref: Any) -> tuple[torch.Tensor, ...]:
    """What is compared with the model's output(s): the `# result:` expression over the
    kernel's outputs (by name) and `ref`, else the outputs in order, each viewed as the
    model's output of the same position when the element counts match."""
    outs = as_tuple(outputs)
    refs = as_tuple(ref)
    if header.result is not None:
        scope = {o.name: t for o, t in zip(kernel.ir.outputs, outs)}
        scope.update(ref=ref, torch=torch, F=F)
        return as_tuple(_evaluate(header.result, scope, "'# result:'"))
    viewed = []
    for out, want in zip(outs, refs):
        if isinstance(want, torch.Tensor) and out.shape != want.shape \
                and out.numel() == want.numel():
            out = out.reshape(want.shape)
        viewed.append(out)
    return tuple(viewed)
