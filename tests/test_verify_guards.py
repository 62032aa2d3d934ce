"""Each guard of `kcompile check` catches a purpose-built bad kernel; the tolerance model and the
input strategies do what docs/VERIFY.md says."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import kspec
from kspec.dtypes import DType
from kspec.verify.candidates import verify_candidate
from kspec.verify.strategies import Case, size_candidates
from kspec.verify.tolerance import compare

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(examples=3, seed=0, max_elements=512, shrink_budget=3)

# relu(x: f32[M, N]) as a Triton module with the backend's entry point: launch(x, M, N).
TEMPLATE = '''
import torch
import triton
import triton.language as tl

_CACHE = {{}}


@triton.jit
def _relu(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + {read}, mask={load_mask}, other=0.0)
    tl.store(y_ptr + offs, {value}, mask={store_mask})


def launch(x, M, N):
    {before}
    y = torch.empty((M, N), dtype=torch.float32, device=x.device)
    n = M * N
    _relu[(triton.cdiv(n, 64),)](x, y, n, BLOCK=64)
    {after}
    return y
'''
# flat indexing needs a contiguous x (the gate also passes transposed and strided views);
# relu(NaN) is NaN in the reference, as in torch
GOOD = dict(read="offs", load_mask="offs < n",
            value="tl.maximum(x, 0.0, propagate_nan=tl.PropagateNan.ALL)",
            store_mask="offs < n", before="x = x.contiguous()", after="pass")


def relu():
    return kspec.load(ROOT / "specs" / "relu.kspec")["relu"]


def source(**changes) -> str:
    return TEMPLATE.format(**{**GOOD, **changes})


def test_the_good_hand_written_kernel_is_accepted() -> None:
    v = verify_candidate(relu(), "triton", source(), **FAST)
    assert v.status == "accepted", v.text()


def test_unwritten_tail_is_caught_by_the_poisoned_output() -> None:
    # stores skip the last element; a recycled allocation would often hold the right value
    v = verify_candidate(relu(), "triton", source(store_mask="offs < n - 1"), **FAST)
    assert v.status == "wrong" and "never written" in v.detail, v.text()


def test_mutated_input_is_a_cheat() -> None:
    v = verify_candidate(relu(), "triton", source(after="x.clamp_(min=0)"), **FAST)
    assert v.status == "cheat" and "input 'x' was modified" in v.detail, v.text()


def test_cached_result_is_a_cheat() -> None:
    cache = ("x = x.contiguous()\n    key = (M, N)\n"
             "    if key in _CACHE:\n        return _CACHE[key]")
    v = verify_candidate(relu(), "triton",
                         source(before=cache, after="_CACHE[(M, N)] = y"), **FAST)
    assert v.status == "cheat" and "cached" in v.detail, v.text()


def test_output_aliasing_the_input_is_a_cheat() -> None:
    v = verify_candidate(relu(), "triton", source(after="x.copy_(y); y = x"), **FAST)
    assert v.status == "cheat", v.text()


def test_non_finite_output_where_the_reference_is_finite() -> None:
    v = verify_candidate(relu(), "triton",
                         source(value="tl.where(offs == 0, float('inf'), tl.maximum(x, 0.0))"),
                         **FAST)
    assert v.status == "wrong" and "non-finite" in v.detail, v.text()


def test_neighbouring_read_past_the_end_is_caught() -> None:
    v = verify_candidate(relu(), "triton", source(read="offs + 1", load_mask="offs < n"), **FAST)
    assert v.status == "wrong", v.text()


def test_write_past_the_end_is_caught_by_the_canaries() -> None:
    v = verify_candidate(relu(), "triton", source(store_mask="offs < n + 1"), **FAST)
    assert v.status == "wrong" and "outside" in v.detail, v.text()


def test_compile_error() -> None:
    v = verify_candidate(relu(), "triton", source(value="tl.maximum(x, 0.0"), **FAST)
    assert v.status == "compile_error", v.text()


def test_failure_is_shrunk_and_replayable() -> None:
    # wrong only for rows longer than 6: the printed case must reproduce it
    k = relu()
    bad = source(value="tl.where(offs % N > 5, 0.0, "
                       "tl.maximum(x, 0.0, propagate_nan=tl.PropagateNan.ALL))")
    bad = bad.replace("_relu[(triton.cdiv(n, 64),)](x, y, n, BLOCK=64)",
                      "_relu[(triton.cdiv(n, 64),)](x, y, n, N, BLOCK=64)")
    bad = bad.replace("def _relu(x_ptr, y_ptr, n, BLOCK", "def _relu(x_ptr, y_ptr, n, N, BLOCK")
    v = verify_candidate(k, "triton", bad, examples=8, seed=0, max_elements=512,
                         shrink_budget=10)
    assert v.status == "wrong" and v.failure is not None, v.text()
    assert "replay" in v.failure.text() and "Case(sizes=" in v.failure.text()
    from kspec.verify.candidates import load_triton_module, triton_launcher
    from kspec.verify.runner import run_case

    case = eval(v.failure.case.replay(), {"Case": Case})
    launch = triton_launcher(k.ir, load_triton_module(bad, interpret=True))
    assert run_case(k, launch, case).status == "wrong"
    assert dict(case.sizes)["N"] > 6


# --- tolerance model -------------------------------------------------------------------------

def test_zero_output_is_not_passed_for_near_zero_values() -> None:
    want = torch.full((64,), 1e-20, dtype=torch.float64)
    assert not compare(torch.zeros(64), want, DType.f32, want.abs()).ok


def test_long_f16_reduction_rounding_is_allowed() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(4, 4096).half(), torch.randn(4096, 4).half()
    want = a.double() @ b.double()
    got = (a.float() @ b.float()).half()                    # f32 accumulation, f16 result
    mag = a.double().abs() @ b.double().abs()
    assert compare(got, want, DType.f16, mag).ok


def test_overflow_to_inf_in_the_declared_dtype_is_correct() -> None:
    want = torch.tensor([1e6, 1.0], dtype=torch.float64)    # 1e6 overflows f16
    assert compare(torch.tensor([float("inf"), 1.0]).half(), want, DType.f16).ok
    assert not compare(torch.tensor([float("nan"), 1.0]).half(), want, DType.f16).ok


def test_size_candidates_cover_the_edges() -> None:
    sizes = size_candidates(block_sizes={128}, max_size=5000)
    for n in (1, 2, 3, 7, 31, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4099):
        assert n in sizes


def test_pytest_fixture_checks_a_user_spec(kspec_check) -> None:
    reports = kspec_check(ROOT / "specs" / "relu.kspec", examples=2, max_elements=256,
                          backends=("triton",))
    assert reports and reports[0].ok


pytest_plugins = ["kspec.verify.pytest_plugin"]
