"""kcompile: the command line.

    kcompile [--target triton|cuda|hip] FILE... [-o DIR] [--arch A] [--emit source|ir|plan|grad|asm]
    kcompile check FILE... [--json F] | kcompile check FILE --kernel K --target T --source SRC
    kcompile tune FILE [--kernel K] --target T [--arch A] [--llm MODEL] [--rounds N] [--json REPORT]
    kcompile store list|export DIR|clear
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .errors import KspecError

_COMPILE_HELP = """\
Compile .kspec files into GPU kernels.

  kcompile --target cuda specs/softmax.kspec            print the CUDA C++ source
  kcompile --target triton specs/*.kspec -o out/        write one file per kernel into out/
  kcompile --emit ir specs/layernorm.kspec              print the checked, typed program
  kcompile --emit plan specs/softmax.kspec              print the fused kernels and schedules
  kcompile --emit grad specs/softmax.kspec              print the derived backward (VJP) program
  kcompile --target triton --arch sm_90 --emit asm specs/matmul.kspec -o out/
                                                        compile without a GPU, write PTX/AMDGCN
  kcompile --target cuda --arch sm_90a --emit asm --shape M=4096,N=4096 specs/softmax.kspec -o out/
                                                        exactly the launches made at those sizes
  kcompile check specs/softmax.kspec                    run the numeric checks (see: kcompile check -h)
  kcompile tune specs/softmax.kspec                     autotune; --llm MODEL: LLM rounds (tune -h)
  kcompile store list|export DIR|clear                  the tuned kernels kept on disk (store -h)

Errors are reported as FILE:LINE:COL with the line and a caret; the exit status is 1.
"""

_EXT = {"triton": "py", "cuda": "cu", "hip": "hip"}


def _compile_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kcompile", description=_COMPILE_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help=".kspec source files")
    p.add_argument("--target", "-t", choices=("triton", "cuda", "hip"), default="triton",
                   help="backend to generate code for (default: triton)")
    p.add_argument("--emit", choices=("source", "ir", "plan", "grad", "asm"), default="source",
                   help="what to produce (default: source)")
    p.add_argument("--arch", help="target architecture: sm_80, sm_90, sm_90a, gfx90a, gfx942 ...")
    p.add_argument("--shape", metavar="SYM=V,...",
                   help="with --emit asm, for every target: the launches made at these "
                        "sizes (index width, tiles, single or looped rows, fused attention), "
                        "written to KERNEL.ARCH.launches.txt and checked against the target's "
                        "threads, grid and shared memory (triton compiles exactly those "
                        "launches; a cuda/hip module holds every variant its launcher picks)")
    p.add_argument("--kernel", "-k", help="only this kernel of each file")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write files into DIR instead of printing to stdout")
    return p


def _check_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kcompile check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check .kspec kernels: run the float64 reference on property-based inputs "
                    "(Hypothesis: edge-case sizes, several value distributions) and compare every "
                    "backend this machine can run with it, under guards against kernels that only "
                    "look right; compile for the other targets. Prints a portability table per "
                    "kernel; exit status 0 only when every backend that ran agreed.",
        epilog="With --target and --source, verify an outside kernel source for one kernel "
               "instead\n(the optimisation loop's gate): same entry point and argument order "
               "as the backend emits.\nThe candidate runs in its own process; status accepted "
               "| compile_error | wrong | cheat |\ntimeout | unverified; exit 0 only when "
               "accepted. A progress line per example goes to stderr.\n\n"
               "  kcompile check specs/softmax.kspec --json report.json\n"
               "  kcompile check specs/softmax.kspec --kernel softmax --target triton "
               "--source my_softmax.py")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kernel", "-k", help="only this kernel of each file")
    p.add_argument("--target", "-t", choices=("triton", "cuda", "hip", "cpu"),
                   help="with --source: the candidate's target (cpu: kspec's C++ CPU emulation "
                        "dialect)")
    p.add_argument("--source", "-s", metavar="SRC", help="an outside kernel source to verify")
    p.add_argument("--arch", help="with --source for cuda/hip: the architecture to compile for")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    p.add_argument("--examples", "-n", type=int, default=10,
                   help="Hypothesis examples per backend after the fixed cases (default 10)")
    p.add_argument("--max-elements", type=int, default=4096,
                   help="largest tensor of the randomly drawn (Hypothesis) examples, in "
                        "elements (default 4096; the Triton interpreter is slow). A second "
                        "limit beside --budget-mb, which sizes the branch-boundary cases")
    p.add_argument("--budget-mb", type=float, default=None,
                   help="with --source: the memory the cases past each launch-time threshold "
                        "(looped rows, >1024 rows, >4096 columns ...) may take together, "
                        "inputs and outputs, in MiB (default 1.5 on CPU, about a minute under "
                        "the interpreter; 4096 on a GPU)")
    p.add_argument("--launch-timeout", type=float, default=None,
                   help="with --source: seconds one launch may take before the candidate is "
                        "killed (status timeout; default 120)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="start no new example after this many seconds per backend")
    p.add_argument("--no-compile", action="store_true",
                   help="skip the compile-only rows (sm_90, gfx90a, gfx942)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in ("tune", "store"):
            from .agent.cli import main as agent_main
            return agent_main(argv)
        if argv and argv[0] == "check":
            return _check(_check_parser().parse_args(argv[1:]))
        return _compile(_compile_parser().parse_args(argv))
    except KspecError as e:
        print(str(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _load(path: str):
    from . import load

    return load(path)


def _selected(mod, name: str | None):
    if name is None:
        return list(mod)
    return [mod[name]] if name in mod.kernels else _missing(mod, name)


def _missing(mod, name: str):
    raise KspecError(f"{mod.file} has no kernel '{name}'; it has {', '.join(mod.kernels)}")


def _plan(kernel, target: str, arch: str | None) -> str:
    """The target's own plan: the backend's, with its launch-time schedule."""
    from .backends import get_backend

    return get_backend(target).plan(kernel.ir, arch=arch)


def _compile(args: argparse.Namespace) -> int:
    from .printer import format_kernel

    from .backends.target import parse_shape

    shape = parse_shape(args.shape) if args.shape else None
    if shape is not None and args.emit != "asm":
        raise KspecError("kcompile: --shape goes with --emit asm")
    out_dir = Path(args.output) if args.output else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        mod = _load(path)
        for kernel in _selected(mod, args.kernel):
            if args.emit == "ir":
                files = {f"{kernel.name}.ir.kspec": format_kernel(kernel.ir, annotate=True)}
            elif args.emit == "grad":
                from .autodiff import vjp_source

                files = {f"{kernel.name}.vjp.kspec": vjp_source(kernel.ir)}
            elif args.emit == "plan":
                files = {f"{kernel.name}.plan.txt": _plan(kernel, args.target, args.arch)}
            elif args.emit == "asm":
                from .backends import get_backend

                backend = get_backend(args.target)
                files = backend.compile_asm(kernel.ir, arch=args.arch, shape=shape) \
                    if shape is not None else backend.compile_asm(kernel.ir, arch=args.arch)
            else:
                options = {"arch": args.arch} if args.arch else {}
                files = {f"{kernel.name}.{_EXT[args.target]}": kernel.source(args.target,
                                                                             **options)}
            for name, text in files.items():
                if out_dir:
                    (out_dir / name).write_text(text)
                    print(f"wrote {out_dir / name}", file=sys.stderr)
                else:
                    if len(files) > 1:   # several files on stdout: say where each begins
                        sys.stdout.write(f"==> {name} <==\n")
                    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    import json
    import time

    if (args.source is None) != (args.target is None):
        raise KspecError("kcompile check: --source and --target go together")
    _check_limits(args)
    if args.source is not None:
        return _check_candidate(args)
    from .verify.portability import portability

    ok = True
    reports = []
    for path in args.files:
        mod = _load(path)
        for kernel in _selected(mod, args.kernel):
            t0 = time.perf_counter()
            report = portability(kernel, examples=args.examples, seed=args.seed,
                                 max_elements=args.max_elements, max_seconds=args.max_seconds,
                                 compile_only=not args.no_compile)
            print(report.text())
            print(f"  ({time.perf_counter() - t0:.1f} s)\n")
            reports.append(report.as_dict())
            ok = ok and report.ok
    if args.json:
        Path(args.json).write_text(json.dumps({"ok": ok, "kernels": reports}, indent=2) + "\n")
    return 0 if ok else 1


# The smallest tensor cap that still draws two-dimensional tiles with ragged edges (16 x 16);
# below it a wrong kernel passes because nothing reaches its code.
MIN_ELEMENTS = 256


def _check_limits(args: argparse.Namespace) -> None:
    if args.examples < 1:
        raise KspecError(f"kcompile check: --examples must be at least 1, got {args.examples} "
                         f"(zero examples would check nothing)")
    if args.max_elements < MIN_ELEMENTS:
        raise KspecError(f"kcompile check: --max-elements must be at least {MIN_ELEMENTS}, got "
                         f"{args.max_elements} (smaller tensors do not reach a kernel's tile "
                         f"edges)")
    for flag, value in (("--max-seconds", args.max_seconds), ("--budget-mb", args.budget_mb),
                        ("--launch-timeout", args.launch_timeout)):
        if value is not None and not value > 0:
            raise KspecError(f"kcompile check: {flag} must be positive, got {value}")


def _check_candidate(args: argparse.Namespace) -> int:
    import json

    from .verify.candidates import verify_candidate

    if len(args.files) != 1:
        raise KspecError("kcompile check --source takes one .kspec FILE")
    mod = _load(args.files[0])
    kernels = _selected(mod, args.kernel)
    if len(kernels) != 1:
        raise KspecError(f"{mod.file} has {len(kernels)} kernels; name one with --kernel")
    try:
        text = Path(args.source).read_text()
    except OSError as e:
        raise KspecError(f"cannot read {args.source}: {e.strerror}") from None
    options = {k: v for k, v in (("budget_mb", args.budget_mb),
                                 ("launch_timeout", args.launch_timeout)) if v is not None}
    verdict = verify_candidate(kernels[0], args.target, text, examples=args.examples,
                               seed=args.seed, max_elements=args.max_elements,
                               max_seconds=args.max_seconds, arch=args.arch,
                               progress=lambda line: print(line, file=sys.stderr, flush=True),
                               **options)
    print(f"{kernels[0].name} <- {args.source}")
    print(verdict.text())
    if args.json:
        Path(args.json).write_text(json.dumps(verdict.as_dict(), indent=2) + "\n")
    return 0 if verdict.accepted else 1


if __name__ == "__main__":
    sys.exit(main())
