"""The LLM path of the optimisation loop against a scripted OpenAI-compatible server on loopback:
each kind of bad candidate is classified, only the correct one is kept, and the feedback of each
round reaches the next prompt."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("openai")

import kspec  # noqa: E402
from kspec.agent import KernelStore, tune  # noqa: E402
from kspec.agent.llm import LLMProposer, extract_code  # noqa: E402
from kspec.agent.space import schedule_source  # noqa: E402
from llm_server import endpoint  # noqa: E402,F401 - the fixture

SPEC = Path(__file__).resolve().parent.parent / "specs" / "row_sum.kspec"


def _kernel():
    return kspec.load(SPEC)["row_sum"]


def scripted_candidates(base: str) -> list[tuple[str, str]]:
    """(expected status, source) in the order the server replies with them."""
    call = "M, N, BLOCK_P=BLOCK_P"
    assert call in base
    broken = base.replace("def launch(", "def launch(:\n", 1)
    odd = base.replace(call, "M, N - N % 2, BLOCK_P=BLOCK_P")        # drops a column when N odd
    mutates = base.replace("    return y\n", "    x.mul_(2.0)\n    return y\n")
    caches = base.replace("def launch(x, M, N, schedule=None):",
                          "_CACHE = {}\n\n\ndef launch(x, M, N, schedule=None):\n"
                          "    if (M, N) in _CACHE:\n        return _CACHE[(M, N)]\n", 1)
    caches = caches.replace("    return y\n", "    _CACHE[(M, N)] = y\n    return y\n")
    good = schedule_source(base, {"0.BLOCK_R": 64, "0.BLOCK_P": 1})
    return [("compile_error", broken), ("wrong", odd), ("cheat", mutates), ("cheat", caches),
            ("accepted", good)]


def test_extract_code():
    assert extract_code("text\n```python\nx = 1\n```\nmore") == "x = 1\n"
    assert extract_code("```\ny = 2\n```") == "y = 2\n"
    assert extract_code("no code") is None


def test_llm_loop_classifies_and_feeds_back(endpoint, tmp_path):
    k = _kernel()
    cands = scripted_candidates(k.source("triton"))
    replies = [f"Here is a faster kernel.\n```python\n{src}```\n" for _, src in cands]
    script, url = endpoint(replies)
    store = KernelStore(tmp_path / "store")
    # KSPEC_TEST_TRANSCRIPT_DIR keeps the transcript (the GPU check script saves it)
    where = Path(os.environ.get("KSPEC_TEST_TRANSCRIPT_DIR") or tmp_path)
    transcript = where / "scripted-llm.transcript.jsonl"
    transcript.unlink(missing_ok=True)
    llm = LLMProposer("scripted-model", base_url=url, api_key="test", backoff=0.01,
                      transcript=transcript)
    r = tune(k, llm=llm, rounds=len(cands), env={"M": 5, "N": 33}, device="cpu", store=store,
             examples=6, progress=False)

    assert [c.status for c in r.candidates] == [want for want, _ in cands], r.text()
    assert r.best_id == 5 and r.best.source == cands[-1][1]
    assert r.tokens == 150 * len(cands)
    assert all(c.tokens == 150 for c in r.candidates)

    prompts = [m["messages"][-1]["content"] for m in script.requests]
    assert len(prompts) == 5
    # every prompt: the spec, its semantics, the current best kernel, target constraints
    for p in prompts:
        assert "y[i] = sum(x[i, j] for j)" in p
        assert "def launch(x, M, N, schedule=None)" in p
        assert "shared memory per program" in p and "M=5, N=33" in p
    assert "Feedback" not in prompts[0]
    assert "compile_error" in prompts[1] and "did not compile" in prompts[1]
    assert "SyntaxError" in prompts[1]
    # the failing case of the odd-shape candidate, with its sizes
    assert "candidate 2: wrong" in prompts[2] and "Failing case:" in prompts[2]
    wrong = r.candidates[1]
    assert "N=" in wrong.case and wrong.case.split("N=")[1].split(";")[0].split(",")[0] \
        .strip().isdigit()
    assert wrong.case.split("N=")[1][:6] in prompts[2]
    assert "candidate 3: cheat" in prompts[3]
    assert r.candidates[2].detail and r.candidates[2].detail.splitlines()[0] in prompts[3]
    assert "candidate 4: cheat" in prompts[4]
    assert r.candidates[3].detail.splitlines()[0] in prompts[4]
    # the system prompt states the contract
    assert "launch(x, M, N, schedule=None)" in script.requests[0]["messages"][0]["content"]

    # only the verified candidate was kept
    (entry,) = store.entries()
    assert entry.source == cands[-1][1] and entry.proposer == "llm"
    assert entry.verification["status"] == "accepted"
    # the transcript: one exchange per round, prompts and replies
    lines = [json.loads(x) for x in transcript.read_text().splitlines()]
    assert [x["round"] for x in lines] == [1, 2, 3, 4, 5]
    assert lines[1]["messages"][-1]["content"] == prompts[1]
    assert r.transcript == str(transcript)
    (where / "scripted-llm.report.txt").write_text(r.text() + "\n")


def test_llm_retries_budget_and_no_code(endpoint, tmp_path):
    k = _kernel()
    script, url = endpoint(["I cannot help with that."])
    llm = LLMProposer("m", base_url=url, api_key="x", samples=2, max_tokens_total=300,
                      transcript=tmp_path / "t.jsonl")
    r = tune(k, llm=llm, rounds=4, env={"M": 3, "N": 5}, device="cpu", store=None,
             progress=False)
    # two samples per round; the token budget (2 x 150) stops it after the first round
    assert len(script.requests) == 2 and len(r.candidates) == 2
    assert all(c.status == "compile_error" and "no code block" in c.detail
               for c in r.candidates)
    assert "token budget" in r.stopped and r.best_id is None


def test_llm_retries_with_backoff(tmp_path):
    # nothing listens on this port: connection errors are retried, then reported
    llm = LLMProposer("m", base_url="http://127.0.0.1:9/v1", api_key="x", retries=2,
                      backoff=0.01, timeout=2)
    (p,) = llm.propose({"target_name": "Triton", "target": {"arch": "cpu", "arch_text": "cpu",
                        "smem": 1, "sms": 1, "max_warps": 1, "interpreter": True},
                        "kernel_name": "k", "launch_args": "x", "symbols": "", "returns": "y",
                        "spec_file": "f", "spec_text": "s", "semantics": "s", "env_text": "",
                        "best_source": "", "best_ms": None, "baseline_ms": None,
                        "feedback": [], "language": "python", "fence": "python",
                        "schedule": {"space": []}, "examples": []}, 1)
    assert p.source is None and "Connection" in p.error
