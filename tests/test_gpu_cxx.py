"""The CUDA and HIP backends on a GPU: every kernel of every spec, built for the machine's GPU,
agrees with the float64 reference at several shapes (all sizes 1, small odd sizes, a larger odd
size set, strided inputs), on PyTorch's current stream, without touching its inputs.

On an NVIDIA machine "hip" is the HIP source compiled by nvcc on HIP's NVIDIA platform and
launched through the CUDA driver API; on a ROCm machine it is hipcc's code object.
Skipped without a GPU. Set KSPEC_RESULTS=path.jsonl to append one line per kernel and backend
(device name, sizes, worst error in units of the tolerance) for bench/results/.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch

import kspec
from kspec.verify.inputs import choose_sizes, random_arguments
from kspec.verify.tolerance import compare, magnitude

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU "
                                "(torch.cuda.is_available() is False)")

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.kspec"))
BACKENDS = ["cuda", "hip"]


def kernels():
    for path in SPECS:
        for k in kspec.load(path):
            yield pytest.param(k, id=k.name)


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _size_sets(kernel) -> list[dict[str, int]]:
    rng = random.Random(kernel.name)
    envs = [{s: 1 for s in kernel.ir.symbols}]
    envs += [choose_sizes(kernel.ir, rng, high=9) for _ in range(2)]
    envs += [choose_sizes(kernel.ir, rng, low=17, high=67)]
    return [e for e in envs if all(c.holds(e) for c in kernel.ir.checks)]


def _assert_agrees(kernel, fn, cpu_args, args, what: str) -> None:
    """fn(*args) on the GPU equals the reference on cpu_args within the tolerance."""
    got = _as_tuple(fn(*args))
    torch.cuda.synchronize()
    want = _as_tuple(kernel.reference(*cpu_args))
    for decl, g, w, mag in zip(kernel.ir.outputs, got, want, magnitude(kernel, cpu_args)):
        result = compare(g.cpu(), w, decl.dtype, mag)
        assert result.ok, f"{what} {decl.name}: {result.detail}"


def _strided(a):
    """The same values in a transposed memory layout (a non-contiguous view)."""
    if isinstance(a, torch.Tensor) and a.dim() >= 2:
        return a.mT.contiguous().mT
    return a


def _record(kernel, backend: str, sizes: list[dict[str, int]], worst: float) -> None:
    path = os.environ.get("KSPEC_RESULTS")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"kernel": kernel.name, "backend": backend,
                            "device": torch.cuda.get_device_name(), "sizes": sizes,
                            "worst_error_over_tolerance": worst, "passed": True}) + "\n")


# "plan-looped": the plan lowering with rows re-read per pass and pointwise kept scalar
SCHEDULES = {"plan": {}, "plan-looped": {"rows": "loop", "vector": False}, "generic": {},
             "normalized": {}}


@pytest.mark.parametrize("lowering", list(SCHEDULES))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", kernels())
def test_agrees_with_reference(kernel, backend: str, lowering: str) -> None:
    fn = kernel.build(backend, lowering=lowering.split("-")[0])
    fn.schedule = dict(SCHEDULES[lowering])
    envs = _size_sets(kernel)
    worst = 0.0
    for n, env in enumerate(envs):
        cpu_args = random_arguments(kernel.ir, env, seed=n)
        args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in cpu_args]
        if n == 2:
            args = [_strided(a) for a in args]
        before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        got = _as_tuple(fn(*args))
        torch.cuda.synchronize()
        want = _as_tuple(kernel.reference(*cpu_args))
        mags = magnitude(kernel, cpu_args)
        for decl, g, w, mag in zip(kernel.ir.outputs, got, want, mags):
            assert g.is_cuda and g.dtype == decl.dtype.torch
            result = compare(g.cpu(), w, decl.dtype, mag)
            worst = max(worst, result.worst)
            assert result.ok, f"{backend} {decl.name} at {env}: {result.detail}"
        for a, b in zip(args, before):
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, b), "the kernel wrote to an input"
    _record(kernel, f"{backend}/{lowering}", envs, worst)


@pytest.mark.parametrize("backend", BACKENDS)
def test_runs_on_the_current_stream(backend: str) -> None:
    k = kspec.load(ROOT / "specs" / "softmax.kspec")["softmax"]
    fn = k.build(backend)
    x = torch.randn(301, 517, device="cuda")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x2 = x * 2          # queued on s; the kernel must run after it, on s
        y = fn(x2)
    s.synchronize()
    assert compare(y.cpu(), k.reference(x2.cpu()), k.ir.outputs[0].dtype).ok


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_calls_do_not_reuse_outputs(backend: str) -> None:
    k = kspec.load(ROOT / "specs" / "vector_add.kspec")
    kern = next(iter(k))
    fn = kern.build(backend)
    args1 = random_arguments(kern.ir, {s: 1000 for s in kern.ir.symbols}, seed=1, device="cuda")
    args2 = random_arguments(kern.ir, {s: 1000 for s in kern.ir.symbols}, seed=2, device="cuda")
    y1 = _as_tuple(fn(*args1))[0].clone()
    y2 = _as_tuple(fn(*args2))[0]
    assert not torch.equal(y1, y2)
    assert compare(y2.cpu(), _as_tuple(kern.reference(*[a.cpu() if isinstance(a, torch.Tensor)
                                                          else a for a in args2]))[0],
                   kern.ir.outputs[0].dtype).ok


ROW_SPECS = ["softmax", "log_softmax", "layernorm", "rmsnorm", "row_sum", "cross_entropy",
             "l2_normalize", "logsumexp", "sum_squares", "mse_loss", "relu", "vector_add"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ROW_SPECS)
def test_plan_variants_on_long_rows(name: str, backend: str) -> None:
    """Long rows take the block-per-row kernels (registers: VPT 4, 8, 16, 32; looped beyond
    the largest), large reductions to a scalar many partial blocks, pointwise the 16-byte path;
    an odd row length keeps pointwise scalar."""
    kernel = kspec.load(ROOT / "specs" / f"{name}.kspec")[name]
    fn = kernel.build(backend)
    for n, size in enumerate([1000, 2048, 3001, 4096, 8192, 20000]):
        env = {s: (7 if k == 0 and len(kernel.ir.symbols) > 1 else size)
               for k, s in enumerate(kernel.ir.symbols)}
        if not all(c.holds(env) for c in kernel.ir.checks):
            continue
        cpu_args = random_arguments(kernel.ir, env, seed=n)
        args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in cpu_args]
        _assert_agrees(kernel, fn, cpu_args, args, f"{backend} at {env}")


# --- contractions on the tensor cores ---------------------------------------------------------
CONTRACTION_SPECS = ["matmul", "matmul_nt", "matmul_tn", "bmm", "matmul_bias_gelu", "attention"]


def _contraction_envs(kernel) -> list[tuple[str, dict[str, int]]]:
    """Multiples of 8 (the cp.async path, several tiles and depth steps, a partial last tile)
    and odd sizes (the element-wise path)."""
    big = {s: 8 * (17 + 7 * k) for k, s in enumerate(kernel.ir.symbols)}   # 136, 192, 248...
    odd = {s: 37 + 30 * k for k, s in enumerate(kernel.ir.symbols)}
    small = {s: 2 for s in kernel.ir.symbols}
    for env in (big, odd, small):
        for s in env:
            if s in ("B", "H", "Z"):
                env[s] = 3
    return [(n, e) for n, e in (("aligned", big), ("odd", odd), ("small", small))
            if all(c.holds(e) for c in kernel.ir.checks)]


def _contraction_cases():
    """The GPU's default path (wgmma on Hopper) for every contraction spec and both backends;
    every listed tile of both NVIDIA paths (mma.sync through arch sm_90) for three layouts."""
    from kspec.backends.cxx.contraction import TILE_CHOICES

    for name in CONTRACTION_SPECS:
        for backend in BACKENDS:
            yield pytest.param(name, backend, None, None, id=f"{name}-{backend}")
    for name in ("matmul", "matmul_nt", "matmul_tn"):
        for tile in TILE_CHOICES["mma_sync"][:4]:
            yield pytest.param(name, "cuda", "sm_90", tile, id=f"{name}-mma_sync-{tile}")
        if torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0):
            for tile in TILE_CHOICES["wgmma"]:
                yield pytest.param(name, "cuda", None, tile, id=f"{name}-wgmma-{tile}")


@pytest.mark.parametrize("name,backend,arch,tile", _contraction_cases())
def test_tensor_core_contraction(name: str, backend: str, arch: str | None,
                                 tile: str | None) -> None:
    """The tensor-core contraction, through the cp.async and the element-wise loads, in
    several tiles and both NVIDIA paths, agrees with the reference."""
    kernel = kspec.load(ROOT / "specs" / f"{name}.kspec")[name]
    schedule = {"tile": tile} if tile else {}
    fn = kernel.build(backend, schedule=schedule, arch=arch)
    units = [u for u in fn.plan.units if getattr(u, "pattern", "") == "contraction"]
    assert units and all(u.template == "contraction.j2" for u in units)
    for n, (label, env) in enumerate(_contraction_envs(kernel)):
        cpu_args = random_arguments(kernel.ir, env, seed=n)
        args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in cpu_args]
        for layout in ("contiguous", "transposed"):
            if layout == "transposed":
                args = [_strided(a) for a in args]
            _assert_agrees(kernel, fn, cpu_args, args, f"{backend} {tile} {label} {layout} {env}")


# --- attention in one kernel ------------------------------------------------------------------
ATTENTION_ENVS = [  # head 64 and 72 (copied), 37 (element-wise), 160 (the unfused fallback)
    {"B": 2, "H": 3, "S": 131, "T": 197, "D": 64}, {"B": 1, "H": 2, "S": 64, "T": 64, "D": 72},
    {"B": 2, "H": 1, "S": 77, "T": 5, "D": 37}, {"B": 1, "H": 2, "S": 1, "T": 1, "D": 8},
    {"B": 1, "H": 1, "S": 70, "T": 90, "D": 160}]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["attention", "causal_attention"])
def test_fused_attention(name: str, backend: str) -> None:
    kernel = kspec.load(ROOT / "specs" / f"{name}.kspec")[name]
    fn = kernel.build(backend)
    assert any(getattr(u, "pattern", "") == "attention" for u in fn.plan.units)
    for n, full in enumerate(ATTENTION_ENVS):
        env = {s: full["S"] if s == "T" and "T" not in full else full[s]
               for s in kernel.ir.symbols}
        cpu_args = random_arguments(kernel.ir, env, seed=n)
        args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in cpu_args]
        _assert_agrees(kernel, fn, cpu_args, args, f"{backend} {env}")
