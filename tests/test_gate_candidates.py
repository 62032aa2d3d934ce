"""The gate (`kcompile check --source`, `verify_candidate`) against purpose-built bad kernels:
each candidate (tests/gate_patches.py) is kspec's generated softmax or layernorm, generated now
and patched the way an adversary (or a careless tuner) would change it, and must be rejected
with the status that names the reason; kspec's own generated kernels must still be accepted.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import kspec
import kspec.verify.runner as runner
from kspec.cli import main
from kspec.verify.candidates import verify_candidate
from kspec.verify.isolation import IsolatedCandidate

from gate_patches import PATCHES, apply, candidate, generated

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(examples=2, seed=0, launch_timeout=60)


def kernel(name: str):
    return kspec.load(ROOT / "specs" / f"{name}.kspec")[name]


# (candidate file, spec, status, words the detail must contain)
REJECTED = [
    ("patch_checker", "softmax", "cheat", "imports kspec.verify.runner"),
    ("detect_gate", "softmax", "wrong", "output 'y'"),
    ("ignores_strides", "softmax", "wrong", "output 'y'"),
    ("one_pass_variance", "layernorm", "wrong", "output"),
    ("bf16_via_f16", "layernorm", "wrong", "output"),
    ("first_element_cache", "softmax", "cheat", "cached"),
    ("torch_softmax", "softmax", "cheat", "calls torch.softmax"),
    ("hidden_fallback", "softmax", "cheat", "launched no kernel"),
    ("decoy_kernel", "softmax", "cheat", "not given to any kernel launch"),
    ("side_stream", "softmax", "cheat", "calls torch.cuda.stream"),
    ("new_empty_overflow", "softmax", "wrong", "outside"),
    ("swallow", "softmax", "cheat", "try/except Exception"),
    pytest.param("masked_later_read", "softmax", "wrong", "read outside the buffers",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="loads are "
                                          "checked against their buffers under the "
                                          "interpreter only")),
    ("wrong_past_1024_rows", "softmax", "wrong", "output 'y'"),
    ("wrong_past_4096_columns", "softmax", "wrong", "output 'y'"),
    ("wrong_odd_wide_rows", "softmax", "wrong", "output 'y'"),
    ("wrong_looped_rows", "softmax", "wrong", "output 'y'"),
]


def test_every_patch_applies_to_the_generated_source() -> None:
    # each candidate is its spec's generated module with exactly the named edits
    for name, p in PATCHES.items():
        text = candidate(name)
        assert text != generated(p.spec) and all(new in text for _, new in p.edits), name
    for r in REJECTED:
        name, spec = (r.values if hasattr(r, "values") else r)[:2]
        assert PATCHES[name].spec == spec, name


def test_a_stale_patch_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="expects 'no such line' exactly once in the "
                                             "generated source, found 0 times"):
        apply(generated("softmax"), (("no such line", "x"),), "stale")
    with pytest.raises(AssertionError, match="found 2 times"):
        apply("a\na\n", (("a\n", "b\n"),), "twice")


@pytest.mark.parametrize("name,spec,status,words", REJECTED)
def test_bad_candidate_is_rejected(name: str, spec: str, status: str, words: str) -> None:
    v = verify_candidate(kernel(spec), "triton", candidate(name), **FAST)
    assert v.status == status and words in v.detail, v.text()


def test_a_sleeping_candidate_times_out() -> None:
    v = verify_candidate(kernel("softmax"), "triton", candidate("sleeper"), examples=1,
                         launch_timeout=5)
    assert v.status == "timeout" and "no reply within 5 s" in v.detail, v.text()


def test_a_patch_made_at_import_stays_in_the_worker() -> None:
    # past the static check (run directly): the patched comparison is the worker's, not ours
    k = kernel("softmax")
    original = runner.compare
    launch = IsolatedCandidate(k, "triton", candidate("patch_checker"), launch_timeout=60)
    try:
        res = runner.search(k, launch, examples=1, explicit=False, pair=False)
    finally:
        launch.close()
    assert runner.compare is original
    assert res.failure is not None and res.failure.status == "wrong", res.failure
    # and the next candidate in this process is checked by the real comparison
    assert verify_candidate(k, "triton", k.source("triton"), **FAST, budget_mb=0.05).accepted


def test_the_worker_replaces_no_torch_function() -> None:
    # the old gate's tell (torch.empty a Python function while checking) is absent: the
    # candidate that computes right only under it is wrong, not accepted
    v = verify_candidate(kernel("softmax"), "triton", candidate("detect_gate"), **FAST)
    assert v.status == "wrong"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a side stream needs a GPU")
def test_a_hidden_side_stream_is_a_cheat_on_the_gpu() -> None:
    v = verify_candidate(kernel("softmax"), "triton", candidate("side_stream_hidden"), **FAST)
    assert v.status == "cheat" and "stream other than the caller's" in v.detail, v.text()


@pytest.mark.parametrize("spec", ["softmax", "layernorm", "cross_entropy", "matmul"])
def test_generated_kernels_are_accepted_with_every_branch_recorded(spec: str) -> None:
    k = kernel(spec)
    v = verify_candidate(k, "triton", k.source("triton"), **FAST, budget_mb=0.5)
    assert v.accepted, v.text()
    phases = {r["phase"] for r in v.records}
    assert {"first", "distribution/layout", "branch boundary", "hypothesis"} <= phases
    if spec in ("softmax", "layernorm"):       # both sides of the single / looped row branch
        rows = [b for b in v.branches() if b.startswith(f"{spec}_0_rows ")]
        assert any("SINGLE=True" in b for b in rows), v.branches()
        assert any("SINGLE=False" in b for b in rows), v.branches()
        # every value of every launch-time branch ran, or the report names it with its cost
        for b in v.branch_data:
            for value in b.values:
                name = f"{b.name}={value.label}"
                assert value.label in v.coverage[b.name] or name in v.unreached, name
        assert "INDEX64=64-bit" in v.unreached
        # softmax's split rows (32768 f32) fit half of 0.5 MiB; layernorm's (with w, b) do not
        assert ("split" in v.coverage["0.SPLIT"]) == (spec == "softmax"), v.text()
        assert "launch branches: 0.SPLIT rows" in v.text(), v.text()


def test_no_example_is_never_accepted() -> None:
    k = kernel("softmax")
    v = verify_candidate(k, "triton", k.source("triton"), examples=1, max_elements=0,
                         budget_mb=1e-6)
    assert v.status == "unverified" and "no example ran" in v.detail, v.text()


@pytest.mark.parametrize("argv,message", [
    (["--budget-mb", "0"], "--budget-mb must be positive, got 0.0"),
    (["--launch-timeout", "-1"], "--launch-timeout must be positive, got -1.0"),
    (["-n", "0"], "--examples must be at least 1, got 0"),
])
def test_bad_gate_flags_are_errors(argv: list[str], message: str, capsys, tmp_path) -> None:
    spec = str(ROOT / "specs" / "softmax.kspec")
    src = str(tmp_path / "torch_softmax.py")
    Path(src).write_text(candidate("torch_softmax"))
    assert main(["check", spec, "--target", "triton", "--source", src, *argv]) == 1
    assert message in capsys.readouterr().err


def test_cli_json_records_every_case_and_prints_progress(tmp_path, capsys) -> None:
    spec = str(ROOT / "specs" / "softmax.kspec")
    src = tmp_path / "softmax.py"
    src.write_text(kernel("softmax").source("triton"))
    report = tmp_path / "report.json"
    assert main(["check", spec, "--target", "triton", "--source", str(src), "-n", "2",
                 "--budget-mb", "0.05", "--json", str(report)]) == 0
    err = capsys.readouterr().err
    data = json.loads(report.read_text())
    assert data["status"] == "accepted" and len(data["cases"]) == data["examples"]
    assert all({"case", "seed", "replay", "status", "launches"} <= set(c) for c in data["cases"])
    # 0.05 MiB holds no 32768-long row: the json says what ran and what was not reached, why
    assert data["coverage"]["0.SPLIT"] == ["rows"]
    assert data["unreached"]["0.SPLIT=split"].startswith("N > 32767 and M <= 8: needs 0.25 MiB")
    assert err.count("\n") >= data["examples"] and "[1] first: M=1, N=1" in err
