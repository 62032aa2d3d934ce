"""Reductions of every shape in Triton (issue 15), each branch through the interpreter against
the float64 reference; the schedule forces the launch-time choices at small sizes, as
tests/test_every_size.py does:

- STRIDED: the reduced index steps through memory, the kept last index is contiguous (a sum
  over a middle axis, a column sum, RMSNorm over channels): tiles along the kept index;
- rows over several reduced indices (BatchNorm's n, h, w; GroupNorm's c, l) and row vectors
  with the inner index anywhere (y[n, c, h, w] beside r[n, h, w]);
- split rows (SPLIT > 1): several programs per row, partials, a combining pass, then the row
  vectors as pointwise launches; the split of a scalar (a Frobenius norm);
- a contraction with one column (a matrix-vector product) as rows, and its split;
and which branch the host picks at KernelBench's sizes on an H200-sized sm_90 (traced
launches, no GPU).
"""
from __future__ import annotations

import re

import pytest
import torch

import kspec
from kspec.backends.triton.launcher import load_module
from kspec.backends.triton.codegen import jit_kernels
from kspec.backends.triton.trace import trace_launches
from kspec.verify.tolerance import compare, magnitude

SOURCE = """
kernel sum_mid(x: f32[B, M, N]) -> y: f32[B, N] {
    y[b, j] = sum(x[b, i, j] for i)
}
kernel stats_mid(x: f32[B, M, N]) -> (hi: f32[B, N], lo: f32[B, N], mu: f32[B, N]) {
    hi[b, j] = max(x[b, i, j] for i)
    lo[b, j] = min(x[b, i, j] for i)
    mu[b, j] = mean(x[b, i, j] for i)
}
kernel col_sum(x: f32[M, N]) -> y: f32[N] {
    y[j] = sum(x[i, j] for i)
}
kernel batchnorm_train(x: f32[N, C, H, W], w: f32[C], b: f32[C], eps: f32 = 1e-5)
        -> y: f32[N, C, H, W] {
    mu[c]  = mean(x[n, c, h, q] for n, h, q)
    var[c] = mean((x[n, c, h, q] - mu[c]) ** 2 for n, h, q)
    y[n, c, h, q] = (x[n, c, h, q] - mu[c]) * rsqrt(var[c] + eps) * w[c] + b[c]
}
kernel group_norm(x: f32[N, G, C, L], w: f32[G, C], b: f32[G, C], eps: f32 = 1e-5)
        -> y: f32[N, G, C, L] {
    mu[n, g]   = mean(x[n, g, c, l] for c, l)
    var[n, g]  = mean((x[n, g, c, l] - mu[n, g]) ** 2 for c, l)
    y[n, g, c, l] = (x[n, g, c, l] - mu[n, g]) * rsqrt(var[n, g] + eps) * w[g, c] + b[g, c]
}
kernel rms_channels(x: f32[N, C, H, W], eps: f32 = 1e-5) -> y: f32[N, C, H, W] {
    r[n, h, w] = sqrt(mean(x[n, c, h, w] ** 2 for c) + eps)
    y[n, c, h, w] = x[n, c, h, w] / r[n, h, w]
}
kernel softmax(x: f32[M, N]) -> y: f32[M, N] {
    m[i]    = max(x[i, j] for j)
    e[i, j] = exp(x[i, j] - m[i])
    y[i, j] = e[i, j] / sum(e[i, k] for k)
}
kernel layernorm_rows(x: f32[M, N], w: f32[N], b: f32[N], eps: f32 = 1e-5) -> y: f32[M, N] {
    mu[i]   = mean(x[i, j] for j)
    var[i]  = mean((x[i, j] - mu[i]) ** 2 for j)
    y[i, j] = (x[i, j] - mu[i]) * rsqrt(var[i] + eps) * w[j] + b[j]
}
kernel frobenius(x: f32[M, N]) -> y: f32[M, N] {
    y[i, j] = x[i, j] / sqrt(sum(x[a, c] ** 2 for a, c))
}
kernel matvec(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
kernel odd_ops(x: f32[M, N], f: i32[M, N]) -> (p: f32[N], any_pos: bool[N], total: i64[N]) {
    p[j] = prod(x[i, j] for i)
    any_pos[j] = max(x[i, j] > 1.0 for i)
    total[j] = sum(f[i, j] for i)
}
"""

MODULE = kspec.loads(SOURCE, "reductions.kspec")


