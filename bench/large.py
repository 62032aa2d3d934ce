"""Every spec at sizes where 32-bit offsets overflow or a reduction passes 10^7 elements, on
every backend, against the float64 reference computed on the GPU.

    python3 bench/large.py                                  # the GPU: all specs, all backends
    python3 bench/large.py --specs softmax,matmul --backends triton --budget-gb 64
    python3 bench/large.py --dry-run                        # the cases and their memory; no GPU
    python3 bench/large.py --device cpu --scale small       # tiny sizes, Triton interpreter

The cases are in large_cases.py (sizes per spec, with why). Inputs are generated on the
device; the reference is kernel.reference on the device's tensors, in slices along an
independent symbol where a whole one would not fit --budget-gb. A worker process
(large_worker.py) runs the cases one by one: a CUDA error that kills its context, or a case
past --timeout, costs that case ("crash" / "timeout"), and a fresh worker takes the next.
Results: results.json and results.md under --out (default $OUT, else
bench/results/large-<date>/), rewritten after every case; a short table is printed last.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

STATUSES = ("ok", "wrong", "crash", "error", "timeout", "skipped")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="results folder (default $OUT, else bench/results/large-DATE)")
    p.add_argument("--backends", default="triton,cuda,hip", help="comma list")
    p.add_argument("--specs", help="comma list of spec names (default: every specs/*.kspec)")
    p.add_argument("--budget-gb", type=float, default=24.0,
                   help="GPU memory per case: inputs, outputs and one slice of the float64 "
                        "reference (default 24)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--scale", default="large", choices=("large", "small"),
                   help="small: each case's tiny sizes (the CPU self-test)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    p.add_argument("--reps", type=int, default=5, help="timed calls per case (after a warm-up)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true",
                   help="list the cases, sizes and memory estimates; allocate nothing")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.specs = [s.strip() for s in args.specs.split(",") if s.strip()] if args.specs else None
    if args.device == "cpu" and args.scale != "small" and not args.dry_run:
        p.error("--device cpu runs only --scale small")
    return args


def spec_names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "specs").glob("*.kspec"))


def plan_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per case of the chosen specs: sizes, what overflows, memory, slices, or why
    it is skipped. Traces the reference on meta tensors only: nothing is allocated."""
    import kspec
    from large_cases import CASES, plan_case, reduction_spans, tensor_elements

    budget = int(args.budget_gb * 1e9)
    small = args.scale == "small"
    chosen = args.specs or spec_names()
    unknown = set(chosen) - {c.spec for c in CASES}
    if unknown:
        raise SystemExit(f"no cases for: {', '.join(sorted(unknown))}")
    rows = []
    for c in (c for c in CASES if c.spec in chosen):
        row: dict[str, Any] = {"spec": c.spec, "case": c.case, "key": c.key, "why": c.why,
                               "sizes": c.small if small else c.sizes, "chunk": c.chunk}
        if c.skip:
            rows.append({**row, "skip": c.skip})
            continue
        kernel = kspec.load(ROOT / "specs" / f"{c.spec}.kspec")[c.spec]
        plan = plan_case(kernel, c, row["sizes"], budget, chunks=2 if small else None)
        elems = tensor_elements(kernel, c.sizes)
        row.update(largest=max(elems, key=elems.get), largest_elements=max(elems.values()),
                   longest_reduction=max(reduction_spans(kernel, c.sizes), default=0),
                   bytes=plan.io_bytes, est_gb=round(plan.total_bytes / 1e9, 2),
                   chunks=plan.chunks, skip=plan.over_budget)
        rows.append(row)
    return rows


def sizes_text(sizes: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sizes.items())


def print_plan(rows: list[dict[str, Any]]) -> None:
    print(f"{'spec':18s} {'case':9s} {'GB':>6s} {'slices':>6s}  sizes / skipped because")
    for r in rows:
        if "est_gb" not in r:
            print(f"{r['spec']:18s} {r['case']:9s} {'-':>6s} {'-':>6s}  skipped: {r['skip']}")
            continue
        slices = "-" if r["skip"] else str(r["chunks"])
        big = (f"{r['largest']}: {r['largest_elements']:,} elements, longest reduction "
               f"{r['longest_reduction']:,}")
        print(f"{r['spec']:18s} {r['case']:9s} {r['est_gb']:6.1f} {slices:>6s}  "
              f"{sizes_text(r['sizes'])}  ({big})"
              + (f"\n{'':43s}skipped: {r['skip']}" if r["skip"] else ""))


