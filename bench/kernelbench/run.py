"""KernelBench levels 1-2 through kspec: each problem's translation (bench/kernelbench/level<L>/)
on each backend, checked and timed against the problem's own PyTorch Model, eager and
torch.compile, the way KernelBench runs it.

    python3 bench/kernelbench/run.py --kernelbench DIR [--levels 1,2]
        [--backends triton,cuda,hip] [--device cuda|cpu] [--small] [--only NAMES] [--json FILE]
    python3 bench/kernelbench/run.py --report FILE.json...   # RESULTS.md from runs' JSONs

DIR is a KernelBench checkout (the folder holding KernelBench/level1/...). Each problem runs in
its own worker process (kb_worker.py; the protocol is described there): a crash or a hang in
one is recorded (error / timeout) and the run goes on. One line is printed per problem; the
last line is `SUMMARY translated=T total=N` and, per backend, `correct[B]=C
fast1_eager[B]=F geomean_eager[B]=G`. README.md beside this file has the details.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent), str(HERE)]

import kb_report  # noqa: E402
import worker_driver  # noqa: E402
from gpu_lock import ENV as GPU_LOCK_ENV  # noqa: E402
from kb_load import (KernelBenchError, Problem, find_problems, select,  # noqa: E402
                     translation_path, unsupported)
from kb_worker import MARK  # noqa: E402

from kspec.errors import KspecError  # noqa: E402

WORKER = HERE / "kb_worker.py"
RESULTS_DIR = HERE / "results"
PAGE = HERE / "RESULTS.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernelbench", type=Path, help="a KernelBench checkout")
    ap.add_argument("--levels", default="1,2")
    ap.add_argument("--backends", default=None,
                    help="comma-separated (default triton,cuda,hip; triton with --device cpu)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--small", action="store_true",
                    help="shrink the problems' size constants (README.md states the rule)")
    ap.add_argument("--only", default=None, help="comma-separated problem stems")
    ap.add_argument("--json", type=Path, default=None,
                    help="the run's results (default on cuda: results/<card>-<date>-<hhmm>.json)")
    ap.add_argument("--results-md", type=Path, default=None,
                    help="write the results page here (default: RESULTS.md for a cuda run "
                         "at KernelBench's sizes)")
    ap.add_argument("--report", type=Path, nargs="+", default=None,
                    help="only regenerate the results page from these JSONs (merged; a later "
                         "file's entry replaces an earlier one's)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the problems already in --json FILE and run only the others")
    ap.add_argument("--translations", type=Path, default=HERE,
                    help="the folder of level<L>/*.kspec and UNSUPPORTED.md")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--reps", type=int, default=100, help="timed calls per callable (median)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds a worker may stay silent (one backend, or eager + compile)")
    ap.add_argument("--time", action=argparse.BooleanOptionalAction, default=None,
                    help="time eager, compile and kspec (default: on cuda only)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="time torch.compile(model) beside eager")
    ap.add_argument("--allow-tf32", action="store_true", help="TF32 on for both sides")
    ap.add_argument("--jobs", type=int, default=1,
                    help="problems run at once; on cuda each worker gets one GPU "
                         "(CUDA_VISIBLE_DEVICES), in turn; more jobs than GPUs share them, "
                         "compiling side by side while timed loops take turns")
    args = ap.parse_args(argv)
    if args.report is None and args.kernelbench is None:
        ap.error("--kernelbench DIR is required (or --report FILE.json)")
    args.backends = (args.backends or ("triton" if args.device == "cpu" else "triton,cuda,hip"))
    args.backends = args.backends.split(",")
    args.levels = [int(x) for x in args.levels.split(",")]
    args.only = args.only.split(",") if args.only else None
    args.time = args.device == "cuda" if args.time is None else args.time
    return args


def job_for(problem: Problem, backends: list[str], base: bool, args: argparse.Namespace,
            translation: Path) -> dict[str, Any]:
    return {"key": problem.key, "level": problem.level, "stem": problem.stem,
            "path": str(problem.path), "translation": str(translation), "backends": backends,
            "base": base, "device": args.device, "small": args.small, "trials": args.trials,
            "seed": args.seed, "reps": args.reps, "time": args.time, "compile": args.compile,
            "allow_tf32": args.allow_tf32}


def dead_row(dead: str, done: worker_driver.WorkerExit) -> dict[str, Any]:
    """The row of the backend a worker died on: a hang is a timeout, a crash an error."""
    what = "timeout" if dead == "timeout" else "error"
    return {"status": what, "detail": f"worker {dead} (exit {done.returncode}); stderr tail:\n"
                                      + done.stderr_tail}


def run_translated(problem: Problem, translation: Path, args: argparse.Namespace,
                   env: dict[str, str] | None) -> dict:
    """The base row and every backend's row; a fresh worker after each crash or timeout."""
    entry: dict[str, Any] = {"base": None, "backends": {}}
    pending = ["eager"] + list(args.backends)
    while pending:
        base = pending[0] == "eager"
        backends = pending[1:] if base else pending
        cmd = [sys.executable, str(WORKER),
               json.dumps(job_for(problem, backends, base, args, translation))]
        done = worker_driver.run_worker(cmd, len(pending), args.timeout, MARK, env=env)
        rows = done.rows
        if done.dead:
            rows.append({"backend": pending[len(rows)], **dead_row(done.dead, done)})
        elif rows and rows[-1].get("fatal"):
            rows[-1]["detail"] += "\nstderr tail:\n" + done.stderr_tail
        for row in rows:
            if row["backend"] == "eager":
                entry["base"] = row
            else:
                entry["backends"][row["backend"]] = row
        pending = pending[len(rows):]
    return entry


