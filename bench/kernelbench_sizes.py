"""KernelBench problems an issue reported broken, at KernelBench's published sizes (fp32),
through kspec's backends, checked by KernelBench's criterion.

    python3 bench/kernelbench_sizes.py [--backends triton,cuda,hip] [--problems a,b]
                                       [--out DIR] [--reps 5] [--timeout 240]
    python3 bench/kernelbench_sizes.py --device cpu --scale tiny      # the same path, CPU

Each problem runs in its own worker process (bench/kernelbench_worker.py), which makes the
inputs on the device (torch.rand, fixed seed), computes the eager fp32 reference (TF32 off),
and runs the backends one after another, printing one JSON line each. A backend that crashes
the process (an illegal address) or hangs past --timeout is recorded as "crash" / "timeout"
with the stderr tail, and a fresh worker runs the backends after it. The problems, their
kspec sources and references: bench/kernelbench_problems.py. Results: results.json and
results.md in --out (default $OUT, else bench/results/kernelbench-sizes-<date>/).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from kernelbench_problems import BY_NAME, PROBLEMS  # noqa: E402
from kernelbench_worker import MARK  # noqa: E402
import worker_driver  # noqa: E402

WORKER = BENCH / "kernelbench_worker.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default=None,
                    help="comma-separated (default triton,cuda,hip; triton with --device cpu)")
    ap.add_argument("--problems", default=",".join(p.name for p in PROBLEMS))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--reps", type=int, default=5, help="timed calls per kernel (median)")
    ap.add_argument("--timeout", type=float, default=240.0,
                    help="seconds a backend may take (build, check, timing) before its kill")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--scale", default=None, choices=["full", "tiny"],
                    help="sizes (default full on cuda, tiny on cpu)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.backends = (args.backends or ("triton" if args.device == "cpu" else "triton,cuda,hip"))
    args.backends = args.backends.split(",")
    args.problems = args.problems.split(",")
    unknown = [p for p in args.problems if p not in BY_NAME]
    if unknown:
        ap.error(f"unknown problems {unknown}; known: {', '.join(BY_NAME)}")
    args.scale = args.scale or ("tiny" if args.device == "cpu" else "full")
    if args.out is None:
        env = os.environ.get("OUT")
        date = datetime.date.today().isoformat()
        args.out = Path(env) if env else BENCH / "results" / f"kernelbench-sizes-{date}"
    return args


def run_worker(problem: str, backends: list[str], args: argparse.Namespace) -> list[dict]:
    """One worker process for `problem` over `backends`; the rows it printed, plus a
    crash / timeout row for the backend it died on (the rest are left to the caller)."""
    cmd = [sys.executable, str(WORKER), problem, ",".join(backends), args.device,
           args.scale, str(args.reps), str(args.seed)]
    done = worker_driver.run_worker(cmd, len(backends), args.timeout, MARK, progress)
    rows = done.rows
    if done.dead:
        row = {"problem": problem, "backend": backends[len(rows)], "status": done.dead,
               "detail": f"worker {done.dead} (exit {done.returncode}); stderr tail:\n"
                         + done.stderr_tail}
        progress(row)
        rows.append(row)
    elif rows and rows[-1].get("fatal"):
        rows[-1]["detail"] += "\nstderr tail:\n" + done.stderr_tail
    return rows


def progress(row: dict[str, Any]) -> None:
    print(f"[{row['problem']:<10} {row['backend']:<6}] {row['status']:<7} "
          f"err {_num(row.get('max_abs_err'))}  kspec {_num(row.get('kspec_ms'))} ms  "
          f"eager {_num(row.get('eager_ms'))} ms  ({row.get('elapsed_s', '?')} s)"
          + (f"  {row['detail'].splitlines()[0][:160]}" if row.get("detail") else ""),
          flush=True)


def run_problem(problem: str, args: argparse.Namespace) -> list[dict]:
    """Every requested backend of one problem; a fresh worker after each crash/timeout."""
    rows: list[dict] = []
    while len(rows) < len(args.backends):
        rows.extend(run_worker(problem, args.backends[len(rows):], args))
    return rows


def _num(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def table(rows: list[dict]) -> list[list[str]]:
    head = ["problem", "backend", "status", "max abs err", "kspec ms", "eager ms", "x eager"]
    body = [[r["problem"], r["backend"], r["status"], _num(r.get("max_abs_err")),
             _num(r.get("kspec_ms")), _num(r.get("eager_ms")), _num(r.get("speedup"))]
            for r in rows]
    return [head] + body


def markdown(rows: list[dict], meta: dict[str, Any]) -> str:
    t = table(rows)
    out = [f"# KernelBench sizes ({meta['scale']}, {meta['device_name']}, {meta['date']})", "",
           "correct = torch.allclose(out, eager, atol=1e-4, rtol=1e-4) and no NaN (fp32, TF32 "
           "off); times are medians of CUDA-event-timed calls (host clock on cpu); x eager = eager / kspec.", "",
           "| " + " | ".join(t[0]) + " |", "|" + "---|" * len(t[0])]
    out += ["| " + " | ".join(r) + " |" for r in t[1:]]
    notes = [r for r in rows if r.get("detail")]
    if notes:
        out += ["", "## Details", ""]
        out += [f"- {r['problem']} / {r['backend']}: `{r['detail'].splitlines()[0][:300]}`"
                for r in notes]
    return "\n".join(out) + "\n"


def print_table(rows: list[dict]) -> None:
    t = table(rows)
    widths = [max(len(r[i]) for r in t) for i in range(len(t[0]))]
    for r in t:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)), flush=True)


def device_name(device: str) -> str:
    import torch
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def write_results(rows: list[dict], meta: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / "results.md").write_text(markdown(rows, meta))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "device": args.device, "device_name": device_name(args.device),
            "scale": args.scale, "reps": args.reps, "seed": args.seed,
            "backends": args.backends,
            "sources": {p: BY_NAME[p].source.strip() for p in args.problems},
            "sizes": {p: BY_NAME[p].sizes[args.scale] for p in args.problems}}
    rows: list[dict] = []
    t0 = time.time()
    for name in args.problems:
        rows.extend(run_problem(name, args))
        write_results(rows, meta, args.out)       # kept current in case the run is cut off
    meta["total_s"] = round(time.time() - t0, 1)
    write_results(rows, meta, args.out)
    print_table(rows)
    print(f"total {meta['total_s']} s; results in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
