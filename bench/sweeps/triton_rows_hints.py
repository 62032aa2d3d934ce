"""Issue 6's missed Triton row targets (rmsnorm vs torch.compile, layernorm's bandwidth) at
16384 x 4096: the generated kernel as is, without masks, and (--hints) with cache-eviction hints
(row data read once: evict_first; the per-column vectors every program reads: evict_last) and
other warps / rows per program, next to torch.compile and a same-bytes device copy, all timed
with triton.testing.do_bench (median) in this process. One line per variant."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import torch
import triton.testing

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
import kspec  # noqa: E402
from kspec.backends.triton.launcher import load_module  # noqa: E402
from workloads import eager_layernorm, eager_rmsnorm  # noqa: E402

M, N = 16384, 4096
HINTS = "--hints" in sys.argv     # the eviction-hint sweep (run 1: every hint was slower)


def ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median")


def hinted(source: str, rows: str, columns: str) -> str:
    """Loads of `rows` tensors evict_first, of `columns` evict_last; stores evict_first."""
    def load(m):
        name = m.group(1)
        policy = "evict_first" if name in rows else "evict_last" if name in columns else None
        return m.group(0) if policy is None else m.group(0)[:-1] + f", eviction_policy='{policy}')"
    out = re.sub(r"tl\.load\((\w+)_ptr [^\n]*\)(?=\n)", load, source)
    return re.sub(r"(tl\.store\([^\n]*)\)(?=\n)", r"\1, eviction_policy='evict_first')", out)


def unmasked(source: str) -> str:
    """The single-pass path without masks (valid when N == BLOCK_R and BLOCK_P divides M, as
    at the benchmark size): what an EVEN specialisation would generate."""
    out = source.replace(", mask=pmask & rmask, other=0.0", "").replace(", mask=pmask & rmask", "")
    return re.sub(r"tl\.where\(pmask & rmask, (.*?), 0\.0\)", r"\1", out)


def main() -> None:
    print(torch.cuda.get_device_name(), "triton", triton.__version__)
    cases = {
        "rmsnorm": (eager_rmsnorm, lambda: (torch.randn(M, N, device="cuda"),
                                            torch.randn(N, device="cuda"), 1e-6), ["x"], ["w"]),
        "layernorm": (eager_layernorm, lambda: (torch.randn(M, N, device="cuda").bfloat16(),
                                                torch.randn(N, device="cuda").bfloat16(),
                                                torch.randn(N, device="cuda").bfloat16(), 1e-5),
                      ["x"], ["w", "b"]),
    }
    for name, (eager, make, rows, columns) in cases.items():
        kernel = kspec.load(ROOT / "specs" / f"{name}.kspec")[name]
        args = make()
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        want = eager(*args)
        want = want if isinstance(want, tuple) else (want,)
        nbytes = sum(t.numel() * t.element_size() for t in tensors) + \
            sum(t.numel() * t.element_size() for t in want)
        src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        copy = ms(lambda: dst.copy_(src))
        compiled = torch.compile(eager)
        compiled(*args)
        t_compile = ms(lambda: compiled(*args))
        base = kernel.source("triton")
        syms = [M, N]
        variants = [("generated", base, {}), ("unmasked", unmasked(base), {}),
                    ("unmasked w16 p2", unmasked(base), {"0.WARPS": 16, "0.BLOCK_P": 2}),
                    ("unmasked w8 p2", unmasked(base), {"0.WARPS": 8, "0.BLOCK_P": 2})]
        if HINTS:
            variants.append(("hints", hinted(base, rows, columns), {}))
        for warps in (4, 8, 16) if HINTS else ():
            for p in (1, 2):
                variants.append((f"w{warps} p{p}", base, {"0.WARPS": warps, "0.BLOCK_P": p}))
                variants.append((f"hints w{warps} p{p}", hinted(base, rows, columns),
                                 {"0.WARPS": warps, "0.BLOCK_P": p}))
        print(f"# {name}: same-bytes copy {copy:.4f} ms; torch.compile {t_compile:.4f} ms")
        for label, source, schedule in variants:
            try:
                mod = load_module(source, interpret=False, prefix=f"hints_{name}")
                got = mod.launch(*args, *syms, schedule=schedule)
                got = got if isinstance(got, tuple) else (got,)
                err = max(float((g.float() - w.float()).norm() / w.float().norm())
                          for g, w in zip(got, want))
                t = ms(lambda: mod.launch(*args, *syms, schedule=schedule))
                print(f"{name:9s} {label:16s} {t:.4f} ms  {copy / t:.3f} of copy  "
                      f"x compile {t_compile / t:.3f}  err {err:.1e}", flush=True)
            except Exception as e:  # noqa: BLE001
                print(f"{name:9s} {label:16s} FAILED {type(e).__name__}: {str(e)[:120]}")


if __name__ == "__main__":
    main()
