"""The vendor dialect table of the C++ family: everything that differs between CUDA and HIP.

Templates and the expression table ask the dialect for every spelling that is not plain C++
(headers, half types and their conversions, lane shuffles, the lane count, launch bounds, thread
indices, math function names). A new C-like vendor is one more `Dialect` value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Mapping

# Math functions the expression table and the helpers use: kspec name -> (float, double) names.
# CUDA and HIP both provide the C99 names in device code; a vendor that spells one differently
# overrides the entry in its dialect.
_C99_MATH: dict[str, tuple[str, str]] = {
    "exp": ("expf", "exp"), "exp2": ("exp2f", "exp2"), "log": ("logf", "log"),
    "log2": ("log2f", "log2"), "log1p": ("log1pf", "log1p"), "sqrt": ("sqrtf", "sqrt"),
    "rsqrt": ("rsqrtf", "rsqrt"), "sin": ("sinf", "sin"), "cos": ("cosf", "cos"),
    "tanh": ("tanhf", "tanh"), "erf": ("erff", "erf"), "floor": ("floorf", "floor"),
    "ceil": ("ceilf", "ceil"), "abs": ("fabsf", "fabs"), "pow": ("powf", "pow"),
    "fmod": ("fmodf", "fmod"),
}


@dataclass(frozen=True)
class Dialect:
    name: str                       # "cuda" | "hip"
    title: str                      # for the generated file's header comment
    file_ext: str                   # "cu" | "hip"
    includes: tuple[str, ...]
    warp_size: int                  # lanes per warp / wavefront for the arch in hand
    half_type: str
    bf16_type: str
    # Conversions, as format strings over {x}: storage <-> float, rounding to nearest even.
    half_to_float: str
    float_to_half: str
    bf16_to_float: str
    float_to_bf16: str
    # One lane exchange: {x} value, {mask} xor distance, {width} lanes taking part.
    shfl_xor: str
    launch_bounds: str              # {threads}
    # with a minimum of resident blocks per multiprocessor ({blocks}): 1 lets the compiler use
    # every register a thread may have (the tensor-core tiles need them)
    launch_bounds_min: str          # {threads}, {blocks}
    kernel_decl: str = 'extern "C" __global__ void'
    device_fn: str = "__device__ __forceinline__"
    restrict: str = "__restrict__"
    thread_id: str = "threadIdx.x"
    block_id: str = "blockIdx.x"
    block_dim: str = "blockDim.x"
    grid_dim: str = "gridDim.x"
    sync_threads: str = "__syncthreads()"
    shared: str = "__shared__"
    inf_float: str = "INFINITY"            # <math.h>, which both runtimes' headers include
    inf_double: str = "(double)INFINITY"
    nan_float: str = "NAN"
    nan_double: str = "(double)NAN"
    math: Mapping[str, tuple[str, str]] = field(default_factory=lambda: dict(_C99_MATH))
    # f32 intrinsics used instead of the IEEE paths (see docs/LANGUAGE.md's tolerance paragraph):
    # kspec name -> function; and f32 division, a format over {a} and {b} (None: `a / b`).
    fast_math: Mapping[str, str] = field(default_factory=lambda: {"exp": "__expf"})
    fast_div: str | None = "__fdividef({a}, {b})"
    # The matrix-instruction path of the target (contraction.py, templates/tensor_cores/):
    # "wgmma" (NVIDIA sm_90a), "mma_sync" (NVIDIA sm_80+), "mfma" (AMD CDNA, on request),
    # "emulated" (the CPU emulation: f32 contractions through the same template, one thread),
    # or None (contractions use the generic loop nest). `arch`: the target it was chosen for.
    tensor_cores: str | None = None
    arch: str | None = None

    def math_fn(self, fn: str, ctype: str) -> str:
        """The device function computing `fn` on a `ctype` ("float" or "double") value."""
        f32, f64 = self.math[fn]
        if ctype == "double":
            return f64
        return self.fast_math.get(fn, f32)

    def for_arch(self, arch: str | None) -> "Dialect":
        """The dialect specialised for one target: the lane count depends on it for AMD, the
        tensor-core path on the architecture."""
        return replace(self, warp_size=lane_count(self.name, arch),
                       tensor_cores=tensor_core_path(self.name, arch), arch=arch)

    def with_tensor_cores(self, path: str | None) -> "Dialect":
        """Another tensor-core path for this target ("none" or None: the generic loop nest);
        KspecError when the target cannot run it."""
        from ...errors import KspecError

        if path in (None, "none"):
            return replace(self, tensor_cores=None)
        available = tensor_core_paths(self.name, self.arch)
        if path not in available:
            raise KspecError(f"tensor_cores={path!r} is not available for {self.name} "
                             f"{self.arch or '(default arch)'}; available: "
                             f"{', '.join(available) or 'none'}")
        return replace(self, tensor_cores=path)


def tensor_core_path(vendor: str, arch: str | None) -> str | None:
    """NVIDIA (CUDA, and HIP source compiled by nvcc): wgmma on sm_90a (Hopper's
    architecture-specific target), mma.sync on sm_80 and later otherwise; CUDA without an arch
    means the default, sm_90. AMD MFMA is not the default: None. The CPU emulation: "emulated"."""
    if vendor == "cpu":
        return "emulated"
    if vendor == "cuda" and arch is None:
        return "mma_sync"
    m = re.match(r"(?:sm|compute)_(\d+)(a?)", arch or "")
    if vendor in ("cuda", "hip") and m and int(m.group(1)) >= 80:
        return "wgmma" if m.group(1) == "90" and m.group(2) == "a" else "mma_sync"
    return None


def tensor_core_paths(vendor: str, arch: str | None) -> tuple[str, ...]:
    """Every tensor-core path the target can run. AMD's MFMA path is generated and compiled
    for CDNA (gfx90a, gfx94x) but has not run on an AMD GPU here, so it is not the default."""
    default = tensor_core_path(vendor, arch)
    if default == "wgmma":
        return ("wgmma", "mma_sync")
    if default is not None:
        return (default,)
    if vendor == "hip" and arch and re.match(r"gfx9(0a|4[0-2])$", arch):
        return ("mfma",)
    return ()


def lane_count(vendor: str, arch: str | None) -> int:
    """Lanes per warp or wavefront. NVIDIA: always 32. AMD: 64 on GCN/CDNA (gfx9xx: MI100,
    MI200, MI300), 32 on RDNA (gfx10xx, gfx11xx, gfx12xx), which compile in wave32 by default.
    The HIP source run on NVIDIA (arch sm_*) has 32. The CPU emulation (tests) has 1."""
    if vendor == "cpu":
        return 1
    if arch is None:
        return 32 if vendor == "cuda" else 64
    if arch.startswith("sm_") or arch.startswith("compute_"):
        return 32
    m = re.match(r"gfx(\d+)", arch)
    if m and len(m.group(1)) >= 4 and m.group(1)[:2] in ("10", "11", "12"):
        return 32
    return 64


CUDA = Dialect(
    name="cuda", title="CUDA C++", file_ext="cu",
    includes=("cuda_fp16.h", "cuda_bf16.h", "stdint.h"),
    warp_size=32,
    half_type="__half", bf16_type="__nv_bfloat16",
    half_to_float="__half2float({x})", float_to_half="__float2half_rn({x})",
    bf16_to_float="__bfloat162float({x})", float_to_bf16="__float2bfloat16_rn({x})",
    shfl_xor="__shfl_xor_sync(0xffffffffu, {x}, {mask}, {width})",
    launch_bounds="__launch_bounds__({threads})",
    launch_bounds_min="__launch_bounds__({threads}, {blocks})",
)

HIP = Dialect(
    name="hip", title="HIP C++", file_ext="hip",
    includes=("hip/hip_runtime.h", "hip/hip_fp16.h", "hip/hip_bfloat16.h", "stdint.h"),
    warp_size=64,
    half_type="__half", bf16_type="hip_bfloat16",
    half_to_float="__half2float({x})", float_to_half="__float2half({x})",
    # hip_bfloat16's float constructor rounds to nearest even (and keeps NaN a NaN).
    bf16_to_float="static_cast<float>({x})", float_to_bf16="hip_bfloat16({x})",
    # HIP's shuffles take no mask; on NVIDIA the prelude maps them to the _sync forms.
    shfl_xor="__shfl_xor({x}, {mask}, {width})",
    launch_bounds="__launch_bounds__({threads})",
    launch_bounds_min="__launch_bounds__({threads}, {blocks})",
)

DIALECTS: dict[str, Dialect] = {"cuda": CUDA, "hip": HIP}
