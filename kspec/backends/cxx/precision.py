"""The precision policy of f32 contractions in the C++ backends, carried in the schedule.

    "ieee"    the generic loop nest, IEEE f32 products and sums (the FMA path).
    "tf32x3"  the default: the tensor cores with each f32 operand split into two TF32 parts,
              a = hi + lo (hi = a rounded to TF32 like cvt.rna, lo = TF32(a - hi)), and
              lo*hi + hi*lo + hi*hi accumulated in f32 (CUTLASS's 3xTF32). Each product of
              TF32 parts is exact in f32; the tensor cores' f32 accumulation truncates, so
              each depth step's sums start from zero and are added with compensation
              (templates/tensor_cores/*_tf32.j2): about 3x an exactly rounded sum's error,
              whatever the depth, where one truncated chain drifted 4x past IEEE SGEMM.
    "tf32"    one TF32 product (hi*hi): the fastest, about 1e-3 relative error; only when
              the user asks for it (`allow_tf32=True`, as for Triton, or this key).

Schedule keys: {"precision": P} for every contraction of the kernel, {"<launch>.precision": P}
for one; `allow_tf32` makes "tf32" the default. The key is compile-time: it picks the kernel
text. f16 and bf16 operands are not affected (their tensor-core products are exact).
"""
from __future__ import annotations

from typing import Any, Mapping

from ...errors import KspecError

PRECISIONS = ("ieee", "tf32x3", "tf32")
# tf32x3 is the default: on an H200 (2026-12-02, bench/NOTES.md session 5) its error at 4096^3
# was 1.4e-7 of max|ref|, against cuBLAS IEEE SGEMM's 2.4e-6, at 0.68x SGEMM's speed, where the
# loop nest is 0.01-0.1x (paths without an f32 tensor-core variant, AMD's, keep the loop nest)
DEFAULT = "tf32x3"


def precision_for(schedule: Mapping[str, Any] | None, index: int) -> str:
    """The precision of launch `index`'s f32 contraction; KspecError for an unknown value."""
    schedule = schedule or {}
    value = schedule.get(f"{index}.precision", schedule.get("precision"))
    if value is None:
        return "tf32" if schedule.get("allow_tf32") else DEFAULT
    if value not in PRECISIONS:
        raise KspecError(f"precision={value!r} is not one of {', '.join(PRECISIONS)}")
    return value
