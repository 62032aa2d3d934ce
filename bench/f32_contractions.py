"""f32 contractions on the tensor cores (issue 14): kspec's 3xTF32 kernels next to cuBLAS.

    python3 bench/f32_contractions.py                       # the GPU: every case, every runner
    python3 bench/f32_contractions.py --cases gemm_4096 --runners cuda,eager_ieee
    python3 bench/f32_contractions.py --device cpu --small  # tiny sizes: the C++ emulation

Cases (bench/specs/f32_gemm.kspec): an f32 GEMM at 4096^3, the level-2 linear layer
gelu(A @ B + bias) at 1024 x 8192 x 8192, a batched GEMM, and the transposed-operand GEMMs
(A @ B^T, A^T @ B). Runners: kspec cuda, kspec hip (HIP source on NVIDIA) with precision
tf32x3 asked for by name (CXX_SCHEDULE: the C++ backends' default is the IEEE loop nest), kspec
triton (its default, tf32x3), eager PyTorch with TF32 off
(cuBLAS IEEE SGEMM) and on, torch.compile with TF32 off. Inputs are generated on the device;
each runner's output is compared on the device with the float64 reference (max |got - ref| /
max |ref|). Times are medians over CUDA events (bench/timing.py), rotating over argument sets
that exceed the L2. The kspec kernels are compiled in parallel first (nvcc runs take the
longest). Results: JSON at --json (default $OUT/f32_contractions.json, else
bench/results/f32_contractions-<date>.json); a markdown table printed last.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import torch  # noqa: E402

import kspec  # noqa: E402
from timing import Budget, bench, device_info, rotation_count  # noqa: E402
from worker_common import short  # noqa: E402

SPECS = BENCH / "specs" / "f32_gemm.kspec"
RUNNERS = ("cuda", "hip", "triton", "eager_ieee", "eager_tf32", "compile_ieee")
SPEEDUP_BASE = "eager_ieee"
CXX_SCHEDULE = {"precision": "tf32x3"}    # kspec cuda and hip: the tensor cores' 3xTF32


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    sizes: dict[str, int]
    small: dict[str, int]
    torch_fn: Callable[..., torch.Tensor]     # the same computation in PyTorch


def _gelu_linear(a, b, bias):
    return torch.nn.functional.gelu(a @ b + bias)


CASES = (
    Case("gemm_4096", "matmul_f32", {"M": 4096, "N": 4096, "K": 4096},
         {"M": 64, "N": 48, "K": 40}, torch.matmul),
    Case("linear_bias_gelu", "matmul_bias_gelu_f32", {"M": 1024, "N": 8192, "K": 8192},
         {"M": 33, "N": 64, "K": 72}, _gelu_linear),
    Case("bmm_16x1024", "bmm_f32", {"B": 16, "M": 1024, "N": 1024, "K": 1024},
         {"B": 2, "M": 40, "N": 24, "K": 32}, torch.bmm),
    Case("gemm_nt_4096", "matmul_nt_f32", {"M": 4096, "N": 4096, "K": 4096},
         {"M": 36, "N": 40, "K": 44}, lambda a, b: a @ b.T),
    Case("gemm_tn_4096", "matmul_tn_f32", {"M": 4096, "N": 4096, "K": 4096},
         {"M": 32, "N": 28, "K": 48}, lambda a, b: a.T @ b),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", help=f"comma list (default all: {', '.join(c.name for c in CASES)})")
    p.add_argument("--runners", help=f"comma list (default all: {', '.join(RUNNERS)}; on the "
                                     f"CPU: cuda, hip as the C++ emulation, eager_ieee)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--small", action="store_true", help="each case's tiny sizes")
    p.add_argument("--json", help="results file (default $OUT/f32_contractions.json)")
    p.add_argument("--rep-ms", type=float, default=150.0, help="timed milliseconds per run")
    args = p.parse_args(argv)
    known = {c.name for c in CASES}
    args.cases = args.cases.split(",") if args.cases else [c.name for c in CASES]
    default = RUNNERS if args.device == "cuda" else ("cuda", "hip", "eager_ieee")
    args.runners = args.runners.split(",") if args.runners else list(default)
    for value, allowed, what in ((args.cases, known, "case"), (args.runners, RUNNERS, "runner")):
        bad = sorted(set(value) - set(allowed))
        if bad:
            p.error(f"unknown {what}(s) {', '.join(bad)}; choose from {', '.join(sorted(allowed))}")
    if args.device == "cpu" and not args.small:
        p.error("--device cpu runs the C++ emulation: add --small")
    return args


def _inputs(kernel, sizes: dict[str, int], device: torch.device, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(seed)
    return [torch.randn(tuple(d.evaluate(sizes) for d in p.dims), device=device, generator=gen)
            for p in kernel.ir.tensor_params]


def _kspec_runner(kernel, runner: str, device: torch.device) -> Callable:
    if device.type == "cpu":     # the C++ backends' CPU stand-in: the emulation
        from kspec.backends.cxx import emulate

        return emulate.build(kernel.ir, schedule=CXX_SCHEDULE)
    if runner == "triton":
        return kernel.build(runner)
    return kernel.build(runner, schedule=CXX_SCHEDULE)


def _torch_runner(case: Case, runner: str) -> Callable:
    """TF32 as the runner says, set around every call (the flag is global)."""
    precision = "high" if runner == "eager_tf32" else "highest"
    fn = torch.compile(case.torch_fn) if runner == "compile_ieee" else case.torch_fn

    def run(*args):
        torch.set_float32_matmul_precision(precision)
        try:
            return fn(*args)
        finally:
            torch.set_float32_matmul_precision("highest")
    return run


def precompile(kernels: dict[str, Any], runners: list[str], device: torch.device) -> None:
    """nvcc for every kspec C++ kernel at once (the builds then find them in kspec's cache)."""
    if device.type != "cuda":
        return
    from kspec.backends import get_backend
    from kspec.backends.cuda import device_arch

    arch = device_arch()
    jobs = [(b, k) for b in ("cuda", "hip") if b in runners for k in kernels.values()]

    def compile_one(job):
        backend, kernel = job
        try:
            get_backend(backend).compile(kernel.ir, arch, schedule=CXX_SCHEDULE)
        except Exception:   # reported by the build itself, in its case
            pass
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(compile_one, jobs))


