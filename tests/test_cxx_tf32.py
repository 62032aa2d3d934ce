"""f32 contractions on the tensor cores at f32 accuracy in the C++ backends: the 3xTF32 split
(kspec/backends/cxx/precision.py, templates/tensor_cores/*_tf32.j2).

On the CPU: the emulation runs the contraction template itself (the `emulated` tensor-core
path: the same staging, element loads, split-K and epilogue, one thread, the split rounded
like cvt.rna, each tensor-core instruction's sum truncated like the hardware's) for every
operand layout (A and B each K-major or MN-major), batched, odd sizes, strided operands, an
epilogue and a prologue, against the float64 reference under the gate's f32 tolerance;
tf32x3's error is measured far below one TF32 product's and within a small factor of the IEEE
loop nest's at 512 and 4096 deep (the GPU's 3xTF32 once drifted 4x past SGEMM: its truncated
sums ran the whole depth); the TF32 rounding is checked bit for bit against an independent
rounding, the truncation on a sum it decides. Ahead of time: nvcc compiles every f32
kernel for sm_90a (wgmma .tf32 in the PTX, HGMMA ... TF32 in the SASS) and sm_80 (mma.sync
.tf32, HMMA.1688.F32.TF32) without spills, HIP source for NVIDIA takes the same path, and AMD
(gfx90a) keeps the loop nest. The kernels only run on a GPU: tests/test_cxx_tf32_gpu.py,
bench/f32_contractions.py.
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
import torch

import kspec
from kspec.backends import get_backend
from kspec.backends.cuda import toolchain as nv
from kspec.backends.hip import toolchain as amd
from kspec.backends.cxx import CUDA, HIP, emulate
from kspec.backends.cxx.contraction import parse_tile
from kspec.backends.cxx.launch import DeviceInfo
from kspec.backends.cxx.render import plan_for
from kspec.backends.cxx.splitk import MAX_SLICES, SPLIT_TILES
from kspec.dtypes import DType
from kspec.errors import KspecError
from kspec.verify.inputs import random_arguments
from kspec.verify.tolerance import compare, magnitude

ROOT = Path(__file__).resolve().parent.parent
KERNELS = kspec.load(ROOT / "bench" / "specs" / "f32_gemm.kspec")
# (kernel, what it covers): A K-major or MN-major x B K-major or MN-major, batch, epilogue,
# prologue
LAYOUTS = ["matmul_f32", "matmul_nt_f32", "matmul_tn_f32", "matmul_tt_f32", "bmm_f32",
           "matmul_bias_gelu_f32", "relu_matmul_f32"]
# odd sizes (partial tiles, element-wise staging), multiples of the chunk (16-byte copies)
SIZES = [{"M": 37, "N": 29, "K": 45, "B": 3}, {"M": 48, "N": 40, "K": 64, "B": 2},
         {"M": 1, "N": 1, "K": 1, "B": 1}]
needs_cxx = pytest.mark.skipif(emulate.compiler() is None, reason="no host C++ compiler")
needs_nvcc = pytest.mark.skipif(nv.nvcc_path() is None, reason="nvcc is not installed")
needs_hipcc = pytest.mark.skipif(amd.hipcc_path() is None, reason="hipcc is not installed")
# the tensor-core split, which the tests ask for by name (the default is "ieee": precision.py)
TF32X3 = {"precision": "tf32x3"}


def _env(kernel, sizes: dict[str, int]) -> dict[str, int]:
    return {s: sizes[s] for s in kernel.ir.symbols}


def _units(kernel, d=emulate.CPU, arch: str | None = None, schedule: dict | None = None):
    return {getattr(u, "pattern", "loop_nest"): u
            for u in plan_for(kernel.ir, d, arch, schedule=schedule).units}


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).abs().max() / want.abs().max()).item()


# --- the emulation against the reference ------------------------------------------------------
@needs_cxx
@pytest.mark.parametrize("schedule", [{}, {"splitk": 3}], ids=["direct", "splitk3"])
@pytest.mark.parametrize("name", LAYOUTS)
def test_emulated_tf32x3_agrees_with_reference(name: str, schedule: dict) -> None:
    """tf32x3, through the tensor-core template (not the loop nest), at odd sizes, chunk
    multiples and 1 x 1 x 1, with contiguous and transposed-in-memory operands (which the
    element-wise variant stages), directly and split-K (compensated partials)."""
    kernel = KERNELS[name]
    schedule = {**TF32X3, **schedule}
    units = _units(kernel, schedule=schedule)
    assert units["contraction"].data["precision"] == "tf32x3"
    fn = emulate.build(kernel.ir, schedule=schedule)
    for n, sizes in enumerate(SIZES):
        args = random_arguments(kernel.ir, _env(kernel, sizes), seed=n)
        for strided in (False, True):
            if strided:
                args = [a.mT.contiguous().mT if a.dim() >= 2 else a for a in args]
            want = kernel.reference(*args)
            result = compare(fn(*args), want, DType.f32, magnitude(kernel, args)[0])
            assert result.ok, f"{sizes}, strided={strided}: {result.detail}"


@needs_cxx
def test_tf32x3_error_is_far_below_tf32() -> None:
    """At K = 512: one TF32 product (allow_tf32) is off by about 2^-11 relative, outside the
    gate's f32 tolerance; the split is within a few f32 ulps, like the IEEE loop nest."""
    kernel = KERNELS["matmul_f32"]
    args = random_arguments(kernel.ir, {"M": 33, "N": 40, "K": 512}, seed=7)
    want = kernel.reference(*args)
    errors, ok = {}, {}
    for precision in ("ieee", "tf32x3", "tf32"):
        got = emulate.build(kernel.ir, schedule={"precision": precision})(*args)
        errors[precision] = _relative_error(got, want)
        ok[precision] = compare(got, want, DType.f32, magnitude(kernel, args)[0]).ok
    assert errors["tf32"] > 1e-4 and not ok["tf32"]
    assert errors["tf32x3"] < errors["tf32"] / 100 and errors["tf32x3"] < 1e-6
    assert ok["tf32x3"] and ok["ieee"]


