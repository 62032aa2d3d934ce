r"""Hypothesis strategies for a kernel's arguments, drawn from its signature.

A drawn `Case` is small and printable: the shape-symbol values, one value distribution per
tensor input, the scalar parameters and an integer seed. The tensors themselves are made from
the case deterministically (`Case.arguments`), so a failing case prints as one replayable line,
and Hypothesis shrinks it over sizes (towards 1), distributions (towards "normal"), scalars
(towards their default) and the seed (towards 0) rather than over megabytes of floats.

Shape symbols are drawn from interesting values: 1, small primes, sizes just below, at and just
above powers of two and every block size the generated code's schedule names, and a few large
ones; combinations over the element budget (`max_elements` per tensor) or failing the kernel's
launch checks are rejected.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

import torch

from .. import ir
from ..dtypes import DType

# value distributions of float tensors; the first is where shrinking goes
DISTRIBUTIONS = ("normal", "uniform01", "negative_rows", "all_negative", "zeros_signed",
                 "large", "large_negative", "ascending", "tiny", "shifted", "beyond_f16")
# run once each before the search, not drawn by it: non-finite values, where the reference
# defines the result (it propagates them as IEEE arithmetic does)
SPECIAL_DISTRIBUTIONS = ("nan_inf",)
# integer inputs: small non-negative values below the smallest size (they often index or label),
# or values past both ends of that range (a label no class matches)
INT_DISTRIBUTIONS = ("in_range", "out_of_range")
# how an input tensor is laid out in memory (always inside a larger buffer with canaries)
LAYOUTS = ("contiguous", "transposed", "strided")
PRIMES = (2, 3, 5, 7, 11, 13, 17, 31, 61, 127, 251)
LARGE = (1000, 1531, 4099, 8193)
# one symbol this long (the others 1) reaches the looped path of row kernels (BLOCK_R <= 8192)
LONG = 8193
LONG_ALIGNED = 8200     # as long, a multiple of 8: the packed (vector) paths take it
# scale of the "large" and "tiny" distributions per dtype: large enough to stress overflow-prone
# code (exp, squares, long sums), small enough that the f64 reference stays meaningful
LARGE_SCALE = {DType.f16: 1e2, DType.bf16: 1e4, DType.f32: 1e4, DType.f64: 1e8}
TINY_SCALE = {DType.f16: 1e-3, DType.bf16: 1e-12, DType.f32: 1e-12, DType.f64: 1e-100}


@dataclass(frozen=True)
class Case:
    """One example: sizes, a distribution per tensor input, scalars, a seed."""

    sizes: tuple[tuple[str, int], ...]
    dists: tuple[tuple[str, str], ...] = ()
    scalars: tuple[tuple[str, Any], ...] = ()
    seed: int = 0
    layouts: tuple[tuple[str, str], ...] = ()     # input -> LAYOUTS entry (default contiguous)
    far: bool = False       # the last element of every input changed (the pair's second launch)

    @property
    def env(self) -> dict[str, int]:
        return dict(self.sizes)

    def layout(self, name: str) -> str:
        return dict(self.layouts).get(name, "contiguous")

    def arguments(self, kernel: ir.Kernel, device: str = "cpu") -> list[Any]:
        return make_arguments(kernel, self, device=device)

    def with_seed(self, seed: int) -> "Case":
        return replace(self, seed=seed)

    def replay(self) -> str:
        """A Python expression that rebuilds this case."""
        extra = (f", layouts={self.layouts!r}" if self.layouts else "") + (
            ", far=True" if self.far else "")
        return (f"Case(sizes={self.sizes!r}, dists={self.dists!r}, scalars={self.scalars!r}, "
                f"seed={self.seed}{extra})")

    def __str__(self) -> str:
        parts = [", ".join(f"{k}={v}" for k, v in self.sizes)]
        if self.dists:
            parts.append(", ".join(f"{k}:{v}" for k, v in self.dists))
        if self.scalars:
            parts.append(", ".join(f"{k}={v!r}" for k, v in self.scalars))
        parts.append(f"seed={self.seed}")
        if any(v != "contiguous" for _, v in self.layouts):
            parts.append(", ".join(f"{k}:{v}" for k, v in self.layouts if v != "contiguous"))
        if self.far:
            parts.append("last element changed")
        return "; ".join(p for p in parts if p)


def size_candidates(block_sizes: Iterable[int] = (), max_size: int = LONG) -> list[int]:
    """Interesting values of one shape symbol, smallest first."""
    values = {1, *PRIMES, *LARGE}
    for p in range(1, 13):
        values.update((2 ** p - 1, 2 ** p, 2 ** p + 1))
    for b in block_sizes:
        values.update((b - 1, b, b + 1))
    return sorted(v for v in values if 1 <= v <= max_size)


def schedule_block_sizes(source: str) -> set[int]:
    """Block sizes a generated Triton module's schedule names (integer literals that are powers
    of two in its `schedule.get(...)` defaults)."""
    sizes: set[int] = set()
    for line in source.splitlines():
        if "schedule.get(" not in line:
            continue
        for lit in re.findall(r"(?<![\w.])(\d+)(?![\w.])", line):
            v = int(lit)
            if v >= 8 and v & (v - 1) == 0:
                sizes.add(v)
    return sizes


def launch_branches(source: str) -> dict[str, dict[str, Any]]:
    """The rarer side of each launch-time choice a generated Triton module makes from the
    sizes, as schedules forcing it at any size: 64-bit index arithmetic (INDEX64), compensated
    deep contractions (COMPENSATED), looped rows (a BLOCK_R of 16 loops over any longer row),
    split rows (two programs per row: many rows, strided tiles and odd sizes, which the real
    threshold's shapes cannot afford). Small test shapes take the other side by themselves."""
    keys = re.findall(r"schedule\.get\('(\w+)\.(\w+)'", source)
    forced: dict[str, dict[str, Any]] = {}
    for label, key, value in (("64-bit indices", "INDEX64", True),
                              ("compensated", "COMPENSATED", True),
                              ("looped rows", "BLOCK_R", 16),
                              ("split rows", "SPLIT", 2)):
        schedule = {f"{n}.{k}": value for n, k in keys if k == key}
        if schedule:
            forced[label] = schedule
    return forced


def _elements_ok(kernel: ir.Kernel, env: dict[str, int], max_elements: int,
                 max_work: int | None = None) -> bool:
    if max_work is not None and math.prod(env.values()) > max_work:
        return False
    try:
        for d in (*kernel.tensor_params, *kernel.outputs):
            n = 1
            for dim in d.dims:
                v = dim.evaluate(env)
                if v < 1:
                    return False
                n *= v
            if n > max_elements:
                return False
        return all(c.holds(env) for c in kernel.checks)
    except (ZeroDivisionError, ValueError):
        return False


def valid_sizes(kernel: ir.Kernel, env: dict[str, int], max_elements: int) -> bool:
    return _elements_ok(kernel, env, max_elements)


def cases(kernel: ir.Kernel, *, block_sizes: Iterable[int] = (), max_elements: int = 4096,
          max_work: int | None = None, max_size: int | None = None,
          distributions: tuple[str, ...] = DISTRIBUTIONS):
    """The Hypothesis strategy of `Case`s for a kernel. `max_elements` bounds every tensor;
    `max_work` (default 16 x max_elements) bounds the product of all shape symbols, a proxy for
    the work of a contraction or convolution."""
    max_work = max_work or 16 * max_elements
    from hypothesis import assume, strategies as st

    cap = max_size or min(max_elements, LONG)
    candidates = size_candidates(block_sizes, cap) or [1]   # none fit: all rejected below
    float_inputs = [p.name for p in kernel.tensor_params if p.dtype.is_float]
    int_inputs = [p.name for p in kernel.tensor_params if p.dtype.is_int]
    scalar_params = list(kernel.scalar_params) if hasattr(kernel, "scalar_params") else [
        p for p in kernel.params if isinstance(p, ir.ScalarParam)]

    @st.composite
    def case(draw) -> Case:
        sizes = tuple((s, draw(st.sampled_from(candidates), label=s)) for s in kernel.symbols)
        assume(_elements_ok(kernel, dict(sizes), max_elements, max_work))
        dists = tuple((n, draw(st.sampled_from(distributions), label=n)) for n in float_inputs)
        dists += tuple((n, draw(st.sampled_from(INT_DISTRIBUTIONS), label=n))
                       for n in int_inputs)
        scalars = tuple((p.name, draw(scalar_values(p), label=p.name)) for p in scalar_params)
        seed = draw(st.integers(0, 2 ** 16 - 1), label="seed")
        layouts = tuple((p.name, draw(st.sampled_from(LAYOUTS), label=f"{p.name} layout"))
                        for p in kernel.tensor_params)
        return Case(sizes, dists, scalars, seed, layouts)

    return case()


def scalar_values(p: ir.ScalarParam):
    """A scalar parameter's useful range: its default first, then typical magnitudes."""
    from hypothesis import strategies as st

    if p.dtype == DType.bool:
        return st.booleans()
    if p.dtype.is_int:
        first = [p.default] if p.default is not None else []
        return st.sampled_from([*first, 1, 2, 3, 5, 8])
    first = [float(p.default)] if p.default is not None else [1.0]
    # eps-like defaults stay small and positive; others range over signs and magnitudes
    if p.default is not None and 0 < float(p.default) < 1e-2:
        return st.sampled_from([*first, 1e-6, 1e-3, 0.1])
    return st.one_of(st.sampled_from([*first, 0.5, -1.0, 2.0, 0.0]),
                     st.floats(-4.0, 4.0, allow_nan=False, width=32))


def make_tensor(dtype: DType, shape: tuple[int, ...], dist: str, gen: torch.Generator,
                int_high: int = 8) -> torch.Tensor:
    """A tensor of `dtype` and `shape` drawn from distribution `dist` (floats) with `gen`."""
    if dtype == DType.bool:
        return torch.rand(shape, generator=gen) < 0.5
    if not dtype.is_float:
        if dist == "out_of_range":      # below 0 (signed types) and at or past int_high
            lo = 0 if dtype == DType.u8 else -3
            return torch.randint(lo, max(1, int_high) + 4, shape, generator=gen).to(dtype.torch)
        return torch.randint(0, max(1, int_high), shape, generator=gen).to(dtype.torch)
    t = torch.randn(shape, generator=gen, dtype=torch.float64)
    if dist == "uniform01":
        t = torch.rand(shape, generator=gen, dtype=torch.float64)
    elif dist == "negative_rows" and t.dim() >= 1 and t.numel():
        rows = torch.rand(shape[0], generator=gen) < 0.5
        rows[int(torch.randint(0, shape[0], (), generator=gen))] = True
        sign = torch.where(rows, -1.0, 1.0).to(torch.float64).reshape(-1, *([1] * (t.dim() - 1)))
        t = torch.where(sign < 0, -(t.abs() + 0.25), t)
    elif dist == "all_negative":
        t = -(t.abs() + 0.25)
    elif dist == "zeros_signed":
        pick = torch.rand(shape, generator=gen)
        t = torch.where(pick < 0.25, torch.zeros_like(t),
                        torch.where(pick < 0.5, -torch.zeros_like(t), t))
    elif dist == "large":
        t = t * LARGE_SCALE.get(dtype, 1e4)
    elif dist == "large_negative":
        t = -(t.abs() + 0.25) * LARGE_SCALE.get(dtype, 1e4) / 10
    elif dist == "ascending" and t.dim() >= 1:
        # sorted along the last dim, large: the maximum sits at the end of every row
        t = torch.sort(t, dim=-1).values * LARGE_SCALE.get(dtype, 1e4)
    elif dist == "tiny":
        t = t * TINY_SCALE.get(dtype, 1e-12)
    elif dist == "shifted":         # mean far above the spread: one-pass variances cancel
        t = t + 300.0
    elif dist == "beyond_f16":      # past f16's range where the dtype has it (bf16, f32, f64)
        t = t * (1e6 if dtype in (DType.bf16, DType.f32, DType.f64) else 1.0)
    elif dist == "nan_inf" and t.numel():
        pick = torch.rand(shape, generator=gen)
        t = torch.where(pick < 0.05, float("nan"), torch.where(
            pick < 0.1, float("inf"), torch.where(pick < 0.15, float("-inf"), t)))
    return t.to(dtype.torch)


def make_arguments(kernel: ir.Kernel, case: Case, device: str = "cpu") -> list[Any]:
    """Inputs in signature order for a case. Integer tensors hold small non-negative values
    below the smallest size (they often index or label)."""
    env = case.env
    dists = dict(case.dists)
    scalars = dict(case.scalars)
    gen = torch.Generator().manual_seed(case.seed)
    int_high = max(1, min(env.values(), default=1))
    args: list[Any] = []
    for p in kernel.params:
        if isinstance(p, ir.TensorDecl):
            shape = tuple(d.evaluate(env) for d in p.dims)
            t = make_tensor(p.dtype, shape, dists.get(p.name, "normal"), gen, int_high)
            if case.far and t.numel():
                t = change_last(t, int_high)
            args.append(t.to(device))
        elif p.name in scalars:
            args.append(scalars[p.name])
        else:
            args.append(p.default if p.default is not None else _default_scalar(p.dtype))
    return args


def change_last(t: torch.Tensor, int_high: int) -> torch.Tensor:
    """`t` with its last element changed (to another valid value for integers and bools): the
    two launches of a pair differ there only, as far from the first element as it gets."""
    t = t.clone()
    flat = t.view(-1)
    if t.dtype == torch.bool:
        flat[-1] = ~flat[-1]
    elif t.dtype.is_floating_point:
        flat[-1] = flat[-1] * -2 + 1
    else:
        flat[-1] = (flat[-1] + 1) % max(2, int_high)
    return t


def _default_scalar(dtype: DType) -> Any:
    if dtype == DType.bool:
        return True
    return 1 if dtype.is_int else 1.0


def first_case(kernel: ir.Kernel, max_elements: int = 4096) -> Case | None:
    """Every symbol 1 (or the smallest valid sizes found by a short search), normal values."""
    env = {s: 1 for s in kernel.symbols}
    if not _elements_ok(kernel, env, max_elements):
        for n in range(2, 65):
            env = {s: n for s in kernel.symbols}
            if _elements_ok(kernel, env, max_elements):
                break
        else:
            return None
    return Case(tuple(env.items()),
                tuple((p.name, "normal") for p in kernel.tensor_params if p.dtype.is_float),
                (), 0)


def explicit_cases(kernel: ir.Kernel, max_elements: int = 4096) -> list[Case]:
    """One case per value distribution (every float input drawn from it, integers in and out of
    range) and per input layout, at small sizes that are not powers of two so masked tails
    exist: run before the Hypothesis search."""
    floats = [p.name for p in kernel.tensor_params if p.dtype.is_float]
    ints = [p.name for p in kernel.tensor_params if p.dtype.is_int]
    for n in (5, 7, 3, 13, 6, 2, 17, 31):
        env = {s: n for s in kernel.symbols}
        if _elements_ok(kernel, env, max_elements):
            break
    else:
        first = first_case(kernel, max_elements)
        if first is None:
            return []
        env = first.env
    sizes = tuple(env.items())
    dists = (*DISTRIBUTIONS, *SPECIAL_DISTRIBUTIONS) if floats else DISTRIBUTIONS[:1]
    out = [Case(sizes, tuple((f, d) for f in floats), (), i + 1) for i, d in enumerate(dists)]
    if ints:
        out.append(Case(sizes, tuple((f, "out_of_range") for f in ints), (), len(out) + 1))
    for layout in LAYOUTS[1:]:
        out.append(Case(sizes, (), (), len(out) + 1,
                        tuple((p.name, layout) for p in kernel.tensor_params)))
    return out


def case_bytes(kernel: ir.Kernel, env: dict[str, int]) -> int:
    """Bytes of every input and output at `env` (the gate's memory budget counts these)."""
    total = 0
    for d in (*kernel.tensor_params, *kernel.outputs):
        total += math.prod(dim.evaluate(env) for dim in d.dims) * d.dtype.torch.itemsize
    return total


# Past the row counts and widths where generated launches change course, in priority order,
# each with the values the other symbols try (the first that fits): a row kernel's looped path
# past one 8192-wide block (odd, and a multiple of 8 for 16-byte vector packs) and more than
# 4096 columns (the others small: the long symbol is the
# point), more than 1024 rows of rows wider than 64 and not a multiple of 16 (vector tails, odd
# tiles); then each threshold the module's host code names, and every symbol at once.
BOUNDARY_SIZES = ((LONG, (2, 1)), (LONG_ALIGNED, (2, 1)), (4097, (2, 1)),
                  (1025, (65, 33, 17, 5, 2, 1)))
FILLERS = (65, 33, 17, 5, 2, 1)
# the long rows' values: ascending (the maximum at the very end, past all but one block of the
# loop), normal, and large negative (exp underflows unless the loop's maximum is the row's)
LONG_DISTRIBUTIONS = {LONG: ("ascending", "normal"), LONG_ALIGNED: ("large_negative",)}


def launch_thresholds(source: str) -> set[int]:
    """Integer literals of at least 32 in a generated module's host code (its `launch`): the
    sizes where its launch-time choices change."""
    host = source[source.find("\ndef launch("):] if "\ndef launch(" in source else ""
    return {int(v) for v in re.findall(r"(?<![\w.])(\d+)(?![\w.])", host) if 32 <= int(v) < 2 ** 20}


def boundary_cases(kernel: ir.Kernel, source: str, budget_bytes: int,
                   limit: int = 12) -> list[Case]:
    """Sizes on the far side of each launch threshold, one shape symbol at a time (the others
    at the first filler that fits), then every symbol at the largest filler; taken in priority
    order while their inputs and outputs together stay within `budget_bytes` (half of it at
    most for one case, so that one size does not take it all), `limit` cases at most."""
    values: dict[int, tuple[int, ...]] = {}          # in priority order, first one wins
    for v, fillers in (*BOUNDARY_SIZES, *((t + 1, FILLERS) for t in
                                          sorted(launch_thresholds(source)))):
        values.setdefault(v, fillers)
    floats = [p.name for p in kernel.tensor_params if p.dtype.is_float]
    chosen: list[tuple[dict[str, int], str]] = []
    spent = 0

    def take(envs, dists: tuple[str, ...] = ("normal",)) -> None:
        nonlocal spent
        for env in envs:
            if len(chosen) + len(dists) > limit:
                return
            if any(env == e for e, _ in chosen) or not _elements_ok(kernel, env, 2 ** 62):
                continue
            size = case_bytes(kernel, env) * len(dists)
            if spent + size <= budget_bytes and 2 * size <= budget_bytes:
                chosen.extend((env, d) for d in dists)
                spent += size
                return

    for v, fillers in values.items():
        for s in kernel.symbols:
            take(({t: (v if t == s else f) for t in kernel.symbols} for f in fillers),
                 LONG_DISTRIBUTIONS.get(v, ("normal",)))
    take({t: f for t in kernel.symbols} for f in FILLERS)
    return [Case(tuple(e.items()), tuple((f, d) for f in floats), (), 100 + i)
            for i, (e, d) in enumerate(chosen)]


__all__ = ["Case", "cases", "make_arguments", "size_candidates", "schedule_block_sizes",
           "DISTRIBUTIONS", "first_case", "valid_sizes", "boundary_cases", "case_bytes"]
