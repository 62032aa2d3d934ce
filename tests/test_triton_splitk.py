"""Split-K and the matrix-vector kernel of Triton contractions (kspec/backends/triton/splitk.py):
each branch forced by its schedule key agrees with the float64 reference under the interpreter,
the launch-time policy is kspec.lowering.policy's, and the tuner searches the new keys. (Which
kernels run at KernelBench's sizes, and that they compile for sm_90 and gfx942:
tests/test_triton_reductions.py, test_the_branch_taken_at_kernelbench_sizes and
test_every_new_branch_compiles_for_the_gpus.)"""
from __future__ import annotations

import re

import pytest
import torch

import kspec
from kspec.agent.space import Target, candidates, launch_spaces
from kspec.backends.triton.codegen import jit_kernels
from kspec.backends.triton.launcher import load_module
from kspec.backends.triton.trace import trace_launches
from kspec.lowering.policy import depth_split

SOURCE = """
kernel mm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
kernel bmm_bias_relu(a: f32[Z, M, K], b: f32[Z, K, N], bias: f32[N]) -> c: f32[Z, M, N] {
    c[z, i, j] = relu(sum(a[z, i, k] * b[z, k, j] for k) + bias[j])
}
kernel mm_f16(a: f16[M, K], b: f16[K, N]) -> c: f16[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
kernel mv_f64(a: f64[M, K], x: f64[K, N]) -> y: f64[M, N] {
    y[i, j] = sum(a[i, k] * x[k, j] for k)
}
"""

MODULE = kspec.loads(SOURCE, "splitk.kspec")


def _check(kernel, *args, schedule=None) -> None:
    got = kernel.build("triton", schedule=schedule or {})(*args)
    want = kernel.reference(*args)
    assert got.dtype == want.dtype or want.dtype == torch.float64
    err = ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()
    limit = 2e-3 if got.dtype == torch.float16 else 1e-12 if got.dtype == torch.float64 else 1e-5
    assert err < limit, (schedule, err)


def _launches(kernel, env: dict[str, int], arch: str = "sm_90") -> list[str]:
    module = load_module(kernel.source("triton"), interpret=False)
    params = {jk.name: [p.split(":")[0] for p in jk.params if "constexpr" not in p]
              for jk in jit_kernels(kernel.ir)}
    return [c.describe() for c in trace_launches(kernel.ir, module, params, env, arch)]


@pytest.mark.parametrize("split", [1, 2, 3, 8])
def test_split_k_on_the_tensor_cores_agrees_with_the_reference(split: int) -> None:
    """Slices of 300 in whole 32-deep steps (the last one short), the epilogue after the sum;
    8 slices of 10 steps leave none empty as the policy does; forced ones may be."""
    torch.manual_seed(split)
    _check(MODULE.mm, torch.randn(20, 300), torch.randn(300, 24), schedule={"0.SPLIT_K": split})
    _check(MODULE.bmm_bias_relu, torch.randn(2, 9, 70), torch.randn(2, 70, 37), torch.randn(37),
           schedule={"0.SPLIT_K": split})


def test_split_k_keeps_f16_outputs_and_transposed_operands() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(300, 12).t(), torch.randn(40, 300).t()    # both read across memory
    _check(MODULE.mm, a, b, schedule={"0.SPLIT_K": 3})
    _check(MODULE.mm_f16, torch.randn(12, 200).half(), torch.randn(200, 9).half(),
           schedule={"0.SPLIT_K": 4})


def test_the_interpreter_splits_a_deep_product_of_one_tile_by_itself() -> None:
    """8 x 8 over 4100: one 32 x 32 tile of the interpreter's 4 'multiprocessors', 129 steps
    of 32: four slices, as policy.depth_split gives."""
    torch.manual_seed(1)
    a, b = torch.rand(8, 4100), torch.rand(4100, 8)
    src = MODULE.mm.source("triton")
    assert "_split_k(triton.cdiv((M), BLOCK_M) * triton.cdiv((N), BLOCK_N) * 1, " \
           "triton.cdiv((K), BLOCK_K), device)" in src
    assert depth_split(1, 129, 4) == 4
    _check(MODULE.mm, a, b)


@pytest.mark.parametrize("schedule", [None, {"0m.SPLIT_K": 3}, {"0m.ALONG_K": False},
                                      {"0m.BLOCK_K": 16, "0m.SPLIT_K": 7}], ids=str)
def test_the_matvec_kernel_agrees_with_the_reference(schedule) -> None:
    """Matrix-vector, vector-matrix and 3 columns; rows along memory or across it (A^T);
    slices of the depth (forced) added by the splitk_sum kernel."""
    torch.manual_seed(2)
    _check(MODULE.mm, torch.randn(37, 150), torch.randn(150, 1), schedule=schedule)
    _check(MODULE.mm, torch.randn(1, 90), torch.randn(90, 45), schedule=schedule)
    _check(MODULE.mm, torch.randn(130, 21).t(), torch.randn(130, 3), schedule=schedule)
    _check(MODULE.bmm_bias_relu, torch.randn(3, 2, 40), torch.randn(3, 40, 5), torch.randn(5),
           schedule=schedule)


def test_a_long_matvec_splits_by_the_rows_policy_and_keeps_f64() -> None:
    """One row of 40000 on the interpreter: _row_split gives 2 slices of 20000; f64 partials
    for an f64 sum."""
    torch.manual_seed(3)
    _check(MODULE.mm, torch.rand(1, 40000), torch.rand(40000, 1))
    _check(MODULE.mv_f64, torch.rand(2, 40000, dtype=torch.float64),
           torch.rand(40000, 1, dtype=torch.float64), schedule={"0m.SPLIT_K": 3})
    src = MODULE.mv_f64.source("triton")
    assert "part_0 = torch.empty((SPLIT_K * (M) * (N) * 1 if SPLIT_K > 1 else 1,), " \
           "dtype=torch.float64, device=device)" in src


