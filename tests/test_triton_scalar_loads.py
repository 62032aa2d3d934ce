"""A load of one element (a constant index such as `scale[0]`, or an index the program holds
as one value) inside a tile: Triton refuses a tile-shaped mask on a scalar pointer ("Mask
argument cannot be block type if pointer argument is not a block"), in its interpreter and in
the GPU compiler. Every pattern that reads such an element: pointwise, rows (single and
STRIDED with two kept indices, where all but the last kept index are one value per program),
split, loop nest and the contraction (operand and epilogue). Each agrees with the float64
reference in the interpreter and compiles for sm_90 at its sizes."""
from __future__ import annotations

import pytest

import kspec
from kspec.backends import get_backend
from kspec.verify.inputs import random_arguments
from kspec.verify.tolerance import compare, magnitude

SOURCE = """
kernel pointwise_const(x: f32[B, N], s: f32[2]) -> y: f32[B, N] {
    y[b, j] = x[b, j] * s[1]
}
kernel rows_const(x: f32[B, N], s: f32[1]) -> y: f32[B, N] {
    m[b] = max(x[b, j] * s[0] for j)
    y[b, j] = x[b, j] * s[0] - m[b]
}
kernel strided_outer_in_sum(x: f32[B, K, N], w: f32[B]) -> y: f32[B, N] {
    y[b, j] = sum(x[b, k, j] * w[b] for k)
}
kernel strided_outer_after_sum(x: f32[B, K, N], w: f32[B]) -> y: f32[B, N] {
    y[b, j] = sum(x[b, k, j] for k) * w[b]
}
kernel total_const(x: f32[B, K], s: f32[1]) -> y: f32 {
    y = sum(x[b, k] * s[0] for b, k)
}
kernel window_const(x: f32[K], w: f32[3], s: f32[1]) -> y: f32[K - 2] {
    y[i] = sum(x[i + t] * w[t] * s[0] for t) + s[0]
}
kernel matmul_const(x: f32[B, K], w: f32[K, N], s: f32[1]) -> y: f32[B, N] {
    y[b, j] = sum(x[b, k] * w[k, j] * s[0] for k) + s[0]
}
"""
SIZES = {"B": 5, "K": 7, "N": 9}
KERNELS = list(kspec.loads(SOURCE))


def sizes(kernel) -> dict[str, int]:
    return {s: SIZES[s] for s in kernel.ir.symbols}


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_one_element_loads_agree_in_the_interpreter(kernel) -> None:
    args = random_arguments(kernel.ir, sizes(kernel), 1)
    want = kernel.reference(*args)
    got = kernel.build("triton")(*args)
    (mag,) = magnitude(kernel, args)
    result = compare(got, want, kernel.ir.outputs[0].dtype, mag)
    assert result.ok, f"{kernel.name}: {result}"


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_one_element_loads_compile_for_sm_90(kernel) -> None:
    files = get_backend("triton").compile_asm(kernel.ir, arch="sm_90", shape=sizes(kernel))
    launches = files[f"{kernel.name}.sm_90.launches.txt"].splitlines()[1:]
    assert launches and any(f.endswith(".ptx") for f in files)
    if kernel.name.startswith("strided"):   # the orientation whose outer index was one value
        assert all("STRIDED=True" in line for line in launches), launches
