"""bench/reductions.py on the CPU (--small): every problem's kspec text agrees with its eager
PyTorch computation through the Triton interpreter, the JSON and the markdown table come out,
and a wrong result is reported as wrong."""
from __future__ import annotations

import json

import torch
from bench_scripts import load

reductions = load("reductions")


def test_every_problem_runs_and_agrees_with_eager(tmp_path, capsys) -> None:
    out = tmp_path / "reductions.json"
    code = reductions.main(["--device", "cpu", "--small", "--compile-backend", "eager",
                            "--out", str(out)])
    data = json.loads(out.read_text())
    statuses = {r["problem"]: (r["triton"]["status"], r["compile"]["status"])
                for r in data["rows"]}
    assert statuses == {p.name: ("ok", "ok") for p in reductions.PROBLEMS}, statuses
    assert code == 0 and data["meta"]["scale"] == "small"
    assert all(r["triton"]["max_abs_err"] < 1e-4 and r["bytes"] > 0 for r in data["rows"])
    table = capsys.readouterr().out.splitlines()
    assert table[-len(data["rows"]) - 2].startswith("| problem | MB moved | copy ms |")
    assert table[-1].startswith("| mse_loss |") and table[-1].endswith("| ok |")


def test_agreement_flags_wrong_values_and_shapes() -> None:
    want = torch.ones(3, 4)
    assert reductions.agreement(want.reshape(3, 1, 4), want)["status"] == "ok"
    off = want.clone()
    off[1, 2] += 1e-3
    assert reductions.agreement(off, want)["status"] == "wrong"
    off[1, 2] = float("nan")
    assert reductions.agreement(off, want) == {"status": "wrong", "max_abs_err": float("inf")}
    assert reductions.agreement(want[:2], want)["status"] == "wrong"
