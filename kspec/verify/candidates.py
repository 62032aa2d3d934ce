"""Verifying a kernel source from outside kspec (hand-written, tuned, or proposed by a model)
against the spec: the gate of the optimisation loop.

    verdict = verify_candidate(kernel, "triton", source_text)
    verdict.status   # "accepted" | "compile_error" | "wrong" | "cheat" | "unverified"
    verdict.failure  # the shrunk failing case (replayable), when there is one

The candidate must keep the entry point and argument order the backend emits:
- triton: a Python module with `launch(*inputs, *shape_symbols)` (inputs in signature order,
  then the shape symbols in `kernel.ir.symbols` order) returning the outputs in declared order.
  CPU tensors run under Triton's interpreter, CUDA tensors on the GPU.
- cuda / hip: C++ with the `extern "C"` kernels of the generated source, same names and
  parameter lists (kspec's plan launcher calls them). Compiled with nvcc / hipcc (sm_90,
  gfx90a by default); they run only on a GPU ("unverified" when this machine has none).
- cpu: the C++ of kspec's CPU emulation dialect (`kspec.backends.cxx.emulate.source`), compiled
  with g++ and run on the CPU: C++ candidates can be gated on a machine without a GPU.

"unverified" means it compiled but nothing here could run it: never treat that as accepted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import ir
from ..errors import BackendUnavailable
from .isolation import CandidateError, IsolatedCandidate
from .launchers import cxx_launcher, gpu_available, load_triton_module, triton_launcher
from .runner import (CHEAT, COMPILE_ERROR, TIMEOUT, WRONG, Failure, SearchResult, search,
                     search_branches)
from .static import problems as static_problems
from .coverage import branch_cases, coverage, report_line
from .strategies import Case, boundary_cases, schedule_block_sizes

ACCEPTED, UNVERIFIED = "accepted", "unverified"
STATUSES = (ACCEPTED, COMPILE_ERROR, WRONG, CHEAT, TIMEOUT, UNVERIFIED)
# the memory the branch-boundary cases may take together (their inputs and outputs, MiB): the
# Triton interpreter takes about half a second per 2048-element program, so a CPU check stays
# near a minute with 1.5 MiB; a GPU takes the sizes themselves
BUDGET_MB = {"cpu": 1.5, "cuda": 4096.0}
LAUNCH_TIMEOUT = 120.0      # seconds one launch may take (the interpreter at the budget's sizes)
# re-exported: what the tuner builds its in-process (kspec-generated) launchers with
__all__ = ["verify_candidate", "verify_file", "Verdict", "STATUSES", "load_triton_module",
           "triton_launcher"]


@dataclass
class Verdict:
    status: str
    target: str
    detail: str = ""
    failure: Failure | None = None
    examples: int = 0
    passed: int = 0
    worst: float = 0.0          # worst error over passing examples, in units of the tolerance
    seconds: float = 0.0
    ran_on: str = ""
    compiled_for: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)   # every case run
    # launch-time branches (kspec.lowering.branches) -> the values the drawn cases took, and
    # the values no case within the budget reaches, with why
    coverage: dict[str, list[str]] = field(default_factory=dict)
    unreached: dict[str, str] = field(default_factory=dict)
    branch_data: list = field(default_factory=list, repr=False)

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def branches(self) -> list[str]:
        """Every kernel/branch combination that ran (from the worker's launch records)."""
        return sorted({b for r in self.records for b in r.get("launches", [])})

    def text(self) -> str:
        head = (f"{self.status}: {self.target} candidate"
                + (f" on {self.ran_on}" if self.ran_on else "")
                + f"; {self.passed}/{self.examples} examples passed, worst "
                  f"{self.worst:.3g} x tolerance ({self.seconds:.1f} s)")
        lines = [head]
        if self.failure:
            lines.append(self.failure.text())
        elif self.detail:
            lines.append(f"  {self.detail}")
        if self.branches():
            lines.append("  branches that ran: " + "; ".join(self.branches()))
        if self.branch_data:
            lines.append("  " + report_line(self.branch_data, self.coverage, self.unreached))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        d = {"status": self.status, "target": self.target, "detail": self.detail,
             "examples": self.examples, "passed": self.passed, "worst": self.worst,
             "seconds": self.seconds, "ran_on": self.ran_on, "compiled_for": self.compiled_for,
             "branches": self.branches(), "coverage": self.coverage,
             "unreached": self.unreached, "cases": self.records}
        if self.failure:
            d["failure"] = {"status": self.failure.status, "detail": self.failure.detail,
                            "case": str(self.failure.case), "replay": self.failure.case.replay(),
                            "hypothesis": self.failure.reproduce}
        return d


def verify_candidate(kernel, target: str, source: str, *, examples: int = 10, seed: int = 0,
                     max_elements: int = 4096, max_work: int | None = None,
                     max_seconds: float | None = None, device: str | None = None,
                     arch: str | None = None, shrink_budget: int = 25,
                     budget_mb: float | None = None, launch_timeout: float = LAUNCH_TIMEOUT,
                     shapes: Sequence[dict[str, int]] = (),
                     progress: Callable[[str], None] | None = None) -> Verdict:
    """Check a candidate source for `target` against `kernel`'s spec (a kspec.Kernel).

    The candidate runs in its own worker process (isolation.py); this process draws the
    inputs, computes the float64 reference and compares. Static checks first (static.py),
    then the all-ones case and a two-launch (no caching) check, one case per value
    distribution and layout, sizes past each launch threshold within `budget_mb` (default:
    BUDGET_MB for the device), the exact `shapes` given (the class being tuned or served),
    then `examples` Hypothesis cases (tensors up to `max_elements`); stops at the first
    failure and shrinks it. Each launch has `launch_timeout` seconds."""
    import time

    t0 = time.perf_counter()
    finding = static_problems(target, source)
    if finding:
        return Verdict(CHEAT, target, f"static check: {finding}", seconds=time.perf_counter() - t0)
    on_gpu = target in ("cuda", "hip") or (target == "triton" and (
        device == "cuda" or (device is None and gpu_available())))
    dev = "cuda" if on_gpu else "cpu"
    if target in ("cuda", "hip") and not gpu_available():
        return _compile_only(kernel, target, source, arch, t0)
    compiled_for = [{"triton": "triton " + ("(GPU JIT)" if on_gpu else "(interpreter)"),
                     "cpu": "cpu (g++)"}.get(target, f"{target} {arch or 'this GPU'}")]
    candidate = IsolatedCandidate(kernel, target, source, device=dev,
                                  launch_timeout=launch_timeout, arch=arch)
    try:
        candidate.load()
    except CandidateError as e:
        return Verdict(e.status, target, e.detail, seconds=time.perf_counter() - t0)
    budget = int((budget_mb if budget_mb is not None else BUDGET_MB[dev]) * 2 ** 20)
    branches = launch_branches(kernel.ir, target, dev)
    drawn = branch_cases(kernel.ir, branches, budget)     # first call on the budget
    # the cheaper boundary sizes run first: most wrong kernels fail there
    fixed = [("branch boundary", c) for c in boundary_cases(
        kernel.ir, source if target == "triton" else "", budget - drawn.spent)]
    fixed += [("branch threshold", c) for c in drawn.cases]
    fixed += [("requested shape", c) for c in requested_cases(kernel.ir, shapes)]
    blocks = schedule_block_sizes(source) if target == "triton" else ()
    options = dict(examples=examples, seed=seed, device=dev, max_elements=max_elements,
                   max_work=max_work, block_sizes=blocks, shrink_budget=shrink_budget,
                   max_seconds=max_seconds, progress=progress)
    try:
        res: SearchResult = search(kernel, candidate, fixed=fixed, **options)
        if res.ok and target == "triton":
            res = _forced_branches(kernel, candidate, source, res, options)
    finally:
        candidate.close()
    status = ACCEPTED if res.ok else res.failure.status
    detail = "" if res.ok else res.failure.detail
    if res.ok and not res.passed:        # nothing checked is never accepted
        status, detail = UNVERIFIED, ("no example ran: no sizes pass the launch checks "
                                      "within the limits")
    drawn_records = [r for r in res.records if not r["phase"].startswith("forced")]
    return Verdict(status, target, detail, res.failure, res.examples, res.passed, res.worst,
                   time.perf_counter() - t0, dev, compiled_for, res.records,
                   coverage(branches, drawn_records), _forced_note(branches, res.records,
                                                                   drawn.unreached), branches)


def _forced_note(branches: list, records: list[dict[str, Any]],
                 unreached: dict[str, str]) -> dict[str, str]:
    """The unreached values, each noting when a forced-branch run took it instead."""
    forced = coverage(branches, [r for r in records if r["phase"].startswith("forced")])
    return {k: why + ("; run forced through the schedule instead"
                      if k.split("=", 1)[1] in forced.get(k.split("=", 1)[0], []) else "")
            for k, why in unreached.items()}


def launch_branches(kernel: ir.Kernel, target: str, device: str) -> list:
    """The size-dependent choices of kspec's own launch for `target` (a backend's `branches`,
    kspec.lowering.branches data; none for backends that do not describe theirs), for this
    device's multiprocessor count. A candidate that keeps kspec's launch structure takes the
    same ones; the report says which of their values its launches showed."""
    from ..backends import get_backend

    if target not in ("triton", "cuda", "hip"):
        return []
    backend = get_backend(target)
    sms = 4                 # as the generated _row_split assumes off the GPU
    if device == "cuda":
        import torch
        sms = torch.cuda.get_device_properties(0).multi_processor_count
    return backend.branches(kernel, sms)


def requested_cases(kernel: ir.Kernel, shapes: Sequence[dict[str, int]]) -> list[Case]:
    """One case per exact shape asked for (every symbol given), normal values."""
    floats = tuple((p.name, "normal") for p in kernel.tensor_params if p.dtype.is_float)
    return [Case(tuple((s, int(env[s])) for s in kernel.symbols), floats, (), 200 + i)
            for i, env in enumerate(shapes) if all(s in env for s in kernel.symbols)]


def _compile_only(kernel, target: str, source: str, arch: str | None, t0: float) -> Verdict:
    """cuda / hip without a GPU here: compile for `arch` (or the default) and say so."""
    import time

    compiled_for: list[str] = []
    try:
        cxx_launcher(kernel.ir, target, source, arch, compiled_for)
    except BackendUnavailable:
        raise
    except Exception as e:  # noqa: BLE001 - the compiler's failure
        text = str(e).strip().splitlines()
        return Verdict(COMPILE_ERROR, target, f"{type(e).__name__}: {text[0] if text else ''}",
                       seconds=time.perf_counter() - t0)
    return Verdict(UNVERIFIED, target, "compiled; no device here can run it",
                   seconds=time.perf_counter() - t0, compiled_for=compiled_for)


def _forced_branches(kernel, candidate: IsolatedCandidate, source: str, res: SearchResult,
                     options: dict[str, Any]) -> SearchResult:
    """A candidate that keeps kspec's schedule keys is also run with each launch-time branch
    that small shapes never take (64-bit indices, compensated contractions, looped rows, split
    rows) forced, on a few cases each (split rows: the small distribution and layout cases
    first, as its real shapes are too large for odd row counts and strided tiles); the first
    failure is the verdict's. A candidate that ignores the keys runs its own code
    again: nothing is lost, and its sizes were checked above."""
    for branch, forced in search_branches(kernel, source, candidate.with_schedule,
                                          explicit=("split rows",), **options):
        res.examples += forced.examples
        res.passed += forced.passed
        res.worst = max(res.worst, forced.worst)
        res.records += [{**r, "phase": f"forced {branch}"} for r in forced.records]
        if not forced.ok:
            forced.failure.detail = f"[{branch}] {forced.failure.detail}"
            res.failure = forced.failure
            return res
    return res


def verify_file(kernel, target: str, path: str | Path, **kw: Any) -> Verdict:
    return verify_candidate(kernel, target, Path(path).read_text(), **kw)
