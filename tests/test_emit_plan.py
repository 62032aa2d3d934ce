"""`kcompile --emit plan --target triton` prints Triton's own plan (the one its module is
written from) and each launch's launch-time schedule and branches: rows SINGLE / STRIDED /
SPLIT / INDEX64 with their thresholds, the contraction's tiles, precision and compensation,
from the expressions the host code is made of. `--target cuda|hip` prints the C++ units
(kspec/backends/cxx/describe.py): per unit its pattern, functions and the launcher's choices,
from the units' data. Goldens: tests/golden/plan/ (regenerate with KSPEC_UPDATE_GOLDEN=1)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from kspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "plan"


@pytest.mark.parametrize("spec", ["softmax", "matmul", "layernorm"])
def test_triton_plan_shows_its_schedule(spec: str, capsys) -> None:
    assert main(["--emit", "plan", "--target", "triton", str(ROOT / "specs" / f"{spec}.kspec")]) == 0
    text = capsys.readouterr().out
    golden = GOLDEN / f"{spec}.triton.txt"
    if os.environ.get("KSPEC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "launch-time schedule (triton):" in text and "INDEX64 = " in text


CXX_TARGETS = [("cuda", "sm_90a"), ("hip", "gfx90a")]


def _cxx_plan(path: Path, target: str, arch: str, capsys) -> str:
    assert main(["--emit", "plan", "--target", target, "--arch", arch, str(path)]) == 0
    return capsys.readouterr().out


def _check_golden(text: str, name: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("KSPEC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("target,arch", CXX_TARGETS)
@pytest.mark.parametrize("spec", ["softmax", "matmul", "layernorm"])
def test_cxx_plan_shows_its_units(spec: str, target: str, arch: str, capsys) -> None:
    """`--target cuda|hip` prints the C++ units the backend renders (cxx/describe.py), after
    the shared plan: the f16 matmul is a wgmma contraction with split-K on sm_90a and the
    loop nest on gfx90a (MFMA is not its default)."""
    text = _cxx_plan(ROOT / "specs" / f"{spec}.kspec", target, arch, capsys)
    _check_golden(text, f"{spec}.{target}.{arch}.txt")
    assert f"C++ plan ({target} {arch}:" in text


@pytest.mark.parametrize("target,arch", CXX_TARGETS)
def test_cxx_plan_f32_matmul(target: str, arch: str, tmp_path: Path, capsys) -> None:
    """An f32 matmul: the 3xTF32 tensor-core path on sm_90a, the loop nest on gfx90a."""
    spec = tmp_path / "matmul_f32.kspec"
    spec.write_text((ROOT / "specs" / "matmul.kspec").read_text().replace("f16", "f32"))
    text = _cxx_plan(spec, target, arch, capsys)
    _check_golden(text, f"matmul_f32.{target}.{arch}.txt")
    assert ("precision tf32x3" in text) == (target == "cuda")


def test_cxx_plan_follows_the_schedule() -> None:
    """The printed plan is the one the schedule makes: precision ieee puts an f32 contraction
    on the loop nest, a forced tile is the only one compiled."""
    from kspec import api
    from kspec.backends import get_backend

    source = (ROOT / "specs" / "matmul.kspec").read_text()
    f32 = api.loads(source.replace("f16", "f32"))["matmul"].ir
    cuda = get_backend("cuda")
    ieee = cuda.plan(f32, "sm_90a", {"precision": "ieee"})
    assert "0. loop_nest matmul_0_c" in ieee
    assert "note: a contraction on the loop nest: operands f32, precision ieee" in ieee
    forced = cuda.plan(api.loads(source)["matmul"].ir, "sm_90a", {"0.tile": "128x128x64w8s4"})
    assert "tiles: 128x128x64w8s4\n" in forced
