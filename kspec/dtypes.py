"""Element types and PyTorch-style type promotion."""
from __future__ import annotations

import enum

import torch


class Category(enum.IntEnum):
    BOOL = 0
    INT = 1
    FLOAT = 2


class DType(enum.Enum):
    # value: (category, bits, name); the name keeps f16 and bf16 distinct members
    bool = (Category.BOOL, 8, "bool")
    u8 = (Category.INT, 8, "u8")
    i8 = (Category.INT, 8, "i8")
    i16 = (Category.INT, 16, "i16")
    i32 = (Category.INT, 32, "i32")
    i64 = (Category.INT, 64, "i64")
    f16 = (Category.FLOAT, 16, "f16")
    bf16 = (Category.FLOAT, 16, "bf16")
    f32 = (Category.FLOAT, 32, "f32")
    f64 = (Category.FLOAT, 64, "f64")

    @property
    def category(self) -> Category:
        return self.value[0]

    @property
    def bits(self) -> int:
        return self.value[1]

    @property
    def is_float(self) -> bool:
        return self.category == Category.FLOAT

    @property
    def is_int(self) -> bool:
        return self.category == Category.INT

    @property
    def is_half(self) -> bool:
        """f16 and bf16: computed in f32, rounded on store."""
        return self in (DType.f16, DType.bf16)

    @property
    def torch(self) -> torch.dtype:
        return _TORCH[self]

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__


_TORCH = {
    DType.bool: torch.bool, DType.u8: torch.uint8, DType.i8: torch.int8, DType.i16: torch.int16,
    DType.i32: torch.int32, DType.i64: torch.int64, DType.f16: torch.float16,
    DType.bf16: torch.bfloat16, DType.f32: torch.float32, DType.f64: torch.float64,
}
_FROM_TORCH = {v: k for k, v in _TORCH.items()}

DTYPES: dict[str, DType] = {d.name: d for d in DType}


def from_torch(dt: torch.dtype) -> DType | None:
    return _FROM_TORCH.get(dt)


class Level(enum.IntEnum):
    """How strongly an operand's dtype takes part in promotion, as in PyTorch.

    TENSOR: a tensor element; SCALAR: a scalar parameter (PyTorch's zero-dim tensor);
    LITERAL: a literal, shape symbol or index variable (PyTorch's Python number).
    """

    TENSOR = 0
    SCALAR = 1
    LITERAL = 2


_DEFAULT = {Category.BOOL: DType.bool, Category.INT: DType.i64, Category.FLOAT: DType.f32}


def promote_pair(a: DType, b: DType) -> DType:
    """torch.promote_types on two dtypes."""
    return from_torch(torch.promote_types(a.torch, b.torch))  # type: ignore[return-value]


def promote(operands: list[tuple[DType, Level]]) -> tuple[DType, Level]:
    """The result dtype and level of an operation on operands, following PyTorch's rules:
    the highest category wins; within it, the strongest level present decides; a literal-only
    category takes that category's default dtype (f32 for floats, i64 for integers)."""
    top = max(d.category for d, _ in operands)
    level = min(lv for d, lv in operands if d.category == top)
    members = [d for d, lv in operands if d.category == top and lv == level]
    if level == Level.LITERAL:
        result = _DEFAULT[top]
    else:
        result = members[0]
        for d in members[1:]:
            result = promote_pair(result, d)
    return result, min(lv for _, lv in operands)


def float_of(d: DType) -> DType:
    """The dtype a float-only function (exp, sqrt, /) gives for an operand of dtype d."""
    return d if d.is_float else DType.f32


def accumulator(d: DType) -> DType:
    """The dtype a sum or product accumulates in: f32 for halves, i64 for integers and bool."""
    if d.is_half:
        return DType.f32
    if d.category != Category.FLOAT:
        return DType.i64
    return d
