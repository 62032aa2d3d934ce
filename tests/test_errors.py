"""Golden tests for error messages: every tests/golden/errors/NAME.kspec is a malformed program,
and NAME.txt the exact text of the error it must raise (`NAME.kspec:line:col: kind: message`,
the source line and a caret under the fault).

To regenerate the .txt files after a deliberate change of wording, run

    KSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_errors.py

and review every changed golden by eye (git diff): the message must say what was expected and
the caret must stand under the fault.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import kspec

GOLDEN = Path(__file__).resolve().parent / "golden" / "errors"
UPDATE = os.environ.get("KSPEC_UPDATE_GOLDEN") == "1"
CASES = sorted(p.stem for p in GOLDEN.glob("*.kspec"))


def read_source(name: str) -> str:
    # as kspec.load reads a file: bytes kept exactly, undecodable ones as lone surrogates
    return (GOLDEN / f"{name}.kspec").read_bytes().decode("utf-8", "surrogateescape")


def error_text(name: str) -> tuple[kspec.KspecError, str]:
    try:
        kspec.loads(read_source(name), f"{name}.kspec")
    except kspec.KspecError as e:
        return e, str(e) + "\n"
    pytest.fail(f"{name}.kspec compiled without an error")


@pytest.mark.parametrize("name", CASES)
def test_error_message(name):
    err, text = error_text(name)
    golden = GOLDEN / f"{name}.txt"
    if UPDATE or not golden.exists():
        golden.write_text(text, encoding="utf-8", newline="")
        if not UPDATE:
            pytest.fail(f"wrote missing golden {golden.name}; review it and run again")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_error_shape(name):
    """file:line:col, the kind, then the source line and a caret within it."""
    err, text = error_text(name)
    assert isinstance(err, (kspec.KspecSyntaxError, kspec.KspecSemanticError)), type(err)
    head, line, caret = text.rstrip("\n").split("\n")
    assert err.pos is not None
    assert head.startswith(f"{name}.kspec:{err.pos.line}:{err.pos.col}: {err.kind}: "), head
    assert line.startswith("    ") and caret.startswith("    ")
    assert caret.strip() == "^" and len(caret) - 1 <= len(line), (line, caret)
    assert "Traceback" not in text
    # the excerpt is the source line the position names (tabs shown as one space)
    source_lines = read_source(name).split("\n")
    if err.pos.line <= len(source_lines):
        shown = line[4:]
        original = source_lines[err.pos.line - 1].rstrip("\r")
        assert len(shown) == len(original.expandtabs(1)), (shown, original)


def test_enough_distinct_cases():
    texts = {(GOLDEN / f"{n}.txt").read_text() for n in CASES if (GOLDEN / f"{n}.txt").exists()}
    assert len(CASES) >= 30 and len(texts) == len(CASES)


def test_every_golden_has_a_program():
    orphans = [p.name for p in GOLDEN.glob("*.txt") if not (GOLDEN / f"{p.stem}.kspec").exists()]
    assert not orphans
