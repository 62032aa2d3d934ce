"""Pieces shared by the Triton code writers: the kernel record, dtype tables, shape helpers."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...dtypes import DType
from ...shapes import Shape
from .expressions import shape_code


@dataclass
class JitKernel:
    name: str
    params: list[str]
    body: list[str]
    comment: str
    signature: dict[str, str] = field(default_factory=dict)   # for ahead-of-time compiles
    samples: dict[str, object] = field(default_factory=dict)  # constexpr values to compile with


def torch_dtype(d: DType) -> str:
    return "torch." + str(d.torch).split(".")[1]


def product(shapes: list[Shape]) -> Shape:
    out = Shape.const(1)
    for s in shapes:
        out = out * s
    return out


def extent_code(vars_) -> str:
    """The flattened size of several indices, as a product of their extents (not expanded)."""
    codes = [shape_code(v.extent) for v in vars_]
    return codes[0] if len(codes) == 1 else "(" + " * ".join(codes) + ")"


def tuple_code(items: list[str]) -> str:
    """A Python tuple display of the codes."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


IDENTITY = {"sum": "0", "mean": "0", "prod": "1"}

TRITON_SIG = {DType.bool: "i1", DType.u8: "u8", DType.i8: "i8", DType.i16: "i16",
               DType.i32: "i32", DType.i64: "i64", DType.f16: "fp16", DType.bf16: "bf16",
               DType.f32: "fp32", DType.f64: "fp64"}

# Representative schedules for compiling without a launch (kcompile --emit asm).
SAMPLES: dict[str, dict[str, object]] = {
    "pointwise": {"BLOCK_P": 2, "BLOCK_I": 1024, "INDEX64": False},
    "rows": {"BLOCK_P": 1, "BLOCK_R": 4096, "SINGLE": True, "STRIDED": False, "INDEX64": False},
    "loop_nest": {"BLOCK_P": 32, "BLOCK_R": 128, "INDEX64": False},
    "scan": {"BLOCK_P": 2, "BLOCK_J": 1024, "INDEX64": False},
    "contraction": {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8,
                    "PRECISION": "ieee", "INTERPRETED": False, "INDEX64": False,
                    "SPLIT_K": 1, "COMPENSATED": False, "WINDOW": True},
    "matvec": {"BLOCK_M": 8, "BLOCK_N": 1, "BLOCK_K": 512, "SPLIT_K": 1, "INDEX64": False},
    "splitk_sum": {"BLOCK_M": 32, "BLOCK_N": 32, "SPLIT_K": 4, "INDEX64": False},
    "attention": {"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_D": 64, "BLOCK_DV": 64,
                  "PRECISION": "ieee", "INTERPRETED": False, "EVEN_N": False, "INDEX64": False},
}
