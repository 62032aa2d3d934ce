"""The benchmark workloads: a kspec kernel, realistic sizes, and the same computation in PyTorch.

Each workload names a spec stem and kernel name. bench/run.py looks for the kernel first in
specs/<spec>.kspec, then in any specs/*.kspec under the kernel's name or an alias, then in
bench/specs/<spec>.kspec (kernels the project's specs/ lacks), and takes the first whose
signature fits the workload's inputs and whose outputs match eager's.

Sizes per mode: "bench" (the issue's sizes), "quick" (--quick), "check" (the small shape checked
against the float64 reference, deliberately not a multiple of any block size) and "dry" (both
stages of --dry-run on CPU, small because the Triton interpreter is slow).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

Sizes = dict[str, int]
Inputs = Callable[[Sizes, torch.device, torch.Generator], list[Any]]

# Targets from issues 3 (triton) and 4 (cuda, hip): backend -> [(metric, minimum)].
# Metrics: frac (of the measured ceiling), vs_eager / vs_compile (baseline time / kspec time),
# vs_cuda (cuda time / this backend's time).
MEMORY_TARGETS = {"triton": [("frac", 0.90), ("vs_compile", 1.0)],
                  "cuda": [("frac", 0.85)], "hip": [("vs_cuda", 1 / 1.1)]}


@dataclass(frozen=True)
class Workload:
    name: str
    spec: str                       # stem of the .kspec file
    kernel: str
    inputs: Inputs                  # arguments in the kernel's signature order
    eager: Callable[..., Any]       # PyTorch eager, same arguments, same outputs
    sizes: dict[str, Sizes]
    bound: str = "memory"           # "memory" or "compute": which ceiling the fraction uses
    dtype: str = "f32"              # compute ceiling: matmul TFLOP/s of this dtype
    flops: Callable[[Sizes], float] = lambda s: 0.0
    aliases: tuple[str, ...] = ()
    extras: dict[str, Callable[..., Any]] = field(default_factory=dict)  # more baselines
    targets: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    quick: bool = False             # part of --quick

    def describe(self, sz: Sizes) -> str:
        return " ".join(f"{k}={v}" for k, v in sz.items())


def _randn(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
           gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    t = torch.randn(shape, device=device, generator=gen, dtype=torch.float32)
    return (t * scale).to(dtype) if scale != 1.0 else t.to(dtype)


# --- memory-bound, [M, N] -----------------------------------------------------------------------
ROWS = {"bench": {"M": 16384, "N": 4096}, "quick": {"M": 8192, "N": 4096},
        "check": {"M": 37, "N": 1000}, "dry": {"M": 13, "N": 300}}


def _x(dtype: torch.dtype) -> Inputs:
    return lambda s, d, g: [_randn((s["M"], s["N"]), dtype, d, g)]


VEC = {"bench": {"N": 16384 * 4096}, "quick": {"N": 8192 * 4096}, "check": {"N": 37 * 1000},
       "dry": {"N": 4099}}


def _ab_vec(s: Sizes, d: torch.device, g: torch.Generator) -> list[Any]:
    return [_randn((s["N"],), torch.float32, d, g), _randn((s["N"],), torch.float32, d, g)]


def _x_w_b(s: Sizes, d: torch.device, g: torch.Generator) -> list[Any]:
    return [_randn((s["M"], s["N"]), torch.bfloat16, d, g),
            _randn((s["N"],), torch.bfloat16, d, g), _randn((s["N"],), torch.bfloat16, d, g),
            1e-5]


def _x_w(s: Sizes, d: torch.device, g: torch.Generator) -> list[Any]:
    return [_randn((s["M"], s["N"]), torch.float32, d, g),
            _randn((s["N"],), torch.float32, d, g), 1e-6]


def eager_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x + y


def eager_relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


def eager_gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x)


def eager_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


def eager_log_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(x, dim=-1)


def eager_layernorm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                    eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F.layer_norm's kernel, also returning the f32 mean and rstd (as specs/layernorm)."""
    y, mu, rstd = torch.ops.aten.native_layer_norm(x, [x.shape[-1]], w, b, eps)
    if mu.dtype != torch.float32:  # CPU keeps bf16 statistics; CUDA gives f32 (not taken there)
        _, mu, rstd = torch.ops.aten.native_layer_norm(x.float(), [x.shape[-1]], None, None, eps)
    return y, mu.view(-1), rstd.view(-1)


