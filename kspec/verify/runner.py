"""Running one implementation of a kernel on checked cases.

`run_case` launches once under every guard (poisoned allocations with canaries, inputs inside
canaries and snapshotted) and compares each output with the float64 reference. `run_pair`
launches twice with different inputs of the same shapes (no caching). `search` drives
Hypothesis over `strategies.cases`, shrinks a failure and returns it as a replayable case.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch

from .. import ir
from . import guards
from .isolation import CandidateError, Launched
from .strategies import (Case, cases, explicit_cases, first_case,
                         launch_branches)
from .tolerance import Comparison, compare, magnitude

# a case's outcome: "ok", "wrong" (numbers, unwritten elements, out-of-bounds writes, crashes)
# or "cheat" (mutated inputs, outputs aliasing inputs or a previous launch's outputs)
# or "timeout" (a launch that did not return in time: its worker was killed)
OK, WRONG, CHEAT, COMPILE_ERROR, TIMEOUT = "ok", "wrong", "cheat", "compile_error", "timeout"


class CompileError(Exception):
    """Raised by a launcher when the implementation does not compile (Triton JIT errors)."""


@dataclass
class CaseResult:
    status: str
    worst: float = 0.0
    detail: str = ""
    outputs: tuple = ()
    launches: list = field(default_factory=list)    # the worker's launch records (isolated)

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
    """One guarded launch of `launch` on `case`, compared with the reference. An isolated
    candidate (isolation.IsolatedCandidate) runs in its worker process, which reports the
    kernels it launched and the fences of every buffer they were given; kspec's own launchers
    run here, with their torch.empty allocations poisoned and fenced."""
    k: ir.Kernel = kernel.ir
    args = case.arguments(k)
    want = want or expected(kernel, args)
    call: list[Any] = []
    inputs: list[tuple[str, torch.Tensor, torch.Tensor, guards.Guarded]] = []
    for p, a in zip(k.params, args):
        if isinstance(a, torch.Tensor):
            view, g = guards.guarded_copy(a.to(device), p.name, case.layout(p.name))
            inputs.append((p.name, view, guards.bits(view).clone(), g))
            call.append(view)
        else:
            call.append(a)
    isolated = getattr(launch, "isolated", False)
    allocs = guards.Allocations()
    try:
        if isolated:
            got = launch(*call)
        else:
            with guards.poisoned_allocations() as allocs:
                got = launch(*call)
            if device != "cpu":
                torch.cuda.synchronize()
    except CandidateError as e:
        return CaseResult(e.status, float("inf"), e.detail)
    except Exception as e:  # noqa: BLE001 - any crash of the implementation is a finding
        status = COMPILE_ERROR if _is_compile_error(e) else WRONG
        verb = "does not compile" if status == COMPILE_ERROR else "raised"
        return CaseResult(status, float("inf"), f"{verb}: {type(e).__name__}: {_first_line(e)}")
    launched = got if isinstance(got, Launched) else None
    got = launched.outputs if launched else (got if isinstance(got, tuple) else (got,))
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
    if launched:
        found = launch_problem(k, launched, device)
        if found:
            return CaseResult(*found)
    for o, t in zip(k.outputs, got):
        for name, view, _, _ in inputs:
            if not isolated and guards.overlaps(t, view):
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
    return CaseResult(OK, worst, "", outs, launched.launches if launched else [])


def launch_problem(k: ir.Kernel, launched: Launched, device: str) -> tuple | None:
    """(status, worst, detail) for what the worker saw the candidate do wrong, else None."""
    inf = float("inf")
    for o, m, t in zip(k.outputs, launched.meta, launched.outputs):
        if m.get("previous") and t.numel():
            return (CHEAT, inf, f"output '{o.name}' is the previous launch's buffer (a cached "
                                f"result)")
        if m.get("aliases_input"):
            return (CHEAT, inf, f"output '{o.name}' shares memory with an input")
    if launched.records and not launched.launches:
        return (CHEAT, inf, "launched no kernel of the target (no Triton launch was recorded): "
                            "the outputs were not computed by the candidate's kernels")
    for r in launched.launches:
        if r["side_stream"]:
            return (CHEAT, inf, f"kernel {r['kernel']} was launched on a stream other than the "
                                f"caller's")
        if r.get("outside"):
            kinds = " and ".join(sorted(set(r["outside"])))
            return (WRONG, inf, f"kernel {r['kernel']} made a {kinds} outside the buffers it was "
                                f"given ({len(r['outside'])} masked access(es) out of bounds)")
        if r["fences_broken"]:
            return (WRONG, inf, f"kernel {r['kernel']} wrote outside a buffer it was given "
                                f"(a fence past the end of {r['fences_broken']} buffer(s) changed)")
    for o, m, t in zip(k.outputs, launched.meta, launched.outputs):
        if m.get("device") not in (None, torch.device(device).type):
            return (WRONG, inf, f"output '{o.name}' is on {m['device']}, the inputs on {device}")
        if launched.records and not m.get("launched") and t.numel():
            return (CHEAT, inf, f"output '{o.name}' was not given to any kernel launch (computed "
                                f"outside the candidate's kernels)")
    return None


def _unwritten(t: torch.Tensor, w: torch.Tensor) -> str:
    """A note when outputs still hold a poison where the reference is an ordinary value: NaN
    (kspec's guarded allocations) or 0x7F bytes (the worker's fresh allocations)."""
    tc = t.detach().cpu()
    if not tc.dtype.is_floating_point:
        return ""
    poison = torch.isnan(tc) | (guards.bits(tc) == guards.perturbed(tc.dtype)).view(tc.shape)
    n = int((poison & ~torch.isnan(w)).sum().item())
    return f"{n} element(s) NaN or 0x7F-filled (never written, or computed so); " if n else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else ""


def run_pair(kernel, launch: Callable, case: Case, device: str = "cpu") -> CaseResult:
    """Two launches, same shapes, inputs that differ in the last element of each input only:
    both must be correct, and the second's outputs must not be the first's (no caching keyed
    on part of the input, no shared output buffers)."""
    a = run_case(kernel, launch, case, device)
    if not a.ok:
        return a
    other = replace(case, far=True)
    first = a.outputs
    b = run_case(kernel, launch, other, device)
    for o, ta, tb in zip(kernel.ir.outputs, first, b.outputs):
        if ta.data_ptr() == tb.data_ptr() and ta.numel():
            return CaseResult(CHEAT, float("inf"), f"output '{o.name}' of the second launch is "
                              f"the first launch's buffer (a cached result)")
    if not b.ok:
        return _cached_or(kernel, launch, other, device,
                          tuple(t.detach().clone() for t in first), b)
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
    got = got.outputs if isinstance(got, Launched) else got
    got = got if isinstance(got, tuple) else (got,)
    if all(isinstance(t, torch.Tensor) and t.shape == k.shape and torch.equal(
            guards.bits(t.detach().cpu()), guards.bits(k.cpu())) for t, k in zip(got, kept)):
        return CaseResult(CHEAT, float("inf"), "the second launch, whose inputs differ from the "
                          "first's in their last element, returned the first launch's outputs "
                          "(a cached result)")
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
    records: list[dict[str, Any]] = field(default_factory=list)   # one per case run (--json)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def add(self, case: Case, r: CaseResult, phase: str, seconds: float) -> None:
        self.examples += 1
        self.cases.append(case)
        if r.ok:
            self.passed += 1
            self.worst = max(self.worst, r.worst)
        self.records.append({"phase": phase, "case": str(case), "replay": case.replay(),
                             "seed": case.seed, "status": r.status,
                             "seconds": round(seconds, 3), "launches": branches_of(r.launches)})


def branches_of(launches: list[dict[str, Any]]) -> list[str]:
    """The kernels a launch ran with their branch choices (boolean constexprs, and the number
    of slices of a split reduction or a split-K contraction), e.g. 'softmax_0_rows
    SINGLE=False INDEX64=False'."""
    out = []
    for r in launches:
        flags = " ".join(f"{k}={v}" for k, v in r.get("constexprs", {}).items()
                         if isinstance(v, bool) or k in ("SPLIT", "SPLIT_K"))
        out.append(f"{r['kernel']} {flags}".strip())
    return out


