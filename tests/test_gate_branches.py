"""The gate's shapes reach every launch-time branch value of the rows kernels: the backend's
threshold data (kspec/backends/triton/thresholds.py) drawn by kspec/verify/coverage.py, checked
against the generated host code itself. The module's `launch` runs for real on each case the
gate plans, with its @triton.jit kernels replaced by recorders (no kernel body runs: fast), so
a threshold the data gets wrong, or a case that misses it, shows as a value not taken.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import kspec
from kspec.backends.triton.launcher import load_module
from kspec.verify import guards
from kspec.verify.candidates import BUDGET_MB, launch_branches
from kspec.verify.coverage import branch_cases, coverage, report_line
from kspec.verify.launchers import triton_launcher
from kspec.verify.runner import branches_of
from kspec.verify.strategies import explicit_cases, first_case

ROOT = Path(__file__).resolve().parent.parent


class _Recorder:
    """Stands in for a @triton.jit kernel: `kernel[grid](*args, **constexprs)` records."""

    def __init__(self, name: str, calls: list):
        self.name, self.calls = name, calls

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append(
            {"kernel": self.name, "constexprs": kwargs})


def dry_run_branches(k, cases) -> list[dict]:
    """Per case, the kernels (and branch constexprs) the generated launch would run."""
    module = load_module(k.source("triton"), True, prefix="kspec_dry_run")
    calls: list[dict] = []
    for name in dir(module):
        if name.startswith(f"{k.name}_") and hasattr(getattr(module, name), "run"):
            setattr(module, name, _Recorder(name, calls))
    launch = triton_launcher(k.ir, module)
    records = []
    for case in cases:
        calls.clear()
        args = [guards.guarded_copy(a, p.name, case.layout(p.name))[0]
                if hasattr(a, "dim") else a for p, a in zip(k.ir.params, case.arguments(k.ir))]
        launch(*args)
        records.append({"phase": "dry run", "launches": branches_of(list(calls))})
    return records


@pytest.mark.parametrize("spec", ["softmax", "layernorm", "row_sum"])
def test_the_drawn_cases_take_every_branch_value(spec: str) -> None:
    k = kspec.load(ROOT / "specs" / f"{spec}.kspec")[spec]
    branches = launch_branches(k.ir, "triton", "cpu")
    assert {"0.SPLIT", "0.SINGLE", "0.STRIDED", "INDEX64"} <= {b.name for b in branches}
    drawn = branch_cases(k.ir, branches, int(BUDGET_MB["cpu"] * 2 ** 20))
    cases = [first_case(k.ir), *explicit_cases(k.ir), *drawn.cases]
    records = dry_run_branches(k, cases)
    for case, record in zip(cases, records):    # the data predicts what the host code does
        layout = next((v for _, v in case.layouts), "contiguous")
        took = coverage(branches, [record])
        for b in branches:
            predicted = {v.label for v in b.values
                         if any(r.layout == layout and r.holds(case.env) for r in v.regions)}
            assert predicted <= set(took[b.name]), (str(case), b.name, predicted, took)
    seen = coverage(branches, records)
    missing = {f"{b.name}={v.label}" for b in branches for v in b.values
               if v.label not in seen[b.name]}
    # 2^31 elements are past any CPU budget: the report names it, with the memory it needs
    assert missing == {"INDEX64=64-bit"} == set(drawn.unreached), (seen, drawn.unreached)
    assert "MiB, more than the budget of 1.5 MiB leaves it" in drawn.unreached["INDEX64=64-bit"]
    line = report_line(branches, seen, drawn.unreached)
    assert line.startswith("launch branches: 0.SPLIT rows, split; 0.SINGLE single, looped; "
                           "0.STRIDED along rows, strided; INDEX64 32-bit; not reached: "
                           "INDEX64=64-bit ("), line


def test_each_threshold_is_drawn_on_both_sides() -> None:
    k = kspec.load(ROOT / "specs" / "softmax.kspec")["softmax"]
    drawn = branch_cases(k.ir, launch_branches(k.ir, "triton", "cpu"), int(1.5 * 2 ** 20))
    sizes = {dict(c.sizes)["N"] for c in drawn.cases}
    # split from 32768 (two 16384-element slices), looped rows past one 8192-wide block
    assert {32767, 32768, 8192, 8193} <= sizes, sizes


def test_a_small_budget_names_what_it_leaves_out() -> None:
    k = kspec.load(ROOT / "specs" / "layernorm.kspec")["layernorm"]
    drawn = branch_cases(k.ir, launch_branches(k.ir, "triton", "cpu"), int(0.25 * 2 ** 20))
    assert drawn.unreached["0.SPLIT=split"] == (
        "N > 32767 and M <= 8: needs 0.25 MiB, more than the budget of 0.25 MiB leaves it "
        "(one case takes half at most)")
    assert drawn.spent <= 0.25 * 2 ** 20


@pytest.mark.parametrize("arch", ["sm_80", "sm_90a"])
@pytest.mark.parametrize("spec", ["conv2d", "conv2d_pad", "conv1d"])
def test_cxx_window_branch_data_predicts_the_launch(spec: str, arch: str) -> None:
    """The C++ convolution's depth order (kspec/backends/cxx/branches.py): at every shape the
    gate draws for it, the kernels the launcher picks (planned at that shape, no kernel runs)
    show the value the data predicts, and both values are drawn."""
    from kspec.backends import get_backend
    from kspec.backends.cxx import CUDA
    from kspec.backends.cxx.shape import launches_at

    k = kspec.load(ROOT / "specs" / f"{spec}.kspec")[spec]
    branches = get_backend("cuda").branches(k.ir, 132, arch)
    assert [b.name for b in branches] == ["0.window"]
    drawn = branch_cases(k.ir, branches, int(BUDGET_MB["cpu"] * 2 ** 20))
    records = []
    for case in drawn.cases:
        launched = [{"kernel": p.function, "constexprs": {}}
                    for p in launches_at(k.ir, CUDA, arch, case.env)]
        records.append({"phase": "dry run", "launches": branches_of(launched)})
        predicted = {v.label for b in branches for v in b.values
                     if any(r.holds(case.env) for r in v.regions)}
        assert predicted == set(coverage(branches, records[-1:])["0.window"]), case.env
    assert set(coverage(branches, records)["0.window"]) == {"flat", "window"}
