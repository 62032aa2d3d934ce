"""Independent PyTorch implementations of the level2 translations that start with a
transposed convolution or a padded convolution (bench/kernelbench/level2/<stem>.kspec), for
tests/test_kernelbench_translations.py; the conventions are level2.py's (the kernel's own
output shape, channels split [G, CG] where a GroupNorm follows)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _split(y: Tensor, g: int) -> Tensor:
    """The model's [N, G * CG, ...] result in the kernel's [N, G, CG, ...] view."""
    return y.unflatten(1, (g, -1))


def _gn(y: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """F.group_norm with the kernel's [G, CG] weights, on the model's [N, G * CG, ...]."""
    return F.group_norm(y, weight.shape[0], weight.flatten(), bias.flatten(), eps)


def _bn(y: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """BatchNorm in training mode (batch statistics), as KernelBench runs it."""
    return F.batch_norm(y, None, None, weight, bias, training=True, eps=eps)


def _ct(x: Tensor, weight: Tensor, bias: Tensor | None, **options) -> Tensor:
    """ConvTranspose2d or 3d by the weight's rank; a weight split [C, G, CG, ...] (and its bias
    [G, CG]) is taken back to the model's [C, O, ...]."""
    if weight.dim() == x.dim() + 1:
        weight = weight.flatten(1, 2)
        bias = None if bias is None else bias.flatten()
    conv = F.conv_transpose2d if weight.dim() == 4 else F.conv_transpose3d
    return conv(x, weight, bias, **options)


S2 = {"stride": 2, "padding": 1, "output_padding": 1}     # the usual stride-2 upsampling


# --- 2-D ----------------------------------------------------------------------------------------
def _ct2d_bn_tanh_pool_gn(x, conv_transpose_weight, conv_transpose_bias, batch_norm_weight,
                          batch_norm_bias, group_norm_weight, group_norm_bias, bn_eps=1e-5,
                          gn_eps=1e-5):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, padding=1)
    y = torch.tanh(_bn(conv, batch_norm_weight.flatten(), batch_norm_bias.flatten(), bn_eps))
    y = _gn(F.max_pool2d(y, 2, 2), group_norm_weight, group_norm_bias, gn_eps)
    return _split(y, group_norm_weight.shape[0])


def _ct2d_gelu_gn(x, conv_transpose_weight, conv_transpose_bias, group_norm_weight,
                  group_norm_bias, eps=1e-5):
    v = F.gelu(_ct(x, conv_transpose_weight, conv_transpose_bias))
    return _split(_gn(v, group_norm_weight, group_norm_bias, eps), group_norm_weight.shape[0])


def _ct2d_avg_bias_lse_sum_mul(x, conv_transpose_weight, conv_transpose_bias, bias):
    avg = torch.mean(_ct(x, conv_transpose_weight, conv_transpose_bias), dim=(2, 3),
                     keepdim=True) + bias
    y = torch.sum(torch.logsumexp(avg, dim=1, keepdim=True), dim=(2, 3)) * 10.0
    return y.reshape(x.shape[0])


def _ct2d_softmax_bias_scale_sigmoid(x, conv_transpose_weight, conv_transpose_bias, bias,
                                     scaling_factor=2.0):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, **S2)
    return torch.sigmoid((torch.softmax(conv, dim=1) + bias) * scaling_factor)


