"""The derived `<name>_vjp` kernels through Triton's interpreter: each agrees with its float64
reference at the small odd sizes tests/test_gpu_grad.py draws first for Triton. (The GPU test
found attention's dq and dk all NaN at B=3, H=2, S=9, D=4, T=9: the contraction's computed
operand dp * p + where(s == m, dm / ties, 0) was 0 / 0 in the tile's padding, and the
tensor cores' sum spread it over the tile; no CPU test ran a backward kernel there.)"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

import kspec
from kspec.autodiff import vjp_kernel
from kspec.verify.inputs import choose_sizes, random_arguments
from kspec.verify.tolerance import compare, magnitude
from test_grad import CASES

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("spec", CASES)
def test_vjp_kernel_agrees_with_reference_under_the_interpreter(spec: str) -> None:
    forward = kspec.load(SPECS / f"{spec}.kspec")[spec]
    v = kspec.Kernel(vjp_kernel(forward.ir), forward.module)
    env = choose_sizes(v.ir, random.Random(f"{spec}/triton"), high=9)
    args = random_arguments(v.ir, env, seed=0)
    got = _as_tuple(v.build("triton")(*args))
    want = _as_tuple(v.reference(*args))
    for decl, g, w, mag in zip(v.ir.outputs, got, want, magnitude(v, args)):
        result = compare(g, w, decl.dtype, mag)
        assert result.ok, f"{decl.name} at {env}: {result.detail}"
