"""Element types of the C++ family: how each kspec dtype is stored in memory and computed with.

Storage follows the declared dtype (a torch tensor's bytes). Computation follows KSPEC.md's
numerics: f16/bf16 compute in float, integers in int64_t (the reference evaluates integers as
int64 and only wraps on store), bool as bool. Temporaries the launcher allocates for
intermediates hold the compute type, so materialising an intermediate rounds nothing that fusing
it away would not (the reference keeps intermediates unrounded as well).
"""
from __future__ import annotations

import ctypes

import torch

from ...dtypes import DType
from .dialect import Dialect

_PLAIN_STORAGE = {
    DType.bool: "bool", DType.u8: "uint8_t", DType.i8: "int8_t", DType.i16: "int16_t",
    DType.i32: "int32_t", DType.i64: "int64_t", DType.f32: "float", DType.f64: "double",
}


def compute_dtype(d: DType) -> DType:
    if d.is_half:
        return DType.f32
    if d.is_int:
        return DType.i64
    return d


def compute_ctype(d: DType) -> str:
    """The C++ type a value of dtype d is computed in."""
    return {DType.f32: "float", DType.f64: "double", DType.i64: "int64_t",
            DType.bool: "bool"}[compute_dtype(d)]


def storage_ctype(d: DType, dialect: Dialect) -> str:
    """The C++ element type of a tensor of dtype d."""
    if d == DType.f16:
        return dialect.half_type
    if d == DType.bf16:
        return dialect.bf16_type
    return _PLAIN_STORAGE[d]


def temporary_dtype(d: DType) -> DType:
    """The dtype of the buffer the launcher allocates for an intermediate of dtype d."""
    return compute_dtype(d)


# ctypes for by-value kernel arguments (scalars, sizes, strides), by C++ compute type.
CTYPES = {"float": ctypes.c_float, "double": ctypes.c_double, "int64_t": ctypes.c_int64,
          "bool": ctypes.c_bool}

TORCH_DTYPES = {"float": torch.float32, "double": torch.float64, "int64_t": torch.int64,
                "bool": torch.bool}
