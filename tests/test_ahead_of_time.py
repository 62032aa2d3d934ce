"""Every spec compiled ahead of time, by the GPU compilers, exactly as it would launch at three
shape classes (the interpreter accepts code the compilers reject):

- tiny: every symbol 1 (where the launch checks allow it);
- odd: mid-size odd extents (rows longer than a warp, not a multiple of any block);
- large: bench/large.py's cases, where a tensor passes 2^31 elements (64-bit indices) or a
  reduction passes 10^7 elements (rows longer than one block: the looped pass).

Triton for sm_90 and gfx942 through `kcompile --shape` (trace.py records the launches the
module's own host code makes there, then triton.compile builds each). The C++ module holds
every variant its launcher picks from, so it compiles once per arch (tests/test_cxx_backends.py:
sm_80, sm_90, sm_90a's tensor cores, gfx90a), and the launcher's 32/64-bit choice is tested at
sizes up to 2^33 elements on meta tensors (tests/test_cxx_accuracy.py).
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

import kspec
from bench_scripts import load
from test_grad import CASES as GRAD_CASES
from kspec.autodiff import vjp_kernel
from kspec.backends import get_backend
from kspec.errors import KspecError, ToolchainError
from kspec.verify.inputs import choose_sizes

ROOT = Path(__file__).resolve().parent.parent


LARGE = load("large_cases")


def _sizes(kernel) -> dict[str, dict[str, int]]:
    symbols = kernel.ir.symbols
    classes: dict[str, dict[str, int]] = {}
    ones = {s: 1 for s in symbols}
    if all(c.holds(ones) for c in kernel.ir.checks):
        classes["tiny"] = ones
    classes["odd"] = choose_sizes(kernel.ir, random.Random(kernel.name), low=33, high=301)
    for case in LARGE.CASES:
        if case.spec == kernel.name and case.sizes:
            classes[case.case] = case.sizes
    return classes


def _cases():
    for path in sorted((ROOT / "specs").glob("*.kspec")):
        for kernel in kspec.load(path):
            for name, env in _sizes(kernel).items():
                yield pytest.param(kernel, env, id=f"{kernel.name}-{name}")
    # the derived backward kernels at every size 1: Triton passes an argument equal to 1 as
    # a constant, a Python int (rmsnorm's backward divided by (N).to(tl.float32) and failed
    # on the GPU, never under the interpreter)
    for spec in GRAD_CASES:
        forward = kspec.load(ROOT / "specs" / f"{spec}.kspec")[spec]
        backward = kspec.Kernel(vjp_kernel(forward.ir), forward.module)
        ones = {s: 1 for s in backward.ir.symbols}
        if all(c.holds(ones) for c in backward.ir.checks):
            yield pytest.param(backward, ones, id=f"{backward.name}-tiny")


@pytest.mark.parametrize("arch", ["sm_90", "gfx942"])
@pytest.mark.parametrize("kernel,env", _cases())
def test_triton_compiles_every_launch_at_its_sizes(kernel, env: dict[str, int], arch: str) -> None:
    files = get_backend("triton").compile_asm(kernel.ir, arch=arch, shape=env)
    ext = "ptx" if arch.startswith("sm") else "amdgcn"
    launches = files[f"{kernel.name}.{arch}.launches.txt"].splitlines()[1:]
    assert launches and len([f for f in files if f.endswith(ext)]) >= 1
    for line in launches:   # grid axes 1 and 2 hold at most 65535 programs, axis 0 2^31 - 1
        grid = [int(g) for g in re.search(r"grid (\S+),", line).group(1).split("x")]
        assert grid[0] < 2 ** 31 and all(g <= 65535 for g in grid[1:]), line
    big = any(n >= 2 ** 31 for n in LARGE.tensor_elements(kernel, env).values())
    if big:   # a tensor past 2^31 elements: every launch touching it indexes in 64 bits
        assert any("INDEX64=True" in line for line in launches), launches
    else:
        assert not any("INDEX64=True" in line for line in launches), launches
    if ext == "ptx" and big:
        ptx = "\n".join(t for f, t in files.items() if f.endswith(ext))
        assert "mul.wide.s32" in ptx or "mul.lo.s64" in ptx or "cvt.s64.s32" in ptx


def test_shape_errors_are_clear() -> None:
    k = kspec.load(ROOT / "specs" / "matvec.kspec").matvec
    triton = get_backend("triton")
    with pytest.raises(KspecError, match="needs a value for K"):
        triton.compile_asm(k.ir, arch="sm_90", shape={"M": 4})
    with pytest.raises(KspecError, match="has no symbol Q"):
        triton.compile_asm(k.ir, arch="sm_90", shape={"M": 4, "K": 4, "Q": 1})
    from kspec.backends.target import parse_shape
    with pytest.raises(KspecError, match="expected SYMBOL=INTEGER"):
        parse_shape("M=4,K")


def test_a_tile_that_cannot_fit_names_the_resource_and_both_numbers() -> None:
    """A schedule forced past the target's shared memory fails before any launch."""
    from kspec.backends.triton.asm import compile_module_asm

    k = kspec.load(ROOT / "specs" / "attention.kspec").attention
    source = get_backend("triton").source(k.ir)
    forced = source.replace("schedule = schedule or {}",
                            "schedule = {'0.BLOCK_M': 256, '0.BLOCK_N': 128, '0.STAGES': 4}")
    with pytest.raises(ToolchainError, match=r"attention_0_attention at sm_86: shared memory "
                                             r"\d+ bytes exceeds the target's 101376"):
        compile_module_asm(k.ir, forced, "sm_86", {"B": 1, "H": 2, "S": 4096, "T": 4096,
                                                   "D": 256})
    # the default schedule fits the same shape: smaller tiles, fewer stages
    files = compile_module_asm(k.ir, source, "sm_86", {"B": 1, "H": 2, "S": 4096, "T": 4096,
                                                       "D": 256})
    assert "attention_0_attention" in files["attention.sm_86.launches.txt"]


