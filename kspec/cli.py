"""kcompile: the command line.

    kcompile [--target triton|cuda|hip] FILE... [-o DIR] [--arch A] [--emit source|ir|plan|asm]
    kcompile check FILE...
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
  kcompile --target triton --arch sm_90 --emit asm specs/matmul.kspec -o out/
                                                        compile without a GPU, write PTX/AMDGCN
  kcompile check specs/softmax.kspec                    run the numeric checks (see: kcompile check -h)

Errors are reported as FILE:LINE:COL with the line and a caret; the exit status is 1.
"""

_EXT = {"triton": "py", "cuda": "cu", "hip": "hip"}


def _compile_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kcompile", description=_COMPILE_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help=".kspec source files")
    p.add_argument("--target", "-t", choices=("triton", "cuda", "hip"), default="triton",
                   help="backend to generate code for (default: triton)")
    p.add_argument("--emit", choices=("source", "ir", "plan", "asm"), default="source",
                   help="what to produce (default: source)")
    p.add_argument("--arch", help="target architecture: sm_80, sm_90, sm_90a, gfx90a, gfx942 ...")
    p.add_argument("--kernel", "-k", help="only this kernel of each file")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write files into DIR instead of printing to stdout")
    return p


def _check_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kcompile check",
        description="Check .kspec kernels: parse, check, run the float64 reference on random "
                    "inputs, and compare every backend this machine can run with it.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--kernel", "-k", help="only this kernel of each file")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
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


def _compile(args: argparse.Namespace) -> int:
    from .printer import format_kernel

    out_dir = Path(args.output) if args.output else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        mod = _load(path)
        for kernel in _selected(mod, args.kernel):
            if args.emit == "ir":
                files = {f"{kernel.name}.ir.kspec": format_kernel(kernel.ir, annotate=True)}
            elif args.emit == "plan":
                from .lowering import plan_kernel

                files = {f"{kernel.name}.plan.txt": str(plan_kernel(kernel.ir))}
            elif args.emit == "asm":
                from .backends import get_backend

                files = get_backend(args.target).compile_asm(kernel.ir, arch=args.arch)
            else:
                options = {"arch": args.arch} if args.arch else {}
                files = {f"{kernel.name}.{_EXT[args.target]}": kernel.source(args.target,
                                                                             **options)}
            for name, text in files.items():
                if out_dir:
                    (out_dir / name).write_text(text)
                    print(f"wrote {out_dir / name}", file=sys.stderr)
                else:
                    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .verify.check import check_kernel

    ok = True
    for path in args.files:
        mod = _load(path)
        for kernel in _selected(mod, args.kernel):
            report = check_kernel(kernel, seed=args.seed)
            print(report.text())
            ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
