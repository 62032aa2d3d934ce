"""The C++ split per row (kspec/backends/cxx/split_rows.py), bench-free: which launches the
KernelBench reductions take at their sizes, every branch forced at small sizes through the CPU
emulation against the float64 reference, the index stepping checked in C++, and nvcc compiles.

The emulation runs one thread (grid = block = 1), so it folds every slice of every row in turn
with lanes = 1; the stepping of several reduced indices by a warp's 32 lanes is checked on its
own (test_index_steps_carry_like_division).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import kspec
from kspec import ir
from kspec.backends import get_backend
from kspec.backends.cxx import CUDA, emulate
from kspec.backends.cxx.patterns import LaunchContext
from kspec.backends.cuda import toolchain as nv
from kspec.backends.cxx.shape import launches_at
from kspec.backends.cxx.split_rows import advance_lines
from kspec.lowering import plan_kernel
from kspec.lowering.policy import row_split, scalar_split
from kspec.verify.tolerance import compare, magnitude

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from reduction_problems import BY_NAME  # noqa: E402

needs_cxx = pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")
needs_nvcc = pytest.mark.skipif(nv.nvcc_path() is None, reason="nvcc is not installed")


def _kernel(problem: str):
    p = BY_NAME[problem]
    return kspec.loads(p.source)[p.source.split("kernel ")[1].split("(")[0]]


GROUP_FULL = {"N": 112, "G": 8, "CG": 8, "H": 512, "W": 512}


def _full(problem: str) -> dict[str, int]:
    return GROUP_FULL if problem == "group_norm" else BY_NAME[problem].sizes["full"]


# (problem, the functions its launches call at the full size on an H200-class sm_90a device,
#  the slice counts of its splits): what the lead times next
LAUNCHES = [
    ("batch_norm", ["0_split_rows", "0_split_finish", "1_split_rows", "1_split_finish",
                    "2_pointwise_v4"], 66),
    ("layer_norm", ["0_split_rows", "0_split_finish", "1_split_rows", "1_split_finish",
                    "2_pointwise_v4"], 256),
    ("instance_norm", ["0_split_rows", "0_split_finish", "1_split_rows", "1_split_finish",
                       "2_pointwise_v4"], 1),
    ("group_norm", ["0_split_rows", "0_split_finish", "1_split_rows", "1_split_finish",
                    "2_pointwise_v4"], 4),
    ("rms_norm", ["0_split_strided", "0_split_finish", "1_pointwise_v4"], 1),
    ("sum_dim1", ["0_split_strided", "0_split_finish"], 1),
    ("max_dim1", ["0_split_strided", "0_split_finish"], 1),
    ("matvec", ["0_split_rows", "0_split_finish"], 2),
]


@pytest.mark.parametrize("problem,functions,parts", LAUNCHES, ids=[x[0] for x in LAUNCHES])
def test_bench_reductions_take_the_split_per_row(problem: str, functions: list[str],
                                                 parts: int) -> None:
    k = _kernel(problem)
    got = launches_at(k.ir, CUDA, "sm_90a", _full(problem))
    assert [x.function.removeprefix(k.ir.name + "_") for x in got] == functions
    assert {x.values["parts"] for x in got if "split" in x.function} == {parts}


def test_rows_the_rows_pattern_renders_stay_rows() -> None:
    """Softmax and the row norms keep their rows kernels (row vectors in registers)."""
    for problem in ("softmax", "l2_norm"):
        k = _kernel(problem)
        got = launches_at(k.ir, CUDA, "sm_90a", BY_NAME[problem].sizes["full"])
        assert [x.function.split("_0_")[1][:4] for x in got] == ["rows"]


def test_split_policy() -> None:
    """One place for the slice counts: short rows never split, few long rows split into
    slices of at least 16384 elements, many rows fill the device without splitting."""
    assert row_split(16, 8192, 8, 132) == 1
    assert row_split(16, 1 << 22, 8, 132) == 256          # LayerNorm: 4M / 16384
    assert row_split(64, 1 << 24, 8, 132) == 66           # BatchNorm: 4 x 132 blocks / 8
    assert row_split(7168, 1 << 18, 8, 132) == 1          # InstanceNorm: 896 blocks already
    assert scalar_split(15 << 30, 132) == 1024 and scalar_split(20000, 132) == 1


# every branch, forced: the orientation and the slice count (3 slices leave a short last one)
SCHEDULES = [{}, {"split": 3}, {"strided": True}, {"strided": True, "split": 3},
             {"strided": False, "split": 7}]
PROBLEMS = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "matvec",
            "sum_dim1", "mean_dim1", "max_dim1", "min_dim1"]


@needs_cxx
@pytest.mark.parametrize("problem", PROBLEMS)
def test_every_branch_agrees_with_the_reference(problem: str) -> None:
    p, k = BY_NAME[problem], _kernel(problem)
    inputs = p.make("small", torch.device("cpu"))
    for schedule in SCHEDULES:
        launcher = emulate.build(k.ir, schedule=schedule)

        def checked(*args):   # the kernel's own arguments (group_norm's are views)
            got = launcher(*args)
            (mag,) = magnitude(k, list(args))
            c = compare(got, k.reference(*args), k.ir.outputs[0].dtype, mag)
            assert c.ok, f"{problem} {schedule}: {c.detail}"
            return got
        p.run(checked, inputs)


SPARSE = """
kernel middle_sum(x: f32[A, B, C]) -> y: f32[A, C] {
    y[a, c] = sum(x[a, b, c] for b)
}
kernel moments(x: f32[N, C, H, W]) -> m: f32[C] {
    m[c] = sum(x[n, c, h, w] for n, h, w) / sum(x[n, c, h, w] ** 2 for n, h, w)
}
"""


@needs_cxx
def test_long_strided_and_multi_index_rows_stay_accurate() -> None:
    """2^20 terms of mean 100 per row down a strided axis, whole and in slices, within the
    project's f32 tolerance (compensated sums); two reductions of one statement share a loop."""
    torch.manual_seed(0)
    k = kspec.loads(SPARSE)
    x = torch.randn(2, 1 << 20, 3) + 100
    for schedule in ({}, {"split": 5}, {"strided": False, "split": 64}):
        got = emulate.build(k["middle_sum"].ir, schedule=schedule)(x)
        c = compare(got, k["middle_sum"].reference(x), k["middle_sum"].ir.outputs[0].dtype,
                    magnitude(k["middle_sum"], [x])[0])
        assert c.ok, f"{schedule}: {c.detail}"
    x = torch.rand(3, 4, 5, 6)
    for schedule in ({}, {"split": 4}, {"strided": True}):
        got = emulate.build(k["moments"].ir, schedule=schedule)(x)
        want = k["moments"].reference(x)
        assert torch.allclose(got.double(), want, rtol=1e-6), schedule


