"""The C++ launcher's per-signature cache (kspec/backends/cxx/launch.py): a call with the
signature of an earlier one reuses its binding and launch choices, and only that."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import kspec
from kspec.backends.cxx import emulate
from kspec.errors import KspecLaunchError
from kspec.verify.tolerance import compare, magnitude

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("clang++") is None,
                                reason="no host C++ compiler for the CPU emulation")


def _check(kernel, fn, args) -> None:
    got = fn(*args)
    got = got if isinstance(got, tuple) else (got,)
    want = kernel.reference(*args)
    want = want if isinstance(want, tuple) else (want,)
    for decl, g, w, m in zip(kernel.ir.outputs, got, want, magnitude(kernel, list(args))):
        assert compare(g, w, decl.dtype, m).ok


def test_calls_reuse_only_their_own_signature() -> None:
    kernel = kspec.load(ROOT / "specs" / "layernorm.kspec")["layernorm"]
    fn = emulate.build(kernel.ir)
    w, b = torch.randn(24).bfloat16(), torch.randn(24).bfloat16()
    x = torch.randn(5, 25).bfloat16()
    calls = [(x[:, :24].contiguous(), w, b),       # contiguous, aligned
             (x[:, 1:], w, b),                      # a view: strided rows, odd alignment
             (x[:, :24].contiguous(), w, b, 0.5),   # another eps
             (x[:, :24].contiguous(), w, b, torch.tensor(0.25)),   # eps as a 0-dim tensor
             (torch.randn(3, 24).bfloat16(), w, b)]  # another shape
    for args in calls + calls:                      # the second round from the cache
        _check(kernel, fn, args)
    assert len(fn._prepared) == len(calls)
    y1 = fn(*calls[0])[0]
    assert fn(*calls[0])[0].data_ptr() != y1.data_ptr()   # fresh outputs every call


def test_bad_calls_are_checked_every_time() -> None:
    kernel = kspec.load(ROOT / "specs" / "softmax.kspec")["softmax"]
    fn = emulate.build(kernel.ir)
    fn(torch.randn(4, 8))
    for _ in range(2):
        with pytest.raises(KspecLaunchError):
            fn(torch.randn(4, 8).double())
