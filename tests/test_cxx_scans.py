"""The C++ scan pattern (kspec/backends/cxx/scan.py): linear work, a warp per row, lanes on
contiguous chunks, a warp scan of the chunk totals and a carry across tiles.

- every op and direction through the g++ emulation against the float64 reference at sizes
  around the tile (1, 31, 32, 33, 1000, 4097), with NaN in max/min rows and an integer scan;
- the plan renders scans as the pattern, not as the quadratic masked reduction (whose body
  loops over the whole row), except for a scan of reductions;
- nvcc (sm_90) and hipcc (gfx90a, 64 lanes) compile the scans.
"""
from __future__ import annotations

import pytest
import torch

import kspec
from kspec.backends import get_backend
from kspec.backends.cxx import CUDA, emulate
from kspec.backends.cxx.render import plan_for
from kspec.backends.cuda import toolchain as nv
from kspec.backends.hip import toolchain as amd
from kspec.verify.tolerance import compare, magnitude

SOURCE = """
kernel every_scan(x: f32[B, N], p: f32[B, N], m: bool[B, N], t: i32[B, N])
        -> (s_le: f32[B, N], s_lt: f32[B, N], s_ge: f32[B, N], s_gt: f32[B, N],
            p_le: f32[B, N], p_lt: f32[B, N], p_ge: f32[B, N], p_gt: f32[B, N],
            hi_le: f32[B, N], hi_ge: f32[B, N], lo_le: f32[B, N], lo_ge: f32[B, N],
            count: i64[B, N], top: i32[B, N]) {
    s_le[i, j] = sum(x[i, k] for k <= j)
    s_lt[i, j] = sum(x[i, k] for k < j)
    s_ge[i, j] = sum(x[i, k] for k >= j)
    s_gt[i, j] = sum(x[i, k] for k > j)
    p_le[i, j] = prod(p[i, k] for k <= j)
    p_lt[i, j] = prod(p[i, k] for k < j)
    p_ge[i, j] = prod(p[i, k] for k >= j)
    p_gt[i, j] = prod(p[i, k] for k > j)
    hi_le[i, j] = max(x[i, k] for k <= j)
    hi_ge[i, j] = max(x[i, k] for k >= j)
    lo_le[i, j] = min(x[i, k] for k <= j)
    lo_ge[i, j] = min(x[i, k] for k >= j)
    count[i, j] = sum(m[i, k] for k > j)
    top[i, j] = max(t[i, k] for k <= j)
}
kernel scan_of_rows(x: f32[B, N, L]) -> y: f32[B, N] {
    y[i, j] = sum(sum(x[i, k, l] for l) for k <= j)
}
"""
MODULE = kspec.loads(SOURCE)
SCANS = MODULE["every_scan"]
SIZES = [1, 31, 32, 33, 1000, 4097]
needs_cxx = pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")


def arguments(n: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(n)
    x = torch.randn(3, n, generator=g) + 0.3
    x[1, n // 2] = float("nan")     # max and min carry it to one end of row 1
    p = torch.exp(torch.randn(3, n, generator=g) * 0.02)   # products stay finite
    m = torch.rand(3, n, generator=g) > 0.5
    t = torch.randint(-1000, 1000, (3, n), generator=g, dtype=torch.int32)
    return x, p, m, t


@needs_cxx
def test_every_op_and_direction_agrees_with_reference() -> None:
    launch = emulate.build(SCANS.ir)
    for n in SIZES:
        args = arguments(n)
        got, want = launch(*args), SCANS.reference(*args)
        for o, g, w, mag in zip(SCANS.ir.outputs, got, want, magnitude(SCANS, args)):
            result = compare(g, w, o.dtype, mag)
            assert result.ok, f"n={n} {o.name}: {result}"
        assert torch.isnan(got[8][1, n // 2:]).all() and torch.isnan(got[11][1, :n // 2 + 1]).all()


def test_scans_are_the_linear_pattern() -> None:
    plan = plan_for(SCANS.ir, CUDA)
    assert [u.pattern for u in plan.units] == ["scan"] * 14
    text = SCANS.source("cuda")
    assert text.count("kspec_warp_scan<OP>(total, before, tile);") == 14
    assert "for (int64_t k" not in text        # no loop over the whole row per element
    rows = MODULE["scan_of_rows"]
    assert [u.pattern for u in plan_for(rows.ir, CUDA).units] != ["scan"]


@needs_cxx
def test_scan_of_reductions_keeps_the_loop_nest() -> None:
    k = MODULE["scan_of_rows"]
    x = torch.randn(2, 33, 5)
    got = emulate.build(k.ir)(x)
    assert torch.allclose(got.double(), x.double().sum(2).cumsum(1), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(nv.nvcc_path() is None, reason="nvcc is not installed")
def test_nvcc_compiles_the_scans() -> None:
    c = get_backend("cuda").compile(SCANS.ir, "sm_90")
    assert len(c.resources) == 14
    # ptxas holds the reversed exclusive f32 sum to 80 registers (three blocks of 256 threads a
    # multiprocessor) at the cost of 16 bytes of spills; nothing else spills
    assert all(r["registers"] > 0 and r["spill_stores"] <= (16 if f == "every_scan_3_scan" else 0)
               for f, r in c.resources.items())


@pytest.mark.skipif(amd.hipcc_path() is None, reason="hipcc is not installed")
def test_hipcc_compiles_the_scans() -> None:
    c = get_backend("hip").compile(SCANS.ir, "gfx90a")
    assert c.binary.startswith((b"\x7fELF", b"__CLANG_OFFLOAD_BUNDLE__"))
    assert len(c.resources) == 14 and all(r["vgprs"] > 0 for r in c.resources.values())
    assert "m < 64" in SCANS.source("hip", arch="gfx90a")
