"""Split-K for deep tensor-core contractions in the C++ backends (kspec/backends/cxx/splitk.py).

On a machine without a GPU: the launch choice (direct kernel or split-K, and the slice count)
at deep and shallow depths, on meta tensors; the split-K kernels compiling to tensor-core
instructions without spills (nvcc, sm_80 and sm_90a); and the second kernel, which has no
tensor cores, run by the g++ CPU emulation on partial tiles computed here, against the
reference. The slices' kernels themselves only run on a GPU (tests/test_gpu_cxx.py's specs at
bench/large.py's sizes).
"""
from __future__ import annotations

import ctypes
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import kspec
from kspec.binding import bind
from kspec.backends import get_backend
from kspec.backends.cuda import toolchain as nv
from kspec.backends.cxx import CUDA, HIP, emulate
from kspec.backends.cxx.contraction import parse_tile
from kspec.backends.cxx.launch import DeviceInfo, unit_params
from kspec.backends.cxx.render import TEMPLATES, environment, plan_for, render_helpers
from kspec.backends.cxx.splitk import (MAX_SLICES, SPLIT_DEPTH, SPLIT_TILES, split_slices,
                                       split_tile)
from kspec.verify.inputs import random_arguments
from kspec.verify.tolerance import compare, magnitude

ROOT = Path(__file__).resolve().parent.parent
H200 = 132    # multiprocessors
DEEP = 10**7 + 19


def _kernel(name: str):
    return kspec.load(ROOT / "specs" / f"{name}.kspec")[name]


def _units(kernel, arch: str = "sm_90a", schedule: dict | None = None, d=CUDA):
    return {u.pattern: u for u in plan_for(kernel.ir, d, arch, schedule=schedule).units}


def _launches(unit, env: dict[str, int], kernel, schedule: dict | None = None):
    """(function, grid, block, launch values) of the unit at env, on meta tensors, and its
    scratch."""
    meta = {t.name: torch.empty(tuple(x.evaluate(env) for x in t.dims), dtype=t.dtype.torch,
                                device="meta")
            for t in (*kernel.ir.tensor_params, *kernel.ir.outputs)}
    info = DeviceInfo(False, H200, schedule or {})
    return [tuple(x[:4]) for x in unit.launches(env, meta, info)], unit.scratch(env, info)


# --- the launch choice --------------------------------------------------------------------------
def test_slice_count_from_the_sizes() -> None:
    tile = parse_tile(SPLIT_TILES["mma_sync"])
    # shallow: the direct kernel, whatever the output
    assert split_slices(1, 16, 16, SPLIT_DEPTH - 1, tile, H200) == 0
    # deep, one output tile: two blocks per multiprocessor, at most MAX_SLICES
    assert split_slices(1, 16, 16, DEEP, tile, H200) == MAX_SLICES
    # deep, tiles filling the multiprocessors: one slice (compensated, no partials)
    assert split_slices(1, 4096, 4096, SPLIT_DEPTH, tile, H200) == 1
    # just deep enough: at least MIN_SLICE_STEPS depth steps a slice (2048 steps: 64 slices)
    assert split_slices(1, 16, 16, SPLIT_DEPTH, tile, H200) == 64
    # batch elements count as output tiles: 16 x 4 tiles -> 5 slices (330 blocks); 33 x 4 fill
    # the multiprocessors
    assert split_slices(16, 128, 128, DEEP, tile, H200) == 5
    assert split_slices(33, 128, 128, DEEP, tile, H200) == 1
    # forced: 0 is the direct kernel; S slices, none empty (7 steps in 5 slices: 4 of 2 steps)
    assert split_slices(1, 16, 16, DEEP, tile, H200, forced=0) == 0
    assert split_slices(1, 16, 16, 7 * 32, tile, H200, forced=5) == 4
    assert split_slices(1, 16, 16, 7 * 32, tile, H200, forced=100) == 7
    assert split_slices(1, 16, 16, 0, tile, H200, forced=3) == 1


@pytest.mark.parametrize("arch,path", [("sm_90a", "wgmma"), ("sm_80", "mma_sync")])
def test_deep_contraction_launches_split_k(arch: str, path: str) -> None:
    """bench/large.py's case: matmul_bias_gelu at M = N = 16, K = 10^7 + 19 takes MAX_SLICES
    blocks of the split-K kernel (the element-wise one: rows of a odd-sized, no 16-byte
    copies) and the sum kernel, both with the slice count; the scratch holds one f32 tile of
    C per slice."""
    kernel = _kernel("matmul_bias_gelu")
    units = _units(kernel, arch)
    name, tile = units["contraction"].name, SPLIT_TILES[path]
    assert units["splitk_sum"].standby
    launches, scratch = _launches(units["contraction"], {"M": 16, "N": 16, "K": DEEP}, kernel)
    threads = parse_tile(tile, path).threads
    assert launches == [
        (f"{name}_{tile}_splitksafe", MAX_SLICES, threads, {"parts": MAX_SLICES}),
        ("matmul_bias_gelu_0_splitk_sum", 1, 256, {"parts": MAX_SLICES})]
    assert scratch == {f"{name}.partial": ((MAX_SLICES * 16 * 16,), "float")}
    # a multiple of 8 deep: 16-byte copies
    launches, _ = _launches(units["contraction"], {"M": 16, "N": 16, "K": DEEP - 19}, kernel)
    assert launches[0][0] == f"{name}_{tile}_splitkasync"
    # shallow: the direct kernel, no scratch
    launches, scratch = _launches(units["contraction"], {"M": 16, "N": 16, "K": 4096}, kernel)
    assert len(launches) == 1 and scratch == {}
    assert "splitk" not in launches[0][0] and launches[0][0].endswith("_async")


