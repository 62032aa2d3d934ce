"""The optimisation loop: propose -> compile -> verify (every guard) -> time -> keep the best.

    report = tune(kernel)                          # the autotuner over the schedule space
    report = tune(kernel, llm=LLMProposer("gpt"))  # LLM rounds, feedback in each prompt

Statuses of a candidate: compile_error, wrong, cheat (a guard violation), slower, accepted
(unverified: compiled but nothing here could run it; never kept). Only verified candidates are
ever accepted or stored.

On a GPU the autotuner times every schedule that fits the target, then verifies them fastest
first until one passes. On CPU (Triton interpreter; for cuda / hip the g++ CPU emulation) it
verifies every schedule and picks by the deterministic cost model: the time on CPU is recorded
but decides nothing. What differs per target (triton, cuda, hip) is in targets.py; this loop
serves them all.
"""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .evaluate import Outcome
from .space import choose
from .store import Entry, KernelStore, shape_class, spec_hash
from .workload import default_env

MIN_GAIN = 0.01          # a timed candidate must be >= 1% faster than the best to replace it


@dataclass
class Candidate:
    id: int
    round: int
    proposer: str
    status: str = "pending"
    detail: str = ""
    case: str = ""
    schedule: dict[str, Any] | None = None
    cost: float | None = None
    ms: float | None = None
    wall_ms: float | None = None
    speedup: float | None = None        # over the fixed schedule
    tokens: int = 0
    seconds: float = 0.0
    source_hash: str = ""
    verification: dict[str, Any] = field(default_factory=dict, repr=False)
    source: str = field(default="", repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        return d

    def feedback(self) -> dict[str, Any]:
        timing = ""
        if self.ms is not None:
            timing = f"{self.ms:.4f} ms" + (f" ({self.speedup:.2f}x the fixed schedule)"
                                            if self.speedup else "")
        return {"round": self.round, "id": self.id, "status": self.status,
                "detail": self.detail, "case": self.case, "timing": timing,
                "schedule": self.schedule}


@dataclass
class TuneReport:
    file: str
    kernel: str
    target: str
    arch: str
    device: str
    env: dict[str, int]
    shape_class: str
    baseline_schedule: dict[str, Any] = field(default_factory=dict)
    baseline_ms: float | None = None
    baseline_cost: float | None = None
    best_id: int | None = None           # None: the fixed schedule stays the best
    best_ms: float | None = None
    candidates: list[Candidate] = field(default_factory=list)
    pruned: int = 0
    tokens: int = 0
    seconds: float = 0.0
    stored: bool = False
    transcript: str | None = None
    stopped: str = ""

    @property
    def best(self) -> Candidate | None:
        return next((c for c in self.candidates if c.id == self.best_id), None)

    @property
    def speedup(self) -> float | None:
        return self.baseline_ms / self.best_ms if self.best_ms and self.baseline_ms else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.candidates:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = [c.as_dict() for c in self.candidates]
        d["speedup"], d["counts"] = self.speedup, self.counts()
        return d

    def text(self) -> str:
        where = self.arch if self.target == "triton" else f"{self.target} {self.arch}" + (
            " (CPU: g++ emulation, tiles compiled only)" if self.device == "cpu" else "")
        head = (f"{self.kernel} ({self.file}) on {where}, shape {self.env}: "
                f"{len(self.candidates)} candidates ({', '.join(f'{v} {k}' for k, v in sorted(self.counts().items()))}), "
                f"{self.pruned} pruned, {self.tokens} tokens, {self.seconds:.1f} s")
        best = self.best
        if best is None:
            tail = "  best: the fixed schedule"
        else:
            tail = f"  best: candidate {best.id} ({best.proposer}" + \
                   (f", {best.schedule}" if best.schedule else "") + ")"
        if self.speedup:
            tail += f"  {self.best_ms:.4f} ms vs {self.baseline_ms:.4f} ms = {self.speedup:.2f}x"
        lines = [head, tail]
        for c in self.candidates:
            what = c.detail.splitlines()[0][:100] if c.detail else ""
            if c.proposer in ("llm", "memory") and c.schedule is not None:
                what = f"schedule {c.schedule}" + (f"; {what}" if what else "")
            if c.speedup:
                what = f"{c.ms:.4f} ms, {c.speedup:.2f}x" + (f"; {what}" if what else "")
            elif c.cost is not None and c.ms is None and c.status in ("accepted", "slower"):
                what = f"model cost {c.cost:.3f} (baseline {self.baseline_cost:.3f})"
            lines.append(f"  #{c.id:<3d} r{c.round} {c.proposer:8s} {c.status:13s} {what}"
                         + (f"  [{c.tokens} tok]" if c.tokens else ""))
        return "\n".join(lines)


class Progress:
    def __init__(self, enabled: bool, label: str):
        self.enabled, self.label = enabled, label
        self.tty = enabled and sys.stderr.isatty()

    def __call__(self, text: str) -> None:
        if not self.enabled:
            return
        line = f"[tune {self.label}] {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:160])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _sha(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


class Tuner:
    def __init__(self, kernel, *, target: str = "triton", env: dict[str, int] | None = None,
                 device: str | None = None, store: KernelStore | None = None,
                 evaluator=None, examples: int = 8, seed: int = 0, limit: int | None = None,
                 progress: bool = True, max_elements: int = 4096, arch: str | None = None,
                 memory: int = 2):
        import torch

        from .pool import LocalEvaluator
        from .targets import tuning

        self.kernel, self.target = kernel, target
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.adapter = tuning(kernel, target, self.device, arch)
        self.env = env or default_env(kernel, self.adapter.env_device())
        self.store, self.evaluator = store, evaluator or LocalEvaluator()
        self.examples, self.seed, self.max_elements = examples, seed, max_elements
        self.memory = memory         # worked examples from the store per prompt (0: none)
        self.limit = limit or (32 if self.device == "cuda" else 6)
        self.tgt = self.adapter.target()
        self.base = self.adapter.base_source()
        r = self.report = TuneReport(kernel.module.file, kernel.name, target, self.tgt.arch,
                                     self.device, dict(self.env), shape_class(self.env))
        self.progress = Progress(progress, kernel.name)
        self.best_source = self.base
        self.t0 = time.monotonic()
        r.baseline_schedule = self.adapter.fixed_schedule(self.env)
        self.spaces = self.adapter.spaces(self.env)
        r.baseline_cost = self._cost(r.baseline_schedule)
        if self.device == "cuda":
            base = self._run([self.base], verify=False)[0]
            r.baseline_ms = base.ms
        r.best_ms = r.baseline_ms

    # ---------------------------------------------------------------------------------
    def _cost(self, schedule: dict[str, Any]) -> float:
        """The model's cost of a whole schedule: the sum over the launch spaces."""
        total = 0.0
        for sp in self.spaces:
            s = sp.own(schedule)
            try:
                total += sp.cost(s, self.tgt) if s else 1.0
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                total += 1.0
        return total

    def _job(self, source: str, verify: bool, time_it: bool = True) -> dict[str, Any]:
        time_it = time_it and (self.device != "cpu" or self.adapter.cpu_timed)
        return {"kernel": self.kernel, "source": source,
                "options": {"env": self.env, "device": self.device, "target": self.target,
                            "arch": self.adapter.arch, "verify": verify,
                            "time_it": time_it, "examples": self.examples, "seed": self.seed,
                            "max_elements": self.max_elements}}

    def _run(self, sources: list[str], verify: bool, time_it: bool = True) -> list[Outcome]:
        return self.evaluator.map([self._job(s, verify, time_it) for s in sources])

    def _new(self, proposer: str, round_no: int, source: str, **kw: Any) -> Candidate:
        c = Candidate(len(self.report.candidates) + 1, round_no, proposer, source=source,
                      source_hash=_sha(source), **kw)
        self.report.candidates.append(c)
        return c

    def _apply(self, c: Candidate, o: Outcome) -> None:
        c.status, c.detail = o.status, o.detail
        c.case = (o.failure or {}).get("case", "") if o.failure else ""
        if o.failure and o.failure.get("replay"):
            c.case = f"{c.case}  (replay: {o.failure['replay']})"
        c.verification = o.verification or c.verification
        c.ms, c.wall_ms, c.seconds = o.ms, o.wall_ms, c.seconds + o.seconds
        if c.ms and self.report.baseline_ms:
            c.speedup = self.report.baseline_ms / c.ms

    def _accept(self, c: Candidate) -> None:
        c.status = "accepted"
        self.report.best_id, self.report.best_ms = c.id, c.ms
        self.best_source = c.source

    def _line(self, text: str) -> None:
        r = self.report
        best = f"best {r.best_ms:.4f} ms" if r.best_ms else (
            f"best #{r.best_id}" if r.best_id else "best: fixed")
        self.progress(f"{text} | {len(r.candidates)} cand, {r.counts().get('accepted', 0)} "
                      f"accepted | {best} | {r.tokens} tok | {time.monotonic() - self.t0:.0f} s")

    # --- the autotuner -----------------------------------------------------------------
    def autotune(self) -> None:
        base = dict(self.report.baseline_schedule)
        same = self.adapter.same(self.env, base, self.tgt)
        keep, pruned = choose(self.spaces, self.tgt, self.limit, same)
        self.report.pruned = len(pruned)
        # the memory's schedules first (they won on similar launches), then the cost model's;
        # a candidate's cost is its whole schedule's (the other launches at the fixed one)
        chosen = [("memory", s) for s in self.remembered(keep, same)] + \
            [("autotune", ch.schedule) for ch in keep]
        cands = [self._new(who, 0, self.adapter.candidate_source(s), schedule=s,
                           cost=self._cost({**base, **s})) for who, s in chosen]
        if self.device == "cuda":
            self._line(f"timing {len(cands)} schedules")
            for c, o in zip(cands, self._run([c.source for c in cands], verify=False)):
                self._apply(c, o)
            timed = sorted((c for c in cands if c.ms is not None), key=lambda c: (c.ms, c.id))
            for c in cands:
                if c.ms is None and c.status == "unverified":
                    c.status = "compile_error"
            for c in timed:
                if self.report.best_ms and c.ms >= self.report.best_ms * (1 - MIN_GAIN):
                    c.status, c.detail = "slower", ""
                    continue
                self._line(f"verifying #{c.id} ({c.ms:.4f} ms)")
                o = self._run([c.source], verify=True, time_it=False)[0]
                c.verification, c.seconds = o.verification, c.seconds + o.seconds
                if o.status == "accepted":
                    c.detail = ""      # verified now: "timed only" no longer holds
                    self._accept(c)
                else:
                    ms = c.ms
                    self._apply(c, o)
                    c.ms = ms
            return
        # CPU: verify every schedule, decide by the cost model (deterministic)
        if self.evaluator.workers > 1:
            self._line(f"verifying {len(cands)} schedules on {self.evaluator.workers} workers")
            for c, o in zip(cands, self._run([c.source for c in cands], verify=True)):
                self._apply(c, o)
        else:
            for i, c in enumerate(cands):
                self._line(f"verifying schedule {i + 1}/{len(cands)}")
                self._apply(c, self._run([c.source], verify=True)[0])
        ok = sorted((c for c in cands if c.status == "accepted"), key=lambda c: (c.cost, c.id))
        for c in ok:
            c.status = "slower"
        if ok and ok[0].cost < self.report.baseline_cost * (1 - MIN_GAIN):
            self._accept(ok[0])

    def remembered(self, keep, same) -> list[dict[str, Any]]:
        """Schedules that won for other specs on launches like these (the store), rewritten to
        this kernel's launches; those the search has already, or that run the fixed
        schedule's kernels, are left out."""
        if self.store is None:
            return []
        from .memory import seed_schedules

        entries = self.similar(limit=8)
        base = self.report.baseline_schedule
        kept = [{**base, **ch.schedule} for ch in keep] + [dict(base)]
        out = []
        for schedule, _ in seed_schedules(entries, self.spaces, self.tgt):
            if {**base, **schedule} not in kept and same(schedule) is None:
                out.append(schedule)
        return out

    # --- the LLM rounds ----------------------------------------------------------------
    def llm_rounds(self, proposer, rounds: int) -> None:
        feedback: list[dict[str, Any]] = []
        for rnd in range(1, rounds + 1):
            why = proposer.exhausted()
            if why:
                self.report.stopped = why
                break
            self._line(f"round {rnd}/{rounds}: asking {proposer.model} for "
                       f"{proposer.samples} candidate(s)")
            proposals = proposer.propose(self.context(feedback), rnd)
            self.report.tokens = proposer.tokens_used
            fresh = [c for c in (self._proposed(p, rnd) for p in proposals) if c is not None]
            self._line(f"round {rnd}/{rounds}: verifying {len(fresh)} candidate(s)")
            for c, o in zip(fresh, self._run([c.source for c in fresh], verify=True)):
                self._apply(c, o)
                if c.status == "accepted":
                    self._keep_if_better(c)
            feedback += [c.feedback() for c in self.report.candidates if c.round == rnd
                         and c.proposer == "llm"]
            self._line(f"round {rnd}/{rounds} done")

    def _proposed(self, p, rnd: int) -> Candidate | None:
        """The candidate of one reply; None when it is already classified (no code, a schedule
        outside the space): nothing to verify."""
        if p.schedule is not None:
            from .proposals import check_schedule

            why = check_schedule(p.schedule, self.spaces, self.tgt)
            source = "" if why else self.adapter.candidate_source(p.schedule)
            c = self._new("llm", rnd, source, tokens=p.tokens, schedule=dict(p.schedule),
                          cost=self._cost({**self.report.baseline_schedule, **p.schedule}))
            if why:
                c.status, c.detail = "compile_error", f"schedule rejected: {why}"
                return None
            return c
        c = self._new("llm", rnd, p.source or "", tokens=p.tokens)
        if p.source is None:
            c.status, c.detail = "compile_error", p.error or "no code block"
            return None
        return c

    def _keep_if_better(self, c: Candidate) -> None:
        """A verified LLM candidate replaces the best when it is faster (a GPU); on CPU, where
        nothing is timed, a schedule when the cost model prefers it, a source always (the
        latest verified)."""
        r = self.report
        if self.device == "cuda" and r.best_ms:
            if c.ms is None or c.ms >= r.best_ms * (1 - MIN_GAIN):
                c.status = "slower"
                return
        elif self.device != "cuda" and c.schedule is not None:
            best = r.best
            current = r.baseline_cost if best is None else best.cost
            if current is not None and c.cost is not None and \
                    c.cost >= current * (1 - MIN_GAIN):
                c.status, c.detail = "slower", (f"model cost {c.cost:.3f}, the current "
                                                f"best's {current:.3f}")
                return
        self._accept(c)

    def context(self, feedback: list[dict[str, Any]]) -> dict[str, Any]:
        from ..printer import format_kernel
        from .prompt import example_context, schedule_context, target_context

        k = self.kernel
        ins = [p.name for p in k.ir.params]
        outs = [o.name for o in k.ir.outputs]
        r = self.report
        return {**target_context(self.adapter, self.tgt), "kernel_name": k.name,
                "launch_args": ", ".join(ins + list(k.ir.symbols)),
                "symbols": ", ".join(k.ir.symbols),
                "returns": outs[0] if len(outs) == 1 else "the tuple (" + ", ".join(outs) + ")",
                "spec_file": k.module.file, "spec_text": k.module.source.strip(),
                "semantics": format_kernel(k.ir, annotate=True).strip(),
                "env_text": ", ".join(f"{s}={v}" for s, v in self.env.items()),
                "best_source": self.best_source.strip(), "best_ms": r.best_ms,
                "baseline_ms": r.baseline_ms, "feedback": feedback[-12:],
                "schedule": schedule_context(self),
                "examples": [example_context(e) for e in self.similar()]}

    def similar(self, limit: int | None = None) -> list[Entry]:
        """The memory: the closest accepted kernels of other specs for this target and arch
        (`limit`, default: the prompt's number of worked examples)."""
        limit = self.memory if limit is None else limit
        if self.store is None or limit < 1:
            return []
        from .memory import launch_patterns, similar
        return similar(self.store, spec_hash(self.kernel), self.target,
                       self.adapter.store_arch(self.tgt),
                       launch_patterns(self.kernel, self.spaces), self.report.shape_class, limit)

    # --- the end -----------------------------------------------------------------------
    def finish(self) -> TuneReport:
        from ..printer import format_kernel
        from .memory import launch_patterns

        r = self.report
        r.seconds = time.monotonic() - self.t0
        best = r.best
        if best is not None and self.store is not None:
            # the store's arch: where the kernel was verified and timed (for cuda / hip on
            # CPU: "cpu", the emulation's C++; on a GPU: the device, as stored_launcher finds it)
            self.store.put(Entry(
                spec_hash(self.kernel), self.kernel.name, self.target,
                self.adapter.store_arch(self.tgt), r.shape_class,
                best.source, best.schedule or {}, best.verification,
                {"ms": best.ms, "baseline_ms": r.baseline_ms, "device": r.device,
                 "env": r.env, "cost": best.cost, "baseline_cost": r.baseline_cost},
                best.ms, r.baseline_ms, best.proposer, spec=format_kernel(self.kernel.ir),
                launches=launch_patterns(self.kernel, self.spaces)))
            r.stored = True
        self.progress.done()
        return r


def tune(kernel, *, target: str = "triton", llm=None, rounds: int = 3, autotune: bool | None = None,
         report_path: str | Path | None = None, **kw: Any) -> TuneReport:
    """Tune one kspec.Kernel for `target` (triton, cuda, hip): the autotuner (default) and/or
    LLM rounds (when `llm`, an LLMProposer, is given: whole sources of the target's language
    or schedules). Writes the store entry of the best verified kernel."""
    t = Tuner(kernel, target=target, **kw)
    if autotune if autotune is not None else llm is None:
        t.autotune()
    if llm is not None:
        if llm.transcript is None:
            base = Path(report_path) if report_path else \
                (t.store.path.parent if t.store else Path(".")) / "transcripts" / \
                f"{kernel.name}-{int(time.time())}.json"
            llm.transcript = base.with_suffix(".transcript.jsonl")
        t.report.transcript = str(llm.transcript)
        t.llm_rounds(llm, rounds)
        t.report.tokens = llm.tokens_used
    return t.finish()
