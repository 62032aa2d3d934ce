"""Correct at every size: regressions for what KernelBench's shapes found (issue 10), on the CPU.

- expressions: literals of any sign and exponent in any operand position, NaN through
  max/min/clamp/relu, no text repeated by nesting (let-bound subexpressions);
- a per-row value used inside and outside a reduction (rows pattern, single and looped pass);
- 64-bit index arithmetic: chosen at launch when an offset can reach 2^31, forced on and off by
  the schedule at small sizes (both sides of the choice agree with the reference), and a real
  offset past 2^31 (an int8 view whose third row starts at element 2^31) under the interpreter.
"""
from __future__ import annotations

import re

import pytest
import torch

import kspec
from kspec.verify.tolerance import compare, magnitude

SOURCE = """
kernel hardtanh(x: f32[N]) -> y: f32[N] {
    y[i] = clamp(x[i], -1, 1)
}
kernel exponent_literal(x: f32[M, N]) -> y: f32[M, N] {
    v[i] = mean(x[i, j] ** 2 for j)
    y[i, j] = x[i, j] * rsqrt(v[i] + 1e-5) - 2.5e-3 * x[i, j]
}
kernel nested_gelu(x: f32[N]) -> y: f32[N] {
    y[i] = gelu(gelu(gelu(gelu(gelu(gelu(x[i]))))))
}
kernel nan_ops(x: f32[N], z: f32[N]) -> (a: f32[N], b: f32[N], c: f32[N], d: f32[N]) {
    a[i] = relu(x[i])
    b[i] = max(x[i], z[i])
    c[i] = min(z[i], x[i])
    d[i] = clamp(x[i], -0.5, 0.5)
}
kernel row_max(x: f32[M, N]) -> (hi: f32[M], lo: f32[M]) {
    hi[i] = max(x[i, j] for j)
    lo[i] = min(x[i, j] for j)
}
kernel pick(x: f32[M, N], label: i64[M]) -> y: f32[M] {
    y[i] = where(label[i] >= 0, sum(where(j == label[i], x[i, j], 0.0) for j), 0.0)
}
kernel matvec_kb(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
kernel channel_stats(x: f32[N, C, H, W]) -> (mu: f32[C], var: f32[C]) {
    mu[c]  = mean(x[n, c, h, q] for n, h, q)
    var[c] = mean((x[n, c, h, q] - mu[c]) ** 2 for n, h, q)
}
kernel row_sum_i8(x: i8[M, N]) -> y: i64[M] {
    y[i] = sum(x[i, j] for j)
}
"""

MODULE = kspec.loads(SOURCE, "every_size.kspec")


def _check(kernel, *args, schedule=None) -> None:
    fn = kernel.build("triton", schedule=schedule) if schedule else kernel.build("triton")
    got, want = fn(*args), kernel.reference(*args)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for decl, g, w, mag in zip(kernel.ir.outputs, got, want, magnitude(kernel, args)):
        result = compare(g, w, decl.dtype, mag)
        assert result.ok, f"{kernel.name}.{decl.name}: {result.detail}"


def test_negative_and_exponent_literals_render_as_python_floats() -> None:
    hardtanh = MODULE.hardtanh.source("triton")
    assert "_min(_max(x_1, (-1.0)), 1.0)" in hardtanh
    literal = MODULE.exponent_literal.source("triton")
    assert "1e-05" in literal and "1e-05.0" not in literal and "(-1).to" not in hardtanh
    _check(MODULE.hardtanh, torch.randn(300) * 3)
    _check(MODULE.exponent_literal, torch.randn(3, 50))


def test_nesting_does_not_repeat_text() -> None:
    src = MODULE.nested_gelu.source("triton")
    store = next(line for line in src.splitlines() if "tl.store" in line)
    assert len(re.findall(r"\bx_1\b", src)) == 3      # the load, and the innermost gelu's two uses
    assert len(store) < 200
    _check(MODULE.nested_gelu, torch.randn(257))