def _check(kernel, *args, schedule=None) -> None:
    fn = kernel.build("triton", schedule=schedule) if schedule else kernel.build("triton")
    got, want = fn(*args), kernel.reference(*args)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for decl, g, w, mag in zip(kernel.ir.outputs, got, want, magnitude(kernel, args)):
        result = compare(g, w, decl.dtype, mag)
        assert result.ok, f"{kernel.name}.{decl.name} {schedule}: {result.detail}"


# rows: single pass, looped pass, STRIDED forced off (programs over flat rows), split
ROW_BRANCHES = [None, {"0.BLOCK_R": 8}, {"0.STRIDED": False, "0.BLOCK_R": 8},
                {"0.SPLIT": 3}, {"0.SPLIT": 4, "0a.STRIDED": False, "0a.BLOCK_R": 4}]


@pytest.mark.parametrize("schedule", ROW_BRANCHES, ids=str)
def test_reductions_over_a_middle_axis(schedule) -> None:
    x = torch.randn(3, 37, 21)
    _check(MODULE.sum_mid, x, schedule=schedule)
    x[1, 5, 2] = float("nan")
    hi, lo, mu = MODULE.stats_mid.build("triton", schedule=schedule or {})(x)
    assert hi[1, 2].isnan() and lo[1, 2].isnan() and mu[1, 2].isnan()
    x[1, 5, 2] = 0.0
    _check(MODULE.stats_mid, x, schedule=schedule)


def test_the_strided_tile_runs_along_the_kept_index() -> None:
    src = MODULE.sum_mid.source("triton")
    assert "STRIDED = schedule.get('0.STRIDED', x.stride(1) != 1)" in src
    assert "p1 = (pid % blocks_p) * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]" in src
    # a non-contiguous view whose kept index is the strided one takes the rows orientation
    x = torch.randn(3, 21, 37).transpose(1, 2)
    _check(MODULE.sum_mid, x)
    _check(MODULE.sum_mid, x, schedule={"0.STRIDED": True, "0.BLOCK_R": 4})


@pytest.mark.parametrize("schedule", [None, {"0.BLOCK_R": 16}, {"0.SPLIT": 5},
                                      {"0.SPLIT": 5, "0a.STRIDED": False}], ids=str)
def test_column_reductions_of_every_op(schedule) -> None:
    x = torch.rand(45, 19) + 0.5
    _check(MODULE.col_sum, x, schedule=schedule)
    f = torch.randint(-2 ** 30, 2 ** 30, (45, 19), dtype=torch.int32)
    _check(MODULE.odd_ops, x, f, schedule=schedule)


@pytest.mark.parametrize("schedule", [None, {"0.BLOCK_R": 16}, {"0.SPLIT": 3},
                                      {"0.SPLIT": 2, "0a.BLOCK_R": 8, "0b.BLOCK_I": 4}], ids=str)
def test_norms_over_several_axes(schedule) -> None:
    x = torch.randn(3, 4, 5, 6) + 3.0
    _check(MODULE.batchnorm_train, x, torch.rand(4), torch.rand(4), schedule=schedule)
    _check(MODULE.group_norm, torch.randn(2, 4, 3, 10), torch.randn(4, 3), torch.randn(4, 3),
           schedule=schedule)


def test_several_reduced_indices_form_one_rows_launch() -> None:
    for kernel in (MODULE.batchnorm_train, MODULE.group_norm):
        plan = kernel.source("triton").split("def launch")[0]
        assert re.search(r"0\. rows +-> mu, var, y", plan), plan
    # the shared plan (C++) keeps its loop nests: its rows take one reduced index
    from kspec.lowering import plan_kernel
    assert [x.pattern for x in plan_kernel(MODULE.batchnorm_train.ir).launches] == \
        ["loop_nest", "loop_nest", "pointwise"]


@pytest.mark.parametrize("schedule", [None, {"0.BLOCK_R": 16}, {"0.STRIDED": False},
                                      {"0.SPLIT": 3}], ids=str)
def test_a_row_vector_with_its_inner_index_in_the_middle(schedule) -> None:
    _check(MODULE.rms_channels, torch.randn(2, 40, 3, 7), schedule=schedule)


def test_a_norm_over_channels_reads_once_in_one_launch() -> None:
    src = MODULE.rms_channels.source("triton")
    rows = src[src.index("def rms_channels_0_rows"):src.index("def rms_channels_0a")]
    single = rows[rows.index("if SINGLE:"):rows.index("    else:\n        red")]
    assert single.count("tl.load(x_ptr") == 1


@pytest.mark.parametrize("schedule", [{"0.SPLIT": 1, "0.BLOCK_R": 16}, {"0.SPLIT": 3},
                                      {"0.SPLIT": 3, "0a.SPLIT": 1},
                                      {"0.SPLIT": 7, "0a.BLOCK_R": 4, "0b.BLOCK_I": 8}], ids=str)
