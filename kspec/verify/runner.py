"""Running one implementation of a kernel on checked cases.

`run_case` launches once under every guard (poisoned allocations with canaries, inputs inside
canaries and snapshotted) and compares each output with the float64 reference. `run_pair`
launches twice with different inputs of the same shapes (no caching). `search` drives
Hypothesis over `strategies.cases`, shrinks a failure and returns it as a replayable case.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import ir
from . import guards
from .strategies import (Case, cases, different_seed, explicit_cases, first_case,
                         launch_branches)
from .tolerance import Comparison, compare, magnitude

# a case's outcome: "ok", "wrong" (numbers, unwritten elements, out-of-bounds writes, crashes)
# or "cheat" (mutated inputs, outputs aliasing inputs or a previous launch's outputs)
OK, WRONG, CHEAT, COMPILE_ERROR = "ok", "wrong", "cheat", "compile_error"


class CompileError(Exception):
    """Raised by a launcher when the implementation does not compile (Triton JIT errors)."""


@dataclass
class CaseResult:
    status: str
    worst: float = 0.0
    detail: str = ""
    outputs: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass
class Expected:
    outputs: tuple[torch.Tensor, ...]
    mags: tuple[torch.Tensor | None, ...]


def expected(kernel, args: list) -> Expected:
    """The float64 reference and the magnitudes behind each output value."""
    want = kernel.reference(*args)
    want = want if isinstance(want, tuple) else (want,)
    return Expected(want, magnitude(kernel, args))


def _is_compile_error(e: BaseException) -> bool:
    if isinstance(e, CompileError):
        return True
    mod = type(e).__module__ or ""
    return mod.startswith("triton.compiler") or type(e).__name__ in (
        "CompilationError", "CompileTimeAssertionFailure")


def run_case(kernel, launch: Callable, case: Case, device: str = "cpu",
             want: Expected | None = None, keep_outputs: bool = False) -> CaseResult:
    """One guarded launch of `launch` on `case`, compared with the reference."""
    k: ir.Kernel = kernel.ir
    args = case.arguments(k)
    want = want or expected(kernel, args)
    call: list[Any] = []
    inputs: list[tuple[str, torch.Tensor, torch.Tensor, guards.Guarded]] = []
    for p, a in zip(k.params, args):
        if isinstance(a, torch.Tensor):
            view, g = guards.guarded_copy(a.to(device), p.name)
            inputs.append((p.name, view, guards.bits(view).clone(), g))
            call.append(view)
        else:
            call.append(a)
    try:
        with guards.poisoned_allocations() as allocs:
            got = launch(*call)
        if device != "cpu":
            torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001 - any crash of the implementation is a finding
        status = COMPILE_ERROR if _is_compile_error(e) else WRONG
        return CaseResult(status, float("inf"), f"{'does not compile' if status == COMPILE_ERROR else 'raised'}: "
                          f"{type(e).__name__}: {_first_line(e)}")
    got = got if isinstance(got, tuple) else (got,)
    if len(got) != len(k.outputs) or not all(isinstance(g, torch.Tensor) for g in got):
        return CaseResult(WRONG, float("inf"), f"returned {len(got)} values; the kernel "
                          f"declares {len(k.outputs)} output tensors")
    for name, view, snapshot, g in inputs:
        if not torch.equal(guards.bits(view), snapshot):
            n = int((guards.bits(view) != snapshot).sum().item())
            return CaseResult(CHEAT, float("inf"), f"input '{name}' was modified by the launch "
                              f"({n} elements)")
    for name, view, _, g in inputs:
        if not g.canaries_intact():
            return CaseResult(WRONG, float("inf"), f"wrote outside input '{name}' (a canary "
                              f"next to it changed)")
    for o, t in zip(k.outputs, got):
        for name, view, _, _ in inputs:
            if guards.overlaps(t, view):
                return CaseResult(CHEAT, float("inf"), f"output '{o.name}' shares memory with "
                                  f"input '{name}'")
    for g in allocs.broken():
        return CaseResult(WRONG, float("inf"), f"wrote outside a buffer of {g.n} elements the "
                          f"launch allocated (a canary changed)")
    worst = 0.0
    for o, t, w, mag in zip(k.outputs, got, want.outputs, want.mags):
        if t.dtype != o.dtype.torch:
            return CaseResult(WRONG, float("inf"), f"output '{o.name}' has dtype {t.dtype}; "
                              f"the kernel declares {o.dtype}")
        c: Comparison = compare(t.detach().cpu(), w, o.dtype, mag)
        worst = max(worst, c.worst)
        if not c.ok:
            return CaseResult(WRONG, c.worst, f"output '{o.name}': {_unwritten(t, w)}{c.detail}")
    outs = tuple(t.detach().clone() for t in got) if keep_outputs else tuple(got)
    return CaseResult(OK, worst, "", outs)


def _unwritten(t: torch.Tensor, w: torch.Tensor) -> str:
    """A note when outputs still hold the poison where the reference is an ordinary value."""
    tc = t.detach().cpu()
    if not tc.dtype.is_floating_point:
        return ""
    n = int((torch.isnan(tc) & ~torch.isnan(w)).sum().item())
    return f"{n} element(s) NaN (never written, or computed NaN); " if n else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else ""


def run_pair(kernel, launch: Callable, case: Case, device: str = "cpu") -> CaseResult:
    """Two launches, same shapes, different inputs: both must be correct and the second's
    outputs must not be the first's (no caching, no shared output buffers)."""
    a = run_case(kernel, launch, case, device)
    if not a.ok:
        return a
    first = a.outputs
    kept = tuple(t.detach().clone() for t in first)
    other = different_seed(case)
    want_b = expected(kernel, other.arguments(kernel.ir))
    b = run_case(kernel, launch, other, device, want_b)
    for o, ta, tb in zip(kernel.ir.outputs, first, b.outputs):
        if ta.data_ptr() == tb.data_ptr() and ta.numel():
            return CaseResult(CHEAT, float("inf"), f"output '{o.name}' of the second launch is "
                              f"the first launch's buffer (a cached result)")
    if not b.ok:
        return _cached_or(kernel, launch, other, device, kept, b)
    return b


