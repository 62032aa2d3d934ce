"""`kcompile --target cuda|hip --emit asm --shape ...` without a GPU: the C++ launcher's own
choices at those sizes (kspec/backends/cxx/shape.py, on meta tensors), the launches file, and
the checks against the target's threads, grid and shared memory."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import kspec
import kspec.cli
from kspec.backends import get_backend
from kspec.backends.cxx import CUDA, HIP
from kspec.backends.cxx.shape import PlannedLaunch, check_launch, launches_at, launches_text
from kspec.errors import KspecError, ToolchainError

ROOT = Path(__file__).resolve().parent.parent
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")


def _spec(name: str):
    return kspec.load(ROOT / "specs" / f"{name}.kspec")[name]


def _launches(files: dict[str, str], name: str, arch: str) -> list[str]:
    text = files[f"{name}.{arch}.launches.txt"]
    assert text.startswith(f"# {name} at ")
    return text.splitlines()[1:]


@needs_nvcc
def test_rows_index_width_follows_the_shape() -> None:
    """Below 2^31 elements the 32-bit contiguous variant (`_c`), at 2^31 the int64 one."""
    k = _spec("softmax")
    cuda = get_backend("cuda")
    small = _launches(cuda.compile_asm(k.ir, arch="sm_90", shape={"M": 4, "N": 1024}),
                      "softmax", "sm_90")
    large = _launches(cuda.compile_asm(k.ir, arch="sm_90", shape={"M": 2 ** 21, "N": 1024}),
                      "softmax", "sm_90")
    assert len(small) == len(large) == 1
    small_fn, large_fn = small[0].split(":")[0], large[0].split(":")[0]
    assert small_fn.startswith("softmax_0_rows_") and small_fn.endswith("c")
    assert large_fn.startswith("softmax_0_rows_") and not large_fn.endswith("c")
    assert large[0] == f"{large_fn}: grid {2 ** 21}, block 256, shared 0 bytes"


def test_attention_fuses_narrow_heads_only() -> None:
    """Head dim 64: the one fused kernel; 1024: its unfused launches (scores, softmax rows,
    output), each with the shared memory its tile takes."""
    k = _spec("attention")
    env = {"B": 2, "H": 4, "S": 512, "T": 512, "D": 64}
    fused = launches_at(k.ir, CUDA, "sm_90", env)
    assert [x.function for x in fused] == ["attention_0_attention_d64_async"]
    assert fused[0].grid == 2 * 4 * 512 // 64 and fused[0].shared > 0
    unfused = launches_at(k.ir, CUDA, "sm_90", {**env, "D": 1024})
    assert len(unfused) == 3 and not any("_attention_" in x.function for x in unfused)
    assert "rows" in unfused[1].function
    text = launches_text(k.ir, "sm_90", {**env, "D": 1024}, unfused)
    assert text.splitlines()[0] == "# attention at B=2,H=4,S=512,T=512,D=1024 on sm_90"
    assert all(line.split(":")[0] in {x.function for x in unfused}
               for line in text.splitlines()[1:])
    # HIP compiles no fused attention: the unfused launches at either width
    assert not any("_attention_" in x.function for x in launches_at(k.ir, HIP, "gfx942", env))


def test_shape_errors_are_exact() -> None:
    k = _spec("softmax")
    cuda = get_backend("cuda")
    with pytest.raises(KspecError) as e:      # before any compile
        cuda.compile_asm(k.ir, arch="sm_90", shape={"M": 4})
    assert str(e.value) == "error: --shape M=4: kernel softmax needs a value for N (its symbols: M, N)"
    with pytest.raises(KspecError) as e:
        get_backend("hip").compile_asm(k.ir, arch="gfx942", shape={"M": 4, "N": 4, "Q": 1})
    assert str(e.value) == "error: --shape M=4,N=4,Q=1: kernel softmax has no symbol Q (its symbols: M, N)"
    with pytest.raises(KspecError, match="N must be an integer of at least 1, not 0"):
        launches_at(k.ir, CUDA, "sm_90", {"M": 4, "N": 0})
    with pytest.raises(KspecError, match="no representative device for arch 'sm_75'"):
        launches_at(k.ir, CUDA, "sm_75", {"M": 4, "N": 4})


def test_limits_name_the_resource_and_both_numbers() -> None:
    k = _spec("matmul")
    env = {"M": 4096, "N": 4096, "K": 4096}
    wide = {"0.tile": "128x256x32w8s4"}    # fits sm_90's shared memory, not sm_86's
    (on_90,) = launches_at(k.ir, CUDA, "sm_90", env, wide)
    assert 101376 < on_90.shared <= 232448
    with pytest.raises(ToolchainError) as e:
        launches_at(k.ir, CUDA, "sm_86", env, wide)
    assert str(e.value) == (f"toolchain error: {on_90.function} at sm_86: dynamic shared "
                            f"memory {on_90.shared} bytes exceeds the target's 101376")
    # one fused attention block per 64 query rows of each head: 2^31 blocks do not launch
    a = _spec("attention")
    with pytest.raises(ToolchainError, match="grid axis x of 2147483648 blocks exceeds the "
                                             "limit 2147483647"):
        launches_at(a.ir, CUDA, "sm_90", {"B": 1, "H": 2 ** 20, "S": 2 ** 17, "T": 1, "D": 64})
    with pytest.raises(ToolchainError, match="f at sm_90: 2048 threads per block exceed the "
                                             "limit 1024"):
        check_launch(PlannedLaunch("f", 1, 2048, 0), "sm_90", 232448)


@needs_nvcc
def test_cli_writes_the_launches_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = kspec.cli.main(["--target", "cuda", "--arch", "sm_90", "--emit", "asm",
                         "--shape", "M=4,N=1024", str(ROOT / "specs" / "softmax.kspec"),
                         "-o", str(out)])
    assert rc == 0
    lines = (out / "softmax.sm_90.launches.txt").read_text().splitlines()
    assert lines[0] == "# softmax at M=4,N=1024 on sm_90"
    assert len(lines) == 2 and lines[1].startswith("softmax_0_rows_")
    assert (out / "softmax.ptx").exists()
    assert kspec.cli.main(["--target", "cuda", "--emit", "asm", "--shape", "M=4",
                           str(ROOT / "specs" / "softmax.kspec"), "-o", str(out)]) == 1


@needs_nvcc
def test_hip_on_nvidia_writes_the_launches_file() -> None:
    k = _spec("softmax")
    files = get_backend("hip").compile_asm(k.ir, arch="sm_90", shape={"M": 4, "N": 1024})
    assert _launches(files, "softmax", "sm_90")[0].startswith("softmax_0_rows_")


@pytest.mark.skipif(shutil.which("hipcc") is None, reason="hipcc is not on PATH (the HIP "
                    "launch choices are tested above without it)")
def test_hip_writes_the_launches_file() -> None:
    k = _spec("softmax")
    # gfx90a: Debian's hipcc (clang 15, what CI installs) cannot target gfx942
    files = get_backend("hip").compile_asm(k.ir, arch="gfx90a", shape={"M": 4, "N": 1024})
    assert _launches(files, "softmax", "gfx90a")[0].startswith("softmax_0_rows_")
