"""The Triton backend on a CUDA GPU: every spec agrees with the reference at several shapes,
including odd ones and ones larger than a tile. Skipped without a GPU."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

import kspec
from kspec.verify.inputs import choose_sizes, random_arguments
from kspec.verify.tolerance import compare, magnitude

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.kspec"))


def kernels():
    for path in SPECS:
        for k in kspec.load(path):
            yield pytest.param(k, id=k.name)


@pytest.mark.parametrize("kernel", kernels())
def test_gpu_agrees_with_reference(kernel) -> None:
    fn = kernel.build("triton")
    rng = random.Random(kernel.name)
    # small odd sizes, then sizes past one tile (rows longer than BLOCK_R use the looped form)
    envs = [choose_sizes(kernel.ir, rng, high=9), choose_sizes(kernel.ir, rng, low=17, high=70)]
    if len(kernel.ir.symbols) <= 2:
        envs.append(choose_sizes(kernel.ir, rng, low=300, high=9000))
    for n, env in enumerate(envs):
        args = random_arguments(kernel.ir, env, seed=n)
        want = kernel.reference(*args)
        gpu_args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in args]
        got = fn(*gpu_args)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        for decl, g, w, mag in zip(kernel.ir.outputs, got, want, magnitude(kernel, args)):
            assert g.is_cuda and g.dtype == decl.dtype.torch
            result = compare(g.cpu(), w, decl.dtype, mag)
            assert result.ok, f"{decl.name} at {env}: {result.detail}"
