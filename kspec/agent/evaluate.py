"""Evaluating one candidate source: compile -> verify (kspec.verify.candidates, every guard) ->
time. The thin adapter between the loop and kspec/verify; what differs per target (Triton,
CUDA, HIP) is in targets.py.

Timing on CUDA: one pair of CUDA events around each call, the median, calls rotating over
several input sets that together span several times the L2 (no call finds its inputs cached).
On CPU the Triton interpreter (or, for cuda / hip, the g++ CPU emulation) runs the candidate
and its wall time is recorded, but it means nothing about a GPU: `timed` is False and the loop
decides by the cost model or not at all. C++ candidates with tensor-core tiles are only compiled
on CPU ("unverified").
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable



# the branch-boundary budget of each tuning candidate under the interpreter (MiB): none. A CPU
# tune ranks candidates by a cost model and verifies every one of them, and a candidate's
# baked-in blocks can make the boundary sizes thousands of interpreted programs; what it
# stores is checked at the benchmark shape itself (a GPU tune takes the gate's default)
TUNE_CPU_BUDGET_MB = 0.0


@dataclass
class Outcome:
    status: str                      # accepted | compile_error | wrong | cheat | unverified
    detail: str = ""
    failure: dict[str, Any] | None = None
    verification: dict[str, Any] = field(default_factory=dict)
    ms: float | None = None          # median on the GPU; None when untimed
    wall_ms: float | None = None     # the interpreter's time (information only)
    timing: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_launcher(kernel, source: str, device: str, target: str = "triton",
                    arch: str | None = None) -> Callable | None:
    """A launcher of candidate `source` with kspec's binding (None: nothing here runs it)."""
    from .targets import tuning

    return tuning(kernel, target, device, arch).launcher(source)


def evaluate(kernel, source: str, *, env: dict[str, int] | None, device: str = "cpu",
             target: str = "triton", arch: str | None = None,
             verify: bool = True, time_it: bool = True, examples: int = 8, seed: int = 0,
             max_elements: int = 4096, max_seconds: float | None = None,
             rep_ms: float = 100.0, budget_mb: float | None = None) -> Outcome:
    """Verify (unless verify=False: the caller will verify later) and time one candidate
    source for `target` (triton, cuda, hip; `arch`: the C++ targets' architecture). Triton
    candidates are verified and timed in worker processes (kspec.verify.isolation), at the
    benchmark shape `env` among the checked cases; `budget_mb` sizes their branch-boundary
    cases (default: TUNE_CPU_BUDGET_MB under the interpreter, the gate's default on a GPU)."""
    from .targets import tuning

    t0 = time.perf_counter()
    tt = tuning(kernel, target, device, arch)
    out = Outcome("unverified", "timed only: not verified yet")
    if verify:
        # Triton: the benchmark shape itself is one of the checked cases (what is stored for
        # that shape class was compared with the reference there)
        extra: dict[str, Any] = {}
        if target == "triton":
            extra = {"shapes": [env] if env else [],
                     "budget_mb": budget_mb if budget_mb is not None else (
                         TUNE_CPU_BUDGET_MB if device == "cpu" else None)}
        v = tt.verify(source, examples=examples, seed=seed, max_elements=max_elements,
                     max_seconds=max_seconds, **extra)
        d = v.as_dict()
        out = Outcome(v.status, v.detail, d.get("failure"), d)
        if v.status != "accepted":
            out.seconds = time.perf_counter() - t0
            return out
    if not (time_it and env):
        out.seconds = time.perf_counter() - t0
        return out
    if target == "triton":
        from ..verify.isolation import IsolatedCandidate
        candidate = IsolatedCandidate(kernel, "triton", source, device=device)
    else:
        try:
            candidate = tt.isolated(source)
        except Exception as e:  # noqa: BLE001 - the compiler's failure (or its resource report)
            from .targets import first_error
            out.status, out.detail = "compile_error", first_error(e)
            out.seconds = time.perf_counter() - t0
            return out
        if candidate is None:         # compiled only: nothing here runs it
            out.seconds = time.perf_counter() - t0
            return out
    return _time_isolated(candidate, env, device, rep_ms, seed, out, t0)


def _time_isolated(candidate, env: dict[str, int], device: str, rep_ms: float, seed: int,
                   out: Outcome, t0: float) -> Outcome:
    """Time a candidate in the gate's worker process (kspec.verify.isolation): the tuner's
    process never imports or loads candidate code, so nothing a candidate patches at import
    outlives it."""
    from ..verify.isolation import CandidateError

    try:
        t = candidate.time(env, timeout=600.0, rep_ms=rep_ms, seed=seed)
    except CandidateError as e:
        out.status, out.detail = e.status, f"at the timing size {env}: {e.detail}"
        out.seconds = time.perf_counter() - t0
        return out
    finally:
        candidate.close()
    out.timing = t
    if device == "cpu":
        out.wall_ms = t["ms"]
    else:
        out.ms = t["ms"]
    out.seconds = time.perf_counter() - t0
    return out
