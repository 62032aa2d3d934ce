"""Launching AMD code objects on ROCm through HIP's Python bindings (the `hip-python` package,
`from hip import hip`), on PyTorch's current stream.

Not exercised on these machines (no AMD GPU here); the NVIDIA path of the HIP backend runs
through the CUDA launcher instead.
"""
from __future__ import annotations

import ctypes
from typing import Any

import torch

from ...errors import BackendUnavailable, KspecError


def unavailable_reason() -> str | None:
    if torch.version.hip is None or not torch.cuda.is_available():
        return "no AMD GPU with a ROCm build of PyTorch"
    try:
        from hip import hip  # noqa: F401
    except ImportError:
        return "HIP's Python bindings are not installed (pip install hip-python)"
    return None


def device_arch(index: int | None = None) -> str:
    """The gfx name of the device (gcnArchName is e.g. 'gfx90a:sramecc+:xnack-')."""
    name = torch.cuda.get_device_properties(index if index is not None else
                                            torch.cuda.current_device()).gcnArchName
    return name.split(":")[0]


def _check(result: Any, what: str) -> Any:
    from hip import hip

    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != hip.hipError_t.hipSuccess:
        raise KspecError(f"{what} failed: {err}")
    return rest[0] if len(rest) == 1 else rest


class HipRuntime:
    """One code object, loaded lazily on each device it is launched on."""

    def __init__(self, code_object: bytes, functions: list[str]):
        reason = unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        self.code_object = code_object
        self.function_names = functions
        self._loaded: dict[int, dict[str, Any]] = {}

    def functions(self, index: int) -> dict[str, Any]:
        from hip import hip

        if index not in self._loaded:
            with torch.cuda.device(index):
                module = _check(hip.hipModuleLoadData(self.code_object), "hipModuleLoadData")
            self._loaded[index] = {
                n: _check(hip.hipModuleGetFunction(module, n.encode()),
                          f"hipModuleGetFunction {n}") for n in self.function_names}
        return self._loaded[index]

    def launch(self, function: str, grid: int, block: int, params: list, device: torch.device,
               shared: int = 0) -> None:
        from hip import hip

        index = device.index if device.index is not None else torch.cuda.current_device()
        fn = self.functions(index)[function]
        stream = torch.cuda.current_stream(index).cuda_stream
        # As with cuLaunchKernel: an array of pointers to each parameter's value.
        pointers = (ctypes.c_void_p * len(params))(*(ctypes.addressof(p) for p in params))
        with torch.cuda.device(index):
            _check(hip.hipModuleLaunchKernel(fn, grid, 1, 1, block, 1, 1, shared, stream,
                                             ctypes.addressof(pointers), None),
                   f"hipModuleLaunchKernel {function}")
