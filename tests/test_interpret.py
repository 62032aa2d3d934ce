"""kspec's tree reduction inside Triton's interpreter (kspec/backends/triton/interpret.py): the
combiner sees adjacent slices in order, so a combiner that is associative but not commutative
(the first nonzero value) gives the sequential answer; tuples, keep_dims and a whole-block
reduction keep the interpreter's contract."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from kspec.backends.triton.launcher import load_module  # noqa: E402

SOURCE = '''
import triton
import triton.language as tl


@triton.jit
def _first_nonzero(a, ia, b, ib):
    keep = a != 0
    return tl.where(keep, a, b), tl.where(keep, ia, ib)


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def rows(x_ptr, value_ptr, index_ptr, total_ptr, M: tl.constexpr, N: tl.constexpr):
    offs = tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :]
    x = tl.load(x_ptr + offs)
    index = tl.broadcast_to(tl.arange(0, N)[None, :], (M, N))
    value, where = tl.reduce((x, index), 1, _first_nonzero, keep_dims=True)
    tl.store(value_ptr + tl.arange(0, M)[:, None], value)
    tl.store(index_ptr + tl.arange(0, M)[:, None], where)
    tl.store(total_ptr, tl.reduce(x, None, _add))
'''


def test_tree_reduction_keeps_the_order_of_the_elements() -> None:
    module = load_module(SOURCE, interpret=True, prefix="kspec_test_interpret")
    x = torch.zeros(8, 32)
    want_index = torch.randint(0, 32, (8,))
    for r, c in enumerate(want_index.tolist()):
        x[r, c] = r + 1.0
        x[r, c + 1:] = torch.randn(31 - c)     # later nonzeros must lose
    value, index, total = torch.empty(8), torch.empty(8, dtype=torch.int32), torch.empty(1)
    module.rows[(1,)](x, value, index, total, 8, 32)
    assert index.tolist() == want_index.tolist()
    assert value.tolist() == [r + 1.0 for r in range(8)]
    torch.testing.assert_close(total, x.sum().reshape(1), rtol=1e-6, atol=1e-5)
