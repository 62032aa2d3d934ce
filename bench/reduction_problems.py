"""KernelBench level 1's reductions and normalisations (issue 15) as kspec specs, at their
published sizes ("full") and tiny CPU sizes ("small"), with the eager computation the way the
KernelBench model does it. The kspec text follows the level-1 translations in
bench/kernelbench/level1/ (the kernelbench helper's), one kernel per problem.

Sizes are the problem files' (KernelBench/level1/<kb>.py): every input torch.rand f32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

Inputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Problem:
    name: str
    kb: str                                   # KernelBench level1 file
    source: str                               # kspec text, one kernel
    sizes: dict[str, dict[str, int]]          # "full" / "small" -> symbol values
    shapes: Callable[[dict[str, int]], dict[str, tuple[int, ...]]]   # input name -> shape
    eager: Callable[..., torch.Tensor]        # the inputs in order -> output
    call: Callable[..., torch.Tensor] | None = None   # kspec fn, inputs -> output (views)

    def make(self, scale: str, device: torch.device, seed: int = 0) -> Inputs:
        """torch.rand inputs made on `device` (KernelBench's get_inputs)."""
        gen = torch.Generator(device=device).manual_seed(seed)
        return {n: torch.rand(s, device=device, generator=gen)
                for n, s in self.shapes(self.sizes[scale]).items()}

    def run(self, fn: Callable, inputs: Inputs) -> torch.Tensor:
        args = list(inputs.values())
        return self.call(fn, *args) if self.call else fn(*args)


def _x(*dims: str) -> Callable[[dict[str, int]], dict[str, tuple[int, ...]]]:
    return lambda s: {"x": tuple(s[d] for d in dims)}


SOFTMAX = """
kernel softmax(x: f32[B, D]) -> y: f32[B, D] {
    m[i]    = max(x[i, j] for j)
    e[i, j] = exp(x[i, j] - m[i])
    y[i, j] = e[i, j] / sum(e[i, k] for k)
}"""
LOG_SOFTMAX = """
kernel log_softmax(x: f32[B, D]) -> y: f32[B, D] {
    m[i]    = max(x[i, j] for j)
    lse[i]  = log(sum(exp(x[i, k] - m[i]) for k))
    y[i, j] = x[i, j] - m[i] - lse[i]
}"""
BATCH_NORM = """
kernel batch_norm_train(x: f32[N, C, H, W], w: f32[C], b: f32[C], eps: f32 = 1e-5)
        -> y: f32[N, C, H, W] {
    mu[c]  = mean(x[n, c, h, q] for n, h, q)
    var[c] = mean((x[n, c, h, q] - mu[c]) ** 2 for n, h, q)
    y[n, c, h, q] = (x[n, c, h, q] - mu[c]) * rsqrt(var[c] + eps) * w[c] + b[c]
}"""
INSTANCE_NORM = """
kernel instance_norm(x: f32[N, C, H, W], eps: f32 = 1e-5) -> y: f32[N, C, H, W] {
    mu[n, c]  = mean(x[n, c, h, w] for h, w)
    var[n, c] = mean((x[n, c, h, w] - mu[n, c]) ** 2 for h, w)
    y[n, c, h, w] = (x[n, c, h, w] - mu[n, c]) * rsqrt(var[n, c] + eps)
}"""
GROUP_NORM = """
kernel group_norm(x: f32[N, G, CG, H, W], w: f32[G, CG], b: f32[G, CG], eps: f32 = 1e-5)
        -> y: f32[N, G, CG, H, W] {
    mu[n, g]   = mean(x[n, g, c, h, q] for c, h, q)
    var[n, g]  = mean((x[n, g, c, h, q] - mu[n, g]) ** 2 for c, h, q)
    y[n, g, c, h, q] = (x[n, g, c, h, q] - mu[n, g]) * rsqrt(var[n, g] + eps) * w[g, c] + b[g, c]
}"""
RMS_NORM = """
kernel rms_norm(x: f32[N, C, H, W], eps: f32 = 1e-5) -> y: f32[N, C, H, W] {
    rms[n, h, w] = sqrt(mean(x[n, c, h, w] ** 2 for c) + eps)
    y[n, c, h, w] = x[n, c, h, w] / rms[n, h, w]
}"""
FROBENIUS = """
kernel frobenius_normalize(x: f32[N, C, H, W]) -> y: f32[N, C, H, W] {
    norm = sqrt(sum(x[n, c, h, w] ** 2 for n, c, h, w))
    y[n, c, h, w] = x[n, c, h, w] / norm
}"""
L1_NORM = """
kernel l1_normalize(x: f32[B, D]) -> y: f32[B, D] {
    m[i] = mean(abs(x[i, j]) for j)
    y[i, j] = x[i, j] / m[i]
}"""
L2_NORM = """
kernel l2_normalize(x: f32[B, D]) -> y: f32[B, D] {
    norm[i] = sqrt(sum(x[i, j] ** 2 for j))
    y[i, j] = x[i, j] / norm[i]
}"""
LAYER_NORM = """
kernel layer_norm(x: f32[B, F, D1, D2], w: f32[F, D1, D2], b: f32[F, D1, D2], eps: f32 = 1e-5)
        -> y: f32[B, F, D1, D2] {
    mu[n]  = mean(x[n, f, i, j] for f, i, j)
    var[n] = mean((x[n, f, i, j] - mu[n]) ** 2 for f, i, j)
    y[n, f, i, j] = (x[n, f, i, j] - mu[n]) * rsqrt(var[n] + eps) * w[f, i, j] + b[f, i, j]
}"""
MATVEC = """
kernel matvec(A: f32[M, K], B: f32[K, 1]) -> C: f32[M, 1] {
    C[i, j] = sum(A[i, k] * B[k, j] for k)
}"""
MSE = """
kernel mse_loss(predictions: f32[B, N], targets: f32[B, N]) -> loss: f32 {
    loss = mean((predictions[i, j] - targets[i, j]) ** 2 for i, j)
}"""


def _over_dim1(op: str) -> str:
    return f"""
kernel {op}_dim1(x: f32[B, D1, D2]) -> y: f32[B, D2] {{
    y[b, j] = {op}(x[b, k, j] for k)
}}"""


IMAGE = {"full": {"N": 112, "C": 64, "H": 512, "W": 512}, "small": {"N": 3, "C": 5, "H": 7, "W": 9}}
ROWS = {"full": {"B": 4096, "D": 393216}, "small": {"B": 7, "D": 33}}
WIDE = {"full": {"B": 32768, "D": 65535}, "small": {"B": 7, "D": 33}}
MIDDLE = {"full": {"B": 128, "D1": 4096, "D2": 4095}, "small": {"B": 3, "D1": 11, "D2": 13}}


GROUP = 8   # channels per group: KernelBench's 64 features in 8 groups


def _group_shapes(s: dict[str, int]) -> dict[str, tuple[int, ...]]:
    return {"x": (s["N"], s["C"], s["H"], s["W"]), "w": (s["C"],), "b": (s["C"],)}


def _group_call(fn: Callable, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                groups: int) -> torch.Tensor:
    n, c, h, q = x.shape
    return fn(x.view(n, groups, c // groups, h, q), w.view(groups, -1),
              b.view(groups, -1)).view(x.shape)


def _reduced(op: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if op in ("sum", "mean"):
        return lambda x: getattr(torch, op)(x, dim=1)
    return lambda x: getattr(torch, op)(x, dim=1)[0]


PROBLEMS: list[Problem] = [
    Problem("softmax", "23_Softmax", SOFTMAX, ROWS, _x("B", "D"),
            lambda x: torch.softmax(x, dim=1)),
    Problem("log_softmax", "24_LogSoftmax", LOG_SOFTMAX, ROWS, _x("B", "D"),
            lambda x: torch.log_softmax(x, dim=1)),
    Problem("batch_norm", "33_BatchNorm", BATCH_NORM,
            {"full": {"N": 64, "C": 64, "H": 512, "W": 512}, "small": IMAGE["small"]},
            lambda s: {"x": (s["N"], s["C"], s["H"], s["W"]), "w": (s["C"],), "b": (s["C"],)},
            lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)),
    Problem("instance_norm", "34_InstanceNorm", INSTANCE_NORM, IMAGE, _x("N", "C", "H", "W"),
            lambda x: F.instance_norm(x, eps=1e-5)),
    Problem("group_norm", "35_GroupNorm_", GROUP_NORM,
            {"full": IMAGE["full"], "small": {"N": 3, "C": 16, "H": 3, "W": 5}},
            _group_shapes, lambda x, w, b: F.group_norm(x, x.shape[1] // GROUP, w, b, 1e-5),
            lambda fn, x, w, b: _group_call(fn, x, w, b, x.shape[1] // GROUP)),
    Problem("rms_norm", "36_RMSNorm_", RMS_NORM, IMAGE, _x("N", "C", "H", "W"),
            lambda x: x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-5)),
    Problem("frobenius_norm", "37_FrobeniusNorm_", FROBENIUS, IMAGE, _x("N", "C", "H", "W"),
            lambda x: x / torch.norm(x, p="fro")),
    Problem("l1_norm", "38_L1Norm_", L1_NORM, WIDE, _x("B", "D"),
            lambda x: x / torch.mean(torch.abs(x), dim=1, keepdim=True)),
    Problem("l2_norm", "39_L2Norm_", L2_NORM, WIDE, _x("B", "D"),
            lambda x: x / torch.norm(x, p=2, dim=1, keepdim=True)),
    Problem("layer_norm", "40_LayerNorm", LAYER_NORM,
            {"full": {"B": 16, "F": 64, "D1": 256, "D2": 256},
             "small": {"B": 3, "F": 4, "D1": 5, "D2": 7}},
            lambda s: {"x": (s["B"], s["F"], s["D1"], s["D2"]), "w": (s["F"], s["D1"], s["D2"]),
                       "b": (s["F"], s["D1"], s["D2"])},
            lambda x, w, b: F.layer_norm(x, w.shape, w, b, 1e-5)),
    Problem("matvec", "4_Matrix_vector_multiplication_", MATVEC,
            {"full": {"M": 2048, "K": 1048576}, "small": {"M": 13, "K": 301}},
            lambda s: {"A": (s["M"], s["K"]), "B": (s["K"], 1)}, torch.matmul),
    *[Problem(f"{op}_dim1", kb, _over_dim1(op), MIDDLE, _x("B", "D1", "D2"), _reduced(op))
      for op, kb in (("sum", "47_Sum_reduction_over_a_dimension"),
                     ("mean", "48_Mean_reduction_over_a_dimension"),
                     ("max", "49_Max_reduction_over_a_dimension"),
                     ("min", "53_Min_reduction_over_a_dimension"))],
    Problem("mse_loss", "94_MSELoss", MSE,
            {"full": {"B": 32768, "N": 32768}, "small": {"B": 7, "N": 37}},
            lambda s: {"predictions": (s["B"], s["N"]), "targets": (s["B"], s["N"])},
            lambda p, t: torch.mean((p - t) ** 2)),
]

BY_NAME: dict[str, Problem] = {p.name: p for p in PROBLEMS}


def load_kernel(problem: Problem) -> Any:
    import kspec

    (kernel,) = kspec.loads(problem.source, file=f"<{problem.name}>")
    return kernel
