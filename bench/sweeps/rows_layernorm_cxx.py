"""Issue 4: the C++ rows pattern on layernorm bf16 (and on f32 rmsnorm and softmax) at
16384 x 4096, per block variant.

For backend "cuda" (and "hip" on NVIDIA for layernorm), each variant is forced through the
launch-time schedule {"rows": ...}: "default" is the launcher's own choice, b8/b16/b32 a block
per row holding 8/16/32 elements per thread (512/256/128 threads at N = 4096), "loop" the
uncached variant. "before" is the source as it was before the change of issue 4 (a division on
the way to the first load) launched as it was then (b8c, 512 threads), rebuilt from today's
source by undoing that edit. Every variant is checked against kernel.reference on small odd
shapes and against PyTorch at full size, then timed (triton.testing.do_bench, median) next to a
device copy of the same number of bytes (x read, y written, plus w, b, mu, rstd) and PyTorch's
own op. One line per variant: the kernel launched, threads, registers, ms, GB/s, the fraction
of copy bandwidth, and PyTorch's time. JSON to $OUT/rows_layernorm_cxx.json (or /tmp).

    python3 bench/sweeps/rows_layernorm_cxx.py
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import torch
import triton.testing

ROOT = Path(__file__).resolve().parents[2]
os.chdir(ROOT)
sys.path.insert(0, str(ROOT))
import kspec  # noqa: E402
from kspec.backends import get_backend  # noqa: E402
from kspec.backends.cuda import device_arch  # noqa: E402
from kspec.backends.cuda import launcher as cuda_launcher  # noqa: E402
from kspec.backends.cuda import toolchain as nv  # noqa: E402
from kspec.backends.cxx import CUDA  # noqa: E402
from kspec.backends.cxx.launch import PlanLauncher  # noqa: E402
from kspec.backends.cxx.render import plan_for  # noqa: E402
from kspec.verify.inputs import random_arguments  # noqa: E402
from kspec.verify.tolerance import compare, magnitude  # noqa: E402

M, N = 16384, 4096
OUT = Path(os.environ.get("OUT", "/tmp"))
VARIANTS = [("default", {}), ("b8", {"rows": "b8"}), ("b16", {"rows": "b16"}),
            ("b32", {"rows": "b32"}), ("loop", {"rows": "loop"})]
SMALL = [(37, 1000), (37, 777), (3, 8192)]      # contiguous, int64 path, b32c on 256 threads
# today's text -> the text before issue 4's change (rows.j2)
UNDO = [("    const int lane = WARP_ROWS ? (int)threadIdx.x % lanes : (int)threadIdx.x;\n",
         "    const int lane = (int)threadIdx.x % lanes;\n"),
        ("    const int teams = WARP_ROWS ? (int)blockDim.x / lanes : 1;\n",
         "    const int teams = (int)blockDim.x / lanes;\n"),
        ("(WARP_ROWS ? (int)threadIdx.x / lanes : 0)", "(int)threadIdx.x / lanes")]


def time_ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median")


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


class Spy:
    """Records the (function, grid, block) a launcher launches."""

    def __init__(self, fn):
        self.rt, self.seen = fn.runtime, []
        orig = self.rt.launch

        def launch(function, grid, block, params, device, shared=0):
            self.seen.append((function, grid, block))
            return orig(function, grid, block, params, device, shared)

        self.rt.launch = launch

    def close(self):
        del self.rt.launch


def before_launcher(kern, arch):
    """Today's CUDA source with issue 4's template edit undone, launched as before (b8c)."""
    src = get_backend("cuda").source(kern.ir, arch)
    for new, old in UNDO:
        if new not in src:
            return None, None
        src = src.replace(new, old)
    compiled = nv.compile_nvcc(src, arch)
    schedule = {"rows": "b8"}
    plan = plan_for(kern.ir, CUDA, arch, "plan", schedule)
    runtime = cuda_launcher.CudaRuntime(compiled.binary,
                                        [f for u in plan.units for f in u.functions()])
    return PlanLauncher(plan, runtime, "cuda", f"cuda {arch} before", schedule), compiled


def check_small(kern, fn) -> str:
    """'' when every small shape agrees with the reference, else what failed."""
    for m, n in SMALL:
        args = [a.cuda() if isinstance(a, torch.Tensor) else a
                for a in random_arguments(kern.ir, {"M": m, "N": n}, seed=m * n)]
        cpu = [a.cpu() if isinstance(a, torch.Tensor) else a for a in args]
        got, want = as_tuple(fn(*args)), as_tuple(kern.reference(*cpu))
        mags = magnitude(kern, cpu)
        for decl, g, w, mag in zip(kern.ir.outputs, got, want, mags):
            r = compare(g.cpu(), w.cpu(), decl.dtype, mag)
            if not r.ok:
                return f"{decl.name} at {m}x{n}: {r.detail}"
    return ""


def problem(spec: str):
    """(kernel, full-size args, PyTorch op, check(outputs) -> error text, bytes moved)."""
    kern = kspec.load(ROOT / "specs" / f"{spec}.kspec")[spec]
    g = torch.Generator(device="cuda").manual_seed(0)
    if spec == "layernorm":
        dt = torch.bfloat16
        x = torch.randn(M, N, device="cuda", dtype=dt, generator=g) * 2 + 0.5
        w = torch.randn(N, device="cuda", dtype=dt, generator=g)
        b = torch.randn(N, device="cuda", dtype=dt, generator=g)
        args = (x, w, b)

        def check(out):
            y, mu, rstd = out
            ry = torch.nn.functional.layer_norm(x, [N], w, b, 1e-5)
            xd = x.double()     # mu and rstd in f64 (PyTorch keeps them in bf16 on the CPU)
            rmu = xd.mean(-1)
            rrstd = torch.rsqrt(xd.var(-1, unbiased=False) + 1e-5)
            for name, a, e, tol in (("y", y.float(), ry.float(), (1.6e-2, 2e-2)),
                                    ("mu", mu.double(), rmu, (1e-4, 1e-5)),
                                    ("rstd", rstd.double(), rrstd, (1e-4, 1e-5))):
                try:
                    torch.testing.assert_close(a, e, rtol=tol[0], atol=tol[1])
                except AssertionError as err:
                    return f"{name} vs PyTorch: {str(err).splitlines()[1:3]}"
            return ""

        nbytes = 2 * M * N * 2 + 2 * N * 2 + 2 * M * 4
        return kern, args, lambda: torch.nn.functional.layer_norm(x, [N], w, b, 1e-5), check, nbytes
    x = torch.randn(M, N, device="cuda", dtype=torch.float32, generator=g)
    if spec == "rmsnorm":
        w = torch.randn(N, device="cuda", generator=g)
        args = (x, w)

        def ref():
            return torch.nn.functional.rms_norm(x, [N], w, 1e-6)
        nbytes = 2 * M * N * 4 + N * 4
    else:
        args = (x,)

        def ref():
            return torch.softmax(x, -1)
        nbytes = 2 * M * N * 4

    def check(out):
        try:
            torch.testing.assert_close(out, ref(), rtol=1e-3, atol=1e-6)
        except AssertionError as err:
            return f"vs PyTorch: {str(err).splitlines()[1:3]}"
        return ""

    return kern, args, ref, check, nbytes


def main() -> None:
    card = torch.cuda.get_device_name()
    arch = device_arch()
    rows = []
    print(f"{card} ({arch}), torch {torch.__version__}, triton {triton.__version__}, "
          f"M={M} N={N}")
    print(f"{'spec':10} {'backend':7} {'variant':8} {'kernel':26} {'thr':>4} {'regs':>4} "
          f"{'ms':>8} {'GB/s':>6} {'of copy':>7} {'torch ms':>8} {'torch/us':>8}  check")
    for spec in ("layernorm", "rmsnorm", "softmax"):
        kern, args, torch_op, check, nbytes = problem(spec)
        src = torch.empty(nbytes // 2 // 4, device="cuda", dtype=torch.float32)
        dst = torch.empty_like(src)
        copy_ms = time_ms(lambda: dst.copy_(src))
        copy_bw = 2 * src.numel() * 4 / copy_ms / 1e6
        torch_op()
        torch_ms = time_ms(torch_op)
        print(f"# {spec}: device copy of the same bytes {copy_ms:.4f} ms = {copy_bw:.0f} GB/s; "
              f"PyTorch {torch_ms:.4f} ms ({nbytes / torch_ms / 1e6 / copy_bw:.2f} of copy)")
        runs = [("cuda", name, sched) for name, sched in VARIANTS] + [("cuda", "before", None)]
        if spec == "layernorm":
            runs += [("hip", "default", {}), ("hip", "b32", {"rows": "b32"})]
        for backend, name, sched in runs:
            row = dict(card=card, arch=arch, spec=spec, backend=backend, variant=name,
                       M=M, N=N, bytes=nbytes, copy_ms=copy_ms, copy_gbs=copy_bw,
                       torch_ms=torch_ms)
            try:
                if sched is None:
                    fn, compiled = before_launcher(kern, arch)
                    if fn is None:
                        print(f"{spec:10} {backend:7} {name:8} (today's source has no such edit "
                              f"to undo)")
                        continue
                else:
                    fn = kern.build(backend, schedule=sched)
                    compiled = get_backend(backend).compile(kern.ir, arch, schedule=sched)
                err = check_small(kern, fn)
                spy = Spy(fn)
                out = fn(*args)
                torch.cuda.synchronize()
                spy.close()
                err = err or check(out)
                function, grid, block = spy.seen[0]
                regs = compiled.resources.get(function, {}).get("registers", 0)
                ms = time_ms(lambda: fn(*args))
                gbs = nbytes / ms / 1e6
                row.update(kernel=function, grid=grid, threads=block, registers=regs, ms=ms,
                           gbs=gbs, of_copy=gbs / copy_bw, torch_over_us=torch_ms / ms,
                           check=err or "ok")
                print(f"{spec:10} {backend:7} {name:8} {function:26} {block:4d} {regs:4d} "
                      f"{ms:8.4f} {gbs:6.0f} {gbs / copy_bw:7.2f} {torch_ms:8.4f} "
                      f"{torch_ms / ms:8.2f}  {err or 'ok'}")
            except Exception as e:   # one failing variant must not hide the others
                row.update(error=f"{type(e).__name__}: {e}")
                print(f"{spec:10} {backend:7} {name:8} FAILED {type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''}")
                traceback.print_exc(limit=3)
            rows.append(row)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rows_layernorm_cxx.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {OUT / 'rows_layernorm_cxx.json'}")


if __name__ == "__main__":
    main()
