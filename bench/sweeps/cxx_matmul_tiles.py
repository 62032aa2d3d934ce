"""The CUDA backend's tensor-core contraction at f16/bf16 8192^3 (and a 4096 case) per compiled
tile, next to cuBLAS (torch.matmul) in the same process; checks each against cuBLAS first.
Prints one line per (dtype, size, tile) and writes JSON to $OUT/cxx_matmul_tiles.json.
Also lists the matrix instructions in the SASS of the default build."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import triton.testing

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import kspec  # noqa: E402
from kspec.backends.cuda import BACKEND, device_arch  # noqa: E402

from kspec.backends.cxx.contraction import TILE_CHOICES  # noqa: E402

# (path, arch, tiles): the GPU's own arch (sm_90a on Hopper: wgmma) and sm_90 (mma.sync)
PATHS = [("wgmma", None, [None, *TILE_CHOICES["wgmma"]]),
         ("mma_sync", "sm_90", ["128x128x32w4s4", "128x256x32w8s4"])]
OUT = Path(os.environ.get("OUT", "/tmp"))
SPECS = {"f16": ("matmul", torch.float16), "bf16": ("matmul_bf16", torch.bfloat16)}


def time_ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=100, rep=500, return_mode="median")


def main() -> None:
    card = torch.cuda.get_device_name()
    rows = []
    k16 = kspec.load(ROOT / "specs" / "matmul.kspec")["matmul"]
    for arch in (device_arch(), "sm_90"):
        sass = BACKEND.compile_asm(k16.ir, arch).get("matmul.sass", "")
        instr = sorted(set(re.findall(r"\b((?:HGMMA|HMMA|LDGSTS|LDSM)[.\w]*)", sass)))
        print(f"{card}: matmul {arch} SASS matrix/copy instructions: {instr}")
    for dtype_name, (spec, dtype) in SPECS.items():
        path = ROOT / "specs" / f"{spec}.kspec"
        if not path.exists():
            path = ROOT / "bench" / "specs" / f"{spec}.kspec"
        kern = kspec.load(path)[spec]
        for size in (8192, 4096):
            a = torch.randn(size, size, device="cuda", dtype=dtype)
            b = torch.randn(size, size, device="cuda", dtype=dtype)
            want = a @ b
            cublas = time_ms(lambda: a @ b)
            flops = 2 * size ** 3
            for path, arch, tile in [(p, a, t) for p, a, ts in PATHS for t in ts]:
                fn = kern.build("cuda", schedule={"tile": tile} if tile else {}, arch=arch)
                got = fn(a, b)
                err = float((got.double() - want.double()).norm() / want.double().norm())
                ms = time_ms(lambda: fn(a, b)) if err < 1e-2 else float("nan")
                row = dict(card=card, dtype=dtype_name, size=size, path=path,
                           tile=tile or "default",
                           ms=ms, cublas_ms=cublas, tflops=flops / ms / 1e9,
                           fraction_of_cublas=cublas / ms, rel_err=err)
                rows.append(row)
                print(f"{dtype_name} {size} {path:8s} {row['tile']:16s} {ms:8.3f} ms  cuBLAS {cublas:7.3f}"
                      f"  {row['tflops']:6.1f} TFLOP/s  {row['fraction_of_cublas']:.2f} of cuBLAS"
                      f"  err {err:.1e}", flush=True)
    (OUT / "cxx_matmul_tiles.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
