"""Gathers (an index that reads an integer input tensor: `x[i, t[i]]`, `emb[tok[b, s], d]`,
`x[i, t[i] + k]`): the reference against PyTorch indexing, Triton's interpreter and the C++
emulation against the reference, the launch-time bounds check (one message, the same from the
reference and every backend: the tensor, the dim, the index tensor's offending element and
value; negative values are errors), the plan's patterns and the printout's round trip."""
from __future__ import annotations

import functools

import pytest
import torch

import kspec
from kspec.backends.cxx import emulate
from kspec.errors import KspecLaunchError
from kspec.lowering import plan_kernel
from kspec.printer import format_kernel
from kspec.verify.tolerance import compare, magnitude

SOURCE = """
kernel picks(x: f32[N, C], t: i64[N], u: i32[N, 2]) -> (a: f32[N], b: f32[N, 3], c: f32[N],
                                                       d: f32[N, 2], e: f32) {
    a[i] = x[i, t[i]] * 2.0
    b[i, k] = x[i, t[i] + k]
    c[i] = sum(x[i, 1 + t[i] + k] for k < 2)
    d[i, j] = x[u[i, j], t[i]]
    e = mean(x[i, t[i]] for i)
}
"""
MODULE = kspec.loads(SOURCE)
PICKS = MODULE["picks"]
N, C = 6, 9


def inputs(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, generator=g)
    t = torch.randint(0, C - 3, (N,), generator=g)          # t + k stays below C
    u = torch.randint(0, N, (N, 2), generator=g, dtype=torch.int32)
    return x, t, u


def torch_picks(x, t, u) -> tuple[torch.Tensor, ...]:
    x = x.double()
    rows = torch.arange(N)
    b = torch.stack([x[rows, t + k] for k in range(3)], 1)
    return (x[rows, t] * 2, b, b[:, 1] + b[:, 2], x[u.long(), t[:, None]], x[rows, t].mean())


def test_reference_matches_torch_indexing() -> None:
    args = inputs()
    for got, want in zip(PICKS.reference(*args), torch_picks(*args)):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)


def check(launch) -> None:
    args = inputs(1)
    for o, g, w, mag in zip(PICKS.ir.outputs, launch(*args), PICKS.reference(*args),
                            magnitude(PICKS, args)):
        result = compare(g, w, o.dtype, mag)
        assert result.ok, f"{o.name}: {result}"


def test_triton_interpreter_agrees() -> None:
    check(PICKS.build("triton"))


@pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")
def test_cxx_emulation_agrees() -> None:
    check(cxx_launcher())


BAD = [   # (row of t, its value, the message after "gathered index out of bounds: ")
    (0, 9, "x (dim 1, size 9) is indexed by t[i], and t[0] = 9 puts it at 9; valid indices "
           "are 0..8 (<string>:4:17)"),
    (3, 7, "x (dim 1, size 9) is indexed by t[i] + k, and t[3] = 7 puts it at 7..9; valid "
           "indices are 0..8 (<string>:5:20)"),
    (2, -1, "x (dim 1, size 9) is indexed by t[i], and t[2] = -1 puts it at -1; valid indices "
            "are 0..8 (<string>:4:17)"),
]


@functools.cache
def cxx_launcher():
    return emulate.build(PICKS.ir)


def launchers():
    yield "reference", PICKS.reference
    yield "triton", PICKS.build("triton")     # built once: Kernel.build caches
    if emulate.compiler() is not None:
        yield "cxx", cxx_launcher()


@pytest.mark.parametrize("row,value,message", BAD)
def test_out_of_range_index_is_a_launch_error(row: int, value: int, message: str) -> None:
    x, t, u = inputs()
    for name, launch in launchers():   # a good call first: a repeated signature is checked too
        launch(x, t, u)
    t[row] = value
    for name, launch in launchers():
        with pytest.raises(KspecLaunchError) as info:
            launch(x, t, u)
        assert str(info.value) == \
            f"launch error: picks: gathered index out of bounds: {message}", name


def test_second_index_tensor_is_checked_too() -> None:
    x, t, u = inputs()
    u[4, 1] = N
    with pytest.raises(KspecLaunchError, match=r"x \(dim 0, size 6\) is indexed by u\[i, j\], "
                                               r"and u\[4, 1\] = 6 puts it at 6"):
        PICKS.reference(x, t, u)


def test_gathering_statements_are_pointwise_or_loop_nests() -> None:
    patterns = {s.target: launch.pattern for launch in plan_kernel(PICKS.ir).launches
                for s in launch.statements}
    assert patterns == {"a": "pointwise", "b": "pointwise", "c": "loop_nest", "d": "pointwise",
                        "e": "loop_nest"}


def test_printout_parses_back_to_the_same_kernel() -> None:
    text = format_kernel(PICKS.ir)
    assert "x[i, t[i] + k]" in text and "x[u[i, j], t[i]]" in text
    assert kspec.loads(text)["picks"].ir == PICKS.ir
