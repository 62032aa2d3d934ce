"""`kcompile tune` and `kcompile store` (dispatched from kspec/cli.py)."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from ..errors import KspecError
from ..backends.target import check_shape, parse_shape

_TUNE_HELP = """\
Tune kernels: every candidate goes compile -> check (all guards) -> benchmark against the best;
only verified kernels are kept (in the kernel store, used by build(..., use_store=True)).

  kcompile tune specs/softmax.kspec                       autotune the schedule (GPU if present)
  kcompile tune specs/matmul.kspec --shape M=4096,N=4096,K=4096 --json report.json
  kcompile tune specs/matmul.kspec --target cuda          tiles, rows / vector choices (C++)
  OPENAI_BASE_URL=... OPENAI_API_KEY=... kcompile tune specs/softmax.kspec --llm MODEL --rounds 5
  ... kcompile tune specs/softmax.kspec --target cuda --llm MODEL   C++ sources or schedules

LLM rounds: a reply is a whole source of the target's language (Triton: a Python module; cuda /
hip: the C++, on CPU the emulation's) or a ```json schedule (always compilable). The prompt
carries the spec, the target's constraints, the best source, the schedule space, the closest
accepted kernels of other specs from the store (--memory) and the feedback of earlier rounds.
The autotuner tries the schedules that won on similar launches (the store) first.

Statuses: compile_error, wrong, cheat (a guard violation), slower, accepted (unverified: compiled,
nothing here runs it; never kept).
Without a GPU the Triton interpreter (--target triton) or the g++ CPU emulation (cuda, hip)
verifies each candidate and the autotuner picks by its deterministic cost model (times on CPU
mean nothing); C++ tensor-core tiles are compiled for --arch only (nvcc / hipcc: compile errors
and register spills reject them) and stay unverified.
"""


def _tune_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kcompile tune", description=_TUNE_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kernel", "-k", help="only this kernel of each file")
    p.add_argument("--target", "-t", default="triton", choices=("triton", "cuda", "hip"))
    p.add_argument("--arch", help="cuda / hip: the architecture to tune for (default: the "
                                  "GPU's; without one sm_90 for cuda, gfx90a for hip)")
    p.add_argument("--shape", help="the benchmark shape, e.g. M=16384,N=4096 (default: a "
                                   "power of two per symbol that fits the device)")
    p.add_argument("--device", choices=("cuda", "cpu"),
                   help="where candidates run (default: cuda when available)")
    p.add_argument("--llm", metavar="MODEL", help="LLM rounds with MODEL at OPENAI_BASE_URL")
    p.add_argument("--autotune", action="store_true",
                   help="with --llm: autotune first, then the LLM rounds start from its best")
    p.add_argument("--rounds", type=int, default=3, help="LLM rounds (default 3)")
    p.add_argument("--samples", type=int, default=1, help="parallel LLM samples per round")
    p.add_argument("--max-tokens", type=int, help="token budget over all rounds")
    p.add_argument("--max-seconds", type=float, help="time budget for the LLM rounds")
    p.add_argument("--memory", type=int, default=2,
                   help="worked examples from the store in each prompt (default 2; 0: none)")
    p.add_argument("--limit", type=int, help="schedules to try per kernel (after pruning)")
    p.add_argument("--examples", type=int, default=8, help="checked examples per candidate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1,
                   help="parallel evaluators on this host (a GPU each, or CPU interpreters)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="evaluate on a Ray cluster (pip install 'kspec[cluster]')")
    p.add_argument("--store", help="kernel store (default $KSPEC_STORE or "
                                   "~/.cache/kspec/store.sqlite)")
    p.add_argument("--no-store", action="store_true", help="do not record the winners")
    p.add_argument("--json", metavar="REPORT", help="write the report (every candidate) here")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    return p


def _store_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kcompile store",
                                description="List, export, import or clear the kernel store. "
                                            "export writes each kernel's source and JSON "
                                            "record, and index.json; import reads such a "
                                            "directory into the store.")
    p.add_argument("action", choices=("list", "export", "import", "clear"))
    p.add_argument("dir", nargs="?", help="export / import: the directory")
    p.add_argument("--store", help="the store (default $KSPEC_STORE or "
                                   "~/.cache/kspec/store.sqlite)")
    p.add_argument("--kernel", "-k")
    p.add_argument("--target", "-t")
    p.add_argument("--arch")
    p.add_argument("--json", action="store_true", help="list as JSON")
    return p


def _shape(text: str | None, kernel) -> dict[str, int] | None:
    if not text:
        return None
    env = parse_shape(text)
    check_shape(kernel.ir, env)
    return env


def main(argv: Sequence[str]) -> int:
    if argv[0] == "store":
        return _store(_store_parser().parse_args(list(argv[1:])))
    return _tune(_tune_parser().parse_args(list(argv[1:])))


def _store(args: argparse.Namespace) -> int:
    from .store import KernelStore

    store = KernelStore(args.store)
    where = {"kernel": args.kernel, "target": args.target, "arch": args.arch}
    if args.action == "list":
        if args.json:
            print(json.dumps([e.as_dict(with_source=False) for e in store.entries(**where)],
                             indent=2, default=str))
        else:
            print(store.table(**where))
            print(f"({store.path})", file=sys.stderr)
    elif args.action == "export":
        if not args.dir:
            raise KspecError("kcompile store export DIR: name the directory")
        files = store.export(args.dir, **where)
        print(f"exported {len(files)} kernel(s) to {args.dir}", file=sys.stderr)
    elif args.action == "import":
        if not args.dir:
            raise KspecError("kcompile store import DIR: name the directory")
        entries = store.import_dir(args.dir)
        print(f"imported {len(entries)} kernel(s) into {store.path}", file=sys.stderr)
    else:
        n = store.clear(**where)
        print(f"removed {n} kernel(s) from {store.path}", file=sys.stderr)
    return 0


def _check_llm(args: argparse.Namespace) -> None:
    """--llm's requirements, before any file is read or evaluator started."""
    if not args.llm:
        return
    if importlib.util.find_spec("openai") is None:
        raise KspecError("--llm needs the openai package: pip install 'kspec[llm]'")
    if not os.environ.get("OPENAI_BASE_URL") and not os.environ.get("OPENAI_API_KEY"):
        raise KspecError("--llm needs an endpoint: set OPENAI_BASE_URL (and OPENAI_API_KEY)")


