"""A convolution's depth on the tensor cores two ways (kspec/backends/triton/tensorcore.py,
WINDOW): flattened (c, r, s) in BLOCK_K steps, or the window's offsets one per step with the
channels in BLOCK_K steps. Each way, forced by its schedule key, agrees with the float64
reference under the interpreter, split-K included; the launch picks the window once the
channels reach 8 (KernelBench level2/1: 64, level2/21: 8) and the flat depth below (an
RGB input's 3); the gate's branch data names both and its draws reach both."""
from __future__ import annotations

import pytest
import torch

import kspec
from kspec.backends.triton.codegen import jit_kernels
from kspec.backends.triton.launcher import load_module
from kspec.backends.triton.trace import trace_launches

SOURCE = """
kernel conv2d(x: f32[N, C, H, W], w: f32[O, C, KH, KW], bias: f32[O])
        -> y: f32[N, O, H - KH + 1, W - KW + 1] {
    y[n, o, p, q] = sum(x[n, c, p + r, q + s] * w[o, c, r, s] for c, r, s) + bias[o]
}
kernel conv2d_pad_stride2(x: f32[N, C, H, W], w: f32[O, C, KH, KW])
        -> y: f32[N, O, (H - KH + 2) // 2 + 1, (W - KW + 2) // 2 + 1] {
    y[n, o, p, q] = sum(pad(x, 0)[n, c, 2*p + r - 1, 2*q + s - 1] * w[o, c, r, s]
                        for c, r, s)
}
"""

MODULE = kspec.loads(SOURCE, "conv_window.kspec")


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


@pytest.mark.parametrize("channels", [5, 40, 64])
@pytest.mark.parametrize("window", [True, False])
@pytest.mark.parametrize("split", [1, 3])
def test_each_depth_order_agrees_with_torch(channels: int, window: bool, split: int) -> None:
    """5 channels leave most of a window step masked, 40 a short last step (interpreter
    BLOCK_K is 32); three depth slices, some of them short or empty."""
    torch.manual_seed(channels + 2 * split + window)
    x, w, bias = torch.randn(2, channels, 7, 6), torch.randn(9, channels, 3, 2), torch.randn(9)
    got = MODULE.conv2d.build("triton", schedule={"0.WINDOW": window, "0.SPLIT_K": split})(
        x, w, bias)
    want = torch.nn.functional.conv2d(x.double(), w.double(), bias.double())
    assert _relative_error(got, want) < 1e-5, (channels, window, split)


@pytest.mark.parametrize("window", [True, False])
def test_a_padded_strided_window_agrees_with_torch(window: bool) -> None:
    torch.manual_seed(window)
    x, w = torch.randn(2, 33, 9, 8), torch.randn(6, 33, 3, 3)
    got = MODULE.conv2d_pad_stride2.build("triton", schedule={"0.WINDOW": window})(x, w)
    want = torch.nn.functional.conv2d(x.double(), w.double(), stride=2, padding=1)
    assert _relative_error(got, want) < 1e-5, window


def _launch(kernel, env: dict[str, int]) -> str:
    module = load_module(kernel.source("triton"), interpret=False)
    params = {jk.name: [p.split(":")[0] for p in jk.params if "constexpr" not in p]
              for jk in jit_kernels(kernel.ir)}
    (call,) = trace_launches(kernel.ir, module, params, env, "sm_90")
    return call.describe()


def test_the_launch_takes_the_window_from_eight_channels() -> None:
    """In 16-deep steps; the output tile no wider than the output channels, 4 warps for
    tiles narrower than 128."""
    level2_1 = {"N": 128, "C": 64, "H": 128, "W": 128, "O": 128, "KH": 3, "KW": 3}
    assert "BLOCK_N=128 BLOCK_K=16" in _launch(MODULE.conv2d, level2_1)
    assert "WINDOW=True" in _launch(MODULE.conv2d, level2_1)
    level2_21 = {**level2_1, "C": 8, "O": 32, "H": 256, "W": 256}
    assert "BLOCK_N=32 BLOCK_K=16" in _launch(MODULE.conv2d, level2_21)
    assert ", 4 warps," in _launch(MODULE.conv2d, level2_21)
    assert ", 8 warps," in _launch(MODULE.conv2d, level2_1)
    assert "WINDOW=True" in _launch(MODULE.conv2d, level2_21)
    rgb = {**level2_1, "C": 3, "O": 16}
    assert "BLOCK_N=16 BLOCK_K=32" in _launch(MODULE.conv2d, rgb)
    assert "WINDOW=False" in _launch(MODULE.conv2d, rgb)