def _cached_or(kernel, launch, case, device, kept, b: CaseResult) -> CaseResult:
    """When the second launch is wrong, tell a cached result (identical to the first launch's
    output) from an ordinary wrong one."""
    if b.status != WRONG:
        return b
    args = case.arguments(kernel.ir)
    call = [x.to(device) if isinstance(x, torch.Tensor) else x for x in args]
    try:
        got = launch(*call)
    except Exception:  # noqa: BLE001
        return b
    got = got if isinstance(got, tuple) else (got,)
    if all(isinstance(t, torch.Tensor) and t.shape == k.shape and torch.equal(
            guards.bits(t.detach().cpu()), guards.bits(k.cpu())) for t, k in zip(got, kept)):
        return CaseResult(CHEAT, float("inf"), "the second launch, with different inputs, "
                          "returned the first launch's outputs (a cached result)")
    return b


@dataclass
class Failure:
    case: Case
    status: str
    detail: str
    reproduce: str = ""     # Hypothesis's @reproduce_failure line, when it printed one

    def text(self, kernel_name: str = "") -> str:
        lines = [f"{self.status}: {self.detail}",
                 f"  case: {self.case}",
                 f"  replay: kspec.verify.replay(kernel, {self.case.replay()})"]
        if self.reproduce:
            lines.append(f"  hypothesis: {self.reproduce}")
        return "\n".join(lines)


@dataclass
class SearchResult:
    examples: int = 0          # cases run (not counting shrinking)
    passed: int = 0
    worst: float = 0.0
    failure: Failure | None = None
    seconds: float = 0.0
    cases: list[Case] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


class _CaseFailed(AssertionError):
    def __init__(self, case: Case, result: CaseResult):
        super().__init__(f"{result.status}: {result.detail}\n  case: {case}")
        self.case = case
        self.result = result