@needs_cxx
@pytest.mark.parametrize("depth", [512, 4096])
def test_tf32x3_error_is_within_a_small_factor_of_ieee(depth: int) -> None:
    """On torch.rand operands (KernelBench's inputs: all terms positive, so truncation errors
    add up instead of cancelling), against float64: tf32x3's max error / max |ref| stays
    within 4x the IEEE loop nest's (about 3x: the four truncated sums of each 32-deep step,
    as on the GPU) at 512 and 4096 deep. Truncated sums over the whole depth were 30x and
    190x off (1.6e-6 and 1.1e-5; the H200 measured 9.9e-6 at 4096, 4x cuBLAS SGEMM)."""
    kernel = KERNELS["matmul_f32"]
    g = torch.Generator().manual_seed(depth)
    a, b = torch.rand(48, depth, generator=g), torch.rand(depth, 40, generator=g)
    want = kernel.reference(a, b)
    errors = {p: _relative_error(emulate.build(kernel.ir, schedule={"precision": p})(a, b), want)
              for p in ("ieee", "tf32x3")}
    assert errors["ieee"] < 1e-7, errors
    assert errors["tf32x3"] <= 4 * errors["ieee"], errors


@needs_cxx
def test_tf32x3_gelu_linear_at_512_deep_is_within_the_gate() -> None:
    """The case that failed on the H200 (matmul_bias_gelu_f32 at 256 x 384 x 512, batch 2:
    got 0.526164, expected 0.526206, tolerance 3.06e-05), emulated: within the gate's f32
    tolerance, as the loop nest is."""
    kernel = KERNELS["matmul_bias_gelu_f32"]
    args = random_arguments(kernel.ir, _env(kernel, {"M": 256, "N": 384, "K": 512, "B": 2}),
                            seed=3)
    got = emulate.build(kernel.ir, schedule=TF32X3)(*args)
    result = compare(got, kernel.reference(*args), DType.f32, magnitude(kernel, args)[0])
    assert result.ok, result.detail


@needs_cxx
def test_emulated_tensor_core_sums_truncate() -> None:
    """The emulation's tensor-core instruction rounds its exact sum toward zero, as the
    hardware's f32 accumulation does: 1 + 0.75 ulp(1) comes out 1.0, not the nearest float
    1 + 2^-23 (one depth step: nothing else rounds)."""
    kernel = KERNELS["matmul_f32"]
    a = torch.tensor([[1.0, 3 * 2.0 ** -25]])
    b = torch.ones(2, 1)
    want = kernel.reference(a, b)
    assert want.item() == 1 + 3 * 2.0 ** -25
    got = emulate.build(kernel.ir, schedule={"precision": "tf32"})(a, b)
    assert got.item() == 1.0 and want.float().item() == 1 + 2.0 ** -23