def run_case(case: Case, kernel, runners: list[str], device: torch.device, small: bool,
             budget: Budget) -> dict[str, Any]:
    sizes = case.small if small else case.sizes
    first = _inputs(kernel, sizes, device, seed=0)
    n_sets = rotation_count(sum(t.nbytes for t in first), device)
    sets = [first] + [_inputs(kernel, sizes, device, seed=s) for s in range(1, n_sets)]
    want = case.torch_fn(*[t.double() for t in first])
    scale = want.abs().max().item()
    flops = 2.0 * sizes.get("B", 1) * sizes["M"] * sizes["N"] * sizes["K"]
    out: dict[str, Any] = {"case": case.name, "spec": case.spec, "sizes": sizes,
                           "flops": flops, "runs": {}}
    for runner in runners:
        try:
            fn = (_kspec_runner(kernel, runner, device) if runner in ("cuda", "hip", "triton")
                  else _torch_runner(case, runner))
            got = fn(*first)
            err = (got.double() - want).abs().max().item() / max(scale, 1e-30)
            t = bench(fn, sets, device, budget)
            out["runs"][runner] = {"status": "ok", "ms": t.ms, "p25": t.p25, "p75": t.p75,
                                   "reps": t.reps, "tflops": flops / t.ms / 1e9,
                                   "rel_err": err}
        except Exception as e:   # one runner's failure is its row, not the run's end
            out["runs"][runner] = {"status": "error", "error": short(e)}
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def markdown(results: dict[str, Any]) -> str:
    runners = [r for r in RUNNERS if any(r in c["runs"] for c in results["cases"])]
    lines = [f"f32 contractions on {results['device']['name']} (median ms, TFLOP/s, x "
             f"{SPEEDUP_BASE}, max |err| / max |ref| against float64)", "",
             "| case | " + " | ".join(runners) + " |",
             "|---|" + "---|" * len(runners)]
    for c in results["cases"]:
        base = c["runs"].get(SPEEDUP_BASE, {}).get("ms")
        cells = []
        for r in runners:
            run = c["runs"].get(r)
            if run is None:
                cells.append("")
            elif run["status"] != "ok":
                cells.append(f"error: {run['error'][:60]}")
            else:
                speed = f", {base / run['ms']:.2f}x" if base else ""
                cells.append(f"{run['ms']:.3f} ms, {run['tflops']:.1f} TF{speed}, "
                             f"err {run['rel_err']:.1e}")
        lines.append(f"| {c['case']} {c['sizes']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _json_path(args: argparse.Namespace) -> Path:
    if args.json:
        return Path(args.json)
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "f32_contractions.json"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return BENCH / "results" / f"f32_contractions-{stamp}.json"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_float32_matmul_precision("highest")
    module = kspec.load(SPECS)
    cases = [c for c in CASES if c.name in args.cases]
    kernels = {c.name: module[c.spec] for c in cases}
    precompile(kernels, args.runners, device)
    budget = Budget(rep_ms=args.rep_ms)
    results: dict[str, Any] = {"device": device_info(device), "runners": args.runners,
                               "cases": []}
    path = _json_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    for case in cases:
        results["cases"].append(run_case(case, kernels[case.name], args.runners, device,
                                         args.small, budget))
        path.write_text(json.dumps(results, indent=1))
    print(f"results: {path}")
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
