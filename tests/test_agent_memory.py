"""The kernel store as memory across specs (Triton on CPU, the scripted server on loopback): a
schedule proposal accepted for row_sum is stored with its spec and launch patterns; the next
rows spec's prompt carries it as a worked example and its autotuner tries row_sum's winning
schedule first; `kcompile store export` / `import` move the library to another store."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("openai")

import kspec  # noqa: E402
from kspec.agent import KernelStore, spec_hash, tune  # noqa: E402
from kspec.agent.llm import LLMProposer  # noqa: E402
from kspec.agent.memory import pattern_distance, shape_distance, similar  # noqa: E402
from kspec.agent.space import schedule_source  # noqa: E402
from kspec.agent.store import Entry  # noqa: E402
from llm_server import endpoint  # noqa: E402,F401 - the fixture

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _k(name):
    return kspec.load(SPECS / f"{name}.kspec")[name]


def test_memory_across_specs(endpoint, tmp_path):
    store = KernelStore(tmp_path / "store")
    # row_sum: a schedule proposal outside the space, then one the cost model prefers
    script, url = endpoint(['```json\n{"0.BLOCK_P": 3}\n```',
                            'Fewer rows per program:\n```json\n{"0.BLOCK_P": 2}\n```'])
    k = _k("row_sum")
    r = tune(k, llm=LLMProposer("m", base_url=url, api_key="x", transcript=tmp_path / "a.jsonl"),
             rounds=2, env={"M": 5, "N": 33}, device="cpu", store=store, examples=3,
             progress=False)
    assert [c.status for c in r.candidates] == ["compile_error", "accepted"], r.text()
    assert r.candidates[0].detail == 'schedule rejected: "0.BLOCK_P": 3 is not one of [1, 2, 4]'
    assert r.best.source == schedule_source(k.source("triton"), {"0.BLOCK_P": 2})
    first = script.requests[0]["messages"][-1]["content"]
    assert '- launch 0 (rows: inner=33, outer=5): "0.BLOCK_R" in [64]; "0.BLOCK_P" in [1, 2, 4]' \
        in first
    assert "model cost 10.971" in first and "Worked examples" not in first
    (entry,) = store.entries()
    assert entry.launches == {"0": "rows"} and entry.schedule == {"0.BLOCK_P": 2}

    # logsumexp (rows too): row_sum's accepted kernel is the prompt's worked example
    script2, url2 = endpoint(["no code this time"])
    k2 = _k("logsumexp")
    r2 = tune(k2, llm=LLMProposer("m", base_url=url2, api_key="x",
                                  transcript=tmp_path / "b.jsonl"),
              rounds=1, env={"M": 6, "N": 40}, device="cpu", store=store, progress=False)
    assert r2.candidates[0].status == "compile_error" and r2.best is None
    prompt = script2.requests[0]["messages"][-1]["content"]
    assert "## Worked examples: accepted kernels of other specs (the kernel store)" in prompt
    assert ('### row_sum (rows; shape class M=8,N=64; verified (untimed: the CPU); by llm, '
            'schedule {"0.BLOCK_P": 2})') in prompt
    assert "y[i] = sum(x[i, j] for j)" in prompt and entry.source.strip()[:3000] in prompt
    # without the store's examples (memory=0) the prompt has none
    script3, url3 = endpoint(["no code"])
    tune(k2, llm=LLMProposer("m", base_url=url3, api_key="x", transcript=tmp_path / "c.jsonl"),
         rounds=1, env={"M": 6, "N": 40}, device="cpu", store=store, progress=False, memory=0)
    assert "Worked examples" not in script3.requests[0]["messages"][-1]["content"]

    # the autotuner tries row_sum's winning schedule first, beside the cost model's choice
    r4 = tune(k2, env={"M": 6, "N": 40}, device="cpu", store=store, limit=1, examples=2,
              progress=False)
    assert [(c.proposer, c.schedule) for c in r4.candidates][0] == ("memory", {"0.BLOCK_P": 2})
    assert [c.proposer for c in r4.candidates][1:] == ["autotune"]     # limit=1: one more
    assert r4.candidates[0].verification["status"] == "accepted"


def test_similarity_order(tmp_path):
    store = KernelStore(tmp_path / "s.sqlite")

    def put(kernel, launches, shape, ms=None):
        store.put(Entry(f"h-{kernel}", kernel, "cuda", "cpu", shape, f"// {kernel}\n", {}, {},
                        {}, ms, 2.0 if ms else None, "llm", launches=launches))
    put("far_rows", {"0": "rows"}, "M=16384,N=16384")
    put("near_rows", {"0": "rows"}, "M=8,N=64")
    put("mixed", {"0": "pointwise", "1": "rows"}, "M=8,N=64")
    put("matmul", {"0": "contraction"}, "M=8,N=64")
    found = similar(store, "h-me", "cuda", "cpu", {"0": "rows"}, "M=8,N=32", limit=5)
    assert [e.kernel for e in found] == ["near_rows", "far_rows", "mixed"]
    assert similar(store, "h-near_rows", "cuda", "cpu", {"0": "rows"}, "M=8,N=64", 1)[0].kernel \
        == "far_rows"            # never the spec itself
    assert similar(store, "h-me", "hip", "cpu", {"0": "rows"}, "M=8,N=64") == []
    assert pattern_distance({"0": "rows"}, {"0": "rows", "1": "pointwise"}) == 1
    assert shape_distance("M=8,N=64", "A=64,B=8") == 0 and shape_distance("M=8", "M=32") == 2


def test_store_export_import_and_cli(tmp_path, capsys):
    from kspec.cli import main

    a = KernelStore(tmp_path / "a.sqlite")
    k = _k("row_sum")
    a.put(Entry(spec_hash(k), "row_sum", "triton", "cpu", "M=8,N=64", "# module\n",
                {"0.BLOCK_P": 2}, {"status": "accepted"}, {}, None, None, "llm",
                spec="kernel row_sum ...", launches={"0": "rows"}))
    a.put(Entry(spec_hash(k), "row_sum", "cuda", "cpu", "M=8,N=64", "// c++\n", {"rows": "loop"},
                {"status": "accepted"}, {}, None, None, "autotune", launches={"0": "rows"}))
    assert main(["store", "export", str(tmp_path / "lib"), "--store", str(a.path)]) == 0
    index = json.loads((tmp_path / "lib" / "index.json").read_text())
    files = sorted(r["file"] for r in index["kernels"])
    assert [f.rsplit(".", 1)[1] for f in files] == ["cpp", "py"]
    assert main(["store", "import", str(tmp_path / "lib"), "--store",
                 str(tmp_path / "b.sqlite")]) == 0
    assert "imported 2 kernel(s)" in capsys.readouterr().err
    b = KernelStore(tmp_path / "b.sqlite")
    assert [e.as_dict() for e in b.entries()] == [e.as_dict() for e in a.entries()]
    (tmp_path / "lib" / files[0]).write_text("// edited\n")
    with pytest.raises(kspec.KspecError, match="does not match its record's hash"):
        b.import_dir(tmp_path / "lib")
    with pytest.raises(kspec.KspecError, match="no index.json"):
        b.import_dir(tmp_path)