TORCH: dict[str, Callable[..., Tensor]] = {
    "2_ConvTranspose2d_BiasAdd_Clamp_Scaling_Clamp_Divide":
        lambda x, conv_transpose_weight, conv_transpose_bias, bias, scaling_factor=2.0:
            torch.clamp(torch.clamp(_ct(x, conv_transpose_weight, conv_transpose_bias, **S2)
                                    + bias, 0.0, 1.0) * scaling_factor, 0.0, 1.0)
            / scaling_factor,
    "5_ConvTranspose2d_Subtract_Tanh":
        lambda x, conv_transpose_weight, conv_transpose_bias, bias: torch.tanh(
            _ct(x, conv_transpose_weight, conv_transpose_bias, **S2) - bias),
    "10_ConvTranspose2d_MaxPool_Hardtanh_Mean_Tanh":
        lambda x, conv_transpose_weight, conv_transpose_bias, hardtanh_min=-1.0,
        hardtanh_max=1.0: torch.tanh(torch.mean(F.hardtanh(F.max_pool2d(
            _ct(x, conv_transpose_weight, conv_transpose_bias, padding=1), 2, 2), hardtanh_min,
            hardtanh_max), dim=(2, 3))),
    "11_ConvTranspose2d_BatchNorm_Tanh_MaxPool_GroupNorm": _ct2d_bn_tanh_pool_gn,
    "16_ConvTranspose2d_Mish_Add_Hardtanh_Scaling":
        lambda x, conv_transpose_weight, conv_transpose_bias, add_value=0.5, scale=2.0:
            F.hardtanh(F.mish(_ct(x, conv_transpose_weight, conv_transpose_bias, **S2))
                       + add_value, -1, 1) * scale,
    "19_ConvTranspose2d_GELU_GroupNorm": _ct2d_gelu_gn,
    "36_ConvTranspose2d_Min_Sum_GELU_Add":
        lambda x, conv_transpose_weight, conv_transpose_bias, bias: (F.gelu(torch.sum(torch.min(
            _ct(x, conv_transpose_weight, conv_transpose_bias, **S2), dim=1, keepdim=True)[0],
            dim=2, keepdim=True)) + bias).reshape(x.shape[0], -1),
    "42_ConvTranspose2d_GlobalAvgPool_BiasAdd_LogSumExp_Sum_Multiply":
        _ct2d_avg_bias_lse_sum_mul,
    "44_ConvTranspose2d_Multiply_GlobalAvgPool_GlobalAvgPool_Mean":
        lambda x, conv_transpose_weight, conv_transpose_bias, multiplier=0.5: torch.mean(
            torch.mean(_ct(x, conv_transpose_weight, conv_transpose_bias, **S2) * multiplier,
                       dim=[2, 3], keepdim=True), dim=[2, 3]),
    "91_ConvTranspose2d_Softmax_BiasAdd_Scaling_Sigmoid": _ct2d_softmax_bias_scale_sigmoid,
    "93_ConvTranspose2d_Add_Min_GELU_Multiply":
        lambda x, conv_transpose_weight, conv_transpose_bias, add_value=0.5,
        multiply_value=2.0: F.gelu(torch.clamp(_ct(x, conv_transpose_weight,
                                                   conv_transpose_bias, stride=2)
                                               + add_value, max=0.0)) * multiply_value,
}


# --- 3-D ----------------------------------------------------------------------------------------
def _ct3d_sum_ln_pool_gelu(x, conv_transpose_weight, conv_transpose_bias, norm_weight, norm_bias,
                           sum_weight=1.0, eps=1e-5):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, **S2) + sum_weight
    y = F.layer_norm(conv, (conv.shape[-1],), norm_weight, norm_bias, eps)
    return F.gelu(F.avg_pool3d(y, 2))


def _ct3d_mean_add_softmax(x, conv_transpose_weight, conv_transpose_bias, bias,
                           scaling_factor=2.0):
    avg = _ct(x, conv_transpose_weight, conv_transpose_bias, padding=1).mean(dim=2,
                                                                             keepdim=True)
    avg = avg + bias
    y = torch.tanh(torch.softmax(avg, dim=1)) * scaling_factor
    return y.squeeze(2)


def _ct3d_bn_subtract(x, conv_transpose_weight, conv_transpose_bias, batch_norm_weight,
                      batch_norm_bias, eps=1e-5):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1)
    y = _bn(conv, batch_norm_weight, batch_norm_bias, eps)
    return y - torch.mean(y, dim=(2, 3, 4), keepdim=True)