def test_long_rows_split_over_programs(schedule) -> None:
    x = torch.randn(3, 90) * 4
    _check(MODULE.softmax, x, schedule=schedule)
    _check(MODULE.layernorm_rows, x + 50.0, torch.randn(90), torch.randn(90), schedule=schedule)


def test_split_partials_are_compensated_and_keep_inf_and_nan() -> None:
    src = MODULE.layernorm_rows.source("triton")
    partial = src[src.index("def layernorm_rows_0a_split_partial"):]
    partial = partial[:partial.index("@triton.jit")]
    assert "_kahan_add(" in partial
    x = torch.randn(3, 90)
    x[0, 7] = float("inf")
    x[2, 50] = float("nan")
    y = MODULE.layernorm_rows.build("triton", schedule={"0.SPLIT": 4})(
        x, torch.ones(90), torch.zeros(90))
    want = MODULE.layernorm_rows.reference(x, torch.ones(90), torch.zeros(90))
    assert torch.equal(y.isnan(), want.isnan()) and not y[1].isnan().any()


@pytest.mark.parametrize("split", [1, 2, 9])
def test_a_scalar_reduction_then_a_pointwise_pass(split: int) -> None:
    _check(MODULE.frobenius, torch.randn(13, 29), schedule={"0.SPLIT": split})


@pytest.mark.parametrize("schedule", [None, {"0.matvec": False}, {"0m.BLOCK_K": 64},
                                      {"0m.SPLIT_K": 5}, {"0m.ALONG_K": False}], ids=str)
def test_matrix_vector_products_run_as_matvec(schedule) -> None:
    _check(MODULE.matvec, torch.rand(7, 300), torch.rand(300, 1), schedule=schedule)
    _check(MODULE.matvec, torch.rand(1, 70), torch.rand(70, 37), schedule=schedule)


def _row_split():
    src = MODULE.softmax.source("triton")
    namespace: dict = {}
    exec(re.search(r"(def _row_split\(.*?)\n\n", src, re.S).group(1), namespace)
    namespace["_multiprocessors"] = lambda device: 132
    return namespace["_row_split"]


def test_rows_split_only_when_long_rows_leave_the_gpu_idle() -> None:
    row_split = _row_split()
    gpu = type("Device", (), {"type": "cuda"})()
    assert row_split(16, 8192, 1, gpu) == 1               # one pass in registers
    assert row_split(16, 4 * 2 ** 20, 1, gpu) == 33       # LayerNorm 16 x 4M: 528 programs
    assert row_split(64, 2 ** 24, 1, gpu) == 8            # BatchNorm's 64 channels of 16M
    assert row_split(4096, 393216, 1, gpu) == 1           # Softmax: 4096 rows fill the GPU
    assert row_split(3, 20000, 1, gpu) == 1               # under two 16384-element slices
    assert row_split(16, 10 ** 6, 16, gpu) == 61          # a column sum over 16 columns


def _launches(kernel, env: dict[str, int]) -> list[str]:
    module = load_module(kernel.source("triton"), interpret=False)
    params = {jk.name: [p.split(":")[0] for p in jk.params if "constexpr" not in p]
              for jk in jit_kernels(kernel.ir)}
    return [c.describe() for c in trace_launches(kernel.ir, module, params, env, "sm_90")]


