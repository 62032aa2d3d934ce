"""How close a backend's output must be to the float64 reference.

Per output dtype: |got - want| <= atol + rtol * (|want| + MAG * magnitude) elementwise, with
rtol a few units of the dtype's rounding. `magnitude` is the size of the terms behind each value
(kspec/verify/magnitude.py): for a sum of products it is the sum of |terms|, which bounds the
rounding a long reduction may legitimately accumulate (a conv2d over 137k terms, attention's
probabilities times values), while an output of near-zero values produced from near-zero terms
keeps a near-zero tolerance. atol is a tiny
floor relative to the output's largest value plus FLOOR, the dtype's underflow granularity (so
tiny inputs are not failed for flushing or rounding subnormals). NaN where the reference is
finite always fails; an output that the reference overflows in the declared dtype must be that
infinity. The numbers, with worked examples: docs/VERIFY.md."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..binding import bind
from ..dtypes import DType

# relative tolerance per dtype: ~ a few ulps after f32 accumulation
RTOL = {DType.f16: 2e-3, DType.bf16: 1.6e-2, DType.f32: 2e-5, DType.f64: 1e-12}
# share of the terms' magnitude a reduction may lose to rounding, in units of rtol. Kernels with
# half-precision outputs may feed the tensor cores half-precision operands (flash attention
# rounds the probabilities to the value dtype), so each term may carry a half's rounding.
MAG = {DType.f16: 0.5, DType.bf16: 0.5, DType.f32: 0.01, DType.f64: 0.01}
# the floor relative to the output's largest finite |value|, in units of rtol
SCALE_FLOOR = 1e-2
# absolute floor: the dtype's underflow granularity. f16 stores keep subnormals (spacing
# 2^-24 = 6e-8); f32/bf16 values may be flushed to zero by GPU math (smallest normal 2^-126).
FLOOR = {DType.f16: 2.0 ** -24, DType.bf16: 2.0 ** -126, DType.f32: 2.0 ** -126,
         DType.f64: 2.0 ** -1022}


@dataclass
class Comparison:
    ok: bool
    worst: float     # max(|err| / tol)
    detail: str = ""
    index: int | None = None    # flat index of the worst element when not ok
    nonfinite: int = 0          # non-finite outputs where the reference is finite in the dtype


def magnitude(kernel, args: list) -> tuple[torch.Tensor | None, ...]:
    """Per output (None for integer ones): the magnitude of the terms behind each value
    (kspec/verify/magnitude.py)."""
    from .magnitude import magnitudes

    b = bind(kernel.ir, tuple(args), {}, strict_dtypes=False)
    mags = magnitudes(kernel.ir, b.tensors, b.scalars, b.env)
    return tuple(mags.get(o.name) for o in kernel.ir.outputs)


def tolerance(want: torch.Tensor, dtype: DType, mag: torch.Tensor | None = None
              ) -> torch.Tensor:
    """The elementwise tolerance for a float output: atol + rtol * (|want| + MAG * mag)."""
    w = want.double()
    rtol = RTOL[dtype]
    finite_w = w[torch.isfinite(w)]
    scale = finite_w.abs().max().item() if finite_w.numel() else 0.0
    atol = rtol * max(scale, 1e-30) * SCALE_FLOOR + 1e-30 + FLOOR[dtype]
    tol = atol + rtol * w.abs()
    if mag is not None:
        tol = tol + rtol * MAG[dtype] * mag.double()
    return tol


def representable(want: torch.Tensor, dtype: DType) -> torch.Tensor:
    """The reference rounded to the declared dtype: infinite where the exact value overflows."""
    if dtype == DType.f64:
        return want.double()
    return want.to(dtype.torch).double()


def compare(got: torch.Tensor, want: torch.Tensor, dtype: DType,
            mag: torch.Tensor | None = None) -> Comparison:
    if tuple(got.shape) != tuple(want.shape):
        return Comparison(False, float("inf"), f"shape {tuple(got.shape)}, expected "
                                               f"{tuple(want.shape)}")
    if not dtype.is_float:
        diff = got.to(torch.int64) != want.to(torch.int64)
        bad = int(diff.sum().item())
        if not bad:
            return Comparison(True, 0.0)
        idx = int(diff.flatten().nonzero()[0])
        return Comparison(False, float("inf"), f"{bad} elements differ; element {idx}: got "
                          f"{got.flatten()[idx].item()}, expected {want.flatten()[idx].item()}",
                          idx)
    g, w = got.double(), want.double()
    tol = tolerance(w, dtype, mag)
    err = (g - w).abs()
    rounded = representable(w, dtype)
    finite = torch.isfinite(w) & torch.isfinite(rounded)
    same_special = (~finite) & ((g == rounded) | (g == w) | (torch.isnan(g) & torch.isnan(w)))
    ratio = torch.where(finite, err / tol, torch.where(same_special, 0.0, float("inf")))
    ratio = torch.nan_to_num(ratio, nan=float("inf"))
    nonfinite = int((finite & ~torch.isfinite(g)).sum().item())
    worst = ratio.max().item() if ratio.numel() else 0.0
    if worst <= 1.0:
        return Comparison(True, worst)
    idx = int(ratio.flatten().argmax())
    what = (f"{nonfinite} non-finite outputs where the reference is finite; "
            if nonfinite else "")
    return Comparison(False, worst, f"{what}element {idx}{_where(got.shape, idx)}: got "
                      f"{g.flatten()[idx].item():.6g}, expected {w.flatten()[idx].item():.6g} "
                      f"(tolerance {tol.flatten()[idx].item():.3g})", idx, nonfinite)


def _where(shape, idx: int) -> str:
    if len(shape) <= 1:
        return ""
    coords = []
    for n in reversed(tuple(shape)):
        coords.append(idx % n)
        idx //= n
    return " " + str(tuple(reversed(coords)))
