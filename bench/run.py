"""Benchmark kspec kernels against PyTorch eager and torch.compile on one GPU, in one process.

    python bench/run.py                              # all workloads, backends triton,cuda,hip
    python bench/run.py --quick --backends triton    # smaller sizes, fewer workloads
    python bench/run.py --only softmax,matmul_f16
    python bench/run.py --dry-run                    # CPU: tiny sizes, Triton interpreter

For each workload: resolve the kspec kernel (specs/ first, bench/specs/ as fallback); check
PyTorch eager and every backend against the float64 reference at a small odd shape, then against
eager at the benchmark size on two different input sets (outputs poisoned with NaN first, inputs
checked for mutation); time eager, its extra variants, torch.compile(eager) and each backend that
passed. A backend that is unavailable or fails to build is reported, and one that fails a check
is reported WRONG and not timed. See bench/report.py for the metrics.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

# ‖out − ref‖ / ‖ref‖ allowed per output dtype, against the float64 reference; twice this
# against eager at the benchmark size (both sides carry rounding error).
TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1e-2,
             torch.float64: 1e-10}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="triton,cuda,hip",
                   help="comma list of kspec backends; 'torch' runs eager through the kspec "
                        "check and timing path (a self-test of this harness)")
    p.add_argument("--only", help="comma list of workload names (shell patterns allowed)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer workloads")
    p.add_argument("--dry-run", action="store_true",
                   help="tiny sizes on CPU (Triton interpreter): checks the script end to end")
    p.add_argument("--out", help="results folder (default bench/results; for --dry-run "
                                 "/tmp/kspec-bench-dry); also copied to $OUT if set")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode (max-autotune costs minutes per workload)")
    p.add_argument("--seed", type=int, default=None, help="input seed (default: from the clock)")
    p.add_argument("--rep-ms", type=float, default=None, help="timed milliseconds per impl")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p.parse_args(argv)


def as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def to_device(args: list[Any], device: torch.device) -> list[Any]:
    return [a.to(device) if isinstance(a, torch.Tensor) else a for a in args]


def short(e: BaseException) -> str:
    lines = str(e).strip().splitlines() or [""]
    return f"{type(e).__name__}: {lines[0][:200]}"


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """‖got − want‖ / ‖want‖ in float64 on want's device; inf on shape mismatch or non-finite."""
    if tuple(got.shape) != tuple(want.shape):
        return float("inf")
    g = got.detach().to(want.device, torch.float64)
    w = want.detach().to(torch.float64)
    if not bool(torch.isfinite(g).all()):
        return float("inf")
    den = float(torch.linalg.vector_norm(w))
    num = float(torch.linalg.vector_norm(g - w))
    return num / den if den > 0 else num


def poison_allocator(device: torch.device, like: tuple) -> None:
    """Fill, then free, blocks of the outputs' sizes with 0xFF bytes (NaN in every float dtype),
    so that a kernel which leaves part of an output unwritten shows NaN, not stale data."""
    if device.type != "cuda":
        return
    blocks = [torch.full((t.nbytes,), 255, dtype=torch.uint8, device=device) for t in like]
    del blocks


def compare(got: tuple, want: tuple, like: tuple, factor: float) -> tuple[float, str]:
    """Worst relative error over outputs, and a failure message ('' when within tolerance)."""
    if len(got) != len(want):
        return float("inf"), f"{len(got)} outputs, expected {len(want)}"
    worst = 0.0
    for i, (g, w, ref_like) in enumerate(zip(got, want, like)):
        if not isinstance(g, torch.Tensor):
            return float("inf"), f"output {i} is {type(g).__name__}"
        if g.dtype != ref_like.dtype:
            return float("inf"), f"output {i} dtype {g.dtype}, expected {ref_like.dtype}"
        err = rel_err(g, w)
        worst = max(worst, err)
        tol = TOLERANCE.get(g.dtype, 0.0) * factor
        if not err <= tol:
            return worst, f"output {i}: rel err {err:.3g} > tol {tol:.1e}"
    return worst, ""


