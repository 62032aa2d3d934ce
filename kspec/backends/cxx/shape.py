"""The launches a C++ module makes at given sizes, found without a GPU (`kcompile --target
cuda|hip --emit asm --shape M=..,N=..`).

The module holds every variant its launcher picks from, so the compile itself does not change
with the sizes; what does is the launcher's choice (32-bit `_c` or int64 indexing, single or
looped rows, fused or unfused attention, a contraction's tile, a split's part count). That
choice runs here exactly as PlanLauncher runs it (launch.plan_calls), on contiguous stand-in
tensors on the meta device (shapes and strides, no memory) and a DeviceInfo of the target's
representative device (target.py), and each launch is checked against the target's limits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from ... import ir
from ...binding import bind
from ...dtypes import DType
from ...errors import KspecError
from ..target import ARCHS, check_limits, check_shape, env_text
from .dialect import Dialect
from .launch import DeviceInfo, plan_calls
from .render import plan_for


@dataclass(frozen=True)
class PlannedLaunch:
    """One launch the launcher would make."""

    function: str
    grid: int                   # blocks, along x (the C++ launches are one-dimensional)
    block: int                  # threads per block
    shared: int                 # dynamic shared-memory bytes
    values: Mapping[str, int] = field(default_factory=dict)   # launch-time parameter values

    def describe(self) -> str:
        values = "".join(f", {k}={v}" for k, v in self.values.items())
        return (f"{self.function}: grid {self.grid}, block {self.block}, "
                f"shared {self.shared} bytes{values}")


def launches_at(kernel: ir.Kernel, dialect: Dialect, arch: str, env: dict[str, int],
                schedule: Mapping[str, Any] | None = None) -> list[PlannedLaunch]:
    """The launches the plan's launcher makes for contiguous inputs at sizes `env` on a
    device of `arch`, each checked against the target's threads, grid and shared memory."""
    check_shape(kernel, env)
    if arch not in ARCHS:   # the multiprocessor count steers choices: no guessing it
        raise KspecError(f"--shape: no representative device for arch '{arch}' (its "
                         f"multiprocessors and shared memory steer the launch choices); "
                         f"--shape knows {', '.join(ARCHS)}")
    _, _, _, multiprocessors, shared_limit = ARCHS[arch]
    plan = plan_for(kernel, dialect, arch, schedule=dict(schedule) if schedule else None)
    b = bind(kernel, tuple(_stand_in(p, env) for p in kernel.params), {})
    info = DeviceInfo(False, multiprocessors, dict(schedule or {}))
    calls = plan_calls(plan, b, torch.device("meta"), info, dict(b.tensors), [])
    launches = [PlannedLaunch(f, grid, block, shared, dict(extra))
                for f, grid, block, extra, shared, _ in calls]
    compiled = {f for u in plan.units for f in u.functions()}
    for launch in launches:
        if launch.function not in compiled:   # the runtime would fail to find it
            raise KspecError(f"{kernel.name}: the launcher picks {launch.function}, which the "
                             f"module does not define")
        check_launch(launch, arch, shared_limit)
    return launches


def check_launch(launch: PlannedLaunch, arch: str, shared_limit: int) -> None:
    """Threads per block, blocks per grid axis (C++ launches are one-dimensional) and dynamic
    shared memory within the target's limits (target.check_limits)."""
    check_limits(f"{launch.function} at {arch}", launch.block, (launch.grid,), launch.shared,
                 shared_limit, "dynamic shared memory")


def launches_text(kernel: ir.Kernel, arch: str, env: dict[str, int],
                  launches: list[PlannedLaunch]) -> str:
    """`<kernel>.<arch>.launches.txt`: a header, then one line per launch."""
    return (f"# {kernel.name} at {env_text(env)} on {arch}\n"
            + "".join(launch.describe() + "\n" for launch in launches))


def _stand_in(p: ir.TensorDecl | ir.ScalarParam, env: dict[str, int]) -> Any:
    """A contiguous meta tensor of the declared dtype and shape, or a scalar's value (its
    default, else 1: scalars do not steer launch choices)."""
    if isinstance(p, ir.TensorDecl):
        shape = tuple(d.evaluate(env) for d in p.dims)
        return torch.empty(shape, dtype=p.dtype.torch, device="meta")
    if p.default is not None:
        return p.default
    return True if p.dtype == DType.bool else 1.0 if p.dtype.is_float else 1
