"""LLM rounds for the C++ targets (cuda, hip) on a machine without a GPU, against the scripted
server on loopback: candidates are C++ of the CPU emulation, gated through g++; each kind of bad
candidate is classified, a ```json schedule is checked against the space and verified with the
schedule applied, only the correct source is kept, and each prompt carries the target's
constraints and the feedback of the round before it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("openai")

import kspec  # noqa: E402
from kspec.agent import KernelStore, tune  # noqa: E402
from kspec.agent.llm import LLMProposer, parse_reply  # noqa: E402
from kspec.agent.space import cxx_schedule  # noqa: E402
from kspec.agent.targets import tuning  # noqa: E402
from kspec.backends.cxx import emulate  # noqa: E402
from llm_server import endpoint  # noqa: E402,F401 - the fixture

SPECS = Path(__file__).resolve().parent.parent / "specs"
needs_gxx = pytest.mark.skipif(emulate.compiler() is None, reason="no g++ for the CPU emulation")

STORE = "y[i * y_s0] = y_row;"
LOOP = "    for (int64_t row = "
MEMO = ("    static float memo[4096]; static int64_t memo_key = -1;\n"
        "    if (M <= 4096 && memo_key == M * 100003 + N) {\n"
        "        for (int64_t r = 0; r < M; ++r) y[r * y_s0] = memo[r];\n"
        "        return;\n    }\n")


def cxx_candidates(base: str) -> list[tuple[str, str, str]]:
    """(expected status, fence tag, reply body) in the order the server sends them."""
    assert STORE in base and LOOP in base and "const IDX n = N;" in base
    broken = base.replace(STORE, "y[i * y_s0] = y_row +;")
    odd = base.replace("const IDX n = N;", "const IDX n = N - N % 2;")     # drops a column
    mutates = base.replace(STORE, STORE + " const_cast<float*>(x)[i * x_s0] = 0.0f;")
    caches = base.replace(LOOP, MEMO + LOOP, 1).replace(
        STORE, STORE + " if (i < 4096) { memo[i] = y_row; memo_key = M * 100003 + N; }")
    good = base.replace("// Regenerate with", "// Tuned by hand; regenerate with", 1)
    return [("compile_error", "cpp", broken), ("wrong", "cuda", odd), ("cheat", "cpp", mutates),
            ("cheat", "cpp", caches), ("compile_error", "json", '{"rows": "diagonal"}'),
            ("slower", "json", '{"schedule": {"rows": "loop", "vector": false}}'),
            ("accepted", "cpp", good)]


def test_parse_reply_languages_and_schedules():
    assert parse_reply("```cuda\nint x;\n```", "cpp").source == "int x;\n"
    assert parse_reply("```python\nx = 1\n```\n```cpp\nint y;\n```", "cpp").source == "int y;\n"
    p = parse_reply('try this:\n```json\n{"0.BLOCK_R": 64}\n```', "python")
    assert p.source is None and p.schedule == {"0.BLOCK_R": 64} and not p.error
    assert parse_reply('```json\n{"schedule": {"rows": null}}\n```', "cpp").schedule == \
        {"rows": None}
    bad = parse_reply("```json\n{rows: 1}\n```", "cpp")
    assert bad.schedule is None and bad.error.startswith("the ```json block is not JSON")
    assert parse_reply("```json\n[1, 2]\n```", "cpp").error.startswith(
        "the ```json block must be an object")
    assert parse_reply("no code", "cpp").error == \
        "the reply holds no code block (```cuda) and no ```json schedule"


@needs_gxx
@pytest.mark.parametrize("target", ["cuda", "hip"])
def test_cxx_llm_loop_classifies_and_feeds_back(endpoint, tmp_path, target):
    k = kspec.load(SPECS / "row_sum.kspec")["row_sum"]
    base = tuning(k, target, "cpu").base_source()
    cands = cxx_candidates(base)
    script, url = endpoint([f"Here you are.\n```{tag}\n{body}\n```\n" for _, tag, body in cands])
    store = KernelStore(tmp_path / "store")
    llm = LLMProposer("scripted-model", base_url=url, api_key="test", backoff=0.01,
                      transcript=tmp_path / "t.jsonl")
    r = tune(k, target=target, llm=llm, rounds=len(cands), env={"M": 5, "N": 33}, device="cpu",
             store=store, examples=3, progress=False)

    assert [c.status for c in r.candidates] == [want for want, _, _ in cands], r.text()
    best = r.candidates[-1]
    assert r.best_id == best.id and best.source.strip() == cands[-1][2].strip()
    assert r.candidates[-3].detail == (
        'schedule rejected: "rows": "diagonal" is not one of [null, "block", "loop"]')
    sched = r.candidates[-2]
    assert sched.schedule == {"rows": "loop", "vector": False}
    assert cxx_schedule(sched.source)[1] == sched.schedule      # generated, schedule applied
    assert sched.verification["status"] == "accepted"
    assert sched.detail == "model cost 2.000, the current best's 1.000"

    prompts = [m["messages"][-1]["content"] for m in script.requests]
    system = script.requests[0]["messages"][0]["content"]
    name, lanes = {"cuda": ("CUDA", "warps of 32 lanes"),
                   "hip": ("HIP", "wavefronts of 64 lanes")}[target]
    assert f"You write {name} kernels" in system and "row_sum_0_rows_b32c" in system
    assert "kspec's CPU emulation" in system and "```json" in system
    for p in prompts:
        assert "y[i] = sum(x[i, j] for j)" in p and "M=5, N=33" in p
        assert lanes in p and "#include <kspec_cpu_emulation.h>" in p
        assert '"rows" in [null, "block", "loop"]; "vector" in [true, false]' in p
    assert "The current schedule: {}, model cost 1.000" in prompts[0]
    assert "Feedback" not in prompts[0]
    assert "candidate 1: compile_error" in prompts[1] and "It did not compile" in prompts[1]
    assert "g++" in r.candidates[0].detail and r.candidates[0].detail in prompts[1]
    assert "candidate 2: wrong" in prompts[2] and "Failing case:" in prompts[2]
    n = int(r.candidates[1].case.split("N=")[1].split(",")[0].split(";")[0].split(")")[0])
    assert n % 2 == 1 and r.candidates[1].case in prompts[2]
    assert "candidate 3: cheat" in prompts[3] and "input 'x' was modified" in prompts[3]
    assert "candidate 4: cheat" in prompts[4] and "cached result" in prompts[4]
    assert 'candidate 5 (schedule {"rows": "diagonal"}): compile_error' in prompts[5]
    assert ('candidate 6 (schedule {"rows": "loop", "vector": false}): slower\n'
            "Correct but slower: model cost 2.000") in prompts[6]

    (entry,) = store.entries()
    assert entry.target == target and entry.arch == "cpu" and entry.proposer == "llm"
    assert entry.source == best.source and entry.launches == {"0": "rows", "": "launch"}
    assert "y[i] = sum(x[i, j] for j)" in entry.spec
    kinds = [json.loads(x)["kind"] for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert kinds == ["source"] * 4 + ["schedule"] * 2 + ["source"]
