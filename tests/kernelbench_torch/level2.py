"""Independent PyTorch implementations of the level2 translations
(bench/kernelbench/level2/<stem>.kspec), for tests/test_kernelbench_translations.py.

Each entry takes the kernel's inputs as keyword arguments (by kernel input name) and returns
the kernel's output in the kernel's own shape: a reduction's kept dim of size 1 dropped, and
where a GroupNorm follows a linear layer or a convolution, the features or channels split
[G, CG] as the translation takes its weights. Written from each problem's PyTorch code with
torch ops (F.linear, F.conv2d/3d, F.group_norm, F.batch_norm in training mode, the pools);
the scalar parameters keep the translation's defaults.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _groups(t: Tensor) -> Tensor:
    """A [G, CG, ...] parameter as the model holds it: [G * CG, ...]."""
    return t.flatten(0, 1)


def _split(y: Tensor, g: int) -> Tensor:
    """The model's [N, G * CG, ...] result in the kernel's [N, G, CG, ...] view."""
    return y.unflatten(1, (g, -1))


def _gn(y: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """F.group_norm with the kernel's [G, CG] weights, on the model's [N, G * CG, ...]."""
    return F.group_norm(y, weight.shape[0], _groups(weight), _groups(bias), eps)


def _bn(y: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """BatchNorm as KernelBench runs it: the module in training mode, batch statistics."""
    return F.batch_norm(y, None, None, weight, bias, training=True, eps=eps)


def _mish(y: Tensor) -> Tensor:
    return F.mish(y)


def _leaky(y: Tensor, slope: float = 0.01) -> Tensor:
    return F.leaky_relu(y, negative_slope=slope)


def _lse(y: Tensor, dim: int | tuple[int, ...] = 1) -> Tensor:
    return torch.logsumexp(y, dim=dim)


def _linear_gn(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """nn.Linear with the kernel's [G, NG, K] weight and [G, NG] bias."""
    return F.linear(x, _groups(weight), _groups(bias))


def _conv2d_gn(x: Tensor, conv_weight: Tensor, conv_bias: Tensor) -> Tensor:
    return F.conv2d(x, _groups(conv_weight), _groups(conv_bias))


def _conv3d_gn(x: Tensor, conv_weight: Tensor, conv_bias: Tensor) -> Tensor:
    return F.conv3d(x, _groups(conv_weight), _groups(conv_bias))


# --- GEMM fusions -------------------------------------------------------------------------------
def _gemm_group_norm_hardtanh(x, gemm_weight, gemm_bias, group_norm_weight, group_norm_bias,
                              eps=1e-5, hardtanh_min=-2.0, hardtanh_max=2.0):
    y = _gn(_linear_gn(x, gemm_weight, gemm_bias), group_norm_weight, group_norm_bias, eps)
    return _split(F.hardtanh(y, hardtanh_min, hardtanh_max), gemm_weight.shape[0])


def _matmul_swish_sum_group_norm(x, matmul_weight, matmul_bias, bias, group_norm_weight,
                                 group_norm_bias, eps=1e-5):
    y = _linear_gn(x, matmul_weight, matmul_bias)
    y = torch.sigmoid(y) * y + _groups(bias)
    return _split(_gn(y, group_norm_weight, group_norm_bias, eps), bias.shape[0])


def _matmul_group_norm_leaky_relu_sum(x, fc_weight, fc_bias, gn_weight, gn_bias, eps=1e-5,
                                      negative_slope=0.01):
    y = _leaky(_gn(_linear_gn(x, fc_weight, fc_bias), gn_weight, gn_bias, eps), negative_slope)
    return _split(y + y, gn_weight.shape[0])


def _gemm_group_norm_min_bias_add(x, gemm_weight, gemm_bias, group_norm_weight,
                                  group_norm_bias, bias, eps=1e-5):
    y = _gn(_linear_gn(x, gemm_weight, gemm_bias), group_norm_weight, group_norm_bias, eps)
    low = torch.min(y, dim=1, keepdim=True)[0]                  # [B, 1]
    return (low + bias.reshape(1, -1, 1, 1)).reshape(bias.shape[0], x.shape[0])