def test_the_gate_draws_both_depth_orders() -> None:
    """The threshold data names WINDOW for a convolution and not for a matmul; the cases the
    gate draws on the CPU take both of its values (recording stand-ins for the kernels)."""
    from test_gate_branches import dry_run_branches

    from kspec.verify.candidates import BUDGET_MB, launch_branches
    from kspec.verify.coverage import branch_cases, coverage
    from kspec.verify.strategies import explicit_cases, first_case

    k = MODULE.conv2d
    branches = launch_branches(k.ir, "triton", "cpu")
    assert "0.WINDOW" in {b.name for b in branches}
    mm = kspec.loads("kernel mm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {\n"
                     "    c[i, j] = sum(a[i, k] * b[k, j] for k)\n}\n", "mm.kspec").mm
    assert "0.WINDOW" not in {b.name for b in launch_branches(mm.ir, "triton", "cpu")}
    drawn = branch_cases(k.ir, branches, int(BUDGET_MB["cpu"] * 2 ** 20))
    cases = [first_case(k.ir), *explicit_cases(k.ir), *drawn.cases]
    seen = coverage(branches, dry_run_branches(k, cases))
    assert set(seen["0.WINDOW"]) == {"flat", "window"}, (seen, drawn.unreached)


def test_the_tuner_searches_the_depth_order() -> None:
    """WINDOW and 16-deep steps join a convolution's space (not a matmul's); the cost model
    ranks the window first from 8 channels, as the launch does, and the flat depth at 3."""
    from kspec.agent.space import Target, candidates, launch_spaces

    k = MODULE.conv2d
    src = k.source("triton")
    env = {"N": 128, "C": 64, "H": 128, "W": 128, "O": 128, "KH": 3, "KW": 3}
    (space,) = launch_spaces(k.ir, src, env)
    assert space.dims["channels"] == 64
    values = space.values(Target.for_arch("sm_90"))
    assert values["WINDOW"] == [True, False] and 16 in values["BLOCK_K"]
    for channels, window in ((64, True), (8, True), (3, False)):
        keep, _ = candidates(k.ir, src, {**env, "C": channels}, Target.for_arch("sm_90"))
        assert keep[0].schedule["0.WINDOW"] is window, (channels, keep[0].schedule)
    mm = kspec.loads("kernel mm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {\n"
                     "    c[i, j] = sum(a[i, k] * b[k, j] for k)\n}\n", "mm.kspec").mm
    (mm_space,) = launch_spaces(mm.ir, mm.source("triton"), {"M": 4096, "N": 4096, "K": 4096})
    assert "WINDOW" not in mm_space.values(Target.for_arch("sm_90"))


@pytest.mark.parametrize("arch", ["sm_90", "gfx942"])
@pytest.mark.parametrize("channels,window", [(64, True), (3, False)])
def test_both_depth_orders_compile_past_2_31_elements(arch: str, channels: int,
                                                      window: bool) -> None:
    """Ahead of time, as each launches (the interpreter accepts code the compilers reject):
    a 2.1G-element input with 64 channels (the window) and a 4.3G-element output from 3
    channels (the flat depth), both with 64-bit index arithmetic."""
    from kspec.backends import get_backend

    env = ({"N": 512, "C": 64, "H": 256, "W": 256, "O": 128, "KH": 3, "KW": 3} if window else
           {"N": 1024, "C": 3, "H": 512, "W": 512, "O": 16, "KH": 3, "KW": 3})
    files = get_backend("triton").compile_asm(MODULE.conv2d.ir, arch=arch, shape=env)
    (launch,) = files[f"conv2d.{arch}.launches.txt"].splitlines()[1:]
    assert launch.startswith("conv2d_0_contraction:"), launch
    assert f"WINDOW={window}" in launch and "INDEX64=True" in launch, launch
    assert any(f.endswith(".ptx" if arch.startswith("sm") else ".amdgcn") for f in files)