def _rna_tf32(x: float) -> float:
    """cvt.rna.tf32.f32, independently: keep 10 fraction bits, half-way cases away from 0."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    if (bits & 0x7F800000) == 0x7F800000:
        return x
    low = bits & 0x1FFF
    bits &= ~0x1FFF
    if low >= 0x1000:
        bits += 0x2000
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


@needs_cxx
def test_emulated_tf32_rounds_like_cvt_rna() -> None:
    """K = 1 products with b = 1 under precision "tf32" are the TF32 roundings of a: ties away
    from zero (either sign), just below and above a tie, a carry into the exponent, the
    largest finite value (to inf), a subnormal, inf."""
    kernel = KERNELS["matmul_f32"]
    u = 2.0 ** -10
    values = [1 + u / 2, -(1 + u / 2), 1 + 3 * u / 2, 1 + u / 2 - 2.0 ** -23,
              1 + u / 2 + 2.0 ** -23, 2 - u / 2, 3.4028234663852886e38, 1e-40, float("inf")]
    a = torch.tensor(values, dtype=torch.float32).reshape(-1, 1)
    got = emulate.build(kernel.ir, schedule={"precision": "tf32"})(a, torch.ones(1, 1))
    want = [_rna_tf32(float(v)) for v in a.flatten()]
    assert got.flatten().tolist() == want
    assert want[:3] == [1 + u, -(1 + u), 1 + 2 * u] and want[6] == float("inf")


@needs_cxx
def test_infinite_operands_stay_infinite() -> None:
    """An infinite operand makes its lo part NaN (inf - inf); the small products' sum is
    dropped there, so the result is the reference's inf, not NaN."""
    kernel = KERNELS["matmul_f32"]
    a, b = torch.randn(4, 8), torch.rand(8, 5) + 0.5
    a[1, 3] = float("inf")
    a[2, 0] = float("-inf")
    got = emulate.build(kernel.ir, schedule=TF32X3)(a, b)
    want = kernel.reference(a, b)
    assert compare(got, want, DType.f32, magnitude(kernel, [a, b])[0]).ok
    assert got[1].isposinf().all() and got[2].isneginf().all()


# --- the policy ---------------------------------------------------------------------------------
def test_precision_defaults_to_tf32x3_on_the_tensor_cores() -> None:
    """No precision key: f32 contractions take the 3xTF32 tensor-core path on every NVIDIA
    target and in the CPU emulation (which mirrors it), whose result is then within the gate's
    f32 tolerance of the float64 reference; AMD's matrix cores (no TF32) keep the loop nest."""
    kernel = KERNELS["matmul_bias_gelu_f32"]
    for d, arch in ((CUDA, "sm_90a"), (CUDA, "sm_80"), (HIP, "sm_90a"), (emulate.CPU, None)):
        assert "contraction" in _units(kernel, d, arch), (d.name, arch)
    assert list(_units(kernel, HIP, "gfx90a")) == ["loop_nest"]
    if emulate.compiler() is None:
        return
    args = random_arguments(kernel.ir, {"M": 20, "N": 24, "K": 300}, seed=3)
    got = emulate.build(kernel.ir)(*args)
    assert compare(got, kernel.reference(*args), DType.f32, magnitude(kernel, args)[0]).ok