@pytest.mark.parametrize("arch", ["sm_90a", "gfx90a"])
@pytest.mark.parametrize("kernel,env", _cases())
def test_cxx_launches_fit_at_every_size(kernel, env: dict[str, int], arch: str) -> None:
    """The C++ launcher's own choices at each shape class on a representative device of the
    arch (no GPU: meta tensors), each within the target's threads, grid axes and shared
    memory, and each a kernel the module defines; past 2^31 elements no 32-bit rows variant."""
    from kspec.backends.cxx.dialect import CUDA, HIP
    from kspec.backends.cxx.shape import launches_at

    launches = launches_at(kernel.ir, CUDA if arch.startswith("sm") else HIP, arch, env)
    assert launches
    if any(n >= 2 ** 31 for n in LARGE.tensor_elements(kernel, env).values()):
        narrow = [x.function for x in launches if "_rows_" in x.function
                  and x.function.endswith("c")]
        assert not narrow, narrow


F32_MATMUL = """
kernel mm_f32(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
"""


@pytest.mark.parametrize("arch,instruction", [
    ("sm_90", r"wgmma\.mma_async\.sync\.aligned\.m64n\d+k8\.f32\.tf32\.tf32"),
    ("sm_80", r"mma\.sync\.aligned\.m16n8k8\.row\.col\.f32\.tf32\.tf32\.f32")])
def test_f32_contractions_run_three_tf32_products_on_nvidia_tensor_cores(
        arch: str, instruction: str) -> None:
    """f32 operands are split into TF32 high and low parts (cvt.rna) and multiplied on the
    tensor cores three times per step: hi*hi, hi*lo and lo*hi."""
    kernel = kspec.loads(F32_MATMUL).mm_f32
    files = get_backend("triton").compile_asm(kernel.ir, arch=arch,
                                              shape={"M": 512, "N": 512, "K": 512})
    launches = files[f"mm_f32.{arch}.launches.txt"]
    assert "PRECISION=tf32x3" in launches, launches
    ptx = files[f"mm_f32_0_contraction.{arch}.ptx"]
    assert re.search(instruction, ptx) and "cvt.rna.tf32.f32" in ptx


def test_f32_contractions_stay_ieee_where_there_is_no_tf32() -> None:
    kernel = kspec.loads(F32_MATMUL).mm_f32
    files = get_backend("triton").compile_asm(kernel.ir, arch="gfx942",
                                              shape={"M": 512, "N": 512, "K": 512})
    assert "PRECISION=ieee" in files["mm_f32.gfx942.launches.txt"]
