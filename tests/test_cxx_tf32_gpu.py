"""The f32 tensor-core contractions of the C++ backends on a GPU (the CPU tests,
tests/test_cxx_tf32.py, cannot run the fragment layouts): every operand layout, batched, an
epilogue and a prologue, through wgmma (sm_90a's default) and mma.sync (forced with
{"tensor_cores": "mma_sync"}), CUDA and HIP source on NVIDIA, at 1 x 1 x 1, odd sizes, sizes
taking the large tile and its 16-byte copies, strided operands and split-K, against the
float64 reference; and tf32x3's error at 512 and 4096 deep on torch.rand operands against
cuBLAS's IEEE SGEMM's and the IEEE loop nest's. The C++ backends' default precision is "ieee"
(the loop nest): every test here asks for "tf32x3" by name.

Skipped without an NVIDIA GPU of compute capability 8.0 or later.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import kspec
from kspec.dtypes import DType
from kspec.verify.inputs import random_arguments
from kspec.verify.tolerance import compare, magnitude

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.version.hip is not None
    or torch.cuda.get_device_capability() < (8, 0),
    reason="needs an NVIDIA GPU with TF32 tensor cores (sm_80 or later)")

ROOT = Path(__file__).resolve().parent.parent
KERNELS = kspec.load(ROOT / "bench" / "specs" / "f32_gemm.kspec")
LAYOUTS = ["matmul_f32", "matmul_nt_f32", "matmul_tn_f32", "matmul_tt_f32", "bmm_f32",
           "matmul_bias_gelu_f32", "relu_matmul_f32"]
SIZES = [{"M": 1, "N": 1, "K": 1, "B": 1}, {"M": 37, "N": 29, "K": 45, "B": 3},
         {"M": 300, "N": 260, "K": 200, "B": 2}, {"M": 256, "N": 384, "K": 512, "B": 2}]
TF32X3 = {"precision": "tf32x3"}


def _check(kernel, fn, what: str) -> None:
    for n, sizes in enumerate(SIZES):
        env = {s: sizes[s] for s in kernel.ir.symbols}
        cpu = random_arguments(kernel.ir, env, seed=n)
        for strided in (False, True):
            args = [a.mT.contiguous().mT if strided and a.dim() >= 2 else a for a in cpu]
            got = fn(*[a.cuda() for a in args])
            torch.cuda.synchronize()
            result = compare(got.cpu(), kernel.reference(*args), DType.f32,
                             magnitude(kernel, args)[0])
            assert result.ok, f"{what} at {sizes}, strided={strided}: {result.detail}"


@pytest.mark.parametrize("schedule", [{}, {"tensor_cores": "mma_sync"}, {"splitk": 3}],
                         ids=["default", "mma_sync", "splitk3"])
@pytest.mark.parametrize("name", LAYOUTS)
def test_cuda_f32_contractions_agree_with_reference(name: str, schedule: dict) -> None:
    kernel = KERNELS[name]
    if schedule.get("tensor_cores") == "mma_sync" and torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("mma.sync is already the default path below sm_90")
    _check(kernel, kernel.build("cuda", schedule={**TF32X3, **schedule}), f"cuda {schedule}")


@pytest.mark.parametrize("name", ["matmul_tt_f32", "matmul_bias_gelu_f32"])
def test_hip_on_nvidia_f32_contractions_agree_with_reference(name: str) -> None:
    kernel = KERNELS[name]
    _check(kernel, kernel.build("hip", schedule=TF32X3), "hip")


@pytest.mark.parametrize("schedule", [{}, {"tensor_cores": "mma_sync"}],
                         ids=["default", "mma_sync"])
@pytest.mark.parametrize("depth", [512, 4096])
def test_tf32x3_is_more_accurate_than_ieee_sgemm(depth: int, schedule: dict) -> None:
    """At 1024 x 1024 x depth on torch.rand operands (KernelBench's inputs; positive terms, so
    the tensor cores' truncation errors add up): tf32x3 is at least 2x closer to float64 than
    cuBLAS's IEEE SGEMM (TF32 off) and within 8x the IEEE loop nest's error (expected: 5x and
    15x better than SGEMM at 512 and 4096, about 3x the loop nest's, from the emulation's model
    of truncated sums); one TF32 product (allow_tf32) is much further. Before each depth step's
    sums were compensated, 4096 deep was 4x worse than SGEMM (H200: 9.9e-6 vs 2.4e-6)."""
    kernel = KERNELS["matmul_f32"]
    if schedule and torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("mma.sync is already the default path below sm_90")
    g = torch.Generator(device="cuda").manual_seed(depth)
    a = torch.rand(1024, depth, device="cuda", generator=g)
    b = torch.rand(depth, 1024, device="cuda", generator=g)
    want = a.double() @ b.double()
    torch.backends.cuda.matmul.allow_tf32 = False

    def error(c: torch.Tensor) -> float:
        return ((c.double() - want).abs().max() / want.abs().max()).item()
    errors = {"sgemm": error(a @ b),
              "ieee": error(kernel.build("cuda", schedule={"precision": "ieee"})(a, b)),
              "tf32x3": error(kernel.build("cuda", schedule={**TF32X3, **schedule})(a, b)),
              "tf32": error(kernel.build("cuda", schedule=schedule, allow_tf32=True)(a, b))}
    assert errors["tf32x3"] <= errors["sgemm"] / 2, errors
    assert errors["tf32x3"] <= 8 * errors["ieee"], errors
    assert errors["tf32"] > 10 * errors["sgemm"], errors