def eager_rmsnorm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), w, eps)


def naive_rmsnorm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w.float()).to(x.dtype)


def eager_row_sum(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=-1)


def _mem(name: str, spec: str, kernel: str, inputs: Inputs, eager: Callable[..., Any], *,
         aliases: tuple[str, ...] = (), quick: bool = False, dtype: str = "f32",
         extras: dict[str, Callable[..., Any]] | None = None,
         sizes: dict[str, Sizes] = ROWS) -> Workload:
    return Workload(name, spec, kernel, inputs, eager, sizes, dtype=dtype, aliases=aliases,
                    quick=quick, extras=extras or {}, targets=MEMORY_TARGETS)


# --- compute-bound --------------------------------------------------------------------------
def _ab(dtype: torch.dtype, bias: bool = False) -> Inputs:
    def make(s: Sizes, d: torch.device, g: torch.Generator) -> list[Any]:
        # scaled so that outputs are O(1) at any K (f16 overflows at 65504)
        k = s["K"] ** -0.25
        args: list[Any] = [_randn((s["M"], s["K"]), dtype, d, g, k),
                           _randn((s["K"], s["N"]), dtype, d, g, k)]
        if bias:
            args.append(_randn((s["N"],), dtype, d, g))
        return args
    return make


def eager_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


def eager_matmul_bias_gelu(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.gelu(a @ b + bias)


def addmm_gelu(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.gelu(torch.addmm(bias, a, b))


def _mm_flops(s: Sizes) -> float:
    return 2.0 * s["M"] * s["N"] * s["K"]


MM = {"bench": {"M": 8192, "N": 8192, "K": 8192}, "quick": {"M": 4096, "N": 4096, "K": 4096},
      "check": {"M": 67, "N": 97, "K": 130}, "dry": {"M": 33, "N": 47, "K": 70}}
MM_EPI = {"bench": {"M": 1024, "N": 8192, "K": 8192}, "quick": {"M": 1024, "N": 4096, "K": 4096},
          "check": {"M": 67, "N": 97, "K": 130}, "dry": {"M": 33, "N": 47, "K": 70}}


def _qkv(s: Sizes, d: torch.device, g: torch.Generator) -> list[Any]:
    shape = (s["B"], s["H"], s["S"], s["D"])
    return [_randn(shape, torch.float16, d, g), _randn(shape, torch.float16, d, g),
            _randn(shape, torch.float16, d, g), s["D"] ** -0.5]


def eager_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    scale: float) -> torch.Tensor:
    return torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1) @ v


def _attn_flops(s: Sizes) -> float:
    return 4.0 * s["B"] * s["H"] * s["S"] * s["S"] * s["D"]


def _attn_sizes(d: int) -> dict[str, Sizes]:
    return {"bench": {"B": 16, "H": 16, "S": 2048, "D": d},
            "quick": {"B": 4, "H": 16, "S": 2048, "D": d},
            "check": {"B": 2, "H": 3, "S": 75, "D": d}, "dry": {"B": 1, "H": 2, "S": 37, "D": d}}


def _conv_in(s: Sizes, d: torch.device, g: torch.Generator) -> list[Any]:
    k = (s["C"] * s["K"] * s["K"]) ** -0.25
    return [_randn((s["N"], s["C"], s["H"], s["H"]), torch.float32, d, g, k),
            _randn((s["O"], s["C"], s["K"], s["K"]), torch.float32, d, g, k),
            _randn((s["O"],), torch.float32, d, g)]


