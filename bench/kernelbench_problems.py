"""The KernelBench problems of bench/kernelbench_sizes.py: kspec translations and PyTorch
eager references, at KernelBench's published sizes ("full") and at tiny CPU sizes ("tiny").

Each problem is written here from KernelBench's description (level1 file named in `kb`):
the kspec source, a function making the inputs (torch.rand like KernelBench's get_inputs,
plus random weights where a module has them so that they matter), the eager reference the
way KernelBench computes it, and how the kspec kernel is called on those inputs (views for
the norms whose rows span several dims, since kspec has no reshape).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

Inputs = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    name: str
    kb: str                                   # KernelBench file, for the record
    source: str                               # kspec source text
    kernel: str                               # kernel name in source
    sizes: dict[str, dict[str, int]]          # scale -> sizes
    make: Callable[[dict[str, int], torch.device, torch.Generator], Inputs]
    eager: Callable[[Inputs], torch.Tensor]
    call: Callable[[Callable, Inputs], torch.Tensor]   # the built kspec fn on the inputs


def rand(shape: tuple[int, ...], device: torch.device, gen: torch.Generator) -> torch.Tensor:
    """torch.rand (uniform [0, 1), f32) made directly on `device`, like KernelBench's inputs."""
    return torch.rand(shape, device=device, generator=gen, dtype=torch.float32)


# --- level1/4: matrix-vector product, B as a [K, 1] matrix (KernelBench passes it so) ---
MATVEC = """
kernel matvec_kb(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
"""


