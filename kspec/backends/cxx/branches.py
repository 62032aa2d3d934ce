"""The C++ launch's size-dependent choices as data (kspec.lowering.branches), for the gate.

Described: a convolution's depth order (contraction.py's `walk_window`: the window one offset
per depth step from half a step of channels, else flattened; the kernels' names show it,
`_window` or not). Not yet described: the tile (by the multiprocessors its tiles fill), split-K
(from splitk.SPLIT_DEPTH), the copies' alignment, the rows patterns' variants; nor the
window where the compiled tiles' depth steps differ (the threshold then follows the tile).
"""
from __future__ import annotations

from ...lowering.branches import Branch, BranchValue, Condition, Region, Sight
from ...lowering.plan import window_min_channels
from ...shapes import Shape
from .splitk import SPLIT_DEPTH


def _product(extents) -> Shape:
    total = Shape.const(1)
    for e in extents:
        total = total * e
    return total


def plan_branches(plan) -> list[Branch]:
    """The branches of a generic plan's units (render.plan_for)."""
    out: list[Branch] = []
    for unit in plan.units:
        window = unit.data.get("window") if getattr(unit, "pattern", "") == "contraction" \
            else None
        if not window:
            continue
        steps = {c["tile"].bk for c in unit.data["configs"] if not c["split"]}
        if len(steps) != 1:
            continue
        c = unit.launch.contraction
        _, channels = c.window_split()
        ch = _product(v.extent for v in channels)
        depth = _product(v.extent for v in c.kv)
        least = window_min_channels(steps.pop())
        # split-K (deep contractions) always walks the depth flattened
        direct = Condition(depth, "<=", SPLIT_DEPTH - 1)
        out.append(Branch(f"{unit.index}.window", "the window one offset at a time, or the "
                          "depth flat", (
            BranchValue("flat", (Region((Condition(ch, "<=", least - 1),)),),
                        (Sight(unit.name, suffix="safe"), Sight(unit.name, suffix="async"))),
            BranchValue("window", (Region((direct, Condition(ch, ">", least - 1))),),
                        (Sight(unit.name, suffix="_window"),)))))
    return out


__all__ = ["plan_branches"]