class Case:
    """One workload's state: arguments, reference, eager outputs."""

    def __init__(self, w: Any, mode: str, device: torch.device, seed: int):
        self.w, self.device = w, device
        self.sizes = w.sizes[mode]
        gen_cpu = torch.Generator().manual_seed(seed)
        self.check_sizes = w.sizes["dry" if mode == "dry" else "check"]
        self.check_args = w.inputs(self.check_sizes, torch.device("cpu"), gen_cpu)
        self.eager_small = as_tuple(w.eager(*to_device(self.check_args, device)))
        gen = torch.Generator(device=device).manual_seed(seed + 1)
        first = w.inputs(self.sizes, device, gen)
        self.eager_out = [as_tuple(w.eager(*first))]
        self.in_bytes = sum(a.nbytes for a in first if isinstance(a, torch.Tensor))
        self.out_bytes = sum(t.nbytes for t in self.eager_out[0])
        from timing import rotation_count

        n = rotation_count(self.in_bytes + self.out_bytes, device)
        self.sets = [first] + [w.inputs(self.sizes, device, gen) for _ in range(n - 1)]
        self.eager_out.append(as_tuple(w.eager(*self.sets[1])))
        self.reference: tuple | None = None

    def check(self, fn: Callable[..., Any], row: dict[str, Any], small: bool = True) -> bool:
        """Small shape vs the reference (if any), then benchmark size vs eager on two sets."""
        if small and self.reference is not None:
            args = to_device(self.check_args, self.device)
            saved = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            poison_allocator(self.device, self.eager_small)
            got = as_tuple(fn(*args))
            row["err_check"], msg = compare(got, self.reference, self.eager_small, 1.0)
            if not msg and any(isinstance(a, torch.Tensor) and not torch.equal(a, s)
                               for a, s in zip(args, saved)):
                msg = "an input was modified"
            if msg:
                where = self.w.describe(self.check_sizes)
                row.update(status="WRONG", detail=f"check shape {where}: {msg}")
                return False
        worst = 0.0
        for i in range(2):
            poison_allocator(self.device, self.eager_out[i])
            got = as_tuple(fn(*self.sets[i]))
            err, msg = compare(got, self.eager_out[i], self.eager_out[i], 2.0)
            worst = max(worst, err)
            if msg:
                row.update(status="WRONG", err_bench=worst,
                           detail=f"vs eager at benchmark size, input set {i}: {msg}")
                return False
        row["err_bench"] = worst
        return True


def resolve(w: Any, case: Case, modules: dict[Path, Any]) -> tuple[Any, Path | None, str]:
    """The first candidate kernel whose signature takes the check arguments and whose outputs
    match eager's in number, dtype and shape."""
    import kspec

    stem = ROOT / "specs" / f"{w.spec}.kspec"
    files = [stem] + sorted(p for p in (ROOT / "specs").glob("*.kspec") if p != stem)
    files.append(BENCH / "specs" / f"{w.spec}.kspec")
    notes: list[str] = []
    for path in files:
        if not path.exists():
            continue
        if path not in modules:
            try:
                modules[path] = kspec.load(path)
            except Exception as e:  # a spec being written may not parse yet
                modules[path] = e
        mod = modules[path]
        if isinstance(mod, Exception):
            if path in (stem, files[-1]):
                notes.append(f"{path.relative_to(ROOT)} does not load: {short(mod)}")
            continue
        for name in (w.kernel, *w.aliases):
            if name not in mod.kernels:
                continue
            k = mod[name]
            try:
                bound = k.bind(*case.check_args)
            except Exception as e:
                notes.append(f"{path.relative_to(ROOT)}:{name} signature differs ({short(e)})")
                continue
            outs = k.ir.outputs
            if len(outs) != len(case.eager_small) or any(
                    o.dtype.torch != t.dtype or bound.output_shape(o) != tuple(t.shape)
                    for o, t in zip(outs, case.eager_small)):
                notes.append(f"{path.relative_to(ROOT)}:{name} outputs differ from eager's")
                continue
            return k, path, "; ".join(notes)
    return None, None, "; ".join(notes) or "no spec found"


Make = Callable[[], Callable[..., Any]]