def _matvec_inputs(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    return {"a": rand((s["M"], s["K"]), dev, g), "b": rand((s["K"], 1), dev, g)}


# --- level1/45: AvgPool2d(kernel 11), stride = kernel, padding 0 ---
# (H - 11) // 11 + 1 is torch's output size for padding 0 (the last partial window dropped).
AVG_POOL = """
kernel avg_pool2d_k11(x: f32[N, C, H, W]) -> y: f32[N, C, (H - 11) // 11 + 1, (W - 11) // 11 + 1] {
    y[n, c, p, q] = mean(x[n, c, 11*p + r, 11*q + s] for r < 11, s < 11)
}
"""


def _pool_inputs(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    return {"x": rand((s["N"], s["C"], s["H"], s["W"]), dev, g)}


# --- level1/97: scaled_dot_product_attention in f32, default scale 1/sqrt(D) ---
ATTENTION = """
kernel attention_f32(q: f32[B, H, S, D], k: f32[B, H, T, D], v: f32[B, H, T, D], scale: f32)
        -> o: f32[B, H, S, D] {
    s[b, h, i, j] = scale * sum(q[b, h, i, d] * k[b, h, j, d] for d)
    m[b, h, i]    = max(s[b, h, i, j] for j)
    p[b, h, i, j] = exp(s[b, h, i, j] - m[b, h, i])
    l[b, h, i]    = sum(p[b, h, i, j] for j)
    o[b, h, i, d] = sum(p[b, h, i, j] * v[b, h, j, d] for j) / l[b, h, i]
}
"""


def _attention_inputs(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    shape = (s["B"], s["H"], s["S"], s["D"])
    return {"q": rand(shape, dev, g), "k": rand(shape, dev, g), "v": rand(shape, dev, g)}


# --- level1/40: LayerNorm over the last three dims; rows are x.view(B, -1) ---
LAYERNORM = """
kernel layernorm_rows(x: f32[M, N], w: f32[N], b: f32[N], eps: f32 = 1e-5) -> y: f32[M, N] {
    mu[i]   = mean(x[i, j] for j)
    var[i]  = mean((x[i, j] - mu[i]) ** 2 for j)
    y[i, j] = (x[i, j] - mu[i]) * rsqrt(var[i] + eps) * w[j] + b[j]
}
"""


def _layernorm_inputs(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    feat = (s["F"], s["D1"], s["D2"])
    return {"x": rand((s["B"],) + feat, dev, g), "w": rand(feat, dev, g), "b": rand(feat, dev, g)}


def _layernorm_eager(t: Inputs) -> torch.Tensor:
    return F.layer_norm(t["x"], t["w"].shape, t["w"], t["b"], 1e-5)   # what nn.LayerNorm calls


def _layernorm_call(fn: Callable, t: Inputs) -> torch.Tensor:
    x = t["x"]
    return fn(x.view(x.shape[0], -1), t["w"].reshape(-1), t["b"].reshape(-1)).view(x.shape)


# --- level1/33: BatchNorm2d in training mode: batch statistics, biased variance ---
BATCHNORM = """
kernel batchnorm_train(x: f32[N, C, H, W], w: f32[C], b: f32[C], eps: f32 = 1e-5)
        -> y: f32[N, C, H, W] {
    mu[c]  = mean(x[n, c, h, q] for n, h, q)
    var[c] = mean((x[n, c, h, q] - mu[c]) ** 2 for n, h, q)
    y[n, c, h, q] = (x[n, c, h, q] - mu[c]) * rsqrt(var[c] + eps) * w[c] + b[c]
}
"""


def _batchnorm_inputs(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    return {"x": rand((s["N"], s["C"], s["H"], s["W"]), dev, g),
            "w": rand((s["C"],), dev, g), "b": rand((s["C"],), dev, g)}


def _batchnorm_eager(t: Inputs) -> torch.Tensor:
    # nn.BatchNorm2d's default (training) forward; no running stats to update here
    return F.batch_norm(t["x"], None, None, t["w"], t["b"], training=True, eps=1e-5)


# --- level1/35: GroupNorm through the view [N, G, C/G, H*W] (specs/group_norm.kspec) ---
GROUP_NORM = (ROOT / "specs" / "group_norm.kspec").read_text()


def _group_norm_inputs(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    return {"x": rand((s["N"], s["C"], s["H"], s["W"]), dev, g), "groups": s["G"],
            "w": rand((s["C"],), dev, g), "b": rand((s["C"],), dev, g)}


def _group_norm_eager(t: Inputs) -> torch.Tensor:
    return F.group_norm(t["x"], t["groups"], t["w"], t["b"], 1e-5)   # what nn.GroupNorm calls


def _group_norm_call(fn: Callable, t: Inputs) -> torch.Tensor:
    x, g = t["x"], t["groups"]
    n, c = x.shape[:2]
    per = c // g
    return fn(x.view(n, g, per, -1), t["w"].view(g, per), t["b"].view(g, per)).view(x.shape)


# --- level1/32: HardTanh(-1, 1) (on torch.rand inputs it is the identity, as in KernelBench) ---
HARDTANH = """
kernel hardtanh(x: f32[M, N]) -> y: f32[M, N] {
    y[i, j] = clamp(x[i, j], -1, 1)
}
"""


def _matrix_input(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    return {"x": rand((s["M"], s["N"]), dev, g)}


# --- cross-entropy-style row pick: label[i] used inside and outside a reduction ---
ROW_PICK = """
kernel row_pick(x: f32[M, C], label: i64[M]) -> y: f32[M] {
    y[i] = where(label[i] >= 0, sum(where(j == label[i], x[i, j], 0.0) for j), 0.0)
}
"""


def _row_pick_inputs(s: dict[str, int], dev: torch.device, g: torch.Generator) -> Inputs:
    m, c = s["M"], s["C"]
    label = torch.randint(-1, c, (m,), device=dev, generator=g, dtype=torch.int64)
    return {"x": rand((m, c), dev, g), "label": label}


def _row_pick_eager(t: Inputs) -> torch.Tensor:
    x, label = t["x"], t["label"]
    picked = x.gather(1, label.clamp(min=0).unsqueeze(1)).squeeze(1)
    return torch.where(label >= 0, picked, torch.zeros_like(picked))


def _plain(*names: str) -> Callable[[Callable, Inputs], torch.Tensor]:
    """A call passing the named inputs in order."""
    return lambda fn, t: fn(*(t[n] for n in names))


PROBLEMS: list[Problem] = [
    Problem("matvec", "level1/4_Matrix_vector_multiplication_", MATVEC, "matvec_kb",
            {"full": {"M": 2048, "K": 1048576}, "tiny": {"M": 7, "K": 300}},
            _matvec_inputs, lambda t: torch.matmul(t["a"], t["b"]), _plain("a", "b")),
    Problem("avg_pool2d", "level1/45_Average_Pooling_2D", AVG_POOL, "avg_pool2d_k11",
            {"full": {"N": 16, "C": 64, "H": 2048, "W": 2048},
             "tiny": {"N": 2, "C": 3, "H": 25, "W": 36}},
            _pool_inputs, lambda t: F.avg_pool2d(t["x"], 11), _plain("x")),
    Problem("sdpa", "level1/97_ScaledDotProductAttention", ATTENTION, "attention_f32",
            {"full": {"B": 32, "H": 32, "S": 512, "D": 1024},
             "tiny": {"B": 1, "H": 2, "S": 17, "D": 32}},
            _attention_inputs,
            lambda t: F.scaled_dot_product_attention(t["q"], t["k"], t["v"]),
            lambda fn, t: fn(t["q"], t["k"], t["v"], 1.0 / math.sqrt(t["q"].shape[-1]))),
    Problem("layernorm", "level1/40_LayerNorm", LAYERNORM, "layernorm_rows",
            {"full": {"B": 16, "F": 64, "D1": 256, "D2": 256},
             "tiny": {"B": 3, "F": 4, "D1": 5, "D2": 6}},
            _layernorm_inputs, _layernorm_eager, _layernorm_call),
    Problem("batchnorm", "level1/33_BatchNorm", BATCHNORM, "batchnorm_train",
            {"full": {"N": 64, "C": 64, "H": 512, "W": 512},
             "tiny": {"N": 3, "C": 4, "H": 5, "W": 6}},
            _batchnorm_inputs, _batchnorm_eager, _plain("x", "w", "b")),
    Problem("group_norm", "level1/35_GroupNorm_", GROUP_NORM, "group_norm",
            {"full": {"N": 112, "C": 64, "G": 8, "H": 512, "W": 512},
             "tiny": {"N": 2, "C": 8, "G": 4, "H": 3, "W": 5}},
            _group_norm_inputs, _group_norm_eager, _group_norm_call),
    Problem("hardtanh", "level1/32_HardTanh", HARDTANH, "hardtanh",
            {"full": {"M": 4096, "N": 393216}, "tiny": {"M": 7, "N": 33}},
            _matrix_input, lambda t: F.hardtanh(t["x"], -1.0, 1.0), _plain("x")),
    Problem("row_pick", "cross-entropy row pick (issue)", ROW_PICK, "row_pick",
            {"full": {"M": 4096, "C": 32768}, "tiny": {"M": 9, "C": 40}},
            _row_pick_inputs, _row_pick_eager, _plain("x", "label")),
]

BY_NAME: dict[str, Problem] = {p.name: p for p in PROBLEMS}


def load_kernel(problem: Problem) -> Any:
    """The problem's kspec kernel (compiles the source: front end and checks)."""
    import kspec
    return kspec.loads(problem.source, file=f"<{problem.name}>")[problem.kernel]

