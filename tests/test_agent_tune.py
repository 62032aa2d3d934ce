"""The autotuner (search space, pruning, the interpreter standing in for timing), the kernel
store round trip, `kcompile tune` / `kcompile store`, and the Ray evaluator."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import kspec
from kspec.agent import KernelStore, shape_class, spec_hash, tune
from kspec.agent.space import Target, candidates, enumerate_space, launch_spaces, schedule_source
from kspec.agent.store import Entry

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _k(name):
    return kspec.load(SPECS / f"{name}.kspec")[name]


def test_space_keys_and_pruning_matmul():
    k = _k("matmul")
    src = k.source("triton")
    (sp,) = launch_spaces(k.ir, src, {"M": 8192, "N": 8192, "K": 8192})
    assert sp.pattern == "contraction" and sp.elem_bytes == 2
    assert set(sp.keys) >= {"BLOCK_M", "BLOCK_N", "BLOCK_K", "STAGES", "WARPS"}
    h100 = Target.for_arch("sm_90")
    choices = enumerate_space(sp, h100)
    pruned = [c for c in choices if c.pruned]
    fit = [c for c in choices if not c.pruned]
    assert pruned and fit
    # tl.dot tiles: shared memory of (STAGES-1) x (BM*BK + BK*BN) f16 elements over the limit
    big = {"0.BLOCK_M": 256, "0.BLOCK_N": 256, "0.BLOCK_K": 128, "0.STAGES": 5, "0.WARPS": 8}
    assert any(c.schedule == big and "shared memory" in c.pruned for c in pruned)
    for c in fit:
        s = {key.split(".")[1]: v for key, v in c.schedule.items()}
        assert (s["STAGES"] - 1) * (s["BLOCK_M"] + s["BLOCK_N"]) * s["BLOCK_K"] * 2 <= h100.smem
    # the schedule that bench/NOTES.md found best at 8192^3 is in the searched set
    keep, _ = candidates(k.ir, src, {"M": 8192, "N": 8192, "K": 8192}, h100, limit=32)
    assert {"0.BLOCK_M": 128, "0.BLOCK_N": 256, "0.BLOCK_K": 64, "0.STAGES": 3,
            "0.WARPS": 8} in [c.schedule for c in keep]
    # a smaller card prunes more
    assert len([c for c in enumerate_space(sp, Target.for_arch("sm_86")) if c.pruned]) > \
        len(pruned)


def test_space_rows_registers_and_cost_order():
    k = _k("softmax")
    (sp,) = launch_spaces(k.ir, k.source("triton"), {"M": 16384, "N": 4096})
    assert sp.pattern == "rows" and sp.dims == {"inner": 4096, "outer": 16384}
    choices = enumerate_space(sp, Target.for_arch("sm_90"))
    assert any("registers" in (c.pruned or "") for c in choices)
    fit = [c for c in choices if not c.pruned]
    assert [c.cost for c in fit] == sorted(c.cost for c in fit)
    assert all(c.schedule["0.BLOCK_R"] * c.schedule["0.BLOCK_P"] // (32 * c.schedule["0.WARPS"])
               <= 64 for c in fit)
    # deterministic
    assert [c.schedule for c in fit] == [c.schedule for c in
                                         enumerate_space(sp, Target.for_arch("sm_90"))
                                         if not c.pruned]


def test_every_spec_has_a_space():
    h100 = Target.for_arch("sm_90")
    for path in sorted(SPECS.glob("*.kspec")):
        for k in kspec.load(path):
            src = k.source("triton")
            env = {s: 64 for s in k.ir.symbols}
            keep, _ = candidates(k.ir, src, env, h100, limit=8)
            assert keep, f"{path.name}:{k.name} has no schedule to try"
            for c in keep:
                assert all(f"schedule.get('{key}'" in src for key in c.schedule), (k.name, c)


def test_autotune_on_the_interpreter_and_store_round_trip(tmp_path):
    k = _k("softmax")
    store = KernelStore(tmp_path)
    env = {"M": 8, "N": 200}
    r = tune(k, env=env, device="cpu", store=store, limit=3, examples=3, max_elements=1024, progress=False)
    assert r.device == "cpu" and r.arch == "cpu" and r.baseline_ms is None
    # the rows launch picks one program per row block (SPLIT 1) and reads along rows (not STRIDED)
    assert r.baseline_schedule == {"0.SPLIT": 1, "0.STRIDED": False, "0.BLOCK_R": 256,
                                   "0.BLOCK_P": 8, "0.WARPS": 4}
    assert len(r.candidates) == 3 and r.pruned > 0
    # every candidate verified; picked deterministically by the cost model
    assert all(c.verification.get("status") == "accepted" for c in r.candidates)
    assert {c.status for c in r.candidates} <= {"accepted", "slower"}
    best = r.best
    assert best is not None and best.cost == min(c.cost for c in r.candidates)
    assert best.cost < r.baseline_cost
    # the store: keyed by spec hash, kernel, target, arch, shape class
    (e,) = store.entries()
    assert (e.spec_hash, e.kernel, e.target, e.arch, e.shape_class) == \
        (spec_hash(k), "softmax", "triton", "cpu", "M=8,N=256")
    assert e.source == schedule_source(k.source("triton"), best.schedule)
    assert e.verification["status"] == "accepted" and e.schedule == best.schedule
    assert store.best(spec_hash(k), "softmax", "triton", "cpu", shape_class(env)).source == e.source
    # build() runs the stored kernel for that shape class, the fixed lowering elsewhere
    f = k.build("triton", use_store=True, store=store)
    x = torch.randn(7, 190)
    torch.testing.assert_close(f(x), torch.softmax(x, -1))
    assert f.entry is not None and f.entry.source_hash == e.source_hash
    x2 = torch.randn(3, 5)
    torch.testing.assert_close(f(x2), torch.softmax(x2, -1))
    assert f.entry is None
    # export and clear
    files = store.export(tmp_path / "out")
    assert len(files) == 1 and files[0].read_text() == e.source
    meta = json.loads(files[0].with_suffix(".json").read_text())
    assert meta["kernel"] == "softmax" and "source" not in meta
    assert store.clear(kernel="other") == 0 and store.clear() == 1 and store.entries() == []


def test_store_from_the_environment(tmp_path, monkeypatch):
    """KSPEC_USE_STORE=1 makes every build consult the store (KSPEC_STORE), falling back to
    the fixed lowering where it holds nothing: once, not recursively."""
    monkeypatch.setenv("KSPEC_USE_STORE", "1")
    monkeypatch.setenv("KSPEC_STORE", str(tmp_path / "empty.sqlite"))
    k = kspec.load(SPECS / "softmax.kspec")["softmax"]
    f = k.build("triton")
    x = torch.randn(3, 20)
    torch.testing.assert_close(f(x), torch.softmax(x, -1))
    assert f.entry is None


def test_store_orders_timed_fastest_first(tmp_path):
    s = KernelStore(tmp_path / "k.sqlite")
    key = dict(spec_hash="h", kernel="k", target="triton", arch="sm_90", shape_class="M=8")
    s.put(Entry(**key, source="a", ms=2.0, baseline_ms=3.0))
    s.put(Entry(**key, source="b", ms=1.0, baseline_ms=3.0))
    s.put(Entry(**key, source="c"))
    assert [e.source for e in s.entries()] == ["b", "a", "c"]
    assert s.best("h", "k", "triton", "sm_90", "M=8").speedup == 3.0
    assert s.best("h", "k", "triton", "sm_80", "M=8") is None


def test_cli_tune_and_store(tmp_path, capsys):
    from kspec.cli import main

    store = tmp_path / "s"
    report = tmp_path / "r.json"
    assert main(["tune", str(SPECS / "row_sum.kspec"), "--shape", "M=4,N=100", "--limit", "2",
                 "--examples", "3", "--device", "cpu", "--store", str(store), "--json", str(report), "-q"]) == 0
    d = json.loads(report.read_text())
    assert d["kernel"] == "row_sum" and len(d["candidates"]) == 2
    assert all(c["status"] in ("accepted", "slower") for c in d["candidates"])
    out = capsys.readouterr().out
    assert "row_sum" in out and "candidates" in out
    assert main(["store", "list", "--store", str(store)]) == 0
    listed = capsys.readouterr().out
    assert ("row_sum" in listed) == (d["best_id"] is not None)
    assert main(["store", "export", str(tmp_path / "exp"), "--store", str(store)]) == 0
    assert main(["store", "clear", "--store", str(store)]) == 0
    assert KernelStore(store).entries() == []


def test_process_pool_evaluator():
    from kspec.agent.pool import PoolEvaluator

    k = _k("row_sum")
    src = k.source("triton")
    job = {"kernel": k, "options": {"env": {"M": 3, "N": 7}, "device": "cpu", "examples": 2}}
    ev = PoolEvaluator("cpu", workers=2)
    try:
        a, b = ev.map([{**job, "source": src}, {**job, "source": "def launch(:\n"}])
    finally:
        ev.close()
    assert a.status == "accepted" and a.wall_ms is not None
    assert b.status == "compile_error"


def test_ray_evaluator():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'kspec[cluster]')")
    from kspec.agent.pool import RayEvaluator

    k = _k("row_sum")
    ev = RayEvaluator("cpu", workers=2)
    try:
        (a,) = ev.map([{"kernel": k, "source": k.source("triton"),
                        "options": {"env": {"M": 3, "N": 7}, "device": "cpu", "examples": 2}}])
    finally:
        ray.shutdown()
    assert a.status == "accepted"