def test_split_k_is_forced_by_the_schedule() -> None:
    kernel = _kernel("matmul_bias_gelu")
    unit = _units(kernel)["contraction"]
    deep, shallow = {"M": 16, "N": 16, "K": DEEP}, {"M": 40, "N": 24, "K": 1000}
    launches, scratch = _launches(unit, deep, kernel, {"0.splitk": 0})
    assert len(launches) == 1 and "splitk" not in launches[0][0] and scratch == {}
    launches, scratch = _launches(unit, shallow, kernel, {"splitk": 3})
    # 1000 deep: 16 steps of 64 in slices of 6 -> 3 slices; 1 x 1 tiles of 64 x 64
    assert [(f.rsplit("_", 1)[-1], grid, extra) for f, grid, _, extra in launches] == [
        ("splitkasync", 3, {"parts": 3}), ("sum", 4, {"parts": 3})]   # 960 elements
    assert scratch == {f"{unit.name}.partial": ((3 * 40 * 24,), "float")}
    # one slice: the split-K kernel applies the epilogue itself; the scratch is a placeholder
    launches, scratch = _launches(unit, shallow, kernel, {"splitk": 1})
    assert [(f.rsplit("_", 1)[-1], extra) for f, _, _, extra in launches] == [
        ("splitkasync", {"parts": 1})]
    assert scratch == {f"{unit.name}.partial": ((1,), "float")}


def test_large_outputs_at_depth_take_one_slice() -> None:
    kernel = _kernel("bmm")
    unit = _units(kernel, "sm_80")["contraction"]
    launches, scratch = _launches(unit, {"B": 4, "M": 1024, "N": 1024, "K": SPLIT_DEPTH}, kernel)
    (fn, grid, _, extra), = launches
    assert fn.endswith("_64x64x32w4s4_splitkasync") and extra == {"parts": 1}
    assert grid == 4 * 16 * 16 and scratch[f"{unit.name}.partial"][0] == (1,)


def test_forced_tiles_and_split_variants() -> None:
    """A forced tile holding more accumulators than the split tile compiles no split-K
    variants (three accumulator sets would spill): deep contractions take the direct kernel.
    The split tile forced compiles both, under its own key (the tuner reads it back)."""
    assert split_tile([parse_tile("128x256x32w8s3")], "mma_sync", parse_tile) is None
    kernel = _kernel("matmul")
    big = _units(kernel, "sm_80", {"0.tile": "128x256x32w8s3"})
    assert "splitk_sum" not in big and not any("splitk" in v for v in big["contraction"].variants)
    launches, _ = _launches(big["contraction"], {"M": 16, "N": 16, "K": DEEP}, kernel,
                            {"0.tile": "128x256x32w8s3"})
    assert launches[0][0].endswith("_128x256x32w8s3_safe")     # K odd: no 16-byte copies
    small = _units(kernel, "sm_80", {"0.tile": SPLIT_TILES["mma_sync"]})
    assert all(f"_{SPLIT_TILES['mma_sync']}_" in v for v in small["contraction"].variants)
    assert "splitk_sum" in small


def test_attention_fallback_passes_the_split_k_parameters() -> None:
    """Heads over 128 run attention's unfused launches; the output contraction is 70000 keys
    deep: its split-K launches keep their own parameter list (the sum unit's)."""
    kernel = _kernel("attention")
    plan = plan_for(kernel.ir, CUDA, "sm_90a")
    (fused,) = [u for u in plan.units if u.pattern == "attention"]
    env = {"B": 1, "H": 1, "S": 16, "T": 70000, "D": 256}
    meta = {t.name: torch.empty(tuple(x.evaluate(env) for x in t.dims), dtype=t.dtype.torch,
                                device="meta")
            for t in (*kernel.ir.tensor_params, *kernel.ir.outputs, *plan.temporaries)}
    info = DeviceInfo(False, H200, {})
    meta.update({n: torch.empty(s, device="meta") for n, (s, _) in fused.scratch(env, info).items()})
    split = [x for x in fused.launches(env, meta, info) if "splitk" in x[0]]
    assert split and all(x[5].pattern == "splitk_sum" for x in split)
    assert all(any(a.ref.endswith(".partial") for a in x[5].args) for x in split)


# --- compiling ----------------------------------------------------------------------------------
needs_nvcc = pytest.mark.skipif(nv.nvcc_path() is None, reason="nvcc is not installed")