def test_precision_policy_is_carried_by_the_schedule() -> None:
    """tf32x3 and tf32 by the key, tf32 with allow_tf32, ieee: the loop nest; per launch
    ("0.precision") over the kernel's key; f16 operands are not affected."""
    kernel = KERNELS["matmul_f32"]
    for arch in ("sm_90a", "sm_80"):
        assert _units(kernel, CUDA, arch, TF32X3)["contraction"].data["precision"] == "tf32x3"
        assert _units(kernel, CUDA, arch, {"allow_tf32": True})["contraction"].data[
            "precision"] == "tf32"
        assert "contraction" not in _units(kernel, CUDA, arch, {"precision": "ieee"})
        assert _units(kernel, CUDA, arch, {"precision": "ieee", "0.precision": "tf32"})[
            "contraction"].data["precision"] == "tf32"
        assert _units(kernel, CUDA, arch, {"precision": "ieee", "0.precision": "tf32x3"})[
            "contraction"].data["precision"] == "tf32x3"
    wgmma = _units(kernel, CUDA, "sm_90a", TF32X3)["contraction"]
    assert wgmma.data["kind"] == "wgmma_tf32"
    # four accumulator sets a thread: tiles of 32 accumulators (BN = 64)
    assert {re.search(r"_(\d+x\d+x\d+w\d+s\d+)_", v).group(1) for v in wgmma.variants} == \
        {"128x64x32w8s4", "64x64x32w4s4"}
    f16 = kspec.load(ROOT / "specs" / "matmul.kspec")["matmul"]
    assert _units(f16, CUDA, "sm_90a", {"precision": "ieee"})["contraction"].data["kind"] == \
        "wgmma"
    with pytest.raises(KspecError) as e:
        _units(kernel, CUDA, "sm_90a", {"precision": "fp64"})
    assert str(e.value) == "error: precision='fp64' is not one of ieee, tf32x3, tf32"


