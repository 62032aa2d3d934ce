"""Random, valid arguments for a kernel: shape-symbol values that pass the launch checks, and
tensors of the declared dtypes."""
from __future__ import annotations

import random
from typing import Any

import torch

from .. import ir
from ..dtypes import DType


def choose_sizes(kernel: ir.Kernel, rng: random.Random, low: int = 1, high: int = 16,
                 tries: int = 500) -> dict[str, int]:
    """Values for the symbols that bind from inputs, satisfying every launch check."""
    names = kernel.symbols
    for attempt in range(tries):
        # later attempts widen the range: conv-like kernels need H >= KH
        hi = high + attempt // 50 * 8
        env = {n: rng.randint(low, hi) for n in names}
        try:
            if all(_dims_ok(kernel, env)) and all(c.holds(env) for c in kernel.checks):
                return env
        except ZeroDivisionError:
            continue
    raise ValueError(f"{kernel.name}: found no sizes that pass the launch checks")


def _dims_ok(kernel: ir.Kernel, env: dict[str, int]):
    for d in (*kernel.tensor_params, *kernel.outputs):
        for dim in d.dims:
            yield dim.evaluate(env) >= 1


def make_tensor(dtype: DType, shape: tuple[int, ...], gen: torch.Generator,
                device: str = "cpu") -> torch.Tensor:
    if dtype.is_float:
        t = torch.randn(shape, generator=gen, dtype=torch.float64)
    elif dtype == DType.bool:
        t = torch.rand(shape, generator=gen) < 0.5
    elif dtype == DType.u8:
        t = torch.randint(0, 8, shape, generator=gen)
    else:
        t = torch.randint(-8, 8, shape, generator=gen)
    return t.to(dtype.torch).to(device)


def random_arguments(kernel: ir.Kernel, env: dict[str, int], seed: int,
                     device: str = "cpu") -> list[Any]:
    """Inputs in signature order. Integer tensors hold small values (they often index or label:
    a label compared with an index variable should hit sometimes)."""
    gen = torch.Generator().manual_seed(seed)
    args: list[Any] = []
    for p in kernel.params:
        if isinstance(p, ir.TensorDecl):
            shape = tuple(d.evaluate(env) for d in p.dims)
            t = make_tensor(p.dtype, shape, gen)
            if p.dtype.is_int:
                t = t.abs() % max(1, min(env.values(), default=1))
            args.append(t.to(device))
        else:
            args.append(p.default if p.default is not None else _scalar(p.dtype, gen))
    return args


def _scalar(dtype: DType, gen: torch.Generator) -> Any:
    if dtype == DType.bool:
        return bool(torch.rand((), generator=gen) < 0.5)
    if dtype.is_int:
        return int(torch.randint(1, 5, (), generator=gen))
    return float(torch.rand((), generator=gen)) + 0.5
