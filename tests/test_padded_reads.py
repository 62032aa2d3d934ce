"""Padded reads (language 1.1): `pad(x, v)[...]`, shape expressions in indices and exact index
division; ranges on an intermediate's left-hand side (1.2: `conv[n < N, p < H] = ...`). The float64 reference against PyTorch's padded convolutions, pools and transposed
convolutions at odd sizes (strides, paddings and dilations PyTorch takes as arguments, here
written into the index), and every CPU backend (Triton's interpreter, the C++ emulation of the
generic lowering) against the reference. Misuse is covered by tests/golden/errors/pad_*.
"""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

import kspec
from kspec.backends.cxx import emulate
from kspec.lowering.plan import plan_kernel
from kspec.printer import format_module
from kspec.verify.tolerance import compare, magnitude

os.environ.setdefault("TRITON_INTERPRET", "1")

needs_cxx = pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")


def _kernel(src: str) -> kspec.Kernel:
    (k,) = list(kspec.loads(src))
    return k


def _f64(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# (source, PyTorch on the same float64 inputs, input shapes): odd sizes, paddings that reach
# past both ends, strides that leave a remainder
CASES = {
    "conv2d_pad2_stride3": (
        """kernel k(x: f32[N, C, H, W], w: f32[O, C, KH, KW]) -> y: f32[N, O, (H + 4 - KH) // 3 + 1,
                                                              (W + 4 - KW) // 3 + 1] {
            y[n, o, p, q] = sum(pad(x, 0)[n, c, 3*p + r - 2, 3*q + s - 2] * w[o, c, r, s]
                                for c, r, s)
        }""",
        lambda x, w: F.conv2d(x, w, stride=3, padding=2), [(2, 3, 9, 7), (4, 3, 5, 3)]),
    "conv2d_dilated_padded": (
        """kernel k(x: f32[N, C, H, W], w: f32[O, C, 3, 3]) -> y: f32[N, O, H - 2, W] {
            y[n, o, p, q] = sum(pad(x, 0)[n, c, 2*r + p - 1, 3*s + q - 3] * w[o, c, r, s]
                                for c, r, s)
        }""",
        lambda x, w: F.conv2d(x, w, padding=(1, 3), dilation=(2, 3)), [(1, 2, 7, 5), (3, 2, 3, 3)]),
    "max_pool1d_pad_dilated": (
        """kernel k(x: f32[N, L]) -> y: f32[N, (L + 2 - 7) // 2 + 1] {
            y[n, p] = max(pad(x, -inf)[n, 2*p + 3*k - 1] for k < 3)
        }""",
        lambda x: F.max_pool1d(x[:, None], 3, stride=2, padding=1, dilation=3)[:, 0], [(3, 11)]),
    "avg_pool2d_pad": (
        """kernel k(x: f32[N, C, H, W]) -> y: f32[N, C, (H - 1) // 2 + 1, (W - 1) // 2 + 1] {
            y[n, c, p, q] = mean(pad(x, 0)[n, c, 2*p + r - 1, 2*q + s - 1] for r < 3, s < 3)
        }""",
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), [(2, 3, 7, 6)]),
    "conv_transpose1d_stride3_pad2": (
        """kernel k(x: f32[N, C, L], w: f32[C, O, K]) -> y: f32[N, O, 3*L + K - 7] {
            y[n, o, p] = sum(pad(x, 0)[n, c, (p + 2 - k) / 3] * w[c, o, k] for c, k)
        }""",
        lambda x, w: F.conv_transpose1d(x, w, stride=3, padding=2), [(2, 3, 5), (3, 4, 5)]),
    "conv_transpose2d_symbol_stride": (
        """kernel k(x: f32[N, C, H, W], w: f32[C, O, 3, 3], st: f32[S]) -> y: f32[N, O,
                                                        S*H - S + 1, S*W - S + 1] {
            y[n, o, p, q] = sum(pad(x, 0)[n, c, (p + 1 - r) / S, (q + 1 - s) / S] * w[c, o, r, s]
                                for c, r, s)
        }""",
        None, [(2, 3, 4, 5), (3, 2, 3, 3), (3,)]),
    # language 1.2: a padded convolution read only by a pool has its ranges on its left side
    "conv2d_pad_pool_lhs_ranges": (
        """kernel k(x: f32[N, C, H, W], w: f32[O, C, 3, 3]) -> y: f32[N, O, H // 2, W // 2] {
            conv[n < N, o, p < H, q < W] = sum(pad(x, 0)[n, c, p + r - 1, q + s - 1]
                                               * w[o, c, r, s] for c, r, s)
            y[n, o, p, q] = max(conv[n, o, 2*p + a, 2*q + b] for a < 2, b < 2)
        }""",
        lambda x, w: F.max_pool2d(F.conv2d(x, w, padding=1), 2), [(2, 3, 7, 6), (4, 3, 3, 3)]),
    "integer_and_bool_pads": (
        """kernel k(x: i32[N], m: bool[N]) -> (y: i64[N], z: bool[N]) {
            y[i] = pad(x, -7)[i + 2] + pad(x, 3)[(i + 1) / 3]
            z[i] = pad(m, true)[i - 1]
        }""",
        None, [(9,), (9,)]),
}


