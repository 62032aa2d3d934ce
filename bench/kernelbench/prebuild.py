"""Compile every translation for the C++ backends ahead of a GPU run, in parallel.

    python3 bench/kernelbench/prebuild.py --arch sm_90a [--backends cuda,hip] [--levels 1,2] [--jobs 14]

The runner builds each problem in its own worker, one after the other, and nvcc takes seconds
per module: on a run of ~150 problems that is most of the run. The compilers need no GPU, and
their outputs are cached on disk by a hash of source, flags and compiler version
(kspec/backends/cxx/cache.py), so compiling every module here first, on all cores, makes the
workers' builds cache hits. Compiles exactly what `Kernel.build(backend)` compiles on `arch`.
Prints one line per failure and a count; a failure here is reported again by the run.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent)]


def compile_one(path: str, backend: str, arch: str) -> tuple[str, str, float, str]:
    import kspec
    from kspec.backends import get_backend

    t0 = time.perf_counter()
    try:
        for kernel in kspec.load(path):
            get_backend(backend).compile(kernel.ir, arch)
        return path, backend, time.perf_counter() - t0, ""
    except Exception as e:  # noqa: BLE001 - reported, and found again by the run itself
        return path, backend, time.perf_counter() - t0, f"{type(e).__name__}: {str(e)[:200]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument("--backends", default="cuda,hip")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--levels", default="1,2", help="the levels whose translations to compile")
    ap.add_argument("--translations", type=Path, default=HERE)
    args = ap.parse_args()
    paths = sorted(str(p) for level in args.levels.split(",")
                   for p in args.translations.glob(f"level{level}/*.kspec"))
    work = [(p, b) for p in paths for b in args.backends.split(",")]
    t0 = time.perf_counter()
    failed = 0
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(compile_one, p, b, args.arch) for p, b in work]
        for f in as_completed(futures):
            path, backend, _, error = f.result()
            if error:
                failed += 1
                print(f"prebuild {backend} {Path(path).stem}: {error}", flush=True)
    print(f"prebuild: {len(work) - failed}/{len(work)} modules compiled for {args.arch} in "
          f"{time.perf_counter() - t0:.0f} s ({args.jobs} jobs)", flush=True)


if __name__ == "__main__":
    main()