@needs_nvcc
@pytest.mark.parametrize("arch,instruction", [("sm_90a", "HGMMA"), ("sm_80", "HMMA")])
@pytest.mark.parametrize("name", ["matmul_bias_gelu", "bmm"])
def test_split_k_kernels_compile_to_the_tensor_cores(name: str, arch: str, instruction: str,
                                                     tmp_path, monkeypatch) -> None:
    from kspec.backends.cuda import disassemble

    monkeypatch.setenv("KSPEC_CACHE", str(tmp_path))
    c = get_backend("cuda").compile(_kernel(name).ir, arch)
    split = [f for f in c.resources if "_splitk" in f]
    assert len(split) == 3      # the async and safe split-K kernels, the sum kernel
    assert all(c.resources[f]["spill_stores"] == 0 for f in split)
    sass = disassemble(c.binary)
    if not sass:
        pytest.skip("no cuobjdump to read the SASS")
    bodies = {b.split("\n", 1)[0].strip(): b for b in re.split(r"\n\s*Function : ", sass)[1:]}
    for f in split:
        assert (instruction in bodies[f]) == ("splitk_sum" not in f), f


def test_templates_hold_nothing_vendor_specific() -> None:
    vendor = re.compile(r"__half|bfloat|__shfl|_sync|hip_|cuda|\bwarpSize\b|__launch_bounds__|"
                        r"threadIdx|blockIdx|__global__|__device__|\b32\b|\b64\b")
    text = (TEMPLATES / "contraction_sum.j2").read_text()
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("//", "{#")))
    assert not vendor.search(code)


# --- the sum kernel on the CPU ------------------------------------------------------------------
needs_cxx = pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")


def _sum_library(unit, plan, tmp_path: Path) -> ctypes.CDLL:
    """The sum kernel alone, in the CPU emulation's dialect, as a shared library."""
    d = plan.dialect
    helpers = render_helpers(d, sorted(h for h in plan.helpers if not h.startswith("tc_")))
    body = environment().get_template(unit.template).render(u=unit, d=d)
    (tmp_path / "kspec_cpu_emulation.h").write_text(emulate.emulation_header())
    (tmp_path / "sum.cpp").write_text(f'#include "kspec_cpu_emulation.h"\n{helpers}\n{body}')
    subprocess.run([emulate.compiler(), "-O1", "-std=c++17", "-shared", "-fPIC",
                    "-fno-fast-math", "-ffp-contract=off", "-I.", "-o", "sum.so", "sum.cpp"],
                   cwd=tmp_path, check=True, capture_output=True)
    return ctypes.CDLL(str(tmp_path / "sum.so"))


@needs_cxx
@pytest.mark.parametrize("name,env", [("matmul_bias_gelu", {"M": 5, "N": 7, "K": 300}),
                                      ("bmm", {"B": 3, "M": 4, "N": 9, "K": 310})])
@pytest.mark.parametrize("parts", [2, 5])
def test_sum_kernel_agrees_with_reference(name: str, env: dict, parts: int, tmp_path) -> None:
    """Partial tiles [S][Z][M][N] of the depth's slices (as the split-K kernel slices it: steps
    of the split tile's BK, ceil(steps / S) a slice), computed here in float64 and stored as
    f32, summed and finished by the emulated sum kernel, agree with the reference."""
    kernel = _kernel(name)
    d = replace(emulate.CPU, tensor_cores="mma_sync")
    from kspec.backends.cxx.planner import plan_patterns

    plan = plan_patterns(kernel.ir, d)
    unit = next(u for u in plan.units if u.pattern == "splitk_sum")
    lib = _sum_library(unit, plan, tmp_path)
    args = random_arguments(kernel.ir, env, seed=parts)
    b = bind(kernel.ir, tuple(args), {})
    a_, b_ = (x.double() for x in args[:2])
    bk = parse_tile(SPLIT_TILES["mma_sync"]).bk
    steps = -(-env["K"] // bk)
    per = -(-steps // parts) * bk
    slices = [a_[..., k:k + per] @ b_[..., k:k + per, :] for k in range(0, env["K"], per)]
    assert len(slices) == parts
    buffers = dict(b.tensors)
    for o in kernel.ir.outputs:
        buffers[o.name] = torch.empty(b.output_shape(o), dtype=o.dtype.torch)
    buffers[f"{unit.name.removesuffix('splitk_sum')}contraction.partial"] = \
        torch.stack(slices).float().contiguous()
    getattr(lib, unit.variants[0])(*unit_params(unit, buffers, b, {"parts": parts}))
    (decl,) = kernel.ir.outputs
    want = kernel.reference(*args)
    result = compare(buffers[decl.name], want, decl.dtype, magnitude(kernel, args)[0])
    assert result.ok, result.detail


def test_hip_renders_the_same_split_k_kernels() -> None:
    cuda = _units(_kernel("matmul_bias_gelu"), "sm_90a")
    hip = _units(_kernel("matmul_bias_gelu"), "sm_90a", d=HIP)
    assert cuda["contraction"].variants == hip["contraction"].variants
    assert cuda["splitk_sum"].variants == hip["splitk_sum"].variants