def _tune(args: argparse.Namespace) -> int:
    if args.examples < 1:
        raise KspecError(f"kcompile tune: --examples must be at least 1, got {args.examples} "
                         f"(a candidate checked on nothing would be stored)")
    _check_llm(args)
    from .. import load
    from .llm import LLMProposer
    from .loop import tune
    from .pool import evaluator
    from .store import KernelStore

    store = None if args.no_store else KernelStore(args.store)
    import torch
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ev = evaluator("ray" if args.ray is not None else "local", device, args.workers,
                   args.ray or None)
    reports = []
    try:
        for path in args.files:
            mod = load(path)
            kernels = [mod[args.kernel]] if args.kernel else list(mod)
            for k in kernels:
                llm = None
                if args.llm:
                    llm = LLMProposer(args.llm, samples=args.samples,
                                      max_tokens_total=args.max_tokens,
                                      max_seconds=args.max_seconds)
                report_path = None
                if args.json:
                    report_path = Path(args.json)
                    if len(args.files) > 1 or len(kernels) > 1:
                        report_path = report_path.with_name(f"{report_path.stem}-{k.name}"
                                                            f"{report_path.suffix or '.json'}")
                r = tune(k, target=args.target, arch=args.arch, llm=llm, rounds=args.rounds,
                         autotune=True if args.autotune else None, report_path=report_path,
                         env=_shape(args.shape, k), device=device, store=store, evaluator=ev,
                         examples=args.examples, seed=args.seed, limit=args.limit,
                         progress=not args.quiet, memory=args.memory)
                print(r.text())
                reports.append(r.as_dict())
                if report_path:
                    report_path.parent.mkdir(parents=True, exist_ok=True)
                    report_path.write_text(json.dumps(r.as_dict(), indent=2, default=str))
    finally:
        ev.close()
    return 0