def run_problem(problem: Problem, args: argparse.Namespace, skip: dict[str, str],
                env: dict[str, str] | None = None) -> dict:
    """One problem's entry: unsupported / untranslated, or its rows with speed-ups."""
    entry: dict[str, Any] = {"key": problem.key, "level": problem.level, "stem": problem.stem}
    translation = translation_path(args.translations, problem)
    if not translation.exists():
        status = "unsupported" if problem.key in skip else "untranslated"
        detail = skip.get(problem.key, f"no {translation.name}")
        entry.update(translated=False, base={},
                     backends={b: {"status": status, "detail": detail} for b in args.backends})
        return entry
    entry.update(translated=True, **run_translated(problem, translation, args, env))
    entry["base"] = entry["base"] or {}
    for row in entry["backends"].values():
        row.update(kb_report.speedups(row, entry["base"]))
    return entry


def device_meta(device: str) -> dict[str, Any]:
    import torch
    meta: dict[str, Any] = {"torch": torch.__version__}
    try:
        import triton
        meta["triton"] = triton.__version__
    except ImportError:
        meta["triton"] = None
    if device == "cuda" and torch.cuda.is_available():
        meta["device_name"] = torch.cuda.get_device_name(0)
        meta["cuda"] = torch.version.cuda
    else:
        meta["device_name"] = "cpu"
        meta["note"] = ("on the CPU, triton runs in Triton's interpreter and cuda / hip in "
                        "kspec's C++ emulation (g++), the same for both")
    return meta


