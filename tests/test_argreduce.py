"""argmax / argmin: the reference and every backend on the CPU (Triton's interpreter, the C++
emulation) against torch.argmax / torch.argmin, at odd sizes, with ties (the first index wins)
and NaN (PyTorch counts NaN as the extreme for both); the Triton code compiles ahead of time
for NVIDIA and AMD."""
from __future__ import annotations

import pytest
import torch

import kspec
from kspec.backends import get_backend
from kspec.backends.cxx import emulate

SOURCE = """
kernel arg_dim1(x: f32[B, D, N]) -> (hi: i64[B, N], lo: i64[B, N]) {
    hi[b, j] = argmax(x[b, k, j] for k)
    lo[b, j] = argmin(x[b, k, j] for k)
}
kernel arg_rows(x: i32[M, N]) -> hi: i64[M] {
    hi[i] = argmax(x[i, j] for j)
}
kernel arg_all(x: f64[N]) -> lo: i64 {
    lo = argmin(x[k] * x[k] for k)
}
"""
KERNELS = {k.name: k for k in kspec.loads(SOURCE)}


def float_input() -> torch.Tensor:
    """Few distinct values (ties everywhere), -inf, and NaN in some columns: one NaN, two NaN,
    NaN only after the extreme."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-2, 3, (3, 301, 13), generator=g).float()
    x[0, :, 4] = float("-inf")
    x[0, 5, 2] = x[0, 9, 2] = float("nan")
    x[1, 300, 3] = float("nan")
    x[2, 130:, 7] = float("inf")
    return x


def int_input() -> torch.Tensor:
    return torch.randint(-3, 3, (37, 259), generator=torch.Generator().manual_seed(1),
                         dtype=torch.int32)


def f64_input() -> torch.Tensor:
    return torch.tensor([3.0, -1.0, 1.0, 2.0, -1.0, 0.5], dtype=torch.float64)


def expected(name: str, x: torch.Tensor):
    if name == "arg_dim1":
        return x.argmax(1), x.argmin(1)
    if name == "arg_rows":
        return x.argmax(1)
    return (x * x).argmin()


CASES = [("arg_dim1", float_input), ("arg_rows", int_input), ("arg_all", f64_input)]


def as_tuple(v):
    return v if isinstance(v, tuple) else (v,)


def check(name: str, make, run) -> None:
    x = make()
    for got, want in zip(as_tuple(run(x)), as_tuple(expected(name, x))):
        assert got.dtype == torch.int64
        assert torch.equal(got.cpu(), want), (got, want)


@pytest.mark.parametrize("name,make", CASES)
def test_reference_matches_torch(name, make) -> None:
    check(name, make, KERNELS[name].reference)


@pytest.mark.parametrize("name,make", CASES)
def test_triton_interpreter_matches_torch(name, make) -> None:
    check(name, make, KERNELS[name].build("triton"))


@pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")
@pytest.mark.parametrize("name,make", CASES)
def test_cxx_emulation_matches_torch(name, make) -> None:
    check(name, make, emulate.build(KERNELS[name].ir))


def test_argreduce_runs_as_a_loop_nest() -> None:
    from kspec.lowering import plan_kernel
    for k in KERNELS.values():
        assert [la.pattern for la in plan_kernel(k.ir).launches] == ["loop_nest"] * len(
            k.ir.body)


@pytest.mark.parametrize("arch", ["sm_90", "gfx942"])
def test_triton_compiles_ahead_of_time(arch: str) -> None:
    k = KERNELS["arg_dim1"]
    files = get_backend("triton").compile_asm(k.ir, arch=arch, shape={"B": 3, "D": 301, "N": 13})
    ext = "ptx" if arch.startswith("sm") else "amdgcn"
    assert len([f for f in files if f.endswith(ext)]) == 2