def _ct3d_residuals(x, conv_transpose_weight, conv_transpose_bias, bias):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, **S2)
    return ((conv + bias) + conv) * conv + conv


def _ct3d_ln_gelu_scale(x, conv_transpose_weight, conv_transpose_bias, layer_norm_weight,
                        layer_norm_bias, eps=1e-5, scaling_factor=1.0):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1)
    y = F.layer_norm(conv, (conv.shape[-1],), layer_norm_weight, layer_norm_bias, eps)
    return F.gelu(y) * scaling_factor


def _pool_ct3d_clamp_softmax(x, conv_transpose_weight, conv_transpose_bias, scale,
                             clamp_min=0.0, clamp_max=1.0):
    conv = torch.clamp(_ct(F.avg_pool3d(x, 2), conv_transpose_weight, conv_transpose_bias,
                           **S2), clamp_min, clamp_max)
    y = torch.softmax(conv.flatten(2), dim=2).view_as(conv)
    return y * scale


def _ct3d_softmax_sigmoid(x, conv_transpose_weight, conv_transpose_bias):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, **S2)
    return torch.sigmoid(torch.softmax(conv, dim=1))


def _ct3d_scale_pool_bias_scale(x, conv_transpose_weight, conv_transpose_bias, bias,
                                scale1=0.5, scale2=1.0):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1) * scale1
    return (F.avg_pool3d(conv, 2) + bias) * scale2


def _ct3d_lse_hardswish_clamp(x, conv_transpose_weight, conv_transpose_bias, bias):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1)
    y = torch.logsumexp(conv, dim=1, keepdim=True)
    y = torch.clamp(y * torch.sigmoid(y + 3) / 6 - bias, -1, 1)
    return y.squeeze(1)


def _ct3d_swish_gn_hardswish(x, conv_transpose_weight, conv_transpose_bias, group_norm_weight,
                             group_norm_bias, eps=1e-5):
    v = F.silu(_ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1))
    return _split(F.hardswish(_gn(v, group_norm_weight, group_norm_bias, eps)),
                  group_norm_weight.shape[0])


def _ct3d_relu_gn(x, conv_transpose_weight, group_norm_weight, group_norm_bias, eps=1e-5):
    v = torch.relu(_ct(x, conv_transpose_weight, None))
    return _split(_gn(v, group_norm_weight, group_norm_bias, eps), group_norm_weight.shape[0])


TORCH.update({
    "3_ConvTranspose3d_Sum_LayerNorm_AvgPool_GELU": _ct3d_sum_ln_pool_gelu,
    "13_ConvTranspose3d_Mean_Add_Softmax_Tanh_Scaling": _ct3d_mean_add_softmax,
    "15_ConvTranspose3d_BatchNorm_Subtract": _ct3d_bn_subtract,
    "20_ConvTranspose3d_Sum_ResidualAdd_Multiply_ResidualAdd": _ct3d_residuals,
    "26_ConvTranspose3d_Add_HardSwish":
        lambda x, add_input, conv_transpose_weight, conv_transpose_bias: (lambda v: v * F.hardswish(
            v))(_ct(x, conv_transpose_weight, conv_transpose_bias, **S2) + add_input),
    "34_ConvTranspose3d_LayerNorm_GELU_Scaling": _ct3d_ln_gelu_scale,
    "38_ConvTranspose3d_AvgPool_Clamp_Softmax_Multiply": _pool_ct3d_clamp_softmax,
    "49_ConvTranspose3d_Softmax_Sigmoid": _ct3d_softmax_sigmoid,
    "50_ConvTranspose3d_Scaling_AvgPool_BiasAdd_Scaling": _ct3d_scale_pool_bias_scale,
    "58_ConvTranspose3d_LogSumExp_HardSwish_Subtract_Clamp": _ct3d_lse_hardswish_clamp,
    "60_ConvTranspose3d_Swish_GroupNorm_HardSwish": _ct3d_swish_gn_hardswish,
    "61_ConvTranspose3d_ReLU_GroupNorm": _ct3d_relu_gn,
    "100_ConvTranspose3d_Clamp_Min_Divide":
        lambda x, conv_transpose_weight, conv_transpose_bias, min_value=-1.0, divisor=2.0:
            torch.clamp(_ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1),
                        min=min_value) / divisor,
})


