"""Launch-time branches as data: where a generated launcher changes course with the sizes.

A backend describes each choice its host code makes from the shapes (a single or looped row
pass, a split reduction, a strided orientation, 64-bit indices ...) as a `Branch`: the values
the choice takes, for each the `Region`s of shapes (conjunctions of `Condition`s on shape
expressions, and an input layout) that reach it, and the `Sight`s that show it in the launch
records (a kernel and its constexpr). The verifier draws shapes on both sides of every
condition from this data and reports which values ran; nothing here names a backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..shapes import Shape


@dataclass(frozen=True)
class Condition:
    """`size op limit` with op '>' or '<=': one side of a threshold."""

    size: Shape
    op: str
    limit: int

    def holds(self, env: Mapping[str, int]) -> bool:
        v = self.size.evaluate(env)
        return v > self.limit if self.op == ">" else v <= self.limit

    def __str__(self) -> str:
        return f"{self.size} {self.op} {self.limit}"


@dataclass(frozen=True)
class Region:
    """Shapes where every condition holds, the inputs laid out as `layout` (contiguous,
    transposed or strided: the verifier's input layouts)."""

    conditions: tuple[Condition, ...] = ()
    layout: str = "contiguous"

    def holds(self, env: Mapping[str, int]) -> bool:
        return all(c.holds(env) for c in self.conditions)

    def __str__(self) -> str:
        text = " and ".join(str(c) for c in self.conditions) or "any size"
        return text + ("" if self.layout == "contiguous" else f", {self.layout} inputs")


@dataclass(frozen=True)
class Sight:
    """A launch record shows the value: a kernel whose name starts with `kernel` (and ends
    with `suffix`) ran, and its constexpr `flag` (when given) equals `value` or is above
    `above`."""

    kernel: str
    flag: str | None = None
    value: Any = None
    above: int | None = None
    suffix: str = ""

    def seen(self, kernel: str, constexprs: Mapping[str, Any]) -> bool:
        if not kernel.startswith(self.kernel) or not kernel.endswith(self.suffix):
            return False
        if self.flag is None:
            return True
        got = constexprs.get(self.flag)
        if self.above is not None:
            return isinstance(got, int) and got > self.above
        return got is self.value if isinstance(self.value, bool) else got == self.value


@dataclass(frozen=True)
class BranchValue:
    label: str
    regions: tuple[Region, ...]
    sights: tuple[Sight, ...]


@dataclass(frozen=True)
class Branch:
    """One launch-time choice (`name`, e.g. '0.SPLIT', the schedule key it is made under) and
    its values; `what` says what it decides, for the report."""

    name: str
    what: str
    values: tuple[BranchValue, ...] = field(default_factory=tuple)

    def seen(self, launches: list[dict[str, Any]]) -> set[str]:
        """Labels of the values that the recorded launches show."""
        return {v.label for v in self.values for r in launches for s in v.sights
                if s.seen(r.get("kernel", ""), r.get("constexprs", {}))}


__all__ = ["Branch", "BranchValue", "Condition", "Region", "Sight"]
