"""The autotuner for the C++ targets (cuda, hip) on a machine without a GPU: the tile space of a
tensor-core contraction and its pruning for sm_90, launch-time schedules verified on the g++ CPU
emulation (with the schedule really applied), nvcc compiling and rejecting tiled candidates,
the store round trip and `kcompile tune --target cuda|hip`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import kspec
from kspec.agent import KernelStore, shape_class, spec_hash, tune
from kspec.agent.evaluate import evaluate
from kspec.agent.space import (Target, choose, cxx_schedule, cxx_schedule_source,
                               enumerate_space)
from kspec.agent.store import Entry
from kspec.agent.targets import cxx_launcher, tuning
from kspec.backends.cuda import toolchain
from kspec.backends.cxx import contraction, emulate
from kspec.errors import BackendUnavailable, KspecError

SPECS = Path(__file__).resolve().parent.parent / "specs"
needs_gxx = pytest.mark.skipif(emulate.compiler() is None, reason="no g++ for the CPU emulation")
needs_nvcc = pytest.mark.skipif(toolchain.nvcc_path() is None, reason="nvcc is not installed")


def _k(name):
    return kspec.load(SPECS / f"{name}.kspec")[name]


def _listed(path: str) -> tuple[str, ...]:
    t = contraction.TILE_CHOICES
    return t[path] if isinstance(t, dict) else t


def test_tile_space_and_pruning_matmul_sm90():
    k = _k("matmul")
    t = tuning(k, "cuda", "cpu", "sm_90")
    env = {"M": 8192, "N": 8192, "K": 8192}
    tiles, launch = t.spaces(env)
    assert (tiles.prefix, tiles.pattern, tiles.keys) == ("0", "contraction", ("tile",))
    assert tiles.path == "mma_sync" and (tiles.a_kmajor, tiles.b_kmajor) == (True, False)
    assert tiles.dims == {"m": 8192, "n": 8192, "k": 8192, "batch": 1}
    assert (launch.prefix, launch.keys) == ("", ("vector",))      # cp.async copies; no rows
    h100 = t.target()
    assert (h100.arch, h100.smem) == ("sm_90", 232448)
    choices = enumerate_space(tiles, h100)
    by_tile = {c.schedule["0.tile"]: c for c in choices}
    # the backend's own choices are all listed, and all fit an H100
    assert all(by_tile[key].pruned is None for key in _listed("mma_sync"))
    # oversize tiles are pruned before compiling: shared memory (A staged K-major, B N-major,
    # rows padded by 8, 2 bytes, 5 stages) and the accumulator's registers
    assert by_tile["256x128x64w8s5"].pruned == "shared memory 271360 B > 232448 B"
    assert "registers" in by_tile["256x256x32w8s3"].pruned
    fit = [c for c in choices if c.pruned is None]
    assert fit and [c.cost for c in fit] == sorted(c.cost for c in fit)
    for c in fit:
        tile = contraction.parse_tile(c.schedule["0.tile"], "mma_sync")
        assert tile.valid() and tile.shared_bytes(True, False) <= h100.smem
    # a card with less shared memory prunes more; tiles larger than the problem go too
    assert sum(c.pruned is not None for c in enumerate_space(tiles, Target.for_arch("sm_86"))) > \
        sum(c.pruned is not None for c in choices)
    (small, _) = t.spaces({"M": 64, "N": 64, "K": 64})
    assert {c.schedule["0.tile"].split("x")[:2] == ["64", "64"]
            for c in enumerate_space(small, h100) if c.pruned is None} == {True}
    # the fixed schedule is the tile the backend's heuristic launches; never a candidate again
    fixed = t.fixed_schedule(env)
    assert set(fixed) == {"0.tile"} and fixed["0.tile"] in by_tile
    keep, pruned = choose(t.spaces(env), h100, 8, t.same(env, fixed, h100))
    assert fixed not in [c.schedule for c in keep]
    assert any("same kernels as the fixed schedule" in (c.pruned or "") for c in pruned)
    assert {"vector": False} in [c.schedule for c in keep]
    # the candidate text is the CUDA source generated for that tile, the schedule after it
    src = t.candidate_source(keep[0].schedule)
    assert cxx_schedule(src)[1] == keep[0].schedule
    assert f"matmul_0_contraction_{keep[0].schedule['0.tile']}_async" in src
    # sm_90a: the tiles of the dialect's own tensor-core path, each valid for it
    t90a = tuning(k, "cuda", "cpu", "sm_90a")
    (tiles_a, _) = t90a.spaces(env)
    assert tiles_a.path == t90a.plan().dialect.tensor_cores
    for key in enumerate_space(tiles_a, t90a.target()):
        assert contraction.parse_tile(key.schedule["0.tile"], tiles_a.path).valid()


@pytest.mark.parametrize("name", ["attention", "causal_attention"])
@pytest.mark.parametrize("arch", ["sm_90", "sm_90a"])
def test_attention_tile_spaces_take_the_cxx_plans_numbering(name, arch):
    """Regression: the C++ plan numbers a fused attention 0 and its standby launches 1..3
    (Triton: 0a..0c); the space re-derived that numbering and raised IndexError. Each tile
    space is now its unit's own: the prefix is the key the unit reads, the sizes its launch's."""
    k = _k(name)
    t = tuning(k, "cuda", "cpu", arch)
    env = {"B": 2, "H": 4, "S": 1000, "T": 512, "D": 64}
    seq_k = env["T"] if name == "attention" else env["S"]
    tiles = [s for s in t.spaces(env) if s.pattern == "contraction"]
    # scores = q . k over the head, then out = p . v over the keys
    assert [(s.prefix, s.dims) for s in tiles] == [
        ("1", {"m": 1000, "n": seq_k, "k": 64, "batch": 8}),
        ("3", {"m": 1000, "n": 64, "k": seq_k, "batch": 8})]
    units = {u.name: u for u in t.plan().units}
    h100 = t.target()
    for space in tiles:
        unit = units[f"{name}_{space.prefix}_contraction"]
        assert unit.standby and unit.index == int(space.prefix)
        fit = next(c for c in enumerate_space(space, h100) if c.pruned is None)
        tile = fit.schedule[f"{space.prefix}.tile"]
        # the key compiles that tile for this unit alone
        (tiled,) = [u for u in t.plan(fit.schedule).units if u.name == unit.name]
        assert all(f"_{tile}_" in fn for fn in tiled.functions())
    assert t.fixed_schedule(env) == {}      # heads of 64: the fused kernel, no tiles launched


def test_launch_keys_and_same_kernels():
    k = _k("softmax")
    t = tuning(k, "cuda", "cpu", "sm_90")
    h100 = t.target()
    (sp,) = t.spaces({"M": 8, "N": 200})
    assert (sp.prefix, sp.pattern, sp.keys) == ("", "launch", ("rows", "vector"))
    env = {"M": 8, "N": 200}                  # a warp per row: every forced choice differs
    keep, pruned = choose([sp], h100, 32, t.same(env, t.fixed_schedule(env), h100))
    assert [c.schedule for c in keep] == [
        {"rows": "block"}, {"vector": False}, {"rows": "block", "vector": False},
        {"rows": "loop"}, {"rows": "loop", "vector": False}]
    assert [c.schedule for c in pruned] == [{}]
    # rows too long for a block: "block" and "loop" launch what the heuristic launches
    env = {"M": 8, "N": 20000}
    keep, pruned = choose(t.spaces(env), h100, 32, t.same(env, t.fixed_schedule(env), h100))
    assert [c.schedule for c in keep] == [{"vector": False}]
    assert len(pruned) == 5
    # the trailer round-trips; no schedule, no trailer
    text = "// c++\nint x;\n"
    assert cxx_schedule(cxx_schedule_source(text, {"rows": "loop"})) == (text, {"rows": "loop"})
    assert cxx_schedule_source(text, {}) == text and cxx_schedule(text) == (text, {})


@needs_gxx
def test_statuses_of_cxx_candidates_on_the_emulation():
    """The gate with the candidate's launch-time schedule applied: a candidate broken only in
    the packed (vector) path passes with {"vector": false} and fails without it."""
    k = _k("row_sum")
    t = tuning(k, "cuda", "cpu")
    base = t.candidate_source({})
    opts = {"env": {"M": 4, "N": 100}, "device": "cpu", "target": "cuda", "examples": 3,
            "max_elements": 1024}
    good = evaluate(k, base, **opts)
    assert good.status == "accepted" and good.wall_ms is not None
    assert good.verification["ran_on"] == "cpu"
    assert good.verification["compiled_for"] == ["cpu (g++ emulation)"]
    line = "kspec_sum_add(sum_j, sum_j_comp, x_v_2.v[ke]);"   # the looped row's 16-byte packs
    assert line in base
    packs_broken = base.replace(line, "kspec_sum_add(sum_j, sum_j_comp, x_v_2.v[0]);")
    assert evaluate(k, packs_broken, **opts).status == "wrong"
    unpacked = cxx_schedule_source(packs_broken, {"vector": False})
    assert evaluate(k, unpacked, **opts).status == "accepted"
    store = "y[i * y_s0] = y_row;"
    assert evaluate(k, base.replace(store, store + " const_cast<float*>(x)[i * x_s0] = 0.0f;"),
                    **opts).status == "cheat"
    broken = evaluate(k, base.replace(store, "y[i * y_s0] = y_row +;"), **opts)
    assert broken.status == "compile_error" and "g++" in broken.detail


@needs_gxx
def test_tune_cuda_on_the_emulation_and_store_round_trip(tmp_path):
    k = _k("softmax")
    store = KernelStore(tmp_path)
    env = {"M": 8, "N": 200}
    r = tune(k, target="cuda", env=env, device="cpu", store=store, limit=6, examples=3,
             max_elements=1024, progress=False)
    assert (r.target, r.arch, r.device) == ("cuda", "sm_90", "cpu")
    assert r.baseline_schedule == {} and r.baseline_cost == 1.0 and r.pruned == 1
    assert [c.schedule for c in r.candidates] == [
        {"rows": "block"}, {"vector": False}, {"rows": "block", "vector": False},
        {"rows": "loop"}, {"rows": "loop", "vector": False}]
    for c in r.candidates:        # all verified on the emulation; the heuristic's cost is lower
        assert c.verification["status"] == "accepted" and c.verification["ran_on"] == "cpu"
        assert c.status == "slower" and c.cost > r.baseline_cost
        assert cxx_schedule(c.source)[1] == c.schedule and "kspec_cpu_emulation.h" in c.source
    assert r.best is None and not r.stored and store.entries() == []
    assert "cuda sm_90 (CPU: g++ emulation" in r.text()
    # a stored C++ kernel is rebuilt from its text and schedule: build(use_store=True) runs it
    c = r.candidates[-1]
    store.put(Entry(spec_hash(k), "softmax", "cuda", "cpu", shape_class(env), c.source,
                    c.schedule, c.verification))
    assert cxx_launcher(k.ir, "cuda", c.source, "cpu").schedule == \
        {"rows": "loop", "vector": False}
    f = k.build("cuda", use_store=True, store=store)
    x = torch.randn(7, 190)
    torch.testing.assert_close(f(x), torch.softmax(x, -1))
    assert f.entry is not None and f.entry.source_hash == Entry(
        "", "", "", "", "", c.source).source_hash
    if not torch.cuda.is_available():         # nothing stored for this shape, no GPU to run on
        with pytest.raises(BackendUnavailable):
            f(torch.randn(3, 5))


@needs_nvcc
@needs_gxx
def test_tiled_candidates_compile_with_nvcc_and_spills_reject(tmp_path):
    k = _k("matmul")
    r = tune(k, target="cuda", env={"M": 512, "N": 512, "K": 256}, device="cpu", limit=4,
             examples=2, max_elements=1024, progress=False, arch="sm_90")
    assert r.pruned > 0 and set(r.baseline_schedule) == {"0.tile"}
    tiled = [c for c in r.candidates if "0.tile" in c.schedule]
    assert len(tiled) == 2 and {"vector": False} in [c.schedule for c in r.candidates]
    for c in tiled:               # compiled for sm_90 by nvcc; tensor cores need the GPU
        assert c.status == "unverified" and "no spills" in c.detail
        assert c.verification["compiled_for"] == ["cuda sm_90 (nvcc)"]
    (vec,) = [c for c in r.candidates if c.schedule == {"vector": False}]
    assert vec.verification["status"] == "accepted" and vec.status == "slower"
    assert r.best is None
    # after compiling: ptxas's report rejects a tile whose functions spill (256 accumulators
    # per thread; the pre-compile pruning would not have tried it)
    t = tuning(k, "cuda", "cpu", "sm_90")
    opts = {"env": None, "device": "cpu", "target": "cuda", "arch": "sm_90", "examples": 2}
    spill = evaluate(k, t.candidate_source({"0.tile": "256x256x64w8s2"}), **opts)
    assert spill.status == "compile_error" and "spills" in spill.detail
    src = t.candidate_source({"0.tile": "64x64x32w4s3"})
    broken = evaluate(k, src.replace("#include", "#error no\n#include", 1), **opts)
    assert broken.status == "compile_error" and "nvcc" in broken.detail


def test_nothing_to_tune_and_arch_is_cxx_only():
    k = _k("sum_squares")                     # a split reduction: no C++ schedule keys
    r = tune(k, target="cuda", env={"N": 100}, device="cpu", progress=False, limit=4)
    assert r.candidates == [] and r.best is None
    with pytest.raises(KspecError, match="--arch"):
        tune(k, target="triton", device="cpu", arch="sm_90", progress=False)


@needs_gxx
def test_cli_tune_cxx_targets(tmp_path, capsys):
    from kspec.cli import main

    for target, arch in (("hip", "gfx90a"), ("cuda", "sm_80")):
        report = tmp_path / f"{target}.json"
        args = ["tune", str(SPECS / "row_sum.kspec"), "--target", target, "--shape", "M=4,N=100",
                "--limit", "3", "--examples", "2", "--device", "cpu", "--no-store", "--json",
                str(report), "-q"]
        if target == "cuda":
            args += ["--arch", arch]
        assert main(args) == 0
        d = json.loads(report.read_text())
        assert (d["target"], d["arch"], d["kernel"]) == (target, arch, "row_sum")
        assert len(d["candidates"]) == 3
        assert all(c["status"] == "slower" and c["verification"]["status"] == "accepted"
                   for c in d["candidates"])
        assert f"{target} {arch}" in capsys.readouterr().out