class _CaseFailed(AssertionError):
    def __init__(self, case: Case, result: CaseResult):
        super().__init__(f"{result.status}: {result.detail}\n  case: {case}")
        self.case = case
        self.result = result


def search(kernel, launch: Callable, *, examples: int = 10, seed: int = 0, device: str = "cpu",
           max_elements: int = 4096, max_work: int | None = None, block_sizes=(),
           shrink_budget: int = 25, pair: bool = True,
           max_seconds: float | None = None, explicit: bool = True,
           fixed: Sequence[tuple[str, Case]] = (),
           progress: Callable[[str], None] | None = None) -> SearchResult:
    """Run `launch` on the all-ones case and a two-launch check, one case per value
    distribution and layout (`explicit`), the `fixed` (phase, case) pairs (branch boundaries,
    the shape class being tuned), then `examples` Hypothesis cases; stop at the first failure
    and shrink it within `shrink_budget` extra launches (not a timeout: each costs its limit).
    `progress` gets one line per case run."""
    t0 = time.perf_counter()
    res = SearchResult()
    memo: dict[Case, CaseResult] = {}

    def run(case: Case, phase: str, two: bool = False, count: bool = True) -> CaseResult:
        t = time.perf_counter()
        r = run_pair(kernel, launch, case, device) if two else run_case(kernel, launch, case,
                                                                       device)
        memo[case] = r
        if count:
            res.add(case, r, phase, time.perf_counter() - t)
        if progress and count:
            progress(f"  [{res.examples}] {phase}: {case} -> {r.status} "
                     f"({time.perf_counter() - t:.1f} s)")
        return r

    planned: list[tuple[str, Case, bool]] = []
    first = first_case(kernel.ir, max_elements)
    if first is not None:
        planned.append(("first", first, pair))
    if explicit:
        planned += [("distribution/layout", c, pair and i == 0)
                    for i, c in enumerate(explicit_cases(kernel.ir, max_elements))]
    planned += [(phase, c, False) for phase, c in fixed]
    for i, (phase, case, two) in enumerate(planned):
        if i and max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
        r = run(case, phase, two)
        if not r.ok:
            res.failure = Failure(case, r.status, r.detail)
            res.seconds = time.perf_counter() - t0
            return res
    _hypothesis(kernel, run, res, memo, t0, examples=examples, seed=seed,
                max_elements=max_elements, max_work=max_work, block_sizes=block_sizes,
                shrink_budget=shrink_budget, max_seconds=max_seconds)
    res.seconds = time.perf_counter() - t0
    return res


