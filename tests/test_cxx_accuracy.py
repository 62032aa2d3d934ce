"""Accuracy of long f32 reductions in the C++ family, and its 32-bit index decisions (CPU only).

The CPU emulation (kspec.backends.cxx.emulate) runs every kernel with grid = block = 1, so one
thread's loop folds a whole reduction: 4M terms for a layernorm row of 64 x 256 x 256, 16M per
channel for batch-norm statistics over (n, h, w) (KernelBench's sizes). That is the worst case
for accumulation error; a plain f32 running sum fails there (2.7e-3 .. 1.9e-2 measured on an
H200, up to 6 on inputs of mean 100 here), the compensated sums of kspec_sum_add pass. Each
case is held to KernelBench's criterion (atol = rtol = 1e-4) and to the project's own
(kspec/verify/tolerance.py). Inputs like KernelBench's (torch.randn), and randn + 100, whose
large mean breaks a naive running sum first.

The index tests check the rows pattern's choice of its 32-bit (_c) variants on tensors
described on the meta device (past 2^31 elements without allocating them).
"""
from __future__ import annotations

import pytest
import torch

import kspec
from kspec.backends.cxx import CUDA, emulate
from kspec.backends.cxx.launch import DeviceInfo
from kspec.backends.cxx.render import plan_for
from kspec.verify.tolerance import compare, magnitude

needs_cxx = pytest.mark.skipif(emulate.compiler() is None,
                               reason="no host C++ compiler (g++ or clang++) for the emulation")

SOURCE = """
kernel layernorm_row(x: f32[M, N], eps: f32 = 1e-5) -> y: f32[M, N] {
    mu[i]   = mean(x[i, j] for j)
    var[i]  = mean((x[i, j] - mu[i]) ** 2 for j)
    y[i, j] = (x[i, j] - mu[i]) * rsqrt(var[i] + eps)
}

kernel batchnorm_train(x: f32[N, C, H, W], eps: f32 = 1e-5) -> y: f32[N, C, H, W] {
    mu[c]  = mean(x[n, c, h, q] for n, h, q)
    var[c] = mean((x[n, c, h, q] - mu[c]) ** 2 for n, h, q)
    y[n, c, h, q] = (x[n, c, h, q] - mu[c]) * rsqrt(var[c] + eps)
}

kernel row_values(x: f32[M, N]) -> y: f32[M, N] {
    m[i]    = max(x[i, j] for j)
    y[i, j] = x[i, j] - m[i] + f32(i * j * 1048576)
}

kernel row_sum(x: f32[M, N]) -> s: f32[M] {
    s[i] = sum(x[i, j] for j)
}
"""
KERNELS = kspec.loads(SOURCE)


def _check(name: str, x: torch.Tensor) -> None:
    k = KERNELS[name]
    got = emulate.build(k.ir)(x)
    want = k.reference(x)
    err = (got.double() - want).abs().max().item()
    assert torch.allclose(got.double(), want, atol=1e-4, rtol=1e-4), \
        f"{name}: max error {err:.3g} fails KernelBench's atol = rtol = 1e-4"
    (mag,) = magnitude(k, [x])
    c = compare(got, want, k.ir.outputs[0].dtype, mag)
    assert c.ok, f"{name}: {c.detail} (worst {c.worst:.3g}; max error {err:.3g})"


@needs_cxx
@pytest.mark.parametrize("mean", [0.0, 100.0], ids=["randn", "randn+100"])
def test_layernorm_over_a_4m_row(mean: float) -> None:
    """One row of 2^22 f32 elements (LayerNorm over 64 x 256 x 256), a rows kernel: its
    looped path in the emulation. A plain sum: max error 9.3e-3 (randn), 4.3 (randn + 100)."""
    torch.manual_seed(0)
    _check("layernorm_row", torch.randn(1, 1 << 22) + mean)


@needs_cxx
@pytest.mark.parametrize("mean", [0.0, 100.0], ids=["randn", "randn+100"])
def test_batchnorm_statistics_over_16m_per_channel(mean: float) -> None:
    """Training-mode batch norm: statistics over (n, h, w), 2^24 elements per channel, two
    channels; the statistics are multi-index reductions of the generic loop nest. A plain sum:
    max error 7.7e-2 (randn), 6.1 (randn + 100)."""
    torch.manual_seed(1)
    _check("batchnorm_train", torch.randn(16, 2, 1024, 1024) + mean)