# --- the worker --------------------------------------------------------------------------------
class Worker:
    """A large_worker.py process (or `script`, speaking its protocol); restarted after a
    crash or a timeout."""

    def __init__(self, device: str, script: Path = BENCH / "large_worker.py"):
        self.device, self.script = device, script
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.stderr: Any = None

    def start(self) -> None:
        from large_worker import MARK

        self.stop()                      # a dead one's leftovers
        env = dict(os.environ)
        if self.device == "cpu":        # before triton is imported in the worker
            env["TRITON_INTERPRET"] = "1"
        # appended to by the worker whatever this side's file position (a shared offset)
        self.stderr = tempfile.TemporaryFile(mode="a+")
        self.proc = subprocess.Popen([sys.executable, str(self.script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, cwd=ROOT, env=env,
                                     start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.lines, MARK),
                         daemon=True).start()

    @staticmethod
    def _read(proc: subprocess.Popen, lines: queue.Queue, mark: str) -> None:
        for line in proc.stdout:
            if line.startswith(mark):
                lines.put(json.loads(line[len(mark):]))
        lines.put(None)                  # end of output: the worker is gone

    def stderr_tail(self, n: int = 2000) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-n:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)  # its own session: the worker and its compilers
            self.proc.wait()
        self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            row = self.lines.get(timeout=timeout)
        except queue.Empty:
            tail = self.stderr_tail()
            self.stop()
            return {"status": "timeout", "detail": f"no answer in {timeout:.0f} s; killed",
                    "stderr": tail}
        except BrokenPipeError:
            row = None
        if row is None:                  # died without answering: its context is gone
            self.proc.wait()
            code = self.proc.returncode
            tail = self.stderr_tail()
            self.stop()
            return {"status": "crash", "detail": f"worker exited with {code}",
                    "stderr": tail}
        if row.pop("fatal", False):
            row["stderr"] = self.stderr_tail()
            self.stop()
        return row


# --- results ---------------------------------------------------------------------------------
def out_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"])
    return BENCH / "results" / f"large-{datetime.date.today().isoformat()}"


def fmt(v: Any, spec: str = ".3g") -> str:
    return "" if v is None else (format(v, spec) if isinstance(v, float) else str(v))


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# bench/large.py, {report['date']} ({report['device']}, scale "
             f"{report['scale']}, budget {report['budget_gb']} GB)", "",
             "| spec | case | sizes | GB | backend | status | tol ratio | max abs err | "
             "allclose 1e-4 | kernel ms | detail |", "|" + "---|" * 11]
    for r in report["rows"]:
        lines.append("| " + " | ".join([
            r["spec"], r["case"], sizes_text(r["sizes"]), fmt(r.get("est_gb")),
            r.get("backend", ""), r["status"], fmt(r.get("tol_ratio")),
            fmt(r.get("max_abs_err")), fmt(r.get("kb_allclose")),
            fmt(r.get("kernel_ms"), ".4g"),
            (r.get("detail") or "").replace("|", "/")[:160]]) + " |")
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    (where / "results.json").write_text(json.dumps(report, indent=1, default=str))
    (where / "results.md").write_text(markdown(report))


def short_table(rows: list[dict[str, Any]]) -> str:
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    out = [f"{'spec':18s} {'case':9s} {'backend':7s} {'status':8s} {'ratio':>8s} "
           f"{'ms':>10s}"]
    for r in rows:
        out.append(f"{r['spec']:18s} {r['case']:9s} {r.get('backend', '-'):7s} "
                   f"{r['status']:8s} {fmt(r.get('tol_ratio')):>8s} "
                   f"{fmt(r.get('kernel_ms'), '.4g'):>10s}")
    out.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(out)


def run(args: argparse.Namespace, plan: list[dict[str, Any]]) -> dict[str, Any]:
    where = out_dir(args)
    report: dict[str, Any] = {"date": datetime.date.today().isoformat(),
                              "device": args.device, "scale": args.scale,
                              "budget_gb": args.budget_gb, "backends": args.backends,
                              "timeout_s": args.timeout, "seed": args.seed, "rows": []}
    worker = Worker(args.device)
    t0 = time.time()
    try:
        for n, case in enumerate(plan):
            for backend in args.backends:
                row = {k: case.get(k) for k in ("spec", "case", "sizes", "bytes", "est_gb",
                                                "chunks", "why")}
                row["backend"] = backend
                if case["skip"]:
                    row.update(status="skipped", detail=case["skip"])
                else:
                    job = {"key": case["key"], "scale": args.scale, "device": args.device,
                           "backend": backend, "chunks": case["chunks"],
                           "seed": args.seed + n, "reps": args.reps}
                    row.update(worker.run(job, args.timeout))
                report["rows"].append(row)
                print(f"[{time.time() - t0:7.1f}s] {row['spec']:18s} {row['case']:9s} "
                      f"{backend:7s} {row['status']:8s} ratio {fmt(row.get('tol_ratio')):>8s}"
                      f"  {fmt(row.get('kernel_ms'), '.4g'):>9s} ms  "
                      f"{(row.get('detail') or '')[:90]}", flush=True)
                write(report, where)
    finally:
        worker.stop()
    report["wall_s"] = round(time.time() - t0, 1)
    write(report, where)
    print(f"wrote {where / 'results.json'} and results.md ({report['wall_s']} s)")
    print(short_table(report["rows"]))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_cases(args)
    if args.dry_run:
        print_plan(plan)
        return 0
    report = run(args, plan)
    return 0 if all(r["status"] in ("ok", "skipped") for r in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
