"""Shapes on both sides of every launch-time threshold a backend names (kspec.lowering.branches),
within a memory budget, and the report of which branch values the launches took.

For each value of each branch, the cheapest shape of one of its regions: one shape symbol
moved to just past each condition's limit (the others at a small filler), so a threshold
`size > t` is met at t + 1; and the shape one step back (size = t), the other side. A value no
shape reaches within the budget is named in the report with the memory it would need.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..lowering.branches import Branch, Region
from .strategies import Case, case_bytes, valid_sizes

FILLERS = (1, 2, 5, 17, 65)
MAX_SIZE = 2 ** 40
# the values of a case past a rare side's threshold: ascending rows (the maximum in the last
# block or slice) and large negative ones (exp underflows unless the right maximum is used);
# a maximum of exactly 0 (zeros_signed) shows in the forced branches' small cases
FAR_DISTRIBUTIONS = ("ascending", "large_negative")


@dataclass
class Drawn:
    """The branch cases (in the order to run them) and the values no case within the budget
    reaches, each with why."""

    cases: list[Case] = field(default_factory=list)
    unreached: dict[str, str] = field(default_factory=dict)   # "branch=value" -> reason
    spent: int = 0


def _solve(region: Region, env: dict[str, int], s: str) -> tuple[int, int] | None:
    """(lo, hi): the values of symbol `s` (the others as in env) where every condition of the
    region holds, each condition's size taken as non-decreasing in `s`."""
    lo, hi = 1, MAX_SIZE
    for c in region.conditions:
        if s not in c.size.symbols():
            if not c.holds(env):
                return None
            continue
        # the first v where `size > limit` (bisection over v in [1, MAX_SIZE])
        a, b = 1, MAX_SIZE
        if c.size.evaluate({**env, s: b}) <= c.limit:
            first = MAX_SIZE + 1
        else:
            while a < b:
                m = (a + b) // 2
                a, b = (m + 1, b) if c.size.evaluate({**env, s: m}) <= c.limit else (a, m)
            first = a
        lo, hi = (max(lo, first), hi) if c.op == ">" else (lo, min(hi, first - 1))
    return (lo, hi) if lo <= hi else None


def _bytes(kernel: ir.Kernel, env: dict[str, int], layout: str) -> int:
    """Inputs and outputs; strided inputs take twice their elements."""
    total = case_bytes(kernel, env)
    if layout == "strided":
        total += sum(math.prod(d.evaluate(env) for d in p.dims) * p.dtype.torch.itemsize
                     for p in kernel.tensor_params)
    return total


def reach(kernel: ir.Kernel, region: Region) -> tuple[dict[str, int], dict[str, int] | None
                                                     ] | None:
    """The cheapest shape in `region` (one symbol just past its limits, the others a filler)
    and the shape one step back on that symbol (None when it is already 1), or None."""
    best: tuple[int, dict[str, int], dict[str, int] | None] | None = None
    for s in kernel.symbols:
        for f in FILLERS:
            env = {t: f for t in kernel.symbols}
            span = _solve(region, env, s)
            if span is None:
                continue
            for v in range(span[0], min(span[1], span[0] + 8) + 1):
                far = {**env, s: v}
                if valid_sizes(kernel, far, 2 ** 62) and region.holds(far):
                    break
            else:
                continue
            cost = _bytes(kernel, far, region.layout)
            if best is None or cost < best[0]:
                near = {**far, s: v - 1} if v > 1 and valid_sizes(
                    kernel, {**far, s: v - 1}, 2 ** 62) else None
                best = (cost, far, near)
    return None if best is None else best[1:]


def branch_cases(kernel: ir.Kernel, branches: list[Branch], budget_bytes: int,
                 seed: int = 300) -> Drawn:
    """Cases past each branch value's thresholds (FAR_DISTRIBUTIONS), then the shapes one step
    back (normal values), while their bytes stay within `budget_bytes` (half of it at most for
    one case)."""
    out = Drawn()
    floats = [p.name for p in kernel.tensor_params if p.dtype.is_float]
    near: list[tuple[dict[str, int], str]] = []
    seen: set[tuple] = set()

    def add(env: dict[str, int], layout: str, dists: tuple[str, ...]) -> bool:
        key = (tuple(env.items()), layout)
        if key in seen:
            return True
        size = _bytes(kernel, env, layout) * len(dists)
        if out.spent + size > budget_bytes or 2 * size > budget_bytes:
            return False
        seen.add(key)
        out.spent += size
        layouts = tuple((p.name, layout) for p in kernel.tensor_params) if layout != \
            "contiguous" else ()
        for d in dists:
            out.cases.append(Case(tuple(env.items()), tuple((f, d) for f in floats), (),
                                  seed + len(out.cases), layouts))
        return True

    for b in branches:
        for value in b.values:
            needed: list[int] = []
            for region in value.regions:
                past = any(c.op == ">" for c in region.conditions)
                if not past and region.layout == "contiguous":
                    break           # small shapes take it: the ordinary cases cover it
                found = reach(kernel, region)
                if found is None:
                    continue
                far, back = found
                # both value sets when they fit, else the large negative ones alone
                options = (FAR_DISTRIBUTIONS, FAR_DISTRIBUTIONS[1:]) if past else (("normal",),)
                if any(add(far, region.layout, dists) for dists in options):
                    if back is not None:
                        near.append((back, region.layout))
                    break
                needed.append(_bytes(kernel, far, region.layout))
            else:
                why = (f"needs {min(needed) / 2 ** 20:.3g} MiB, more than the budget of "
                       f"{budget_bytes / 2 ** 20:.3g} MiB leaves it (one case takes half at "
                       f"most)" if needed else "no shape reaches it")
                out.unreached[f"{b.name}={value.label}"] = (
                    f"{' or '.join(str(r) for r in value.regions)}: {why}")
    for env, layout in near:
        add(env, layout, ("normal",))
    return out


def coverage(branches: list[Branch], records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Branch name -> the labels of its values that the recorded launches took (records as
    SearchResult.records: each case's launches as runner.branches_of strings)."""
    launches = [_parse(b) for r in records for b in r.get("launches", [])]
    return {b.name: [v.label for v in b.values if v.label in b.seen(launches)]
            for b in branches}


def _parse(text: str) -> dict[str, Any]:
    """'softmax_0_rows SINGLE=False SPLIT=2' -> {'kernel': ..., 'constexprs': {...}}."""
    kernel, *flags = text.split()
    values: dict[str, Any] = {}
    for f in flags:
        k, _, v = f.partition("=")
        values[k] = v == "True" if v in ("True", "False") else int(v) if v.isdigit() else v
    return {"kernel": kernel, "constexprs": values}


def report_line(branches: list[Branch], seen: dict[str, list[str]],
                unreached: dict[str, str]) -> str:
    """'launch branches: 0.SPLIT rows, split; ...; not reached: INDEX64=64-bit (...)' ."""
    parts = [f"{b.name} {', '.join(seen.get(b.name, [])) or 'none'}" for b in branches]
    missing = [f"{b.name}={v.label}" for b in branches for v in b.values
               if v.label not in seen.get(b.name, [])]
    notes = [f"{m} ({unreached[m]})" if m in unreached else f"{m} (not seen)" for m in missing]
    return "launch branches: " + "; ".join(parts) + ("; not reached: " + "; ".join(notes)
                                               if notes else "")


__all__ = ["Drawn", "branch_cases", "coverage", "reach", "report_line"]
