"""The vendor-neutral half of launching a generic plan: bind arguments, allocate outputs and
temporaries, and turn every kernel's parameter list into ctypes values and a grid size.

A runtime (CUDA driver, HIP) only has to load a binary and launch a named function with a list
of ctypes values on a stream: see `Runtime`.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Protocol

import torch

from ... import ir
from ...binding import Bound, bind, empty_result, gathers_of
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
    if devices:   # bind checked that there is one
        return next(iter(devices.values()))
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


def plan_calls(plan: GenericPlan, b: Bound, device: torch.device, info: DeviceInfo,
               buffers: dict[str, torch.Tensor],
               allocations: list[tuple[str, tuple[int, ...], torch.dtype]]
               ) -> Iterator[tuple[str, int, int, Mapping[str, int], int, Any]]:
    """Every launch of a bound call, in order, as (function, grid, block, launch values,
    dynamic shared-memory bytes, the unit whose parameters it takes). Allocates the outputs,
    temporaries and each unit's scratch on `device` into `buffers`, recording them in
    `allocations`; a generator, so that a unit's scratch is allocated just before its launches
    (the launcher's order), and so that a meta device plans a call without a GPU."""
    k = plan.kernel

    def allocate(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        buffers[name] = torch.empty(shape, dtype=dtype, device=device)
        allocations.append((name, shape, dtype))

    for o in k.outputs:
        allocate(o.name, b.output_shape(o), o.dtype.torch)
    for t in plan.temporaries:
        allocate(t.name, tuple(d.evaluate(b.env) for d in t.dims),
                 TORCH_DTYPES[compute_ctype(t.dtype)])
    for unit in plan.units:
        if unit.standby:      # launched by the unit it stands in for, if at all
            continue
        # the scratch a unit needs depends on its launch choice (a split's part count)
        for name, (shape, ctype) in unit.scratch(b.env, info).items():
            allocate(name, shape, TORCH_DTYPES[ctype])
        # (function, grid, block, launch values[, dynamic shared-memory bytes[, the unit
        # whose parameters the function takes, when not this one]])
        for function, grid, block, extra, *rest in unit.launches(b.env, buffers, info):
            yield (function, grid, block, extra, rest[0] if rest else 0,
                   rest[1] if len(rest) > 1 else unit)


@dataclass
class _Prepared:
    """Everything a call's launches depend on besides the data pointers, for one signature
    (shapes, strides, dtypes, devices, 16-byte alignment of the inputs, scalar values)."""

    device: torch.device
    scalars: dict[str, Any]
    allocations: list[tuple[str, tuple[int, ...], torch.dtype]]   # outputs, temporaries, scratch
    # (function, grid, block, shared bytes, parameters: a ctypes value, or the name of the
    # buffer whose data pointer goes there)
    launches: list[tuple[str, int, int, int, list]]


class PlanLauncher:
    """A callable running a generic plan's kernels in order: `fn(*args, **kwargs)` returns the
    output tensor, or a tuple of them in declared order.

    Binding, the launch checks and every unit's launch choice depend only on the call's
    signature, so a call with the signature of an earlier one (positional arguments) reuses
    them: the host work left is allocating the outputs and launching (tens of microseconds
    matter for kernels that run in tens of microseconds). Fresh outputs and temporaries come
    from PyTorch's allocators, aligned far beyond the 16 bytes the vector variants ask for."""

    CACHE_SIZE = 64

    def __init__(self, plan: GenericPlan, runtime: Runtime, device_type: str = "cuda",
                 label: str = "", schedule: Mapping[str, Any] | None = None):
        self.schedule = dict(schedule or {})
        self.plan = plan
        self.kernel = plan.kernel
        self.runtime = runtime
        self.device_type = device_type
        self.label = label
        self._prepared: dict[tuple, _Prepared] = {}
        self._n_params = len(self.kernel.params)
        self._is_tensor = [isinstance(p, ir.TensorDecl) for p in self.kernel.params]
        self._gathers = bool(gathers_of(self.kernel))

    def _signature(self, args: tuple) -> tuple | None:
        """Tensors by layout and alignment; scalar parameters by value (a 0-dim tensor given
        for one by its dtype and value too). None: a call to bind every time (arrays or lists
        to convert, an input that requires grad: bind refuses it in grad mode)."""
        key = []
        for a, tensor in zip(args, self._is_tensor):
            if isinstance(a, torch.Tensor):
                if a.requires_grad or (not tensor and a.dim() != 0):
                    return None
                key.append((a.shape, a.stride(), a.dtype, a.device, a.data_ptr() % 16)
                           if tensor else (a.dtype, a.item()))
            elif tensor or not isinstance(a, (bool, int, float)):
                return None
            else:
                key.append((type(a), a))
        return tuple(key)

    def __call__(self, *args: Any, **kwargs: Any):
        key = None
        # defaults fill the rest; a gathering kernel binds every call (bind checks the values
        # of its index tensors)
        if not kwargs and len(args) <= self._n_params and not self._gathers:
            signature = self._signature(args)
            if signature is not None:
                key = (signature, tuple(sorted(self.schedule.items())))
                prepared = self._prepared.get(key)
                if prepared is not None:
                    return self._run(prepared, args)
        prepared, outs = self._prepare(args, kwargs)
        if key is not None and prepared is not None:
            if len(self._prepared) >= self.CACHE_SIZE:
                self._prepared.clear()
            self._prepared[key] = prepared
        return outs

    def _prepare(self, args: tuple, kwargs: dict) -> tuple[_Prepared | None, Any]:
        """Bind, check and launch one call, recording what a call of its signature repeats
        (None: a zero-size call, answered without launching)."""
        k = self.kernel
        b = bind(k, args, kwargs)
        device = _device_of(k, b, self.device_type)
        if b.is_empty(k):
            return None, empty_result(k, b)
        buffers: dict[str, torch.Tensor] = dict(b.tensors)
        allocations: list[tuple[str, tuple[int, ...], torch.dtype]] = []
        info = device_info(device, self.schedule)
        launches = []
        for function, grid, block, extra, shared, owner in plan_calls(
                self.plan, b, device, info, buffers, allocations):
            params = unit_params(owner, buffers, b, extra)
            self.runtime.launch(function, grid, block, params, device, shared)
            template = [a.ref if a.kind == "tensor" else v for a, v in zip(owner.args, params)]
            launches.append((function, grid, block, shared, template))
        outs = tuple(buffers[o.name] for o in k.outputs)
        return (_Prepared(device, b.scalars, allocations, launches),
                outs[0] if len(outs) == 1 else outs)

    def _run(self, p: _Prepared, args: tuple):
        k = self.kernel
        buffers = {param.name: a for param, a in zip(k.params, args)}
        for name, shape, dtype in p.allocations:
            buffers[name] = torch.empty(shape, dtype=dtype, device=p.device)
        for function, grid, block, shared, template in p.launches:
            params = [ctypes.c_void_p(buffers[v].data_ptr()) if isinstance(v, str) else v
                      for v in template]
            self.runtime.launch(function, grid, block, params, p.device, shared)
        outs = tuple(buffers[o.name] for o in k.outputs)
        return outs[0] if len(outs) == 1 else outs

    def __repr__(self) -> str:
        return f"<kspec {self.label} kernel {self.kernel.name}: {len(self.plan.units)} launches>"
