"""The vendor-neutral half of launching a generic plan: bind arguments, allocate outputs and
temporaries, and turn every kernel's parameter list into ctypes values and a grid size.

A runtime (CUDA driver, HIP) only has to load a binary and launch a named function with a list
of ctypes values on a stream: see `Runtime`.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import torch

from ... import ir
from ...api import Bound, bind
from ...errors import KspecLaunchError
from .ctype import CTYPES, TORCH_DTYPES, compute_ctype
from .generic import MAX_BLOCKS, GenericPlan, Unit, grid_size  # noqa: F401


class Runtime(Protocol):
    def launch(self, function: str, grid: int, block: int, params: list[ctypes._SimpleCData],
               device: torch.device, shared: int = 0) -> None: ...
    # `shared`: bytes of dynamic shared memory (the runtime raises the kernel's limit when
    # it is over the default 48 KB)


@dataclass(frozen=True)
class DeviceInfo:
    """What a unit's launch choice may depend on besides the shapes."""

    cpu: bool                        # the CPU emulation: grid = block = 1
    multiprocessors: int = 1
    schedule: Mapping[str, Any] = field(default_factory=dict)   # overrides, for tests


_SMS: dict[Any, int] = {}


def device_info(device: torch.device, schedule: Mapping[str, Any]) -> DeviceInfo:
    if device.type == "cpu":
        return DeviceInfo(True, 1, schedule)
    if device not in _SMS:
        _SMS[device] = torch.cuda.get_device_properties(device).multi_processor_count
    return DeviceInfo(False, _SMS[device], schedule)


def _device_of(kernel: ir.Kernel, b: Bound, device_type: str) -> torch.device:
    devices = {name: t.device for name, t in b.tensors.items()}
    wrong = [f"{n} on {d}" for n, d in devices.items() if d.type != device_type]
    if wrong:
        raise KspecLaunchError(f"{kernel.name}: the GPU backends take {device_type} tensors; got "
                               f"{', '.join(wrong)}")
    distinct = set(devices.values())
    if len(distinct) > 1:
        raise KspecLaunchError(f"{kernel.name}: tensors are on several devices: "
                               f"{', '.join(f'{n} on {d}' for n, d in devices.items())}")
    if distinct:
        return distinct.pop()
    if device_type == "cpu":
        return torch.device("cpu")
    return torch.device(device_type, torch.cuda.current_device())


def unit_params(unit: Unit, buffers: dict[str, torch.Tensor], b: Bound,
                extra: Mapping[str, int] | None = None) -> list[ctypes._SimpleCData]:
    """The ctypes values of one kernel's parameters, in its declared order."""
    values: list[ctypes._SimpleCData] = []
    for a in unit.args:
        if a.kind == "tensor":
            values.append(ctypes.c_void_p(buffers[a.ref].data_ptr()))
        elif a.kind == "stride":
            values.append(ctypes.c_int64(buffers[a.ref].stride(a.dim)))
        elif a.kind == "symbol":
            values.append(ctypes.c_int64(b.env[a.ref]))
        elif a.kind == "launch":    # a value the unit chose at launch (a split's part count)
            values.append(ctypes.c_int64((extra or {})[a.ref]))
        else:
            values.append(CTYPES[a.ctype](b.scalars[a.ref]))
    return values


class PlanLauncher:
    """A callable running a generic plan's kernels in order: `fn(*args, **kwargs)` returns the
    output tensor, or a tuple of them in declared order."""

    def __init__(self, plan: GenericPlan, runtime: Runtime, device_type: str = "cuda",
                 label: str = "", schedule: Mapping[str, Any] | None = None):
        self.schedule = dict(schedule or {})
        self.plan = plan
        self.kernel = plan.kernel
        self.runtime = runtime
        self.device_type = device_type
        self.label = label

    def __call__(self, *args: Any, **kwargs: Any):
        k = self.kernel
        b = bind(k, args, kwargs)
        device = _device_of(k, b, self.device_type)
        buffers: dict[str, torch.Tensor] = dict(b.tensors)
        for o in k.outputs:
            buffers[o.name] = torch.empty(b.output_shape(o), dtype=o.dtype.torch, device=device)
        for t in self.plan.temporaries:
            shape = tuple(d.evaluate(b.env) for d in t.dims)
            buffers[t.name] = torch.empty(shape, dtype=TORCH_DTYPES[compute_ctype(t.dtype)],
                                          device=device)
        info = device_info(device, self.schedule)
        for unit in self.plan.units:
            # the scratch a unit needs depends on its launch choice (a split's part count)
            for name, (shape, ctype) in unit.scratch(b.env, info).items():
                buffers[name] = torch.empty(shape, dtype=TORCH_DTYPES[ctype], device=device)
            # (function, grid, block, launch values[, dynamic shared-memory bytes])
            for function, grid, block, extra, *shared in unit.launches(b.env, buffers, info):
                self.runtime.launch(function, grid, block,
                                    unit_params(unit, buffers, b, extra), device, *shared)
        outs = tuple(buffers[o.name] for o in k.outputs)
        return outs[0] if len(outs) == 1 else outs

    def __repr__(self) -> str:
        return f"<kspec {self.label} kernel {self.kernel.name}: {len(self.plan.units)} launches>"