def test_cuda_and_hip_builds_take_allow_tf32() -> None:
    """allow_tf32 is a build option of the C++ backends too (as for Triton): it reaches the
    plan as the schedule's key. Without a GPU the build stops at the device check, after the
    options were accepted."""
    from kspec.errors import BackendUnavailable

    kernel = KERNELS["matmul_f32"]
    for backend in ("cuda", "hip"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present: the build would run")
        with pytest.raises(BackendUnavailable):
            get_backend(backend).build(kernel.ir, allow_tf32=True)


def test_amd_keeps_f32_on_the_loop_nest() -> None:
    kernel = KERNELS["matmul_f32"]
    assert "contraction" not in _units(kernel, HIP, "gfx90a", TF32X3)
    assert "contraction" not in _units(kernel, HIP, "gfx942", TF32X3)


@pytest.mark.parametrize("arch,tile", [("sm_90a", SPLIT_TILES["wgmma_tf32"]),
                                       ("sm_80", SPLIT_TILES["mma_sync_tf32"])])
def test_deep_f32_contractions_launch_split_k(arch: str, tile: str) -> None:
    """10^7 + 19 deep, a 16 x 16 output (bench/large.py's case): MAX_SLICES blocks of the f32
    split-K kernel (element-wise staging: K is odd) and the sum kernel; 4096 deep: the direct
    kernel with 16-byte copies."""
    kernel = KERNELS["matmul_bias_gelu_f32"]
    unit = _units(kernel, CUDA, arch, TF32X3)["contraction"]

    def launches(env: dict[str, int]) -> list[tuple]:
        meta = {t.name: torch.empty(tuple(x.evaluate(env) for x in t.dims), device="meta")
                for t in (*kernel.ir.tensor_params, *kernel.ir.outputs)}
        return [tuple(x[:4]) for x in unit.launches(env, meta, DeviceInfo(False, 132, {}))]
    threads = parse_tile(tile, unit.data["kind"]).threads
    assert launches({"M": 16, "N": 16, "K": 10**7 + 19}) == [
        (f"{unit.name}_{tile}_splitksafe", MAX_SLICES, threads, {"parts": MAX_SLICES}),
        ("matmul_bias_gelu_f32_0_splitk_sum", 1, 256, {"parts": MAX_SLICES})]
    (fn, *_), = launches({"M": 16, "N": 16, "K": 4096})
    assert fn.endswith("_async") and "splitk" not in fn


# --- ahead of time ------------------------------------------------------------------------------
def _entries(ptx: str) -> dict[str, str]:
    return {m.group(1): body for m, body in
            zip(re.finditer(r"\.entry (\w+)\(", ptx), re.split(r"\.entry \w+\(", ptx)[1:])}


@needs_nvcc
@pytest.mark.parametrize("arch,instruction,sass", [
    ("sm_90a", r"wgmma\.mma_async\.sync\.aligned\.m64n\d+k8\.f32\.tf32\.tf32",
     r"HGMMA\.64x\d+x8\.F32\.TF32"),
    ("sm_80", r"mma\.sync\.aligned\.m16n8k8\.row\.col\.f32\.tf32\.tf32\.f32",
     r"HMMA\.1688\.F32\.TF32")])
@pytest.mark.parametrize("name", ["matmul_f32", "matmul_nt_f32", "matmul_tn_f32",
                                  "matmul_tt_f32", "bmm_f32", "matmul_bias_gelu_f32"])
def test_f32_kernels_compile_to_tf32_tensor_core_instructions(name: str, arch: str,
                                                              instruction: str,
                                                              sass: str) -> None:
    """Every contraction kernel (tiles, element-wise and copy variants, split-K) holds the
    TF32 matrix instruction and cvt.rna.tf32.f32 in its PTX and the TF32 tensor-core
    instruction in its SASS (when cuobjdump is here: Triton's wheel ships one), and ptxas
    spills nothing; the split-K sum kernel has no tensor cores."""
    from kspec.backends.cuda import disassemble

    c = get_backend("cuda").compile(KERNELS[name].ir, arch, ptx=True, schedule=TF32X3)
    entries = _entries(c.asm)
    contraction = [f for f in entries if "_contraction_" in f]
    assert len(contraction) == 5, sorted(entries)   # 2 tiles x copies + element-wise + 2 split
    for f in contraction:
        assert re.search(instruction, entries[f]) and "cvt.rna.tf32.f32" in entries[f], f
        assert c.resources[f]["spill_stores"] == 0, (f, c.resources[f])
    assert not re.search(instruction, entries[f"{name}_0_splitk_sum"])
    text = disassemble(c.binary)
    if not text:
        pytest.skip("no cuobjdump to read the SASS")
    bodies = {b.split("\n", 1)[0].strip(): b for b in re.split(r"\n\s*Function : ", text)[1:]}
    assert set(bodies) == set(entries)
    for f, body in bodies.items():
        assert bool(re.search(sass, body)) == (f in contraction), f


@needs_nvcc
@pytest.mark.parametrize("arch,instruction", [("sm_90a", "wgmma.mma_async"),
                                              ("sm_80", "mma.sync.aligned.m16n8k8")])
def test_hip_source_for_nvidia_takes_the_tf32_path(arch: str, instruction: str) -> None:
    c = get_backend("hip").compile(KERNELS["matmul_nt_f32"].ir, arch, asm=True, schedule=TF32X3)
    assert re.search(instruction + r"\S*\.tf32", c.asm)


@needs_hipcc
def test_hipcc_compiles_f32_for_gfx90a() -> None:
    """AMD's f32 contraction stays on the loop nest, and keeps compiling."""
    c = get_backend("hip").compile(KERNELS["matmul_bias_gelu_f32"].ir, "gfx90a", schedule=TF32X3)
    assert c.binary and list(c.resources) == ["matmul_bias_gelu_f32_0_c"]


# --- the GPU benchmark's CPU self-test ---------------------------------------------------------
@needs_cxx
def test_benchmark_runs_small_on_the_cpu(tmp_path) -> None:
    """bench/f32_contractions.py --device cpu --small: the C++ emulation and eager PyTorch on
    tiny sizes, each within f32 accuracy of the float64 reference, in the JSON it writes."""
    from bench_scripts import load

    bench = load("f32_contractions")
    out = tmp_path / "r.json"
    results = bench.main(["--device", "cpu", "--small", "--cases", "gemm_4096,gemm_tn_4096",
                          "--json", str(out), "--rep-ms", "1"])
    assert json.loads(out.read_text()) == results
    assert [c["case"] for c in results["cases"]] == ["gemm_4096", "gemm_tn_4096"]
    for c in results["cases"]:
        assert set(c["runs"]) == {"cuda", "hip", "eager_ieee"}
        for run in c["runs"].values():
            assert run["status"] == "ok" and run["rel_err"] < 1e-6 and run["ms"] > 0


def test_benchmark_refuses_unknown_names(capsys) -> None:
    from bench_scripts import load

    bench = load("f32_contractions")
    with pytest.raises(SystemExit):
        bench.parse_args(["--runners", "cuda,cublas"])
    assert "unknown runner(s) cublas; choose from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--device", "cpu"])
    assert "--device cpu runs the C++ emulation: add --small" in capsys.readouterr().err
