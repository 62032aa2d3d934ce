"""C++ convolutions on the tensor cores (kspec/backends/cxx/staging.py, templates/contraction.j2):
the implicit GEMM's two depth orders and its operand staging, run by the CPU emulation of the
f32 tensor-core path against the float64 reference under the gate's f32 tolerance.

A convolution's depth is walked flattened ((c, r, s) split per element) or one window offset
per step with the channels in tiles (`_window` kernels, from half a depth step of channels, or as
"0.window" forces). Rows of several indices are split once per thread (the row offset of a
plain load, the index variables otherwise); f32 plain loads are copied element by element
(zero-filled outside and in zero padding). Each case runs both orders in both emulated tiles
(32 x 32 x 32 and 16 x 16 x 8: partial tiles, channel tiles with one live channel) and checks
which kernel was launched; the cases cover NCHW (A staged along its rows) and NHWC (along the
depth), padding with zero and with a nonzero value, a stride, a prologue, conv1d.
"""
from __future__ import annotations

import re

import pytest
import torch

import kspec
from kspec.backends.cxx import emulate
from kspec.dtypes import DType
from kspec.lowering.plan import window_min_channels
from kspec.verify.inputs import random_arguments
from kspec.verify.tolerance import compare, magnitude

needs_cxx = pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")
TF32X3 = {"precision": "tf32x3"}

CASES = {
    "nchw": ("""kernel conv(x: f32[N, C, H, W], w: f32[O, C, KH, KW], bias: f32[O])
        -> y: f32[N, O, H - KH + 1, W - KW + 1] {
    y[n, o, p, q] = sum(x[n, c, p + r, q + s] * w[o, c, r, s] for c, r, s) + bias[o]
}""", {"N": 2, "H": 7, "W": 6, "O": 5, "KH": 3, "KW": 2}),
    "nhwc": ("""kernel conv(x: f32[N, H, W, C], w: f32[KH, KW, C, O])
        -> y: f32[N, H - KH + 1, W - KW + 1, O] {
    y[n, p, q, o] = sum(x[n, p + r, q + s, c] * w[r, s, c, o] for r, s, c)
}""", {"N": 2, "H": 6, "W": 7, "O": 9, "KH": 2, "KW": 3}),
    "zero_pad_stride2": ("""kernel conv(x: f32[N, C, H, W], w: f32[O, C, 3, 3])
        -> y: f32[N, O, (H - 1) // 2 + 1, (W - 1) // 2 + 1] {
    y[n, o, p, q] = sum(pad(x, 0)[n, c, 2 * p + r - 1, 2 * q + s - 1] * w[o, c, r, s]
                        for c, r, s)
}""", {"N": 3, "H": 9, "W": 8, "O": 6}),
    "one_pad": ("""kernel conv(x: f32[N, C, H, W], w: f32[O, C, 3, 3])
        -> y: f32[N, O, H, W] {
    y[n, o, p, q] = sum(pad(x, 1.0)[n, c, p + r - 1, q + s - 1] * w[o, c, r, s] for c, r, s)
}""", {"N": 2, "H": 5, "W": 6, "O": 7}),
    "prologue": ("""kernel conv(x: f32[N, C, H, W], w: f32[O, C, KH, KW])
        -> y: f32[N, O, H - KH + 1, W - KW + 1] {
    y[n, o, p, q] = sum(relu(x[n, c, p + r, q + s]) * w[o, c, r, s] for c, r, s)
}""", {"N": 2, "H": 6, "W": 6, "O": 4, "KH": 3, "KW": 3}),
    "conv1d": ("""kernel conv(x: f32[N, C, L], w: f32[O, C, K]) -> y: f32[N, O, L - K + 1] {
    y[n, o, p] = sum(x[n, c, p + r] * w[o, c, r] for c, r)
}""", {"N": 3, "L": 20, "O": 6, "K": 4}),
}


class Recorder:
    """The emulation's runtime, noting each launched function."""

    def __init__(self, runtime):
        self.runtime, self.functions = runtime, []

    def launch(self, function, *args, **kwargs):
        self.functions.append(function)
        return self.runtime.launch(function, *args, **kwargs)


@needs_cxx
@pytest.mark.parametrize("tile", [None, "16x16x8w1s1"], ids=["32x32x32", "16x16x8"])
@pytest.mark.parametrize("name", CASES)
def test_both_depth_orders_agree_with_reference(name: str, tile: str | None) -> None:
    src, sizes = CASES[name]
    kernel = kspec.loads(src)["conv"]
    for channels in (3, 8, 16, 19):
        args = random_arguments(kernel.ir, {**sizes, "C": channels}, seed=channels)
        want = kernel.reference(*args)
        for forced in (None, True, False):
            schedule = {**TF32X3, **({"0.tile": tile} if tile else {}),
                        **({} if forced is None else {"0.window": forced})}
            fn = emulate.build(kernel.ir, schedule=schedule)
            fn.runtime = recorder = Recorder(fn.runtime)
            result = compare(fn(*args), want, DType.f32, magnitude(kernel, args)[0])
            (launched,) = recorder.functions
            depth_step = int(re.search(r"_\d+x\d+x(\d+)w", launched).group(1))
            window = channels >= window_min_channels(depth_step) if forced is None else forced
            assert launched.endswith("_window") == window, launched
            assert result.ok, f"C={channels} window={window}: {result.detail}"


@needs_cxx
def test_staging_takes_the_expected_path() -> None:
    """Plain f32 loads are element copies (NCHW: A's row offset hoisted, along its rows;
    NHWC: along the depth); a prologue or a nonzero pad keeps the computed elements, with
    the row's index variables hoisted."""
    def source(name: str) -> str:
        return kspec.loads(CASES[name][0])["conv"].source("cuda")

    nchw, nhwc, prologue, one_pad = (source(n) for n in ("nchw", "nhwc", "prologue", "one_pad"))
    assert "A_ro[it % A_RIT][e]" in nchw and "kspec_copy4(dst + e, ok ? x + A_ro" in nchw
    assert "A_ro[it]" in nhwc and "template <int BM" in nhwc and "bool WINDOW>" in nhwc
    for text in (prologue, one_pad):
        assert "A_rv0[it % A_RIT][e]" in text and "kspec_copy4(dst + e, ok ? x" not in text
        assert "dst[e] = " in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (CUDA)")
@pytest.mark.parametrize("backend", ["cuda", "hip"])
@pytest.mark.parametrize("name", CASES)
def test_gpu_both_depth_orders_agree_with_reference(name: str, backend: str) -> None:
    """The same on the GPU's tensor cores (HIP source compiled for NVIDIA takes the CUDA
    paths), at sizes that fill several tiles in both tile sizes."""
    src, sizes = CASES[name]
    kernel = kspec.loads(src)["conv"]
    big = {k: v * 3 if k in ("H", "W", "L", "O") else v for k, v in sizes.items()}
    for channels in (3, 64):
        args = [a.cuda() for a in random_arguments(kernel.ir, {**big, "C": channels}, seed=1)]
        want = kernel.reference(*args)
        for forced in (True, False):
            fn = kernel.build(backend, schedule={**TF32X3, "0.window": forced})
            fn.runtime = recorder = Recorder(fn.runtime)
            result = compare(fn(*args), want, DType.f32, magnitude(kernel, args)[0])
            assert all(f.endswith("_window") == forced for f in recorder.functions
                       if "contraction" in f), recorder.functions
            assert result.ok, f"C={channels} window={forced}: {result.detail}"