def _gemm_group_norm_swish_multiply_swish(x, gemm_weight, gemm_bias, group_norm_weight,
                                          group_norm_bias, multiply_weight, eps=1e-5):
    y = _gn(_linear_gn(x, gemm_weight, gemm_bias), group_norm_weight, group_norm_bias, eps)
    y = y * torch.sigmoid(y) * _groups(multiply_weight)
    return _split(y * torch.sigmoid(y), gemm_weight.shape[0])


def _gemm_bias_hardtanh_mish_group_norm(x, gemm_weight, gemm_bias, bias, groupnorm_weight,
                                        groupnorm_bias, eps=1e-5):
    y = _mish(F.hardtanh(_linear_gn(x, gemm_weight, gemm_bias) + _groups(bias)))
    return _split(_gn(y, groupnorm_weight, groupnorm_bias, eps), bias.shape[0])


def _gemm_batch_norm_scaling_softmax(x, gemm_weight, gemm_bias, bn_weight, bn_bias, scale,
                                     eps=1e-5):
    y = scale * _bn(F.linear(x, gemm_weight, gemm_bias), bn_weight, bn_bias, eps)
    return torch.softmax(y, dim=1)


def _matmul_batch_norm_bias_divide_swish(x, matmul_weight, matmul_bias, bn_weight, bn_bias,
                                         bias, eps=1e-5, divide_value=1.0):
    y = (_bn(F.linear(x, matmul_weight, matmul_bias), bn_weight, bn_bias, eps) + bias)
    y = y / divide_value
    return y * torch.sigmoid(y)


def _matmul_scale_residual_clamp_logsumexp_mish(x, matmul_weight, matmul_bias,
                                                scale_factor=2.0, clamp_min=-10.0,
                                                clamp_max=10.0):
    y = F.linear(x, matmul_weight, matmul_bias) * scale_factor
    y = _lse(torch.clamp(y + y, clamp_min, clamp_max))
    return y * _mish(y)


def _matmul_sum_max_avg_logsumexp(x, linear_weight, linear_bias):
    y = torch.sum(F.linear(x, linear_weight, linear_bias), dim=1, keepdim=True)
    y = torch.mean(torch.max(y, dim=1, keepdim=True)[0], dim=1, keepdim=True)
    y = torch.logsumexp(torch.logsumexp(y, dim=1, keepdim=True), dim=1, keepdim=True)
    return y.reshape(x.shape[0])


def _bmm_instance_norm_residual_multiply(x, y, bmm_weight, bmm_bias, eps=1e-5):
    h = F.linear(x, bmm_weight, bmm_bias)
    h = F.instance_norm(h.unsqueeze(1).unsqueeze(1), eps=eps).squeeze(1).squeeze(1)
    return (h + y) * y


# --- convolution fusions ------------------------------------------------------------------------
def _conv2d_add_scale_sigmoid_group_norm(x, conv_weight, conv_bias, bias, scale,
                                         group_norm_weight, group_norm_bias, eps=1e-5):
    y = torch.sigmoid((_conv2d_gn(x, conv_weight, conv_bias) + _groups(bias)) * _groups(scale))
    return _split(_gn(y, group_norm_weight, group_norm_bias, eps), bias.shape[0])


def _conv3d_group_norm_mean(x, conv_weight, conv_bias, group_norm_weight, group_norm_bias,
                            eps=1e-5):
    y = _gn(_conv3d_gn(x, conv_weight, conv_bias), group_norm_weight, group_norm_bias, eps)
    return y.mean(dim=[1, 2, 3, 4])


def _conv3d_hardswish_group_norm_mean(x, conv_weight, conv_bias, group_norm_weight,
                                      group_norm_bias, eps=1e-5):
    y = F.hardswish(_conv3d_gn(x, conv_weight, conv_bias))
    y = _gn(y, group_norm_weight, group_norm_bias, eps).mean(dim=[2, 3, 4])
    return _split(y, conv_bias.shape[0])


def _conv2d_group_norm_scale_max_pool_clamp(x, conv_weight, conv_bias, group_norm_weight,
                                            group_norm_bias, scale, eps=1e-5, clamp_min=0.0,
                                            clamp_max=1.0):
    y = _gn(_conv2d_gn(x, conv_weight, conv_bias), group_norm_weight, group_norm_bias, eps)
    y = torch.clamp(F.max_pool2d(y * _groups(scale), 4), clamp_min, clamp_max)
    return _split(y, scale.shape[0])