def checkout_commit(checkout: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None


def default_json(meta: dict[str, Any]) -> Path:
    """results/<card>-<date>-<hhmm>.json: each GPU run keeps its own JSON."""
    card = meta["device_name"].lower().replace("nvidia", "").strip().replace(" ", "-")
    stamp = meta["date"][:16].replace("T", "-").replace(":", "")
    return RESULTS_DIR / f"{card}-{stamp}.json"


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    """Write through a temporary file: a run ended mid-write keeps its last whole JSON."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(data, indent=1))
        os.replace(partial, path)


def on_terminate(signum: int, frame: Any) -> None:
    """SIGTERM (a time limit): end the workers too, keeping the JSON of the problems done."""
    worker_driver.stop_all()
    os._exit(128 + signum)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise KernelBenchError(f"cannot read {path}: {e}") from None


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's data from several (a GPU run cut into parts): the first run's meta, every
    backend, the problems in KernelBench's order, a later run's entry replacing an earlier's."""
    data = dict(runs[0], meta=dict(runs[0]["meta"], backends=list(runs[0]["meta"]["backends"])))
    entries: dict[str, dict] = {}
    for run_data in runs:
        entries.update({p["key"]: p for p in run_data["problems"]})
        data["meta"]["backends"] += [b for b in run_data["meta"]["backends"]
                                     if b not in data["meta"]["backends"]]
        data["unsupported"] = {**data.get("unsupported", {}), **run_data.get("unsupported", {})}
    data["problems"] = sorted(entries.values(),
                              key=lambda p: (p["level"], int(p["stem"].split("_", 1)[0])))
    return data


def report(json_paths: list[Path], page: Path) -> int:
    """Regenerate the results page from runs' JSONs; print the summary line."""
    runs = [read_json(p) for p in json_paths]
    data = merge(runs)
    if len(json_paths) > 1:   # the page names every run: timings compare within a run only
        data["meta"]["merged_from"] = [
            {"file": p.name, "date": r["meta"]["date"], "levels": r["meta"]["levels"],
             "backends": r["meta"]["backends"], "command": r["meta"]["command"]}
            for p, r in zip(json_paths, runs)]
        data["meta"]["levels"] = sorted({lv for r in runs for lv in r["meta"]["levels"]})
    data["summary"] = kb_report.summarize(data["problems"], data["meta"]["backends"])
    kb_report.write_page(data, page, json_paths[0])
    print(f"wrote {page}", flush=True)
    print(kb_report.summary_line(data["summary"]), flush=True)
    return 0


def gpu_slots(args: argparse.Namespace) -> list[dict[str, str] | None]:
    """One environment per concurrent worker: on cuda each sees one GPU, in turn over the
    visible ones; on the CPU they share it."""
    if args.device != "cuda" or args.jobs <= 1:
        return [None] * max(1, args.jobs)
    import torch
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    gpus = gpus or ["0"]
    envs = [{**os.environ, "CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} for i in range(args.jobs)]
    if args.jobs > len(gpus):   # workers share a GPU: their timed loops take turns (gpu_lock.py)
        lock_dir = tempfile.mkdtemp(prefix="kb-gpu-lock-")
        for env in envs:
            env[GPU_LOCK_ENV] = f"{lock_dir}/gpu{env['CUDA_VISIBLE_DEVICES']}.lock"
    return envs


def run_all(problems: list[Problem], args: argparse.Namespace, skip: dict[str, str],
            on_entry: Callable[[list[dict]], None]) -> list[dict]:
    """Every problem's entry, in KernelBench's order, --jobs at a time; on_entry gets the
    entries finished so far after each one (for the progress line and the JSON)."""
    slots: queue.Queue = queue.Queue()
    for env in gpu_slots(args):
        slots.put(env)

    def one(problem: Problem) -> dict:
        env = slots.get()
        try:
            return run_problem(problem, args, skip, env)
        finally:
            slots.put(env)

    entries: dict[int, dict] = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(one, p): i for i, p in enumerate(problems)}
        for future in as_completed(futures):
            entries[futures[future]] = future.result()
            print(kb_report.progress_line(entries[futures[future]]), flush=True)
            on_entry([entries[i] for i in sorted(entries)])
    if args.jobs > 1:   # alone on the GPU now, with the memory the other workers held
        for i in [i for i in sorted(entries) if ran_out_of_memory(entries[i])]:
            entries[i] = one(problems[i])
            print(kb_report.progress_line(entries[i]) + "  (again, alone)", flush=True)
            on_entry([entries[i] for i in sorted(entries)])
    return [entries[i] for i in sorted(entries)]


def ran_out_of_memory(entry: dict) -> bool:
    """Some backend of the problem failed for memory: with several workers on a GPU that is
    the others' inputs, not the kernel (KernelBench's inputs reach several GB)."""
    return any("out of memory" in (row.get("detail") or "")
               for row in [entry.get("base") or {}, *entry.get("backends", {}).values()])


def run(args: argparse.Namespace) -> int:
    problems = select(find_problems(args.kernelbench, args.levels), args.only)
    skip = unsupported(args.translations)
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": shlex.join(["python3", "bench/kernelbench/run.py", *args.argv]),
            "device": args.device, "levels": args.levels, "backends": args.backends,
            "small": args.small, "trials": args.trials, "seed": args.seed, "reps": args.reps,
            "timed": args.time, "allow_tf32": args.allow_tf32, "jobs": args.jobs,
            "kernelbench_commit": checkout_commit(args.kernelbench), **device_meta(args.device)}
    json_path = args.json or (default_json(meta) if args.device == "cuda" else None)
    page = args.results_md or (PAGE if args.device == "cuda" and not args.small else None)
    data: dict[str, Any] = {"meta": meta, "unsupported": skip, "problems": []}
    done: list[dict] = []
    redo: list[Problem] = []
    if args.resume and json_path is not None and json_path.exists():
        previous = read_json(json_path)
        keys = {p.key for p in problems}
        # an entry that ran out of memory stays until its re-run replaces it (a run cut off
        # before then keeps it), and is re-run first and alone: beside other workers' inputs
        # it would run out again, and eager's allocations under that pressure time 2.5x slow
        # an entry recorded untranslated whose translation has landed since is run anew
        written = {p.key for p in problems
                   if translation_path(args.translations, p).exists()}
        done = [p for p in previous["problems"] if p["key"] in keys
                and (p.get("translated", True) or p["key"] not in written)]
        meta["resumed_from"] = previous["meta"]["date"]
        again = {d["key"] for d in done if ran_out_of_memory(d)}
        redo = [p for p in problems if p.key in again]
        problems = [p for p in problems if p.key not in {d["key"] for d in done}]
    t0 = time.time()
    finished: list[dict] = []

    def keep(entries: list[dict]) -> None:        # current in case the run is cut off
        data["problems"] = merge([dict(data, problems=done + finished + entries)])["problems"]
        write_json(json_path, data)

    if redo:
        finished += run_all(redo, argparse.Namespace(**{**vars(args), "jobs": 1}), skip, keep)
    finished += run_all(problems, args, skip, keep)
    data["problems"] = done + finished
    meta["total_s"] = round(time.time() - t0, 1)
    data = merge([data])                           # KernelBench's order
    data["summary"] = kb_report.summarize(data["problems"], args.backends)
    write_json(json_path, data)
    if page is not None and json_path is not None:
        kb_report.write_page(data, page, json_path)
    if json_path is not None:
        print(f"results in {json_path}" + (f", page {page}" if page else ""), flush=True)
    print(kb_report.summary_line(data["summary"]), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if argv is None:                  # the script, not a test calling main()
        signal.signal(signal.SIGTERM, on_terminate)
    try:
        if args.report is not None:
            return report(args.report, args.results_md or PAGE)
        if args.resume and args.json is None:
            raise KernelBenchError("--resume continues the run in --json FILE: give it")
        return run(args)
    except KspecError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
