"""Flag values that would check nothing, or sizes a kernel does not have, are errors with a
message and exit status 1, never a traceback or an 'ok' (issue 11's interface items)."""
from __future__ import annotations

from pathlib import Path

import pytest

from kspec.cli import main

RELU = str(Path(__file__).resolve().parent.parent / "specs" / "relu.kspec")


@pytest.mark.parametrize("argv,message", [
    (["check", RELU, "-n", "0"], "--examples must be at least 1, got 0"),
    (["check", RELU, "--max-elements", "1"], "--max-elements must be at least 256, got 1"),
    (["check", RELU, "--max-elements", "0"], "--max-elements must be at least 256, got 0"),
    (["check", RELU, "--max-seconds", "0"], "--max-seconds must be positive, got 0.0"),
    (["tune", RELU, "--shape", "Q=4"], "--shape Q=4: kernel relu has no symbol Q (its "
                                       "symbols: M, N)"),
    (["tune", RELU, "--shape", "M=4"], "--shape M=4: kernel relu needs a value for N"),
    (["tune", RELU, "--shape", "M=x"], "--shape: expected SYMBOL=INTEGER[,SYMBOL=INTEGER...], "
                                       "got 'M=x'"),
    (["tune", RELU, "--examples", "0"], "--examples must be at least 1, got 0"),
    (["--emit", "asm", "--shape", "M=4", RELU], "needs a value for N"),
    (["--shape", "M=4,N=4", RELU], "--shape goes with --emit asm"),
])
def test_bad_values_are_errors(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