def eager_conv2d(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w, bias)


def _conv_flops(s: Sizes) -> float:
    p = s["H"] - s["K"] + 1
    return 2.0 * s["N"] * s["O"] * p * p * s["C"] * s["K"] * s["K"]


CONV = {"bench": {"N": 32, "C": 128, "H": 58, "O": 128, "K": 3},
        "quick": {"N": 16, "C": 128, "H": 58, "O": 128, "K": 3},
        "check": {"N": 2, "C": 5, "H": 11, "O": 6, "K": 3},
        "dry": {"N": 1, "C": 3, "H": 9, "O": 4, "K": 3}}


WORKLOADS: list[Workload] = [
    _mem("vector_add", "vector_add", "vector_add", _ab_vec, eager_add, sizes=VEC,
         aliases=("add", "vadd"), quick=True),
    _mem("relu", "relu", "relu", _x(torch.float32), eager_relu),
    _mem("gelu", "gelu", "gelu", _x(torch.float32), eager_gelu),
    _mem("softmax", "softmax", "softmax", _x(torch.float32), eager_softmax,
         aliases=("row_softmax",), quick=True),
    _mem("log_softmax", "log_softmax", "log_softmax", _x(torch.float32), eager_log_softmax,
         aliases=("logsoftmax",)),
    _mem("layernorm_bf16", "layernorm", "layernorm", _x_w_b, eager_layernorm, dtype="bf16",
         aliases=("layer_norm",)),
    _mem("rmsnorm", "rmsnorm", "rmsnorm", _x_w, eager_rmsnorm, aliases=("rms_norm",),
         quick=True, extras={"eager-naive": naive_rmsnorm}),
    _mem("row_sum", "row_sum", "row_sum", _x(torch.float32), eager_row_sum,
         aliases=("rowsum", "sum_rows", "reduce_sum")),
    Workload("matmul_f16", "matmul", "matmul", _ab(torch.float16), eager_matmul, MM,
             bound="compute", dtype="f16", flops=_mm_flops, aliases=("gemm", "matmul_f16"),
             quick=True, targets={"triton": [("vs_eager", 0.85)], "cuda": [("vs_eager", 0.6)]}),
    Workload("matmul_bf16", "matmul_bf16", "matmul_bf16", _ab(torch.bfloat16), eager_matmul, MM,
             bound="compute", dtype="bf16", flops=_mm_flops, aliases=("gemm_bf16",),
             targets={"triton": [("vs_eager", 0.85)]}),
    Workload("matmul_bias_gelu", "matmul_bias_gelu", "matmul_bias_gelu",
             _ab(torch.float16, bias=True), eager_matmul_bias_gelu, MM_EPI, bound="compute",
             dtype="f16", flops=_mm_flops, aliases=("linear_gelu", "matmul_gelu"),
             extras={"addmm+gelu": addmm_gelu},
             targets={"triton": [("vs_eager", 1.08), ("vs_compile", 1.0)]}),
    Workload("attention_d64", "attention", "attention", _qkv, eager_sdpa, _attn_sizes(64),
             bound="compute", dtype="f16", flops=_attn_flops,
             aliases=("sdpa", "mha", "flash_attention"), quick=True,
             extras={"eager-naive": naive_attention}, targets={"triton": [("vs_eager", 0.7)]}),
    Workload("attention_d128", "attention", "attention", _qkv, eager_sdpa, _attn_sizes(128),
             bound="compute", dtype="f16", flops=_attn_flops,
             aliases=("sdpa", "mha", "flash_attention"),
             extras={"eager-naive": naive_attention}, targets={"triton": [("vs_eager", 0.7)]}),
    # f32, IEEE (run.py turns cuDNN's TF32 off, as kspec's f32 contractions are IEEE)
    Workload("conv2d_f32", "conv2d", "conv2d", _conv_in, eager_conv2d, CONV, bound="compute",
             dtype="f32", flops=_conv_flops, aliases=("conv",)),
]
