"""A training step of a model built from kspec ops, next to eager PyTorch and torch.compile
(issue 17): forward alone and forward + backward (the derived VJP kernels) timed in one run.

    python3 bench/training_step.py                   # the GPU, every runner
    python3 bench/training_step.py --small --device cpu   # tiny sizes, the Triton interpreter

The model is tests/test_grad.py's three layers at a transformer MLP's shapes: gelu(x @ w1 + b1)
(M x D -> M x H), rmsnorm over H, a projection to C classes and the cross entropy. Runners:
eager PyTorch, torch.compile of it, and the kspec ops of each backend under
torch.compile(fullgraph=True) (what a user writes). Every runner's loss and gradients are
compared on the device with the model in float64 (max |got - ref| / max |ref| over the
parameters' gradients). TF32 off everywhere. JSON to --json (default $OUT/training_step.json);
a markdown table printed last.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import kspec  # noqa: E402
from timing import Budget, bench, device_info  # noqa: E402

SIZES = {"M": 8192, "D": 1024, "H": 4096, "C": 1024}
SMALL = {"M": 9, "D": 6, "H": 7, "C": 5}


def parameters(sizes: dict[str, int], device: torch.device) -> dict[str, torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(1)
    d, h, c = sizes["D"], sizes["H"], sizes["C"]
    return {"w1": torch.randn(d, h, device=device, generator=gen) / d ** 0.5,
            "b1": 0.1 * torch.randn(h, device=device, generator=gen),
            "g": 1 + 0.1 * torch.randn(h, device=device, generator=gen),
            "w2": torch.randn(h, c, device=device, generator=gen) / h ** 0.5}


def eager_loss(p: dict[str, torch.Tensor], x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    f = torch.nn.functional
    h = f.gelu(x @ p["w1"] + p["b1"])
    h = f.rms_norm(h, [h.shape[-1]], p["g"], eps=1e-6)
    return f.cross_entropy(h @ p["w2"], label)


def kspec_loss(backend: str) -> Callable[..., torch.Tensor]:
    layers = kspec.load(ROOT / "bench" / "specs" / "mlp_layers.kspec")
    lin_gelu, lin = layers.linear_gelu.op(backend), layers.linear.op(backend)
    rms = kspec.load(ROOT / "specs" / "rmsnorm.kspec").rmsnorm.op(backend)
    ce = kspec.load(ROOT / "specs" / "cross_entropy.kspec").cross_entropy.op(backend)

    def loss(p: dict[str, torch.Tensor], x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return ce(lin(rms(lin_gelu(x, p["w1"], p["b1"]), p["g"]), p["w2"]), label)
    return loss


def step(loss_fn: Callable[..., torch.Tensor], names: list[str]) -> Callable[..., Any]:
    def run(p: dict[str, torch.Tensor], x: torch.Tensor, label: torch.Tensor):
        loss = loss_fn(p, x, label)
        return loss, torch.autograd.grad(loss, [p[n] for n in names])
    return run


def error(got: tuple, want: tuple) -> float:
    return max(float((g.double() - w).abs().max() / w.abs().max().clamp_min(1e-30))
               for g, w in zip(got, want))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="tiny sizes (a CPU check)")
    ap.add_argument("--backends", default="triton,cuda,hip")
    ap.add_argument("--json", default=os.path.join(os.environ.get("OUT", "."),
                                                   "training_step.json"))
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sizes = SMALL if args.small else SIZES
    gen = torch.Generator(device=device).manual_seed(2)
    params = {n: t.requires_grad_() for n, t in parameters(sizes, device).items()}
    names = list(params)
    sets = []
    for _ in range(2):
        x = torch.randn(sizes["M"], sizes["D"], device=device, generator=gen)
        sets.append([params, x, torch.randint(0, sizes["C"], (sizes["M"],), device=device,
                                              generator=gen)])
    ref64 = {n: t.detach().double().requires_grad_() for n, t in params.items()}
    want = step(eager_loss, names)(ref64, sets[0][1].double(), sets[0][2])
    want = (want[0].detach().reshape(1), *want[1])
    runners: dict[str, Callable[..., torch.Tensor]] = {
        "eager": eager_loss, "compile": torch.compile(eager_loss)}
    for b in args.backends.split(","):
        runners[f"kspec {b}"] = torch.compile(kspec_loss(b), fullgraph=True)
    budget = Budget(rep_ms=60.0 if device.type == "cuda" else 1.0, min_reps=5)
    rows = []
    for name, loss_fn in runners.items():
        row: dict[str, Any] = {"runner": name}
        try:
            got = step(loss_fn, names)(*sets[0])
            row["error"] = error((got[0].detach().reshape(1), *got[1]), want)
            with torch.no_grad():
                row["forward_ms"] = bench(loss_fn, sets, device, budget).ms
            row["step_ms"] = bench(step(loss_fn, names), sets, device, budget).ms
        except Exception as e:   # one runner's failure is a row of the table, not the run's end
            row["failure"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        rows.append(row)
        print(json.dumps(row), flush=True)
    eager = next(r for r in rows if r["runner"] == "eager")
    result = {"sizes": sizes, "device": device_info(device), "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"\ntraining step {sizes} on {result['device'].get('name', device.type)}")
    print("| runner | forward ms | step ms | backward ms | step x eager | error vs f64 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "failure" in r:
            print(f"| {r['runner']} | {r['failure']} | | | | |")
            continue
        back = r["step_ms"] - r["forward_ms"]
        print(f"| {r['runner']} | {r['forward_ms']:.3f} | {r['step_ms']:.3f} | {back:.3f} | "
              f"{eager.get('step_ms', float('nan')) / r['step_ms']:.2f} | {r['error']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
