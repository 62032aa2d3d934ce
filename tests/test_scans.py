"""Scans (prefix reductions: `sum(x[i, k] for k <= j)`, `k < j` exclusive, `k >= j` / `k > j`
from the end; prod, max, min): the reference against torch.cumsum / cumprod / cummax /
cummin at odd sizes with NaN, every backend on the CPU (Triton's interpreter runs the scan
pattern across several blocks; the C++ emulation runs its scan pattern, tested further in
tests/test_cxx_scans.py), the plan's pattern, a launch check on the ranges, and the Triton scan
compiled ahead of time."""
from __future__ import annotations

import pytest
import torch

import kspec
from kspec.backends import get_backend
from kspec.backends.cxx import emulate
from kspec.errors import KspecError
from kspec.lowering import plan_kernel
from kspec.verify.tolerance import compare, magnitude

SOURCE = """
kernel scans(x: f32[B, N], m: bool[B, N]) -> (a: f32[B, N], b: f32[B, N], c: f32[B, N],
                                              d: f32[B, N], e: f32[B, N], g: i64[B, N]) {
    a[i, j] = sum(x[i, k] for k <= j)
    b[i, j] = prod(x[i, k] for k <= j)
    c[i, j] = sum(x[i, k] for k >= j) * 2.0
    d[i, j] = sum(where(m[i, k], x[i, k], 0.0) for k < j)
    e[i, j] = max(x[i, k] for k <= j) - min(x[i, k] for k >= j)
    g[i, j] = sum(m[i, k] for k > j)
}
kernel ranges(x: f32[M, N], z: f32[M, K]) -> y: f32[M, N] {
    y[i, j] = sum(z[i, k] for k <= j) + x[i, j]
}
"""
MODULE = kspec.loads(SOURCE)
SCANS = MODULE["scans"]


def inputs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    x = torch.randn(5, n, generator=g) * 0.5 + 1.0
    x[1, n // 3] = float("nan")
    return x, torch.rand(5, n, generator=g) > 0.4


def torch_scans(x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.double()
    zero = torch.zeros(x.shape[0], 1, dtype=torch.float64)
    flip = lambda t: t.flip(1)   # noqa: E731
    masked = torch.where(m, x, 0.0)
    return (x.cumsum(1), x.cumprod(1), 2 * flip(flip(x).cumsum(1)),
            torch.cat([zero, masked.cumsum(1)[:, :-1]], 1),
            x.cummax(1).values - flip(flip(x).cummin(1).values),
            torch.cat([flip(flip(m.long()).cumsum(1))[:, 1:], zero.long()], 1))


@pytest.mark.parametrize("n", [1, 37, 2051])
def test_reference_matches_torch(n: int) -> None:
    x, m = inputs(n)
    for got, want in zip(SCANS.reference(x, m), torch_scans(x, m)):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


def check_backend(launch, n: int) -> None:
    x, m = inputs(n)
    got = launch(x, m)
    want = SCANS.reference(x, m)
    for o, g, w, mag in zip(SCANS.ir.outputs, got, want, magnitude(SCANS, (x, m))):
        result = compare(g, w, o.dtype, mag)
        assert result.ok, f"{o.name}: {result}"


@pytest.mark.parametrize("n", [1, 37, 2051])   # 2051: three blocks of 1024
def test_triton_interpreter_agrees(n: int) -> None:
    check_backend(SCANS.build("triton"), n)


@pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")
def test_cxx_emulation_agrees() -> None:
    check_backend(emulate.build(SCANS.ir), 37)


def test_each_scan_is_a_scan_launch() -> None:
    plan = plan_kernel(SCANS.ir)
    patterns = [launch.pattern for launch in plan.launches]
    assert patterns.count("scan") == 7 and set(patterns) == {"scan", "pointwise"}, patterns
    assert all(f.pattern == "loop_nest" for launch in plan.launches
               if launch.pattern == "scan" for f in launch.fallback)


def test_ranges_of_scan_and_bound_are_checked_at_launch() -> None:
    k = MODULE["ranges"]
    x, z = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(k.reference(x, z), z.double().cumsum(1) + x.double())
    with pytest.raises(KspecError, match=r"index 'k' ranges over K from its uses and N from "
                                         r"its bound 'j'; they must be equal"):
        k.build("triton")(x, torch.randn(3, 4))


@pytest.mark.parametrize("arch", ["sm_90", "gfx942"])
def test_triton_scan_compiles_ahead_of_time(arch: str) -> None:
    files = get_backend("triton").compile_asm(SCANS.ir, arch=arch, shape={"B": 3, "N": 4099})
    ext = "ptx" if arch.startswith("sm") else "amdgcn"
    assert len([f for f in files if f.endswith(ext) and "_scan." in f]) == 7