@needs_cxx
def test_compensated_sums_keep_infinities_and_nan() -> None:
    """A compensated sum with an infinite term is that infinity (not NaN), one that overflows
    f32 is inf, and +inf with -inf or a NaN term is NaN, as a plain sum gives."""
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([[1.0, inf, 2.0, 3.0], [-inf, 1.0, 2.0, 3.0], [3e38, 3e38, 1.0, 1.0],
                      [1.0, inf, -inf, 1.0], [1.0, nan, 2.0, 3.0]])
    for schedule in ({}, {"rows": "loop"}):    # the row in registers, and looped
        got = emulate.build(KERNELS["row_sum"].ir, schedule=schedule)(x)
        assert got[:3].tolist() == [inf, -inf, inf]
        assert got[3:].isnan().all()


@needs_cxx
def test_index_values_are_int64_in_the_32_bit_variants() -> None:
    """Index arithmetic in values is int64 as in the reference, also where the rows kernel
    indexes in 32 bits: 63 * 63 * 2^20 overflows int on a 64 x 64 tensor."""
    k = KERNELS["row_values"]
    x = torch.randn(64, 64)
    fn = emulate.build(k.ir)
    got = fn(x)
    assert fn._prepared and all(f.endswith("c") for p in fn._prepared.values()
                                for f, *_ in p.launches)   # the 32-bit variant ran
    c = compare(got, k.reference(x), k.ir.outputs[0].dtype)
    assert c.ok, c.detail


# --- the 32-bit variant's choice ----------------------------------------------------------------
def _rows_variant(name: str, buffers: dict[str, torch.Tensor], env: dict[str, int]) -> str:
    """The function the rows unit of kernel `name` launches on a GPU for these buffers."""
    plan = plan_for(KERNELS[name].ir, CUDA, "sm_90")
    (unit,) = [u for u in plan.units if getattr(u, "pattern", "") == "rows"]
    for t in plan.temporaries:
        if t.name not in buffers:
            shape = tuple(d.evaluate(env) for d in t.dims)
            buffers[t.name] = torch.empty(shape, dtype=torch.float32, device="meta")
    (launch,) = unit.launches(env, buffers, DeviceInfo(False, 132, {}))
    return launch[0]


def _meta(*shape: int, stride: tuple[int, ...] | None = None) -> torch.Tensor:
    if stride is None:
        return torch.empty(shape, dtype=torch.float32, device="meta")
    return torch.empty_strided(shape, stride, dtype=torch.float32, device="meta")


@pytest.mark.parametrize("m, n, narrow", [
    (1 << 10, 1 << 12, True),          # 4M elements
    (1 << 16, 1 << 14, True),          # 2^30
    ((1 << 17) - 64, 1 << 14, True),   # 2^31 - 2^20 (INDEX_LIMIT) elements
    ((1 << 17) - 63, 1 << 14, False),  # one row more: the last offset is past INDEX_LIMIT
    (1 << 15, 1 << 16, False),         # 2^31: the last offset is 2^31 - 1
    (1 << 17, 1 << 16, False),         # 2^33
    (1, 1 << 31, False),               # one row of 2^31
])
def test_rows_index_in_32_bits_only_when_every_offset_fits(m: int, n: int, narrow: bool) -> None:
    x = _meta(m, n)
    fn = _rows_variant("row_sum", {"x": x, "s": _meta(m)}, {"M": m, "N": n})
    assert fn.endswith("c") == narrow, fn


def test_rows_32_bit_choice_follows_strides_not_shapes() -> None:
    m, n = 1 << 20, 1 << 12
    # a broadcast input: 2^32 logical elements, every offset below n
    wide = _meta(1, n).expand(m, n)
    assert _rows_variant("row_sum", {"x": wide, "s": _meta(m)}, {"M": m, "N": n}).endswith("c")
    # a small tensor with a row stride past 2^31: int64
    far = _meta(4, 64, stride=(1 << 30, 1))
    assert not _rows_variant("row_sum", {"x": far, "s": _meta(4)}, {"M": 4, "N": 64}).endswith("c")
    # a large output written through a strided view of a small input: int64 (y spans 2^32)
    assert not _rows_variant("row_values", {"x": wide, "y": _meta(m, n)},
                             {"M": m, "N": n}).endswith("c")