def _ct3d_bn_pool_pool(x, conv_transpose_weight, conv_transpose_bias, batch_norm_weight,
                       batch_norm_bias, eps=1e-5):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1)
    y = _bn(conv, batch_norm_weight, batch_norm_bias, eps)
    return F.avg_pool3d(F.avg_pool3d(y, 2), 2)


def _ct3d_leaky_multiply_leaky_max(x, conv_transpose_weight, conv_transpose_bias, multiplier,
                                   negative_slope=0.2):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, **S2)
    y = F.leaky_relu(F.leaky_relu(conv, negative_slope) * multiplier, negative_slope)
    return F.max_pool3d(y, 2)


def _ct3d_scale_bn_avg(x, conv_transpose_weight, conv_transpose_bias, batch_norm_weight,
                       batch_norm_bias, scale_factor=2.0, eps=1e-5):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias) * scale_factor
    y = _bn(conv, batch_norm_weight, batch_norm_bias, eps)
    return F.adaptive_avg_pool3d(y, (1, 1, 1)).flatten(1)


def _ct3d_multiply_max_avg_clamp(x, conv_transpose_weight, conv_transpose_bias, scale=0.5,
                                 clamp_min=0.0, clamp_max=1.0):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=1) * scale
    y = F.adaptive_avg_pool3d(F.max_pool3d(conv, 2), (1, 1, 1))
    return torch.clamp(y, clamp_min, clamp_max).flatten(1)


TORCH.update({
    "72_ConvTranspose3d_BatchNorm_AvgPool_AvgPool": _ct3d_bn_pool_pool,
    "74_ConvTranspose3d_LeakyReLU_Multiply_LeakyReLU_Max": _ct3d_leaky_multiply_leaky_max,
    "77_ConvTranspose3d_Scale_BatchNorm_GlobalAvgPool": _ct3d_scale_bn_avg,
    "96_ConvTranspose3d_Multiply_Max_GlobalAvgPool_Clamp": _ct3d_multiply_max_avg_clamp,
})


def _conv3d_max_lse_relu(x, conv_weight, conv_bias):
    conv = F.conv3d(x, conv_weight, conv_bias, padding=1)
    return torch.relu(torch.logsumexp(F.max_pool3d(conv, 2, 2), dim=1, keepdim=True))


def _ct3d_max_max_sum(x, conv_transpose_weight, conv_transpose_bias):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, stride=2, padding=2)
    return F.max_pool3d(F.max_pool3d(conv, 2), 3).sum(dim=1, keepdim=True)


def _ct3d_pool_softmax_subtract_swish_max(x, conv_transpose_weight, conv_transpose_bias,
                                          subtract):
    conv = _ct(x, conv_transpose_weight, conv_transpose_bias, **S2)
    y = torch.softmax(F.max_pool3d(conv, 2, 2), dim=1) - subtract.view(1, -1, 1, 1, 1)
    return (torch.sigmoid(y) * y).amax(dim=1)


TORCH.update({
    "43_Conv3d_Max_LogSumExp_ReLU": _conv3d_max_lse_relu,
    "78_ConvTranspose3d_Max_Max_Sum": _ct3d_max_max_sum,
    "89_ConvTranspose3d_MaxPool_Softmax_Subtract_Swish_Max": _ct3d_pool_softmax_subtract_swish_max,
})
