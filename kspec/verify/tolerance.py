"""How close a backend's output must be to the float64 reference.

Per output dtype: |got - want| <= atol + rtol * (|want| + MAG * magnitude) elementwise, with
rtol a few units of the dtype's rounding. `magnitude` is the size of the terms behind each value
(kspec/verify/magnitude.py): for a sum of products it is the sum of |terms|, which bounds the
rounding a long reduction may legitimately accumulate (a conv2d over 137k terms, attention's
probabilities times values), while an output of near-zero values produced from near-zero terms
keeps a near-zero tolerance. atol is a tiny
floor relative to the output's largest value. NaN where the reference is finite always fails."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..dtypes import DType

# relative tolerance per dtype: ~ a few ulps after f32 accumulation
RTOL = {DType.f16: 2e-3, DType.bf16: 1.6e-2, DType.f32: 2e-5, DType.f64: 1e-12}
# share of the terms' magnitude a reduction may lose to rounding, in units of rtol. Kernels with
# half-precision outputs may feed the tensor cores half-precision operands (flash attention
# rounds the probabilities to the value dtype), so each term may carry a half's rounding.
MAG = {DType.f16: 0.5, DType.bf16: 0.5, DType.f32: 0.01, DType.f64: 0.01}


@dataclass
class Comparison:
    ok: bool
    worst: float     # max(|err| / tol)
    detail: str = ""


def magnitude(kernel, args: list) -> tuple[torch.Tensor | None, ...]:
    """Per output (None for integer ones): the magnitude of the terms behind each value
    (kspec/verify/magnitude.py)."""
    from ..api import bind
    from .magnitude import magnitudes

    b = bind(kernel.ir, tuple(args), {}, strict_dtypes=False)
    mags = magnitudes(kernel.ir, b.tensors, b.scalars, b.env)
    return tuple(mags.get(o.name) for o in kernel.ir.outputs)


def compare(got: torch.Tensor, want: torch.Tensor, dtype: DType,
            mag: torch.Tensor | None = None) -> Comparison:
    if tuple(got.shape) != tuple(want.shape):
        return Comparison(False, float("inf"), f"shape {tuple(got.shape)}, expected "
                                               f"{tuple(want.shape)}")
    if not dtype.is_float:
        bad = (got.to(torch.int64) != want.to(torch.int64)).sum().item()
        return Comparison(bad == 0, float(bad > 0), f"{bad} elements differ" if bad else "")
    g, w = got.double(), want.double()
    rtol = RTOL[dtype]
    finite_w = w[torch.isfinite(w)]
    scale = finite_w.abs().max().item() if finite_w.numel() else 0.0
    atol = rtol * max(scale, 1e-30) * 1e-2 + 1e-30
    tol = atol + rtol * w.abs()
    if mag is not None:
        tol = tol + rtol * MAG[dtype] * mag
    err = (g - w).abs()
    finite = torch.isfinite(w)
    same_special = (~finite) & ((g == w) | (torch.isnan(g) & torch.isnan(w)))
    ratio = torch.where(finite, err / tol, torch.where(same_special, 0.0, float("inf")))
    ratio = torch.nan_to_num(ratio, nan=float("inf"))
    worst = ratio.max().item() if ratio.numel() else 0.0
    if worst <= 1.0:
        return Comparison(True, worst)
    idx = int(ratio.flatten().argmax())
    return Comparison(False, worst, f"element {idx}: got {g.flatten()[idx].item():.6g}, "
                                    f"expected {w.flatten()[idx].item():.6g}")