def plan_impls(w: Any, args: argparse.Namespace, case: Case, kernel: Any,
               eager_row: dict[str, Any], why: str) -> list[tuple[dict[str, Any], Make | None]]:
    """(row, make) per implementation, in table order; make None: not runnable (row says why)."""
    impls: list[tuple[dict[str, Any], Make | None]] = [(eager_row, lambda: w.eager)]
    for name, fn in w.extras.items():
        impls.append(({"impl": name, "kind": "baseline"}, lambda fn=fn: fn))
    if not args.no_compile:
        torch._dynamo.reset()
        impls.append(({"impl": "compile", "kind": "baseline", "mode": args.compile_mode},
                      lambda: torch.compile(w.eager, dynamic=False, mode=args.compile_mode)))
    for b in args.backends:
        row = {"impl": f"kspec-{b}", "kind": "kspec", "backend": b}
        if b == "torch":
            impls.append((row, lambda: w.eager))
        elif kernel is not None and case.reference is not None:
            impls.append((row, lambda b=b: kernel.build(b)))
        else:
            impls.append(({**row, "status": "no-spec", "detail": why}, None))
    return impls


def run_impl(row: dict[str, Any], make: Make, case: Case, device: torch.device,
             budget: Any) -> None:
    """Build, check (eager is the yardstick; torch.compile is checked at the benchmark size
    only, as another shape would compile a second graph), then time; all into row."""
    import kspec
    from timing import bench, sync

    t0 = time.time()
    try:
        fn = make()
    except kspec.BackendUnavailable as e:
        row.update(status="unavailable", detail=e.message)
        return
    except Exception as e:
        row.update(status="build-error", detail=short(e), trace=traceback.format_exc(-3))
        return
    row.setdefault("status", "ok")
    try:
        checked = row["impl"] == "eager" or case.check(fn, row, small=row["impl"] != "compile")
        sync(device)
        if row["impl"] == "compile":
            row["compile_s"] = round(time.time() - t0, 2)
        if checked:
            row.update(bench(fn, case.sets, device, budget).as_dict())
    except kspec.BackendUnavailable as e:
        row.update(status="unavailable", detail=e.message)
    except kspec.ToolchainError as e:  # backends that compile on the first call
        row.update(status="build-error", detail=short(e), trace=traceback.format_exc(-3))
    except torch.cuda.OutOfMemoryError as e:
        row.update(status="oom", detail=short(e))
        torch.cuda.empty_cache()
    except Exception as e:
        row.update(status="run-error", detail=short(e), trace=traceback.format_exc(-3))