@pytest.mark.parametrize("kernel,env,expect", [
    ("sum_mid", {"B": 128, "M": 4096, "N": 4095},
     ["sum_mid_0_rows: grid 8192, 16 warps, 3 stages, BLOCK_P=64 BLOCK_R=64 SINGLE=False "
      "STRIDED=True"]),
    ("rms_channels", {"N": 112, "C": 64, "H": 512, "W": 512},
     ["rms_channels_0_rows: grid 458752, 16 warps, 3 stages, BLOCK_P=64 BLOCK_R=64 "
      "SINGLE=True STRIDED=True"]),
    ("batchnorm_train", {"N": 64, "C": 64, "H": 512, "W": 512},
     ["batchnorm_train_0a_split_partial: grid 64x8,", "batchnorm_train_0a_split_finish",
      "batchnorm_train_0b_pointwise"]),
    ("layernorm_rows", {"M": 16, "N": 64 * 256 * 256},
     ["layernorm_rows_0a_split_partial: grid 16x33,", "layernorm_rows_0a_split_finish",
      "layernorm_rows_0b_pointwise"]),
    ("softmax", {"M": 4096, "N": 393216},
     ["softmax_0_rows: grid 4096, 16 warps, 3 stages, BLOCK_P=1 BLOCK_R=8192 SINGLE=False "
      "STRIDED=False"]),
    ("matvec", {"M": 2048, "K": 2 ** 20, "N": 1},          # KernelBench level1/4
     ["matvec_0m_matvec: grid 256x2, 4 warps, 3 stages, BLOCK_M=8 BLOCK_N=1 BLOCK_K=512 "
      "SPLIT_K=2 INDEX64=False", "matvec_0s_splitk_sum: grid 2,"]),
    ("matvec", {"M": 256, "K": 524288, "N": 256},           # KernelBench level1/6
     ["matvec_0_contraction: grid 8x33, 4 warps, 4 stages, BLOCK_M=128 BLOCK_N=64 BLOCK_K=32 "
      "GROUP_M=8 PRECISION=tf32x3 INTERPRETED=False SPLIT_K=33 COMPENSATED=False",
      "matvec_0s_splitk_sum: grid 64, 4 warps, 3 stages, BLOCK_M=8 BLOCK_N=128 SPLIT_K=33"]),
    ("matvec", {"M": 8205, "K": 2949, "N": 5921},           # KernelBench level1/8
     ["matvec_0_contraction: grid 3055x1, 8 warps, 3 stages, BLOCK_M=128 BLOCK_N=128 "
      "BLOCK_K=64 GROUP_M=8 PRECISION=tf32x3 INTERPRETED=False SPLIT_K=1 COMPENSATED=False"]),
    ("matvec", {"M": 1, "K": 4096, "N": 4096},              # a vector-matrix product
     ["matvec_0m_matvec: grid 16x1, 4 warps, 3 stages, BLOCK_M=1 BLOCK_N=256 BLOCK_K=16 "
      "SPLIT_K=1"]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_branch_taken_at_kernelbench_sizes(kernel: str, env, expect: list[str]) -> None:
    launches = _launches(MODULE[kernel], env)
    assert len(launches) == len(expect), launches
    for line, start in zip(launches, expect):
        assert line.startswith(start), (line, start)


def test_a_variance_after_its_mean_shares_the_mean_s_loop() -> None:
    """Welford per lane in the mean's loop: BatchNorm's looped pass reads x twice (statistics,
    output), not three times; a mean far from 0 keeps the variance accurate."""
    src = MODULE.batchnorm_train.source("triton")
    rows = src[src.index("def batchnorm_train_0_rows"):src.index("def batchnorm_train_0a")]
    looped = rows[rows.index("    else:\n        red"):]
    assert looped.count("for r0 in range(") == 2 and "_welford, keep_dims=True)" in looped
    x = torch.randn(3, 4, 5, 6) * 1e-2 + 1e3
    _check(MODULE.batchnorm_train, x, torch.rand(4), torch.rand(4), schedule={"0.BLOCK_R": 8})
    _check(MODULE.layernorm_rows, x.view(3, -1)[:, :90], torch.rand(90), torch.rand(90),
           schedule={"0.BLOCK_R": 8})


def test_the_fused_variance_keeps_inf_and_nan() -> None:
    x = torch.randn(4, 90)
    x[0, 7] = float("inf")
    x[1, 3] = float("-inf")
    x[2, 50] = float("nan")
    args = (x, torch.ones(90), torch.zeros(90))
    y = MODULE.layernorm_rows.build("triton", schedule={"0.BLOCK_R": 16})(*args)
    want = MODULE.layernorm_rows.reference(*args)
    assert torch.equal(y.isnan(), want.isnan()) and not y[3].isnan().any()


SOFTMAX_LIKE = """
kernel logsumexp(x: f32[M, N]) -> y: f32[M] {
    m[i] = max(x[i, j] for j)
    y[i] = m[i] + log(sum(exp(x[i, j] - m[i]) for j))
}
"""


def test_a_sum_of_exp_after_its_max_shares_the_max_s_loop() -> None:
    """Online softmax in the looped pass: softmax reads x twice; -inf, +inf and NaN rows come
    out as the two passes (and the reference) make them."""
    src = MODULE.softmax.source("triton")
    rows = src[src.index("def softmax_0_rows"):src.index("def softmax_0a")]
    looped = rows[rows.index("    else:\n        red"):]
    assert looped.count("for r0 in range(") == 2 and "_exp_sum, keep_dims=True)" in looped
    lse = kspec.loads(SOFTMAX_LIKE).logsumexp
    x = torch.randn(6, 90) * 30
    x[0, :] = float("-inf")
    x[1, :50] = float("-inf")
    x[2, 7] = float("inf")
    x[3, 60] = float("nan")
    x[4, 89] = float("-inf")
    for kernel in (MODULE.softmax, lse):
        got = kernel.build("triton", schedule={"0.BLOCK_R": 16})(x)
        want = kernel.reference(x)
        assert torch.equal(got.isnan(), want.isnan()), kernel.name
        finite = want.isfinite()
        assert torch.allclose(got[finite].double(), want[finite], rtol=1e-5, atol=1e-6)
    _check(MODULE.softmax, torch.randn(3, 90) * 30, schedule={"0.BLOCK_R": 16})


# (kernel, sizes, the launches made there): each new branch, as the GPU compilers get it
AHEAD_OF_TIME = [
    ("sum_mid", {"B": 3, "M": 37, "N": 21}, ["sum_mid_0_rows"]),                  # STRIDED single
    ("sum_mid", {"B": 1, "M": 10 ** 6, "N": 16}, ["sum_mid_0a_split_partial",    # STRIDED split
                                                  "sum_mid_0a_split_finish"]),
    ("col_sum", {"M": 10 ** 6, "N": 16}, ["col_sum_0a_split_partial", "col_sum_0a_split_finish"]),
    ("rms_channels", {"N": 2, "C": 64, "H": 7, "W": 33}, ["rms_channels_0_rows"]),
    ("batchnorm_train", {"N": 1, "C": 4, "H": 90, "W": 100}, ["batchnorm_train_0_rows"]),
    ("batchnorm_train", {"N": 64, "C": 64, "H": 512, "W": 512},
     ["batchnorm_train_0a_split_partial", "batchnorm_train_0a_split_finish",
      "batchnorm_train_0b_pointwise"]),
    ("softmax", {"M": 4096, "N": 393216}, ["softmax_0_rows"]),                    # online, looped
    ("matvec", {"M": 2048, "K": 2 ** 20, "N": 1}, ["matvec_0m_matvec", "matvec_0s_splitk_sum"]),
    ("matvec", {"M": 4096, "K": 4096, "N": 1}, ["matvec_0m_matvec"]),
    ("matvec", {"M": 256, "K": 524288, "N": 256}, ["matvec_0_contraction",       # split-K
                                                   "matvec_0s_splitk_sum"]),
    ("frobenius", {"M": 4096, "N": 4096}, ["frobenius_0_split_partial", "frobenius_0_split_finish",
                                           "frobenius_1_pointwise"]),
]


@pytest.mark.parametrize("arch", ["sm_90", "gfx942"])
@pytest.mark.parametrize("kernel,env,names", AHEAD_OF_TIME,
                         ids=[f"{k}-{'-'.join(map(str, e.values()))}" for k, e, _ in AHEAD_OF_TIME])
def test_every_new_branch_compiles_for_the_gpus(kernel: str, env, names, arch: str) -> None:
    from kspec.backends import get_backend

    files = get_backend("triton").compile_asm(MODULE[kernel].ir, arch=arch, shape=env)
    launches = files[f"{kernel}.{arch}.launches.txt"].splitlines()[1:]
    assert [line.split(":")[0] for line in launches] == names, launches
    ext = "ptx" if arch.startswith("sm") else "amdgcn"
    assert all(any(f.startswith(n) and f.endswith(ext) for f in files) for n in names)


def test_a_split_carries_the_fused_state_of_a_variance_or_a_sum_of_exp() -> None:
    """The long-row fallback splits mean and variance (max and sum of exp) as one launch: its
    partials hold the Welford (online softmax) state, merged in the second pass."""
    for kernel, fields, combiner in ((MODULE.layernorm_rows, ("n", "m", "q"), "_welford"),
                                     (MODULE.softmax, ("m", "s"), "_exp_sum")):
        src = kernel.source("triton")
        assert f"{kernel.name}_0a_split_partial" in src and f"{kernel.name}_0b_pointwise" in src
        assert f"{kernel.name}_0b_split" not in src
        assert all(f"part0_{f}_0a = torch.empty(" in src for f in fields)
        finish = src[src.index(f"def {kernel.name}_0a_split_finish"):]
        assert f"1, {combiner}, keep_dims=True)" in finish[:finish.index("@triton.jit")]
    x = torch.randn(4, 90) * 10
    x[1, :40] = float("-inf")
    x[2, 3] = float("nan")
    for split in ({"0.SPLIT": 5}, {"0.SPLIT": 5, "0a.BLOCK_R": 4}):
        got = MODULE.softmax.build("triton", schedule=split)(x)
        want = MODULE.softmax.reference(x)
        assert torch.equal(got.isnan(), want.isnan())
        assert torch.allclose(got[~want.isnan()].double(), want[~want.isnan()], atol=1e-6)