def _inputs(name: str) -> list[torch.Tensor]:
    src, _, shapes = CASES[name]
    out = []
    for n, (p, shape) in enumerate(zip(_kernel(src).ir.tensor_params, shapes)):
        t = _f64(*shape, seed=n)
        out.append((t * 5).to(p.dtype.torch) if p.dtype.is_int else
                   t.to(p.dtype.torch) if p.dtype.is_float else t > 0)
    return out


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[1] is not None])
def test_reference_agrees_with_torch(name: str) -> None:
    src, torch_fn, _ = CASES[name]
    args = _inputs(name)
    got = _kernel(src).reference(*args)
    torch.testing.assert_close(got, torch_fn(*(a.double() for a in args)), rtol=1e-9, atol=1e-10)


def test_reference_of_a_symbolic_stride_and_of_integer_pads() -> None:
    x, w, st = _inputs("conv_transpose2d_symbol_stride")
    got = _kernel(CASES["conv_transpose2d_symbol_stride"][0]).reference(x, w, st)
    torch.testing.assert_close(got, F.conv_transpose2d(x.double(), w.double(), stride=3,
                                                       padding=1))
    x = torch.arange(9, dtype=torch.int32) - 4
    m = torch.tensor([True, False] * 4 + [False])
    y, z = _kernel(CASES["integer_and_bool_pads"][0]).reference(x, m)
    shifted = torch.cat([x[2:].long(), torch.full((2,), -7)])
    third = torch.tensor([x[(i + 1) // 3] if (i + 1) % 3 == 0 else 3 for i in range(9)])
    assert torch.equal(y, shifted + third)
    assert torch.equal(z, torch.cat([torch.tensor([True]), m[:-1]]))


def _agree(k: kspec.Kernel, launch, args: list) -> None:
    want, got = k.reference(*args), launch(*args)
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for o, g, w, mag in zip(k.ir.outputs, got, want, magnitude(k, args)):
        result = compare(g, w, o.dtype, mag)
        assert result.ok, f"{o.name}: {result}"


@pytest.mark.parametrize("name", list(CASES))
def test_triton_interpreter_agrees_with_reference(name: str) -> None:
    k = _kernel(CASES[name][0])
    _agree(k, k.build("triton"), _inputs(name))


@needs_cxx
@pytest.mark.parametrize("lowering", ["plan", "generic"])
@pytest.mark.parametrize("name", list(CASES))
def test_cxx_emulation_agrees_with_reference(name: str, lowering: str) -> None:
    k = _kernel(CASES[name][0])
    _agree(k, emulate.build(k.ir, lowering), _inputs(name))


def test_padded_convolutions_are_contractions() -> None:
    """The implicit GEMM takes padded operands: the pattern is the unpadded conv's."""
    for name in ("conv2d_pad2_stride3", "conv_transpose1d_stride3_pad2"):
        (launch,) = plan_kernel(_kernel(CASES[name][0]).ir).launches
        assert launch.pattern == "contraction", name


def test_generated_code_tests_only_the_bounds_ranges_leave_open() -> None:
    """conv2d_pad2_stride3 tests its two padded dims at both ends; n and c are never tested
    (their ranges are x's dims)."""
    k = _kernel(CASES["conv2d_pad2_stride3"][0])
    load = next(line for line in k.source("triton").splitlines() if "tl.load(x_ptr" in line)
    assert "other=0.0" in load
    assert [t in load for t in (">= 0", "< (H)", "< (W)", "< (N)", "< (C)")] == \
        [True, True, True, False, False]
    # C++: x's elements are copied where the tests pass, zero-filled elsewhere, in both depth
    # orders (the window's and the flattened)
    tests = [line.strip() for line in k.source("cuda").splitlines()
             if line.strip().startswith("const bool ok =") and "< H" in line]
    assert len(tests) == 2
    for ok in tests:
        assert ok.count("0 <= ") == 2 and "< H &&" in ok and ok.endswith("< W;")
        assert "< N" not in ok and "< C " not in ok


def test_printed_padded_reads_parse_back_equal() -> None:
    for name, (src, _, _) in CASES.items():
        module = kspec.loads(src).ir
        assert kspec.loads(format_module(module)).ir.kernels == module.kernels, name


def test_pad_stays_an_ordinary_name() -> None:
    """`pad` is special only as pad(...)[...]: a tensor or index may still be called pad."""
    k = _kernel("kernel k(pad: f32[N]) -> y: f32[N] {\n y[i] = pad[i] * 2 }")
    x = torch.randn(5)
    torch.testing.assert_close(k.reference(x), x.double() * 2)


def test_rope_shape_expression_index() -> None:
    k = _kernel("kernel k(x: f32[B, D]) -> y: f32[B, D // 2] {\n"
                "    y[b, d] = x[b, d + D // 2] * 2 }")
    x = torch.randn(3, 7)
    torch.testing.assert_close(k.reference(x), x.double()[:, 3:6] * 2)
