"""Launching cubins on NVIDIA GPUs through the CUDA driver API (cuda.bindings.driver).

The cubin is loaded with cuModuleLoadData into PyTorch's context (the device's primary context)
and kernels are launched with cuLaunchKernel on torch.cuda.current_stream(), so they order
correctly with surrounding PyTorch work. Used for CUDA source and for HIP source compiled for
NVIDIA.
"""
from __future__ import annotations

import ctypes
from typing import Any

import torch

from ...errors import BackendUnavailable, KspecError

_INIT: dict[str, Any] = {}
DEFAULT_SHARED = 48 * 1024   # dynamic shared memory a kernel may take without opting in


def unavailable_reason() -> str | None:
    """Why CUDA kernels cannot run here, or None when they can."""
    if torch.version.hip is not None:
        return f"this PyTorch ({torch.__version__}) is a ROCm build; NVIDIA GPUs are needed"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        return (f"no NVIDIA GPU is usable: torch.cuda.is_available() is False (PyTorch "
                f"{torch.__version__}, {build})")
    try:
        from cuda.bindings import driver as cu
    except ImportError:
        return "cuda-python is not installed (pip install cuda-python): the launcher uses " \
               "cuda.bindings.driver"
    if "ok" not in _INIT:
        try:
            (err,) = cu.cuInit(0)
        except Exception as e:   # the driver library itself is missing
            return f"the CUDA driver could not be loaded: {e}"
        if err != cu.CUresult.CUDA_SUCCESS:
            return f"cuInit failed: {err.name}"
        _INIT["ok"] = True
    return None


def require() -> None:
    reason = unavailable_reason()
    if reason:
        raise BackendUnavailable(reason)


def _check(result: tuple, what: str) -> Any:
    from cuda.bindings import driver as cu

    err, *rest = result
    if err != cu.CUresult.CUDA_SUCCESS:
        _, text = cu.cuGetErrorString(err)
        msg = text.decode() if isinstance(text, bytes) else str(text)
        raise KspecError(f"{what} failed: {err.name}: {msg}")
    return rest[0] if len(rest) == 1 else rest


def _use_torch_context(index: int) -> None:
    """Make the device's primary context (the one PyTorch uses) current on this thread. Called
    inside `torch.cuda.device(index)`, so PyTorch's own current device is left as it was."""
    from cuda.bindings import driver as cu

    torch.cuda.init()
    ctx = _check(cu.cuCtxGetCurrent(), "cuCtxGetCurrent")
    if ctx is not None and int(ctx) != 0:
        dev = _check(cu.cuCtxGetDevice(), "cuCtxGetDevice")
        if int(dev) == index:
            return
    dev = _check(cu.cuDeviceGet(index), "cuDeviceGet")
    primary = _check(cu.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
    _check(cu.cuCtxSetCurrent(primary), "cuCtxSetCurrent")


class CudaRuntime:
    """One cubin, loaded lazily on each device it is launched on."""

    def __init__(self, cubin: bytes, functions: list[str]):
        self.cubin = cubin
        self.function_names = functions
        self._loaded: dict[int, dict[str, Any]] = {}
        self._shared_limit: dict[tuple[int, str], int] = {}

    def functions(self, index: int) -> dict[str, Any]:
        from cuda.bindings import driver as cu

        if index not in self._loaded:
            with torch.cuda.device(index):
                _use_torch_context(index)
                module = _check(cu.cuModuleLoadData(self.cubin), "cuModuleLoadData")
            self._loaded[index] = {
                n: _check(cu.cuModuleGetFunction(module, n.encode()), f"cuModuleGetFunction {n}")
                for n in self.function_names}
        return self._loaded[index]

    def launch(self, function: str, grid: int, block: int, params: list, device: torch.device,
               shared: int = 0) -> None:
        from cuda.bindings import driver as cu

        index = device.index if device.index is not None else torch.cuda.current_device()
        fn = self.functions(index)[function]
        if shared > DEFAULT_SHARED and self._shared_limit.get((index, function), 0) < shared:
            attribute = cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            _check(cu.cuFuncSetAttribute(fn, attribute, shared), f"cuFuncSetAttribute {function}")
            self._shared_limit[(index, function)] = shared
        # cuLaunchKernel copies each parameter from the address in this array at launch time.
        pointers = (ctypes.c_void_p * len(params))(*(ctypes.addressof(p) for p in params))
        with torch.cuda.device(index):
            _use_torch_context(index)
            stream = cu.CUstream(torch.cuda.current_stream(index).cuda_stream)
            _check(cu.cuLaunchKernel(fn, grid, 1, 1, block, 1, 1, shared, stream,
                                     ctypes.addressof(pointers), 0), f"cuLaunchKernel {function}")