def test_nan_propagates_like_the_reference() -> None:
    x, z = torch.randn(64), torch.randn(64)
    x[::5] = float("nan")
    z[::7] = float("nan")
    got = MODULE.nan_ops.build("triton")(x, z)
    want = MODULE.nan_ops.reference(x, z)
    for g, w in zip(got, want):
        assert torch.equal(g.isnan(), w.isnan())
    m = torch.randn(4, 40)
    m[1, 3] = float("nan")
    hi, lo = MODULE.row_max.build("triton")(m)
    assert hi[1].isnan() and lo[1].isnan() and not hi[[0, 2, 3]].isnan().any()


@pytest.mark.parametrize("single", [True, False])
def test_per_row_value_inside_and_outside_a_reduction(single: bool) -> None:
    x = torch.randn(9, 40)
    label = torch.randint(-1, 40, (9,))
    label[0] = -1
    schedule = None if single else {"0.BLOCK_R": 16}   # 40 > 16: the looped pass
    _check(MODULE.pick, x, label, schedule=schedule)


@pytest.mark.parametrize("index64", [False, True])
def test_both_index_widths_agree_with_the_reference(index64: bool) -> None:
    """The schedule forces the launch-time choice, so the 64-bit variant runs at small sizes."""
    x = torch.randn(5, 33)
    _check(MODULE.exponent_literal, x, schedule={"0.INDEX64": index64})
    _check(MODULE.pick, x, torch.randint(0, 33, (5,)), schedule={"0.INDEX64": index64})
    _check(MODULE.hardtanh, torch.randn(77), schedule={"0.INDEX64": index64})


def test_the_launch_picks_64_bits_only_past_2_31() -> None:
    for kernel in (MODULE.row_sum_i8, MODULE.exponent_literal):
        src = kernel.source("triton")
        assert "if INDEX64:" in src and "_index64(" in src
    namespace: dict = {}
    helper = re.search(r"(def _index64\(.*?)\n\n", MODULE.row_sum_i8.source("triton"), re.S)
    exec(helper.group(1), namespace)
    index64 = namespace["_index64"]
    small = torch.empty(4, 8)
    assert not index64((small,), (4, 8))
    assert index64((small,), (2 ** 31,))
    wide = torch.empty_strided((2, 8), (2 ** 31, 1), dtype=torch.int8, device="meta")
    assert index64((wide,), (2, 8))
    assert not index64((torch.empty_strided((2, 8), (2 ** 31 - 8, 1), device="meta"),), (2, 8))


def test_an_offset_past_2_31_under_the_interpreter() -> None:
    """Row 2 of the view starts at element 2 * 2^30 = 2^31: in 32 bits its offset wraps to a
    negative address (the interpreter segfaulted, as a GPU faults). Only the rows' pages are
    ever touched."""
    try:
        base = torch.empty(2 ** 31 + 64, dtype=torch.int8)
    except RuntimeError as e:  # pragma: no cover - a machine without 2 GiB of address space
        pytest.skip(f"cannot reserve 2 GiB: {e}")
    x = base.as_strided((3, 64), (2 ** 30, 1))
    for r in range(3):
        x[r] = (r + 1) * torch.arange(64, dtype=torch.int8) // 3
    assert "INDEX64" in MODULE.row_sum_i8.source("triton")
    y = MODULE.row_sum_i8.build("triton")(x)
    assert y.tolist() == MODULE.row_sum_i8.reference(x).tolist() == [651, 1323, 210]