def run_workload(w: Any, args: argparse.Namespace, mode: str, device: torch.device,
                 ceilings: dict[str, Any], budget: Any, seed: int,
                 modules: dict[Path, Any]) -> dict[str, Any]:
    from report import add_metrics

    t_start = time.time()
    res: dict[str, Any] = {"name": w.name, "bound": w.bound, "dtype": w.dtype,
                           "sizes": w.sizes[mode], "size": w.describe(w.sizes[mode]),
                           "rows": [], "bytes": 0, "flops": w.flops(w.sizes[mode])}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    case = Case(w, mode, device, seed)
    res.update(bytes=case.in_bytes + case.out_bytes, sets=len(case.sets))
    kernel, path, note = resolve(w, case, modules)
    res.update(spec_file=str(path.relative_to(ROOT)) if path else None,
               kernel=kernel.name if kernel else w.kernel, spec_note=note)
    eager_row: dict[str, Any] = {"impl": "eager", "kind": "baseline", "status": "ok"}
    if kernel is not None:
        try:
            case.reference = as_tuple(kernel.reference(*case.check_args))
            eager_row["err_check"], msg = compare(case.eager_small, case.reference,
                                                  case.eager_small, 1.0)
            if msg:  # eager disagrees with the spec: the workload itself is suspect
                eager_row["detail"] = f"eager vs the spec's reference: {msg}"
        except Exception as e:
            res["error"] = f"reference failed: {short(e)}"
    else:
        res["error"] = f"no kspec kernel: {note}"

    for row, make in plan_impls(w, args, case, kernel, eager_row, res.get("error", "")):
        t0 = time.time()
        if make is not None:
            run_impl(row, make, case, device, budget)
        row["wall_s"] = round(time.time() - t0, 2)
        res["rows"].append(row)
        timed = f"{row['ms']:.4f} ms" if row.get("ms") else ""
        print(f"  {w.name:18s} {row['impl']:14s} {row['status']:12s} {timed:>12s}  "
              f"{(row.get('detail') or '')[:100]}", flush=True)

    add_metrics(res, ceilings, w.targets if mode == "bench" else {})
    if device.type == "cuda":
        res["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
    del case
    if device.type == "cuda":
        torch.cuda.empty_cache()
    res["wall_s"] = round(time.time() - t_start, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    dry = args.dry_run or not torch.cuda.is_available()
    if dry and not args.dry_run:
        print("no CUDA device: running --dry-run on the CPU", flush=True)
    if dry:  # must precede the import of any module holding @triton.jit kernels
        os.environ.setdefault("TRITON_INTERPRET", "1")
    device = torch.device("cpu") if dry else torch.device("cuda")
    # f32 contractions in kspec are IEEE unless asked for TF32: compare with IEEE eager. The
    # legacy flags only (matmul's is False by default): mixing them with the fp32_precision API
    # makes torch raise.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    mode = "dry" if dry else ("quick" if args.quick else "bench")

    from report import result_paths, short_table, today, write
    from timing import Budget, device_info, measure_ceilings
    from workloads import WORKLOADS

    chosen = [w for w in WORKLOADS if w.quick or not args.quick]
    if args.only:
        pats = [p.strip() for p in args.only.split(",") if p.strip()]
        chosen = [w for w in WORKLOADS if any(fnmatch.fnmatch(w.name, p) for p in pats)]
    if args.list or not chosen:
        for w in WORKLOADS:
            where = f"{w.spec}.kspec:{w.kernel}"
            print(f"{w.name:18s} {where:40s} {w.describe(w.sizes['bench'])}"
                  f"{'  (quick)' if w.quick else ''}")
        return 0 if args.list else 2
    budget = (Budget(warmup_ms=0, rep_ms=args.rep_ms or 5, min_reps=1) if dry
              else Budget(rep_ms=args.rep_ms or 150))
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    t0 = time.time()
    info = device_info(device)
    print(f"kspec bench on {info['name']}: mode {mode}, seed {seed}, backends "
          f"{','.join(args.backends)}, {len(chosen)} workloads", flush=True)
    ceilings = measure_ceilings(device, dry, budget)
    print(f"  ceilings: copy {ceilings['copy']['gbps']:.0f} GB/s, matmul f16 "
          f"{ceilings['matmul_f16']['tflops']:.1f} / bf16 "
          f"{ceilings['matmul_bf16']['tflops']:.1f} TFLOP/s", flush=True)
    modules: dict[Path, Any] = {}
    report: dict[str, Any] = {
        "date": today(), "mode": mode, "seed": seed, "backends": args.backends, "device": info,
        "ceilings": ceilings, "workloads": [],
        "tolerance": {str(k): v for k, v in TOLERANCE.items()},
        "compile_mode": None if args.no_compile else args.compile_mode, "wall_s": 0.0}
    out = args.out or ("/tmp/kspec-bench-dry" if dry else str(BENCH / "results"))
    paths = result_paths(info["name"], report["date"], Path(out))
    for w in chosen:
        try:
            result = run_workload(w, args, mode, device, ceilings, budget, seed, modules)
        except Exception as e:  # input generation, eager itself, OOM outside a row
            print(f"  {w.name}: ERROR {short(e)}", flush=True)
            result = {"name": w.name, "size": w.describe(w.sizes[mode]), "rows": [],
                      "error": short(e), "trace": traceback.format_exc(-3)}
            if device.type == "cuda":
                torch.cuda.empty_cache()
        report["workloads"].append(result)
        report["wall_s"] = round(time.time() - t0, 1)
        write(report, paths, os.environ.get("OUT"))  # after each one: a killed run keeps them
    print(f"wrote {', '.join(str(p) for p in paths)} ({report['wall_s']} s)")
    print(short_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
