"""The launches a generated module makes at given sizes, found without a GPU, and compiled ahead
of time for a target (`kcompile --shape M=..,N=.. --emit asm`).

The module's own `launch` runs on stand-in tensors (shapes and strides only, on the meta
device) with a stand-in device of the target's kind and size (multiprocessors, shared memory);
each @triton.jit call is recorded instead of launched. Every choice the host code makes
(tiles, single or looped rows, INDEX64, fused or unfused attention) is therefore the one it
makes on such a GPU, and each recorded call is compiled with exactly its constexprs, argument
types (Python ints of 2^31 and more are i64, those equal to 1 compile-time constants, as the
JIT specialises them) and warps and stages.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import torch

from ... import ir
from ...errors import ToolchainError
from ..target import arch_info as _arch_info
from ..target import check_limits, check_shape


def arch_info(arch: str) -> tuple[str, Any, int, int, int]:
    return _arch_info(arch, "triton")


@dataclass
class TracedLaunch:
    """One @triton.jit call the host code made."""

    kernel: str
    grid: tuple[int, ...]
    args: dict[str, Any]                 # parameter -> stand-in tensor or Python value
    constexprs: dict[str, Any] = field(default_factory=dict)
    num_warps: int = 4
    num_stages: int = 3

    def describe(self) -> str:
        consts = " ".join(f"{k}={v}" for k, v in self.constexprs.items())
        return (f"{self.kernel}: grid {'x'.join(map(str, self.grid))}, {self.num_warps} warps, "
                f"{self.num_stages} stages, {consts}")


class _Recorder:
    """Stands in for a @triton.jit function: `fn[grid](*args, **kw)` records the call."""

    def __init__(self, name: str, params: list[str], calls: list[TracedLaunch]):
        self.name, self.params, self.calls = name, params, calls

    def __getitem__(self, grid):
        def record(*args: Any, num_warps: int = 4, num_stages: int = 3, **kw: Any) -> None:
            grid_t = tuple(int(g) for g in (grid if isinstance(grid, tuple) else (grid,)))
            self.calls.append(TracedLaunch(self.name, grid_t, dict(zip(self.params, args)),
                                           kw, num_warps, num_stages))
        return record


class _Device:
    """What the host code reads of a device: its type (and the module's own device queries,
    replaced by the target's numbers)."""

    def __init__(self, kind: str):
        self.type, self.index = kind, 0


class _Tensor:
    """A meta tensor that reports the stand-in device."""

    def __init__(self, meta: torch.Tensor, device: _Device):
        self.meta, self.device = meta, device

    def __getattr__(self, name: str) -> Any:
        return getattr(self.meta, name)


class _Torch(SimpleNamespace):
    """torch for the traced host code: allocations become stand-in tensors."""

    def __init__(self, device: _Device):
        super().__init__(device=device)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def empty(self, shape, dtype=None, device=None) -> _Tensor:
        return _Tensor(torch.empty(shape, dtype=dtype, device="meta"), self.device)


def trace_launches(kernel: ir.Kernel, module: ModuleType, params: dict[str, list[str]],
                   env: dict[str, int], arch: str) -> list[TracedLaunch]:
    """The calls `module.launch` makes for contiguous inputs at sizes `env` on `arch`."""
    backend, cc, _, sms, smem = arch_info(arch)
    check_shape(kernel, env)
    device = _Device("cuda")
    calls: list[TracedLaunch] = []
    saved = dict(vars(module))
    try:
        module.torch = _Torch(device)
        module._multiprocessors = lambda _d: sms
        module._shared_memory = lambda _d: smem
        tf32 = backend == "cuda" and cc >= 80     # the GPUs with TF32 tensor cores
        module._f32_dot_precision = lambda _d: "tf32x3" if tf32 else "ieee"
        if hasattr(module, "_depth_major"):   # its copy kernel is not recorded, its result is
            module._depth_major = lambda t, depth, cols: _Tensor(
                _depth_major_meta(t.meta, depth, cols), device)
        for name, names in params.items():
            setattr(module, name, _Recorder(name, names, calls))
        args = [_argument(kernel, p, env, device) for p in kernel.params]
        module.launch(*args, *[env[s] for s in kernel.symbols])
    finally:
        vars(module).clear()
        vars(module).update(saved)
    return calls


def _depth_major_meta(t: torch.Tensor, depth: int, cols: int) -> torch.Tensor:
    """A meta tensor shaped like t with the strides of the module's _depth_major copy."""
    order = [d for d in range(t.dim()) if d not in (depth, cols)] + [cols, depth]
    out = torch.empty([t.shape[d] for d in order], dtype=t.dtype, device="meta")
    return out.permute([order.index(d) for d in range(t.dim())])


def _argument(kernel: ir.Kernel, p, env: dict[str, int], device: _Device) -> Any:
    if isinstance(p, ir.TensorDecl):
        shape = tuple(d.evaluate(env) for d in p.dims)
        return _Tensor(torch.empty(shape, dtype=p.dtype.torch, device="meta"), device)
    return p.default if p.default is not None else (1.0 if p.dtype.is_float else 1)


def compile_traced(module: ModuleType, signatures: dict[str, dict[str, str]],
                   calls: list[TracedLaunch], arch: str) -> dict[str, Any]:
    """{kernel name (with the call's number after the first): compiled kernel} for each
    recorded call, checked against the target's threads, grid axes and shared memory."""
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    backend, target_arch, warp, _, smem = arch_info(arch)
    out: dict[str, Any] = {}
    for n, call in enumerate(calls):
        signature, constants = _specialise(signatures[call.kernel], call)
        src = ASTSource(getattr(module, call.kernel), signature, constants)
        where = f"{call.kernel} at {arch}"
        check_limits(where, call.num_warps * warp, call.grid, 0, smem)   # before compiling
        try:
            compiled = triton.compile(src, target=GPUTarget(backend, target_arch, warp),
                                      options={"num_warps": call.num_warps,
                                               "num_stages": call.num_stages})
        except Exception as e:  # the compiler's own exception types vary by version
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ToolchainError(f"triton could not compile {call.kernel} for {arch}: "
                                 f"{first}") from None
        check_limits(where, 0, (), int(getattr(compiled.metadata, "shared", 0)), smem,
                     detail=call.describe())
        out[call.kernel if call.kernel not in out else f"{call.kernel}_{n}"] = compiled
    return out


def _specialise(base: dict[str, str], call: TracedLaunch) -> tuple[dict[str, str], dict]:
    """The signature and constants the JIT would compile this call with."""
    signature = dict(base)
    constants: dict[str, Any] = {}
    for name, value in call.args.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        if value == 1:
            signature[name], constants[name] = "constexpr", 1
        elif signature.get(name) == "i32" and not -2 ** 31 <= value < 2 ** 31:
            signature[name] = "i64"
    for name, value in call.constexprs.items():
        signature[name], constants[name] = "constexpr", value
    return signature, constants
