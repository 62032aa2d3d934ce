"""tanh against float64 over |x| from 1e-30 to 100, both signs, 0 and the specials, on Triton
(interpreter; compiled for sm_90) and on the C++ emulation. Triton's _tanh was
(1 - e) / (1 + e) with e = exp(-2|x|), which cancels below |x| ~ 0.5: tanh(-1.6e-6) came out
-9.2e-7 (KernelBench's Conv3d + Mish + tanh)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import kspec
from kspec.backends import get_backend
from kspec.backends.cxx import emulate

SOURCE = """
kernel tanh32(x: f32[N]) -> y: f32[N] {
    y[i] = tanh(x[i])
}
kernel tanh64(x: f64[N]) -> y: f64[N] {
    y[i] = tanh(x[i])
}
kernel gelu_tanh32(x: f32[N]) -> y: f32[N] {
    y[i] = gelu_tanh(x[i])
}
"""
MODULE = kspec.loads(SOURCE)
MAGNITUDES = np.concatenate([np.logspace(-30, 2, 1500), np.linspace(0.5, 0.6, 101)])
VALUES = np.concatenate([MAGNITUDES, -MAGNITUDES, [0.0, 1e-45, 30.0, 44.5, 89.0]])


def ulps(got: torch.Tensor, want: np.ndarray, dtype: torch.dtype) -> float:
    """Largest error in units of the last place of the correctly rounded value."""
    rounded = torch.from_numpy(want).to(dtype)
    spacing = np.spacing(np.abs(rounded.numpy())).astype(np.float64)
    return float(np.max(np.abs(got.double().numpy() - want) / spacing))


def builds() -> list:
    cases = [pytest.param("triton", id="triton")]
    if emulate.compiler() is not None:
        cases.append(pytest.param("c++", id="c++ emulation"))
    return cases


def build(name: str, backend: str):
    k = MODULE[name]
    return k.build("triton") if backend == "triton" else emulate.build(k.ir)


@pytest.mark.parametrize("backend", builds())
@pytest.mark.parametrize("name,dtype,limit", [("tanh32", torch.float32, 2.0),
                                              ("tanh64", torch.float64, 2.0)])
def test_tanh_is_within_ulps_of_float64(backend: str, name: str, dtype, limit: float) -> None:
    x = torch.tensor(VALUES, dtype=dtype)
    want = np.tanh(x.double().numpy())
    got = build(name, backend)(x)
    assert ulps(got, want, dtype) <= limit
    assert torch.equal(torch.signbit(got), torch.signbit(x))     # odd, -0.0 included
    special = torch.tensor([float("inf"), -float("inf"), float("nan")], dtype=dtype)
    out = build(name, backend)(special)
    assert out[:2].tolist() == [1.0, -1.0] and math.isnan(out[2].item())


@pytest.mark.parametrize("backend", builds())
def test_gelu_tanh_is_accurate_near_zero(backend: str) -> None:
    # below x ~ -3, 1 + tanh(...) cancels in the formula itself (torch's f32 gelu too)
    x = torch.tensor(VALUES[np.abs(VALUES) < 1], dtype=torch.float32)
    xd = x.double().numpy()
    want = 0.5 * xd * (1 + np.tanh(0.7978845608028654 * (xd + 0.044715 * xd ** 3)))
    got = build("gelu_tanh32", backend)(x)
    assert ulps(got, want, torch.float32) <= 4.0


@pytest.mark.parametrize("name", ["tanh32", "tanh64"])
def test_tanh_compiles_for_sm_90(name: str) -> None:
    files = get_backend("triton").compile_asm(MODULE[name].ir, arch="sm_90", shape={"N": 4099})
    ptx = "".join(t for f, t in files.items() if f.endswith(".ptx"))
    assert ptx and ("f64" in ptx) == (name == "tanh64")