def _conv2d_group_norm_tanh_hardswish_residual_logsumexp(x, conv_weight, conv_bias,
                                                         group_norm_weight, group_norm_bias,
                                                         eps=1e-5):
    conv = _conv2d_gn(x, conv_weight, conv_bias)
    y = F.hardswish(torch.tanh(_gn(conv, group_norm_weight, group_norm_bias, eps)))
    return _lse(conv + y)


def _conv3d_multiply_instance_norm_clamp_multiply_max(x, conv_weight, conv_bias, multiplier,
                                                      eps=1e-5, clamp_min=-1.0, clamp_max=1.0):
    y = F.instance_norm(F.conv3d(x, conv_weight, conv_bias) * multiplier, eps=eps)
    return torch.amax(torch.clamp(y, clamp_min, clamp_max) * multiplier, dim=1)


def _conv3d_softmax_max_pool_max_pool(x, conv_weight, conv_bias):
    y = torch.softmax(F.conv3d(x, conv_weight, conv_bias), dim=1)
    return F.max_pool3d(F.max_pool3d(y, 2), 2)


def _conv3d_divide_max_pool_avg_bias_sum(x, conv_weight, conv_bias, bias, divisor=2.0):
    y = F.max_pool3d(F.conv3d(x, conv_weight, conv_bias) / divisor, 2)
    y = F.adaptive_avg_pool3d(y, (1, 1, 1)) + bias
    return torch.sum(y, dim=1).reshape(x.shape[0])


def _conv2d_instance_norm_divide(x, conv_weight, conv_bias, eps=1e-5, divide_by=2.0):
    return F.instance_norm(F.conv2d(x, conv_weight, conv_bias), eps=eps) / divide_by


def _conv2d_activation_batch_norm(x, conv_weight, conv_bias, bn_weight, bn_bias, eps=1e-5):
    y = F.conv2d(x, conv_weight, conv_bias)
    return _bn(torch.tanh(F.softplus(y)) * y, bn_weight, bn_bias, eps)


def _conv2d_batch_norm_scaling(x, conv_weight, conv_bias, bn_weight, bn_bias, eps=1e-5,
                               scaling_factor=2.0):
    return _bn(F.conv2d(x, conv_weight, conv_bias), bn_weight, bn_bias, eps) * scaling_factor


def _conv(x: Tensor, conv_weight: Tensor, conv_bias: Tensor) -> Tensor:
    """Conv2d or Conv3d (stride 1, no padding) by the weight's rank."""
    return (F.conv2d if conv_weight.dim() == 4 else F.conv3d)(x, conv_weight, conv_bias)


