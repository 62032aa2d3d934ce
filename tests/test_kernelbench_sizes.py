"""bench/kernelbench_sizes.py on the CPU: every problem's kspec source compiles and agrees
with its PyTorch reference at tiny sizes through the Triton interpreter (KernelBench's
allclose), the script's own path end to end on one problem (a worker process), and the driver surviving a
worker that crashes or hangs."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from bench_scripts import load

ROOT = Path(__file__).resolve().parent.parent
sizes = load("kernelbench_sizes")
from kernelbench_problems import PROBLEMS, load_kernel  # noqa: E402
from kernelbench_worker import compare  # noqa: E402

CPU = torch.device("cpu")


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.name)
def test_problem_agrees_with_reference_in_the_interpreter(problem) -> None:
    fn = load_kernel(problem).build("triton")          # compiles (kspec.loads)
    gen = torch.Generator().manual_seed(1)
    inputs = problem.make(problem.sizes["tiny"], CPU, gen)
    row = compare(problem.call(fn, inputs), problem.eager(inputs))
    assert row["status"] == "ok", row
    assert row["max_abs_err"] < 1e-4


def test_hardtanh_clamps_outside_the_rand_range() -> None:
    # torch.rand never leaves [0, 1), where hardtanh is the identity: check the clamp too
    problem = next(p for p in PROBLEMS if p.name == "hardtanh")
    x = torch.randn(5, 9, generator=torch.Generator().manual_seed(2)) * 3
    out = problem.call(load_kernel(problem).build("triton"), {"x": x})
    assert compare(out, F.hardtanh(x, -1.0, 1.0))["correct"]


def test_compare_flags_nan_and_shape() -> None:
    ref = torch.ones(4)
    bad = ref.clone()
    bad[1] = float("nan")
    assert compare(bad, ref)["status"] == "wrong"
    assert compare(ref[:3], ref)["status"] == "wrong"
    assert compare(ref + 1e-5, ref)["correct"]
    assert not compare(ref + 1e-3, ref)["correct"]


def test_script_runs_on_the_cpu(tmp_path, capsys) -> None:
    code = sizes.main(["--device", "cpu", "--scale", "tiny", "--problems", "row_pick",
                       "--reps", "1", "--out", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert [(r["problem"], r["backend"], r["status"]) for r in data["rows"]] == \
        [("row_pick", "triton", "ok")]
    assert "row_pick" in data["meta"]["sources"]
    assert "| row_pick | triton | ok |" in (tmp_path / "results.md").read_text()
    assert "x eager" in capsys.readouterr().out


FAKE = """
import json, sys, time
MARK = MARK_TEXT
problem, backends = sys.argv[1], sys.argv[2].split(",")
for b in backends:
    if b == "crashes":
        print("boom", file=sys.stderr, flush=True)
        sys.exit(1)
    if b == "hangs":
        time.sleep(60)
    print(MARK + json.dumps({"problem": problem, "backend": b, "status": "ok"}), flush=True)
"""


def test_driver_survives_crash_and_hang(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "fake_worker.py"
    fake.write_text(textwrap.dedent(FAKE).replace("MARK_TEXT", repr(sizes.MARK)))
    monkeypatch.setattr(sizes, "WORKER", fake)
    args = sizes.parse_args(["--device", "cpu", "--backends", "a,crashes,b,hangs,c",
                             "--timeout", "1", "--problems", "hardtanh"])
    rows = sizes.run_problem("hardtanh", args)
    assert [(r["backend"], r["status"]) for r in rows] == \
        [("a", "ok"), ("crashes", "crash"), ("b", "ok"), ("hangs", "timeout"), ("c", "ok")]
    assert "boom" in rows[1]["detail"]


def test_unknown_problem_is_refused() -> None:
    with pytest.raises(SystemExit):
        sizes.parse_args(["--problems", "nope"])