def test_the_generated_split_policy_is_the_shared_one() -> None:
    """The module's _split_k helper and kspec.lowering.policy.depth_split (which the C++
    split-K uses too) agree over tiles, steps and device sizes."""
    src = MODULE.mm.source("triton")
    namespace: dict = {}
    exec(re.search(r"(def _split_k\(.*?)\n\n", src, re.S).group(1), namespace)
    gpu = type("Device", (), {"type": "cuda"})()
    for sms in (4, 108, 132, 304):
        namespace["_multiprocessors"] = lambda device, sms=sms: sms
        for tiles in (1, 2, 3, 7, 8, 64, 131, 132, 500):
            for steps in (1, 2, 31, 63, 64, 65, 497, 1000, 16384, 10 ** 6):
                assert namespace["_split_k"](tiles, steps, gpu) == \
                    depth_split(tiles, steps, sms), (sms, tiles, steps)
    assert depth_split(8, 16384, 132) == 33        # KernelBench level1/6 on an H200
    assert depth_split(3055, 47, 132) == 1         # level1/8: the tiles fill the GPU


def test_the_tuner_searches_the_split_and_the_matvec_keys() -> None:
    h200 = Target.for_arch("sm_90")
    deep = {"M": 256, "N": 256, "K": 524288}
    src = MODULE.mm.source("triton")
    (space,) = launch_spaces(MODULE.mm.ir, src, deep)
    assert space.pattern == "contraction" and "SPLIT_K" in space.keys
    keep, _ = candidates(MODULE.mm.ir, src, deep, h200, limit=8)
    assert all(c.schedule["0.SPLIT_K"] > 1 for c in keep)      # 4 to 16 tiles on 132 SMs
    square = {"M": 4096, "N": 4096, "K": 4096}
    keep, _ = candidates(MODULE.mm.ir, src, square, h200, limit=8)
    assert keep and all("0.SPLIT_K" not in c.schedule for c in keep)   # 256+ tiles: not searched
    (space,) = launch_spaces(MODULE.mm.ir, src, {"M": 2048, "N": 1, "K": 2 ** 20})
    assert space.prefix == "0m" and space.pattern == "matvec"
    assert {"BLOCK_K", "SPLIT_K", "WARPS"} <= set(space.keys)


def test_the_plan_prints_the_split_and_its_sum() -> None:
    from kspec.backends.triton.codegen import plan_text

    text = plan_text(MODULE.bmm_bias_relu.ir)
    assert "if (M) <= 4 or (N) <= 4:  # a matrix-vector product" in text
    assert "SPLIT_K = _row_split(triton.cdiv((M), BLOCK_M) * triton.cdiv((N), BLOCK_N) * " \
           "(Z), (K), 1, device)" in text
    assert "SPLIT_K = _split_k(" in text and "if SPLIT_K > 1:  # the slices' partials added" \
        in text
    assert "launch 0s: splitk_sum -> c" in text
    # two 128 x 64 tiles want 132 slices of 8192 steps: 63 steps each leave 131
    launches = _launches(MODULE.bmm_bias_relu, {"Z": 2, "M": 64, "N": 64, "K": 2 ** 18})
    assert launches[0].startswith("bmm_bias_relu_0_contraction: grid 2x131,"), launches
    assert "SPLIT_K=131 COMPENSATED=False" in launches[0]
    assert launches[1].startswith("bmm_bias_relu_0s_splitk_sum: grid 8, 4 warps, 3 stages, "
                                  "BLOCK_M=16 BLOCK_N=64 SPLIT_K=131"), launches


def test_the_drawn_cases_take_every_contraction_branch() -> None:
    """The threshold data (thresholds.py) predicts what the host code does on every case the
    gate draws for a matmul, and the draws reach both sides of the matvec and both split
    choices (the host code runs with recording stand-ins for the kernels)."""
    from test_gate_branches import dry_run_branches

    from kspec.verify.candidates import BUDGET_MB, launch_branches
    from kspec.verify.coverage import branch_cases, coverage
    from kspec.verify.strategies import explicit_cases, first_case

    k = MODULE.mm
    branches = launch_branches(k.ir, "triton", "cpu")
    assert {"0.matvec", "0m.SPLIT_K", "0.SPLIT_K", "0.COMPENSATED"} <= {b.name for b in branches}
    drawn = branch_cases(k.ir, branches, int(BUDGET_MB["cpu"] * 2 ** 20))
    cases = [first_case(k.ir), *explicit_cases(k.ir), *drawn.cases]
    records = dry_run_branches(k, cases)
    for case, record in zip(cases, records):
        took = coverage(branches, [record])
        for b in branches:
            predicted = {v.label for v in b.values if any(r.holds(case.env) for r in v.regions)}
            assert predicted <= set(took[b.name]), (str(case), b.name, predicted, took)
    seen = coverage(branches, records)
    missing = {f"{b.name}={v.label}" for b in branches for v in b.values
               if v.label not in seen[b.name]}
    # a compensated (unsplit 2^16-deep) slice needs 385+ rows of 2^16: past the CPU budget
    assert missing == {"0.COMPENSATED=compensated", "INDEX64=64-bit"}, (seen, drawn.unreached)