TORCH: dict[str, Callable[..., Tensor]] = {
    # GEMM / Matmul fusions
    "9_Matmul_Subtract_Multiply_ReLU":
        lambda x, linear_weight, linear_bias, subtract_value=2.0, multiply_value=1.5: torch.relu(
            (F.linear(x, linear_weight, linear_bias) - subtract_value) * multiply_value),
    "12_Gemm_Multiply_LeakyReLU":
        lambda x, gemm_weight, gemm_bias, multiplier=2.0, negative_slope=0.1: _leaky(
            F.linear(x, gemm_weight, gemm_bias) * multiplier, negative_slope),
    "14_Gemm_Divide_Sum_Scaling":
        lambda x, weight, scaling_factor=1.5: torch.sum(
            torch.matmul(x, weight.T) / 2, dim=1) * scaling_factor,
    "18_Matmul_Sum_Max_AvgPool_LogSumExp_LogSumExp": _matmul_sum_max_avg_logsumexp,
    "22_Matmul_Scale_ResidualAdd_Clamp_LogSumExp_Mish":
        _matmul_scale_residual_clamp_logsumexp_mish,
    "28_BMM_InstanceNorm_Sum_ResidualAdd_Multiply": _bmm_instance_norm_residual_multiply,
    "29_Matmul_Mish_Mish":
        lambda x, linear_weight, linear_bias: _mish(_mish(F.linear(x, linear_weight,
                                                                   linear_bias))),
    "30_Gemm_GroupNorm_Hardtanh": _gemm_group_norm_hardtanh,
    "33_Gemm_Scale_BatchNorm":
        lambda x, gemm_weight, gemm_bias, scale, bn_weight, bn_bias, eps=1e-5: _bn(
            F.linear(x, gemm_weight, gemm_bias) * scale, bn_weight, bn_bias, eps),
    "37_Matmul_Swish_Sum_GroupNorm": _matmul_swish_sum_group_norm,
    "39_Gemm_Scale_BatchNorm":
        lambda x, gemm_weight, gemm_bias, scale, bn_weight, bn_bias, eps=1e-5: _bn(
            F.linear(x, gemm_weight, gemm_bias) * scale, bn_weight, bn_bias, eps),
    "40_Matmul_Scaling_ResidualAdd":
        lambda x, matmul_weight, matmul_bias, scaling_factor=0.5: (lambda h: h * scaling_factor
            + h)(F.linear(x, matmul_weight, matmul_bias)),
    "41_Gemm_BatchNorm_GELU_ReLU":
        lambda x, gemm_weight, gemm_bias, batch_norm_weight, batch_norm_bias, eps=1e-5:
            torch.relu(F.gelu(_bn(F.linear(x, gemm_weight, gemm_bias), batch_norm_weight,
                                  batch_norm_bias, eps))),
    "45_Gemm_Sigmoid_LogSumExp":
        lambda x, linear1_weight, linear1_bias, linear2_weight, linear2_bias: _lse(F.linear(
            torch.sigmoid(F.linear(x, linear1_weight, linear1_bias)), linear2_weight,
            linear2_bias)),
    "51_Gemm_Subtract_GlobalAvgPool_LogSumExp_GELU_ResidualAdd":
        lambda x, gemm_weight, gemm_bias, subtract: F.gelu(_lse(torch.mean(
            F.linear(x, gemm_weight, gemm_bias) - subtract, dim=1, keepdim=True), 1)
            ).unsqueeze(1) + x,
    "53_Gemm_Scaling_Hardtanh_GELU":
        lambda x, gemm_weight, gemm_bias, scaling_factor=0.5, hardtanh_min=-2.0,
        hardtanh_max=2.0: F.gelu(F.hardtanh(F.linear(x, gemm_weight, gemm_bias)
                                            * scaling_factor, hardtanh_min, hardtanh_max)),
    "55_Matmul_MaxPool_Sum_Scale":
        lambda x, matmul_weight, matmul_bias, scale_factor=0.5: torch.sum(F.max_pool1d(
            F.linear(x, matmul_weight, matmul_bias).unsqueeze(1), 2).squeeze(1),
            dim=1) * scale_factor,
    "56_Matmul_Sigmoid_Sum":
        lambda x, linear_weight, linear_bias: torch.sum(torch.sigmoid(
            F.linear(x, linear_weight, linear_bias)), dim=1),
    "59_Matmul_Swish_Scaling":
        lambda x, matmul_weight, matmul_bias, scaling_factor=2.0: F.silu(
            F.linear(x, matmul_weight, matmul_bias)) * scaling_factor,
    "62_Matmul_GroupNorm_LeakyReLU_Sum": _matmul_group_norm_leaky_relu_sum,
    "63_Gemm_ReLU_Divide":
        lambda x, linear_weight, linear_bias, divisor=2.0: torch.relu(
            F.linear(x, linear_weight, linear_bias)) / divisor,
    "64_Gemm_LogSumExp_LeakyReLU_LeakyReLU_GELU_GELU":
        lambda x, linear_weight, linear_bias: F.gelu(F.gelu(_leaky(_leaky(_lse(
            F.linear(x, linear_weight, linear_bias)))))),
    "68_Matmul_Min_Subtract":
        lambda x, linear_weight, linear_bias, constant: torch.clamp(
            F.linear(x, linear_weight, linear_bias), max=constant) - constant,
    "70_Gemm_Sigmoid_Scaling_ResidualAdd":
        lambda x, gemm_weight, gemm_bias, scaling_factor=2.0: (lambda h: torch.sigmoid(h)
            * scaling_factor + h)(F.linear(x, gemm_weight, gemm_bias)),
    "75_Gemm_GroupNorm_Min_BiasAdd": _gemm_group_norm_min_bias_add,
    "76_Gemm_Add_ReLU":
        lambda x, gemm_weight, bias: torch.relu(F.linear(x, gemm_weight) + bias),
    "80_Gemm_Max_Subtract_GELU":
        lambda x, gemm_weight, gemm_bias: (lambda m: F.gelu(m - m.mean(dim=1, keepdim=True)))(
            torch.amax(F.linear(x, gemm_weight, gemm_bias), dim=1, keepdim=True)).squeeze(1),
    "81_Gemm_Swish_Divide_Clamp_Tanh_Clamp":
        lambda x, gemm_weight, gemm_bias: torch.clamp(torch.tanh(torch.clamp(F.silu(
            F.linear(x, gemm_weight, gemm_bias)) / 2.0, -1.0, 1.0)), -1.0, 1.0),
    "84_Gemm_BatchNorm_Scaling_Softmax": _gemm_batch_norm_scaling_softmax,
    "86_Matmul_Divide_GELU":
        lambda x, linear_weight, linear_bias, divisor=10.0: F.gelu(
            F.linear(x, linear_weight, linear_bias) / divisor),
    "88_Gemm_GroupNorm_Swish_Multiply_Swish": _gemm_group_norm_swish_multiply_swish,
    "94_Gemm_BiasAdd_Hardtanh_Mish_GroupNorm": _gemm_bias_hardtanh_mish_group_norm,
    "95_Matmul_Add_Swish_Tanh_GELU_Hardtanh":
        lambda x, matmul_weight, matmul_bias, add_value: F.hardtanh(F.gelu(torch.tanh(F.silu(
            F.linear(x, matmul_weight, matmul_bias) + add_value)))),
    "97_Matmul_BatchNorm_BiasAdd_Divide_Swish": _matmul_batch_norm_bias_divide_swish,
    "98_Matmul_AvgPool_GELU_Scale_Max":
        lambda x, matmul_weight, matmul_bias, scale_factor=2.0: torch.amax(F.gelu(F.avg_pool1d(
            F.linear(x, matmul_weight, matmul_bias).unsqueeze(1), 16).squeeze(1))
            * scale_factor, dim=1),
    "99_Matmul_GELU_Softmax":
        lambda x, linear_weight, linear_bias: torch.softmax(F.gelu(
            F.linear(x, linear_weight, linear_bias)), dim=1),
    # Conv2d / Conv3d fusions (stride 1, no padding)
    "1_Conv2D_ReLU_BiasAdd":
        lambda x, conv_weight, conv_bias, bias: torch.relu(_conv(x, conv_weight, conv_bias))
            + bias,
    "4_Conv2d_Mish_Mish":
        lambda x, conv_weight, conv_bias: _mish(_mish(_conv(x, conv_weight, conv_bias))),
    "6_Conv3d_Softmax_MaxPool_MaxPool": _conv3d_softmax_max_pool_max_pool,
    "7_Conv3d_ReLU_LeakyReLU_GELU_Sigmoid_BiasAdd":
        lambda x, conv_weight, conv_bias, bias: torch.sigmoid(F.gelu(_leaky(torch.relu(
            _conv(x, conv_weight, conv_bias))))) + bias,
    "8_Conv3d_Divide_Max_GlobalAvgPool_BiasAdd_Sum": _conv3d_divide_max_pool_avg_bias_sum,
    "17_Conv2d_InstanceNorm_Divide": _conv2d_instance_norm_divide,
    "21_Conv2d_Add_Scale_Sigmoid_GroupNorm": _conv2d_add_scale_sigmoid_group_norm,
    "23_Conv3d_GroupNorm_Mean": _conv3d_group_norm_mean,
    "24_Conv3d_Min_Softmax":
        lambda x, conv_weight, conv_bias: torch.softmax(torch.min(
            _conv(x, conv_weight, conv_bias), dim=2)[0], dim=1),
    "25_Conv2d_Min_Tanh_Tanh":
        lambda x, conv_weight, conv_bias: torch.tanh(torch.tanh(torch.min(
            _conv(x, conv_weight, conv_bias), dim=1)[0])),
    "27_Conv3d_HardSwish_GroupNorm_Mean": _conv3d_hardswish_group_norm_mean,
    "31_Conv2d_Min_Add_Multiply":
        lambda x, conv_weight, conv_bias, bias, constant_value=0.5, scaling_factor=2.0: (
            torch.clamp(_conv(x, conv_weight, conv_bias), max=constant_value) + bias)
            * scaling_factor,
    "32_Conv2d_Scaling_Min":
        lambda x, conv_weight, conv_bias, scale_factor=2.0: torch.amin(
            _conv(x, conv_weight, conv_bias) * scale_factor, dim=1),
    "35_Conv2d_Subtract_HardSwish_MaxPool_Mish":
        lambda x, conv_weight, conv_bias, subtract_value=0.5: _mish(F.max_pool2d(F.hardswish(
            _conv(x, conv_weight, conv_bias) - subtract_value), 2)),
    "46_Conv2d_Subtract_Tanh_Subtract_AvgPool":
        lambda x, conv_weight, conv_bias, subtract1_value=0.5, subtract2_value=0.2: F.avg_pool2d(
            torch.tanh(_conv(x, conv_weight, conv_bias) - subtract1_value) - subtract2_value, 2),
    "47_Conv3d_Mish_Tanh":
        lambda x, conv_weight, conv_bias: torch.tanh(_mish(_conv(x, conv_weight, conv_bias))),
    "48_Conv3d_Scaling_Tanh_Multiply_Sigmoid":
        lambda x, conv_weight, conv_bias, scaling_factor, bias: torch.sigmoid(torch.tanh(
            _conv(x, conv_weight, conv_bias) * scaling_factor) * bias),
    "52_Conv2d_Activation_BatchNorm": _conv2d_activation_batch_norm,
    "54_Conv2d_Multiply_LeakyReLU_GELU":
        lambda x, conv_weight, conv_bias, multiplier: F.gelu(_leaky(
            _conv(x, conv_weight, conv_bias) * multiplier)),
    "57_Conv2d_ReLU_HardSwish":
        lambda x, conv_weight, conv_bias: (lambda v: v * torch.clamp((v + 3) / 6, 0, 1))(
            torch.relu(_conv(x, conv_weight, conv_bias))),
    "65_Conv2d_AvgPool_Sigmoid_Sum":
        lambda x, conv_weight, conv_bias: torch.sum(torch.sigmoid(F.avg_pool2d(
            _conv(x, conv_weight, conv_bias), 4)), dim=[1, 2, 3]),
    "67_Conv2d_GELU_GlobalAvgPool":
        lambda x, conv_weight, conv_bias: F.adaptive_avg_pool2d(F.gelu(
            _conv(x, conv_weight, conv_bias)), 1).squeeze(-1).squeeze(-1),
    "69_Conv2d_HardSwish_ReLU":
        lambda x, conv_weight, conv_bias: torch.relu(F.hardswish(
            _conv(x, conv_weight, conv_bias))),
    "71_Conv2d_Divide_LeakyReLU":
        lambda x, conv_weight, conv_bias, divisor=2.0: _leaky(
            _conv(x, conv_weight, conv_bias) / divisor),
    "73_Conv2d_BatchNorm_Scaling": _conv2d_batch_norm_scaling,
    "79_Conv3d_Multiply_InstanceNorm_Clamp_Multiply_Max":
        _conv3d_multiply_instance_norm_clamp_multiply_max,
    "82_Conv2d_Tanh_Scaling_BiasAdd_Max":
        lambda x, conv_weight, conv_bias, bias, scaling_factor=2.0: F.max_pool2d(torch.tanh(
            _conv(x, conv_weight, conv_bias)) * scaling_factor + bias, 4),
    "85_Conv2d_GroupNorm_Scale_MaxPool_Clamp": _conv2d_group_norm_scale_max_pool_clamp,
    "87_Conv2d_Subtract_Subtract_Mish":
        lambda x, conv_weight, conv_bias, subtract_value_1=0.5, subtract_value_2=0.2: _mish(
            _conv(x, conv_weight, conv_bias) - subtract_value_1 - subtract_value_2),
    "90_Conv3d_LeakyReLU_Sum_Clamp_GELU":
        lambda x, conv_weight, conv_bias, sum_tensor: F.gelu(torch.clamp(_leaky(
            _conv(x, conv_weight, conv_bias), 0.2) + sum_tensor, -1.0, 1.0)),
    "92_Conv2d_GroupNorm_Tanh_HardSwish_ResidualAdd_LogSumExp":
        _conv2d_group_norm_tanh_hardswish_residual_logsumexp,
}
