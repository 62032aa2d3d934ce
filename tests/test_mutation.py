"""Mutation test of `kcompile check`'s gate: the generated Triton source of several specs,
mutated the ways a hand-tuned or model-written kernel goes wrong (a swapped operator, a mask
bound off by one, a reduction's padding/identity value, a dropped scale factor, a neighbouring
element read), must each be rejected by `verify_candidate`, and the unmutated source accepted.

Mutations apply only inside the @triton.jit kernels (not the shared helpers). Run with `-s` to
see the kill table; `KSPEC_MUTATION_REPORT=FILE` writes it as JSON.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

import kspec
from kspec.verify.candidates import verify_candidate

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["softmax", "layernorm", "matmul", "row_sum", "conv1d"]
# small and few: the Triton interpreter is slow; 8193 reaches the looped row path
SETTINGS = dict(examples=4, seed=0, max_elements=8200, max_work=20000, shrink_budget=4,
                budget_mb=0.5)

# (name, pattern, replacement): each applied at up to MAX_SITES occurrences, one per mutant
OPERATORS = [
    ("swap - for +", r"\(x_(\d+) - (\w+)\)", r"(x_\1 + \2)"),
    ("swap + for -", r"\) \+ (b_\d+)\)", r") - \1)"),
    ("swap * for +", r"\* (w_\d+|rstd_row)\)", r"+ \1)"),
    ("swap max for min", r"tl\.maximum\(", "tl.minimum("),
    ("swap _max for _min", r", _max,", ", _min,"),
    ("mask bound -1", r"mask = (offs_\w+) < \((\w+)\)", r"mask = \1 < (\2) - 1"),
    ("mask bound +1", r"mask = (offs_\w+) < \((\w+)\)", r"mask = \1 < (\2) + 1"),
    ("contraction mask -1", r"\((offs_k[ab]) < \(", r"(\1 + 1 < ("),
    ("contraction mask +1", r"\((offs_[mn]) < \(\((\w+)\)", r"(\1 <= ((\2)"),
    ("row mask +1", r"\((offs_n) < \((\w+)\)\)", r"(\1 < (\2) + 1)"),
    ("max padding 0", r"float\('-inf'\)", "0.0"),
    ("sum padding 1", r"(tl\.where\(pmask & rmask, [^\n]*), 0\.0\)", r"\1, 1.0)"),
    ("sum identity 1", r"tl\.full\((\[[^\]]*\]), 0\.0,", r"tl.full(\1, 1.0,"),
    ("contraction other 1", r"other=0\.0\)\n(\s+)(offs_kb_r|b_2|w_2)", r"other=1.0)\n\1\2"),
    ("drop mean scale", r"\n(\s+)(red\d+) = \2 / \(N\)", r"\n\1\2 = \2"),
    ("drop normaliser", r"\) / (y_r0_row)\)", r"))"),
    ("drop rstd", r" \* rstd_row\)", ")"),
    ("neighbour read (row)", r"\(offs_r\) \* x_s1", "(offs_r + 1) * x_s1"),
    ("neighbour read (k)", r"\(offs_ka\) \* a_s1", "(offs_ka + 1) * a_s1"),
    ("neighbour read (conv)", r"\(offs_m_p \+ offs_ka_r\) \* x_s2", "(offs_m_p + offs_ka_r + 1) * x_s2"),
    ("neighbour read (w)", r"\(offs_r\) \* w_s0", "(offs_r + 1) * w_s0"),
    ("transposed index", r"\(offs_kb\) \* b_s0 \+ \(offs_n\) \* b_s1", "(offs_kb) * b_s1 + (offs_n) * b_s0"),
]
MAX_SITES = 3
# mutants that compute the same outputs (not counted in the kill rate), with the reason
EQUIVALENT = {
    ("matmul", "row mask +1 @0"): "reads a column of b past N whose results are never stored",
    ("matmul", "contraction other 1 @0"): "b's masked rows meet a's zero padding; masked "
                                          "columns are never stored",
    ("conv1d", "contraction other 1 @0"): "as for matmul",
    ("conv1d", "contraction mask +1 @0"): "loads an output row past N*(L-K+1) that is never "
                                          "stored",
    ("conv1d", "row mask +1 @0"): "loads a filter row past O whose results are never stored",
    # the online exp-sum (looped rows @0 @1, split phase 1 @2 @3): a lane's running sum and
    # its Kahan loss are scaled by exp(-inf - max) = 0 at its first element, and a lane no
    # element reaches is combined with weight exp(-inf - max) = 0: the initial value is lost
    **{("softmax", f"sum identity 1 @{i}"): "the online exp-sum's initial value is always "
                                            "scaled by 0" for i in range(4)},
    ("softmax", "max padding 0 @12"): "red1_exp_sum in split phase 1 is computed, never stored",
}
# contractions have no looped row path: no need for the 8193-long cases there (slow)
SMALL = {"matmul", "conv1d"}


def settings(name: str) -> dict:
    return {**SETTINGS, "max_elements": 512} if name in SMALL else SETTINGS


def _jit_region(source: str, name: str) -> tuple[int, int]:
    start = source.index(f"def {name}_")
    return start, source.index("\ndef launch(")


def mutants(name: str, source: str, max_sites: int | None = MAX_SITES) -> list[tuple[str, str]]:
    """Each operator at up to `max_sites` of its matches (first, middle, last), or at every
    match when `max_sites` is None (tests/mutation_all_sites.py)."""
    start, end = _jit_region(source, name)
    region = source[start:end]
    out: list[tuple[str, str]] = []
    seen = {source}
    for label, pattern, repl in OPERATORS:
        matches = list(re.finditer(pattern, region))
        if not matches:
            continue
        # spread the sites over the kernel: first, middle, last
        picks = (range(len(matches)) if max_sites is None else
                 sorted({0, len(matches) // 2, len(matches) - 1})[:max_sites])
        for i in picks:
            m = matches[i]
            new = region[:m.start()] + m.expand(repl) + region[m.end():]
            text = source[:start] + new + source[end:]
            if text not in seen:
                seen.add(text)
                out.append((f"{label} @{i}", text))
    return out


def _kernel(name: str):
    return kspec.load(ROOT / "specs" / f"{name}.kspec")[name]


RESULTS: dict[str, list[dict]] = {}


@pytest.mark.parametrize("name", SPECS)
def test_unmutated_source_is_accepted(name: str) -> None:
    k = _kernel(name)
    v = verify_candidate(k, "triton", k.source("triton"), **settings(name))
    assert v.accepted, v.text()


# Every site of five specs is about 100 candidates, each in its own worker: about 4 minutes a
# spec on 2 cores, over the CPU suite's budget; KSPEC_SLOW=1 runs it. The split-row launches'
# mutants are killed by the threshold cases (verify/coverage.py) and the forced split rows.
@pytest.mark.skipif(os.environ.get("KSPEC_SLOW") != "1",
                    reason="slow (about 4 min a spec): set KSPEC_SLOW=1")
@pytest.mark.parametrize("name", SPECS)
def test_every_mutant_is_rejected(name: str) -> None:
    k = _kernel(name)
    source = k.source("triton")
    ms = mutants(name, source)
    assert len(ms) >= 4, f"{name}: only {len(ms)} mutants; the generated code changed shape?"
    survivors, rows = [], []
    for label, text in ms:
        t0 = time.perf_counter()
        v = verify_candidate(k, "triton", text, **settings(name))
        rows.append({"spec": name, "mutation": label, "status": v.status,
                     "examples": v.examples, "seconds": round(time.perf_counter() - t0, 2),
                     "detail": v.detail[:120]})
        if v.accepted and (name, label) not in EQUIVALENT:
            survivors.append(label)
    RESULTS[name] = rows
    counted = [m for m in ms if (name, m[0]) not in EQUIVALENT]
    killed = len(counted) - len(survivors)
    print(f"\n{name}: {killed}/{len(counted)} non-equivalent mutants killed "
          f"({len(ms) - len(counted)} equivalent ones run, not counted)")
    for r in rows:
        print(f"  {r['mutation']:28s} {r['status']:14s} after {r['examples']} examples "
              f"({r['seconds']} s)")
    report = os.environ.get("KSPEC_MUTATION_REPORT")
    if report:
        Path(report).write_text(json.dumps(RESULTS, indent=2))
    assert not survivors, f"{name}: mutants survived: {survivors}"