@pytest.mark.parametrize("compensated", [False, True])
def test_deep_contractions_add_partial_products_with_compensation(compensated: bool) -> None:
    """Both sides of the tensor cores' launch-time choice agree with the reference; the
    compensated side is what an unsplit slice of 2^16 or more takes (the matvec kernel, which
    KernelBench's 2^20-deep level1/4 takes, compensates every lane)."""
    a, b = torch.rand(37, 200), torch.rand(200, 1)
    _check(MODULE.matvec_kb, a, b, schedule={"0.matvec": False, "0.COMPENSATED": compensated})
    src = MODULE.matvec_kb.source("triton")
    assert "COMPENSATED = schedule.get('0.COMPENSATED', triton.cdiv((K), SPLIT_K) >= 65536)" \
        in src


def test_long_looped_sums_are_compensated() -> None:
    """Looped f32 sums carry a Kahan correction per lane (the interpreter is too slow for the
    10^5-term lane chains where a plain sum fails: those are measured on the GPU, bench/large.py
    group_norm); here both statements' compensated loops agree with the reference."""
    src = MODULE.channel_stats.source("triton")
    # one mean loop in the rows pass and one in the split partials of the long-row fallback;
    # the variance rides in each (Welford per lane)
    assert src.count("_lost = _kahan_add(") == 2 and "_welford, keep_dims=True)" in src
    x = torch.randn(3, 2, 24, 40) + 100.0
    _check(MODULE.channel_stats, x, schedule={"0.BLOCK_R": 16})
    _check(MODULE.channel_stats, x, schedule={"0.SPLIT": 3, "0a.BLOCK_R": 16})


def test_compensation_keeps_inf_and_nan() -> None:
    x = torch.randn(2, 2, 16, 40)
    x[0, 0, 3, 5] = float("inf")
    x[1, 1, 7, 2] = float("nan")
    mu, _ = MODULE.channel_stats.build("triton", schedule={"0.BLOCK_R": 16})(x)
    assert mu[0].isinf() and mu[1].isnan()


def test_the_reference_contracts_2_31_deep_products_in_parts(monkeypatch) -> None:
    """BLAS takes 32-bit sizes: cuBLAS refused sum_squares' float64 einsum at 2^31 + 49152
    terms on the H200. Past 2^31 the reference slices the longest reduced index (meta tensors:
    nothing is allocated)."""
    k = kspec.loads("kernel ss(x: f32[M, N]) -> y: f32 { y = sum(x[i, j] * x[i, j] for i, j) }")
    shapes = []
    real = torch.einsum
    monkeypatch.setattr(torch, "einsum",
                        lambda eq, *ops: shapes.append([o.shape for o in ops]) or real(eq, *ops))
    x = torch.empty(524300, 4096, device="meta")
    y = k.ss.reference(x)
    assert y.shape == () and len(shapes) == 3
    assert all(s[0][0] * s[0][1] < 2 ** 31 for s in shapes)
    assert sum(s[0][0] for s in shapes) == 524300


def _spec_kernels():
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.kspec")):
        for k in kspec.load(path):
            yield pytest.param(k, id=k.name)


@pytest.mark.parametrize("kernel", _spec_kernels())
def test_every_launch_branch_of_every_spec(kernel) -> None:
    """Each spec with every launch-time choice forced to its rarer side (64-bit indices,
    compensated contractions, looped rows) agrees with the reference at odd sizes."""
    import math
    import random

    from kspec.verify.inputs import choose_sizes, random_arguments
    from kspec.verify.strategies import launch_branches

    branches = launch_branches(kernel.source("triton"))
    assert "64-bit indices" in branches
    # one schedule for all: forced split rows would bypass the looped rows forced beside them
    forced = {k: v for label, schedule in branches.items() if label != "split rows"
              for k, v in schedule.items()}
    for low in (17, 9, 3, 1):   # rows longer than 16 where the tensors stay small
        env = choose_sizes(kernel.ir, random.Random(kernel.name), low=low, high=low + 7)
        if max(math.prod(d.evaluate(env) for d in t.dims)
               for t in (*kernel.ir.tensor_params, *kernel.ir.outputs)) <= 20000:
            break
    _check(kernel, *random_arguments(kernel.ir, env, seed=1), schedule=forced)