@needs_cxx
@pytest.mark.parametrize("extents,step", [((3, 4, 5), 7), ((2, 3, 1), 32), ((5, 40), 32),
                                          ((4, 3), 1)])
def test_index_steps_carry_like_division(extents: tuple[int, ...], step: int,
                                         tmp_path: Path) -> None:
    """The generated stepping (a lane's indices moved on by the team's lanes, carrying into
    the indices before) visits the decomposition of every linear position it passes."""
    dims = ", ".join(f"E{i}" for i in range(len(extents)))
    idx = ", ".join(f"i{i}" for i in range(len(extents)))
    kernel = kspec.loads(f"kernel f(x: f32[{dims}]) -> y: f32 {{ y = sum(x[{idx}] for {idx}) }}")
    launch = plan_kernel(kernel["f"].ir).launches[0]
    (red,) = [n for n in ir.walk(launch.statements[0].value) if isinstance(n, ir.Reduce)]
    ctx = LaunchContext(kernel["f"].ir, {}, {}, CUDA, launch, [], [])
    names = [f"v{i}" for i in range(len(extents))]
    symbols = "".join(f"const int64_t {ctx.symbols[f'E{i}']} = {e};\n"
                      for i, e in enumerate(extents))
    total = 1
    for e in extents:
        total *= e
    ctx.name_vars(list(red.vars), names)
    start = "\n".join(ctx.decompose("lin", list(red.vars), mutable=True))
    step_lines = "\n".join(advance_lines(ctx, list(red.vars), names, str(step)))
    printed = " << ' ' << ".join(names)
    program = f"""#include <cstdint>
#include <iostream>
int main() {{
{symbols}for (int64_t lane = 0; lane < {step}; ++lane) {{
int64_t lin = lane;
{start}
for (; lin < {total}; lin += {step}) {{
std::cout << lin << ' ' << {printed} << '\\n';
{step_lines}
}}
}}
}}
"""
    (tmp_path / "steps.cpp").write_text(program)
    subprocess.run([emulate.compiler(), "-o", str(tmp_path / "steps"), str(tmp_path /
                                                                          "steps.cpp")],
                   check=True)
    out = subprocess.run([str(tmp_path / "steps")], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    seen = {}
    for line in filter(None, out):
        lin, *idx = map(int, line.split())
        seen[lin] = tuple(idx)
    want = {}
    for lin in range(total):
        rest, idx = lin, []
        for e in reversed(extents):
            idx.append(rest % e)
            rest //= e
        want[lin] = tuple(reversed(idx))
    assert seen == want


@needs_nvcc
@pytest.mark.parametrize("backend", ["cuda", "hip"])
def test_split_per_row_compiles_for_nvidia(backend: str) -> None:
    """The new kernels compile ahead of time (HIP's source through nvcc on HIP's NVIDIA
    platform; hipcc for gfx90a runs in tests/test_cxx_backends.py where it is installed)."""
    for problem in ("group_norm", "rms_norm", "matvec"):
        c = get_backend(backend).compile(_kernel(problem).ir, "sm_90")
        split = [f for f in c.resources if "_split_" in f]
        assert split and {f.rsplit("_", 1)[1] for f in split} == {"rows", "strided", "finish"}
        assert all(c.resources[f]["spill_stores"] == 0 for f in split)
