"""bench/large.py on the CPU: the dry run's cases (every spec covered; offsets past 2^31
elements, reductions past 10^7), the sliced reference against the whole one, a tiny real run
of two specs through the Triton interpreter, and the driver surviving a worker that crashes
or hangs."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

import kspec
from bench_scripts import load

ROOT = Path(__file__).resolve().parent.parent
large = load("large")
from large_cases import CASES, chunk_dims, slice_args  # noqa: E402


@pytest.fixture(scope="module")
def plan():
    return large.plan_cases(large.parse_args(["--dry-run"]))


def test_dry_run_covers_every_spec_and_passes_the_limits(plan, capsys):
    specs = {p.stem for p in (ROOT / "specs").glob("*.kspec")}
    assert {r["spec"] for r in plan} == specs
    for name in specs:
        rows = [r for r in plan if r["spec"] == name]
        assert {r["case"] for r in rows} == {"offsets", "reduction"}, name
        assert any("est_gb" in r for r in rows), f"{name}: no case is run"
    for r in plan:
        if "est_gb" not in r:               # no such case for this spec: the reason is stated
            assert r["skip"], r["key"]
            continue
        assert r["why"], r["key"]
        if r["case"] == "offsets":
            assert r["largest_elements"] > 2 ** 31, r["key"]
        else:
            assert r["longest_reduction"] > 10 ** 7, r["key"]
        if r["skip"]:                       # over the default budget: says by how much
            assert "GB > the budget" in r["skip"], r["key"]
        else:
            assert r["est_gb"] <= 24 and r["chunks"] >= 1, r["key"]
    large.print_plan(plan)
    out = capsys.readouterr().out
    assert "attention" in out and "skipped: the key axis is the query axis" in out


def test_sliced_reference_equals_the_whole_one():
    """Each case's chunk symbol really is independent: the reference of slices is the
    slices of the reference (at the small sizes, on the CPU)."""
    from large_cases import arguments

    for c in CASES:
        if c.skip or not c.chunk:
            continue
        k = kspec.load(ROOT / "specs" / f"{c.spec}.kspec")[c.spec]
        args = arguments(k, c, c.small, "cpu", 0)
        whole = k.reference(*args)
        whole = whole if isinstance(whole, tuple) else (whole,)
        dims = chunk_dims(k, c.chunk)
        n = c.small[c.chunk]
        for start, length in ((0, n // 2), (n // 2, n - n // 2)):
            part = k.reference(*slice_args(k, args, dims, start, length))
            part = part if isinstance(part, tuple) else (part,)
            for o, w, p in zip(k.ir.outputs, whole, part):
                for d in dims[o.name]:
                    w = w.narrow(d, start, length)
                assert torch.allclose(w, p, rtol=1e-12, atol=1e-12), c.key


def test_reference_follows_the_inputs_device():
    """large.py computes the reference on the GPU's tensors: the interpreter creates
    everything on its inputs' device (meta here, which also sizes the dry run)."""
    k = kspec.load(ROOT / "specs" / "cross_entropy.kspec")["cross_entropy"]
    x = torch.empty(5, 7, device="meta")
    label = torch.empty(5, dtype=torch.int64, device="meta")
    out = k.reference(x, label)
    assert out.device.type == "meta" and out.dtype == torch.float64


def test_tiny_run_of_two_specs_on_the_cpu(tmp_path):
    rc = large.main(["--device", "cpu", "--scale", "small", "--backends", "triton,cuda",
                     "--specs", "softmax,matmul", "--out", str(tmp_path), "--reps", "1"])
    assert rc == 0
    report = json.loads((tmp_path / "results.json").read_text())
    rows = report["rows"]
    assert [(r["spec"], r["case"], r["backend"]) for r in rows] == [
        (s, c, b) for s in ("softmax", "matmul") for c in ("offsets", "reduction")
        for b in ("triton", "cuda")]
    for r in rows:
        if r["backend"] == "cuda":          # no GPU here
            assert r["status"] == "skipped" and "unavailable" in r["detail"]
            continue
        assert r["status"] == "ok", r
        assert 0 <= r["tol_ratio"] <= 1 and r["max_abs_err"] < 1e-2 and r["kernel_ms"] > 0
        assert r["chunks"] == 2             # the sliced reference ran
    assert rows[0]["kb_allclose"] is True   # softmax: f32; matmul: f16 (not KernelBench's)
    assert rows[4]["kb_allclose"] is None
    assert "| softmax | offsets |" in (tmp_path / "results.md").read_text()


FAKE_WORKER = """
import json, os, sys, time
MARK = "@@large-result "
for line in sys.stdin:
    job = json.loads(line)
    if job["key"] == "crash":
        print("an illegal memory access was encountered", file=sys.stderr, flush=True)
        os._exit(7)
    if job["key"] == "hang":
        time.sleep(60)
    print("noise a library printed", flush=True)
    print(MARK + json.dumps({"status": "ok", "pid": os.getpid()}), flush=True)
"""


def test_a_crashed_or_hung_worker_costs_one_case(tmp_path):
    script = tmp_path / "fake_worker.py"
    script.write_text(textwrap.dedent(FAKE_WORKER))
    w = large.Worker("cpu", script)
    try:
        first = w.run({"key": "ok"}, 20)
        assert first["status"] == "ok"
        crash = w.run({"key": "crash"}, 20)
        assert crash["status"] == "crash" and "exited with 7" in crash["detail"]
        assert "illegal memory access" in crash["stderr"]
        again = w.run({"key": "ok"}, 20)         # a fresh worker
        assert again["status"] == "ok" and again["pid"] != first["pid"]
        hung = w.run({"key": "hang"}, 1)
        assert hung["status"] == "timeout"
        assert w.run({"key": "ok"}, 20)["status"] == "ok"
    finally:
        w.stop()