def search(kernel, launch: Callable, *, examples: int = 10, seed: int = 0, device: str = "cpu",
           max_elements: int = 4096, max_work: int | None = None, block_sizes=(),
           shrink_budget: int = 25, pair: bool = True,
           max_seconds: float | None = None, explicit: bool = True) -> SearchResult:
    """Run `launch` on the all-ones case with the two-launch check, one case per value
    distribution (`explicit`), then `examples` Hypothesis cases; stop at the first failure, shrink it within `shrink_budget` extra launches."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    t0 = time.perf_counter()
    res = SearchResult()
    first = first_case(kernel.ir, max_elements)
    if first is not None:
        r = run_pair(kernel, launch, first, device) if pair else run_case(kernel, launch, first,
                                                                          device)
        res.examples += 1
        res.cases.append(first)
        if not r.ok:
            res.failure = Failure(first, r.status, r.detail)
            res.seconds = time.perf_counter() - t0
            return res
        res.passed += 1
        res.worst = max(res.worst, r.worst)

    memo: dict[Case, CaseResult] = {first: r} if first is not None else {}
    if explicit:
        for case in explicit_cases(kernel.ir, max_elements):
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                break
            r = run_case(kernel, launch, case, device)
            memo[case] = r
            res.examples += 1
            res.cases.append(case)
            if not r.ok:
                res.failure = Failure(case, r.status, r.detail)
                res.seconds = time.perf_counter() - t0
                return res
            res.passed += 1
            res.worst = max(res.worst, r.worst)

    state = {"generating": True, "shrinks": 0}
    failing: dict[Case, CaseResult] = {}

    def check(case: Case) -> None:
        if case in memo:
            r = memo[case]
        elif (state["generating"] and max_seconds is not None
              and time.perf_counter() - t0 > max_seconds):
            return                           # time is up: the cases run so far are the result
        elif not state["generating"] and state["shrinks"] >= shrink_budget:
            return                           # budget spent: keep the best failure so far
        else:
            if not state["generating"]:
                state["shrinks"] += 1
            r = run_case(kernel, launch, case, device)
            memo[case] = r
            if state["generating"]:
                res.examples += 1
                res.cases.append(case)
                if r.ok:
                    res.passed += 1
                    res.worst = max(res.worst, r.worst)
        if not r.ok:
            state["generating"] = False
            failing[case] = r
            raise _CaseFailed(case, r)

    strategy = cases(kernel.ir, block_sizes=block_sizes, max_elements=max_elements,
                     max_work=max_work)
    test = settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                    derandomize=False, report_multiple_bugs=False,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink),
                    suppress_health_check=list(HealthCheck))(given(strategy)(check))
    test = hseed(seed)(test)
    try:
        test()
    except _CaseFailed as e:
        notes = "\n".join(getattr(e, "__notes__", []))
        repro = next((ln.strip() for ln in notes.splitlines() if "@reproduce_failure" in ln), "")
        res.failure = Failure(e.case, e.result.status, e.result.detail, repro)
    except Exception as e:  # noqa: BLE001 - Hypothesis errors (e.g. no valid sizes)
        if type(e).__name__ in ("Unsatisfiable", "FailedHealthCheck"):
            pass
        else:
            raise
    res.seconds = time.perf_counter() - t0
    return res


def search_branches(kernel, source: str, launch_with: Callable[[dict], Callable], *,
                    examples: int, seed: int, **options: Any):
    """(branch, SearchResult) for each launch-time branch of a generated (or kspec-derived)
    Triton module that small shapes never take (strategies.launch_branches), forced through
    the schedule: `launch_with(schedule)` gives the launcher; a few cases each."""
    for branch, schedule in launch_branches(source).items():
        yield branch, search(kernel, launch_with(schedule), examples=max(1, examples // 3),
                             seed=seed + 1, explicit=False, **options)


def replay(kernel, case: Case, backend: str = "triton", device: str = "cpu") -> CaseResult:
    """Rerun one printed case against a backend (or a launcher given as `backend`)."""
    launch = kernel.build(backend) if isinstance(backend, str) else backend
    return run_case(kernel, launch, case, device)