def _hypothesis(kernel, run: Callable, res: SearchResult, memo: dict, t0: float, *,
                examples: int, seed: int, max_elements: int, max_work: int | None,
                block_sizes, shrink_budget: int, max_seconds: float | None) -> None:
    """`examples` Hypothesis cases through `run`; the first failure, shrunk, into res."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    state = {"generating": True, "shrinks": 0}

    def check(case: Case) -> None:
        if case in memo:
            r = memo[case]
        elif (state["generating"] and max_seconds is not None
              and time.perf_counter() - t0 > max_seconds):
            return                           # time is up: the cases run so far are the result
        elif not state["generating"] and state["shrinks"] >= shrink_budget:
            return                           # budget spent: keep the best failure so far
        elif state["generating"]:
            r = run(case, "hypothesis")
        else:
            state["shrinks"] += 1
            r = run(case, "shrink", count=False)
        if not r.ok:
            state["generating"] = False
            if r.status == TIMEOUT:          # shrinking would cost the limit per step
                state["shrinks"] = shrink_budget
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
        if type(e).__name__ not in ("Unsatisfiable", "FailedHealthCheck"):
            raise


def search_branches(kernel, source: str, launch_with: Callable[[dict], Callable], *,
                    examples: int, seed: int, explicit: tuple[str, ...] = (),
                    **options: Any):
    """(branch, SearchResult) for each launch-time branch of a generated (or kspec-derived)
    Triton module that small shapes never take (strategies.launch_branches), forced through
    the schedule: `launch_with(schedule)` gives the launcher; a few cases each (for the
    branches named in `explicit`, first the small cases of every value distribution and
    layout: where odd tiles and strided inputs show)."""
    for branch, schedule in launch_branches(source).items():
        yield branch, search(kernel, launch_with(schedule), examples=max(1, examples // 3),
                             seed=seed + 1, explicit=branch in explicit, **options)


def replay(kernel, case: Case, backend: str = "triton", device: str = "cpu") -> CaseResult:
    """Rerun one printed case against a backend (or a launcher given as `backend`)."""
    launch = kernel.build(backend) if isinstance(backend, str) else backend
    return run_case(kernel, launch, case, device)
