"""`kcompile --emit plan --target triton` prints Triton's own plan (the one its module is
written from) and each launch's launch-time schedule and branches: rows SINGLE / STRIDED /
SPLIT / INDEX64 with their thresholds, the contraction's tiles, precision and compensation,
from the expressions the host code is made of. Goldens: tests/golden/plan/ (regenerate
with KSPEC_UPDATE_GOLDEN=1)."""
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
