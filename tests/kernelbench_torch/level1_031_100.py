"""Independent PyTorch implementations of the level1 31-100 translations
(bench/kernelbench/level1/<stem>.kspec), for tests/test_kernelbench_translations.py.

Each entry takes the kernel's inputs as keyword arguments (by kernel input name) and returns
the kernel's output in the kernel's own shape (a reduction's kept dim of size 1 dropped, a
group norm's channels split [G, CG]); written from each problem's PyTorch code with torch ops.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F


def _group_norm(x: torch.Tensor, gn_weight: torch.Tensor, gn_bias: torch.Tensor,
                eps: float = 1e-5) -> torch.Tensor:
    """F.group_norm on the kernel's [N, G, CG, H, W] view, returned in that view."""
    n, g, cg, h, w = x.shape
    y = F.group_norm(x.reshape(n, g * cg, h, w), g, gn_weight.reshape(-1),
                     gn_bias.reshape(-1), eps)
    return y.reshape(x.shape)


def _layer_norm(x: torch.Tensor, ln_weight: torch.Tensor, ln_bias: torch.Tensor,
                eps: float = 1e-5) -> torch.Tensor:
    return F.layer_norm(x, ln_weight.shape, ln_weight, ln_bias, eps)


def _batch_norm_train(x: torch.Tensor, bn_weight: torch.Tensor, bn_bias: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    return F.batch_norm(x, None, None, bn_weight, bn_bias, training=True, eps=eps)


def _exclusive_cumsum(x: torch.Tensor) -> torch.Tensor:
    return torch.cat((torch.zeros_like(x[:, :1]), torch.cumsum(x[:, :-1], dim=1)), dim=1)


def _triplet(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
             margin: float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2, eps=eps)


def _depthwise(x: torch.Tensor, conv2d_weight: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, conv2d_weight, groups=x.shape[1])


def _conv2d(x: torch.Tensor, conv2d_weight: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, conv2d_weight)


def _conv3d(x: torch.Tensor, conv3d_weight: torch.Tensor) -> torch.Tensor:
    return F.conv3d(x, conv3d_weight)


def _transposed1d(**options) -> Callable[..., torch.Tensor]:
    return lambda x, conv1d_transpose_weight: F.conv_transpose1d(x, conv1d_transpose_weight,
                                                                 **options)


def _transposed2d(**options) -> Callable[..., torch.Tensor]:
    return lambda x, conv_transpose2d_weight: F.conv_transpose2d(x, conv_transpose2d_weight,
                                                                 **options)


def _transposed3d(**options) -> Callable[..., torch.Tensor]:
    return lambda x, conv_transpose3d_weight: F.conv_transpose3d(x, conv_transpose3d_weight,
                                                                 **options)


def _grouped_transposed(conv: Callable[..., torch.Tensor], weight: str,
                        **options) -> Callable[..., torch.Tensor]:
    """A grouped transposed convolution on the kernel's views: x [N, G, CG, ...], the weight
    [G, CG, OG, ...], the result [N, G, OG, ...]."""
    def run(x: torch.Tensor, **weights: torch.Tensor) -> torch.Tensor:
        w = weights[weight]
        y = conv(x.flatten(1, 2), w.flatten(0, 1), groups=w.shape[0], **options)
        return y.unflatten(1, (w.shape[0], -1))
    return run


TORCH: dict[str, Callable[..., torch.Tensor]] = {
    "31_ELU": lambda x, alpha=1.0: F.elu(x, alpha=alpha),
    "32_HardTanh": lambda x: F.hardtanh(x, min_val=-1.0, max_val=1.0),
    "33_BatchNorm": _batch_norm_train,
    "34_InstanceNorm": lambda x, eps=1e-5: F.instance_norm(x, eps=eps),
    "35_GroupNorm_": _group_norm,
    "36_RMSNorm_": lambda x, eps=1e-5: x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True)
                                                      + eps),
    "37_FrobeniusNorm_": lambda x: x / torch.linalg.vector_norm(x),
    "38_L1Norm_": lambda x: x / torch.mean(torch.abs(x), dim=1, keepdim=True),
    "39_L2Norm_": lambda x: x / torch.linalg.vector_norm(x, dim=1, keepdim=True),
    "40_LayerNorm": _layer_norm,
    "41_Max_Pooling_1D": lambda x: F.max_pool1d(x, 8, stride=1, padding=4, dilation=3),
    "42_Max_Pooling_2D": lambda x: F.max_pool2d(x, 4, stride=1, padding=1),
    "43_Max_Pooling_3D": lambda x: F.max_pool3d(x, 3, stride=2, padding=1, dilation=3),
    "44_Average_Pooling_1D": lambda x: F.avg_pool1d(x, 8, stride=1, padding=4),
    "45_Average_Pooling_2D": lambda x: F.avg_pool2d(x, 11),
    "46_Average_Pooling_3D": lambda x: F.avg_pool3d(x, 3, stride=2, padding=1),
    "47_Sum_reduction_over_a_dimension": lambda x: torch.sum(x, dim=1),
    "48_Mean_reduction_over_a_dimension": lambda x: torch.mean(x, dim=1),
    "49_Max_reduction_over_a_dimension": lambda x: torch.amax(x, dim=1),
    "50_conv_standard_2D__square_input__square_kernel":
        lambda x, conv1_weight, conv1_bias: F.conv2d(x, conv1_weight, conv1_bias, stride=4,
                                                     padding=2),
    "51_Argmax_over_a_dimension": lambda x: torch.argmax(x, dim=1),
    "52_Argmin_over_a_dimension": lambda x: torch.argmin(x, dim=1),
    "53_Min_reduction_over_a_dimension": lambda x: torch.amin(x, dim=1),
    "54_conv_standard_3D__square_input__square_kernel": _conv3d,
    "57_conv_transposed_2D__square_input__square_kernel":
        _transposed2d(),
    "55_conv_standard_2D__asymmetric_input__square_kernel": _conv2d,
    "56_conv_standard_2D__asymmetric_input__asymmetric_kernel": _conv2d,
    "59_conv_standard_3D__asymmetric_input__square_kernel": _conv3d,
    "60_conv_standard_3D__square_input__asymmetric_kernel": _conv3d,
    "62_conv_standard_2D__square_input__asymmetric_kernel": _conv2d,
    "63_conv_standard_2D__square_input__square_kernel": _conv2d,
    "66_conv_standard_3D__asymmetric_input__asymmetric_kernel": _conv3d,
    "67_conv_standard_1D": lambda x, conv1d_weight: F.conv1d(x, conv1d_weight),
    "64_conv_transposed_1D": _transposed1d(),
    "65_conv_transposed_2D__square_input__asymmetric_kernel":
        _transposed2d(),
    "69_conv_transposed_2D__asymmetric_input__asymmetric_kernel":
        _transposed2d(),
    "71_conv_transposed_2D__asymmetric_input__square_kernel":
        _transposed2d(),
    "74_conv_transposed_1D_dilated":
        _transposed1d(dilation=3),
    "76_conv_standard_1D_dilated_strided__":
        lambda x, conv1d_weight: F.conv1d(x, conv1d_weight, stride=3, dilation=4),
    "58_conv_transposed_3D__asymmetric_input__asymmetric_kernel": _transposed3d(),
    "61_conv_transposed_3D__square_input__square_kernel": _transposed3d(),
    "68_conv_transposed_3D__square_input__asymmetric_kernel": _transposed3d(),
    "70_conv_transposed_3D__asymmetric_input__square_kernel": _transposed3d(),
    "72_conv_transposed_3D_asymmetric_input_asymmetric_kernel___strided_padded_grouped_":
        _grouped_transposed(F.conv_transpose3d, "conv_transpose3d_weight", stride=2,
                            padding=(1, 2, 3), output_padding=1),
    "73_conv_transposed_3D_asymmetric_input_square_kernel__strided_padded__grouped":
        _grouped_transposed(F.conv_transpose3d, "conv_transpose3d_weight", stride=2, padding=1),
    "75_conv_transposed_2D_asymmetric_input_asymmetric_kernel_strided__grouped____padded____dilated__":
        _grouped_transposed(F.conv_transpose2d, "conv_transpose2d_weight", stride=(2, 3),
                            padding=(1, 2), dilation=(2, 1)),
    "77_conv_transposed_3D_square_input_square_kernel___padded____dilated____strided__":
        _transposed3d(stride=2, padding=1, dilation=2),
    "78_conv_transposed_2D_asymmetric_input_asymmetric_kernel___padded__":
        _transposed2d(padding=(1, 3)),
    "79_conv_transposed_1D_asymmetric_input_square_kernel___padded____strided____dilated__":
        _transposed1d(stride=2, padding=1, dilation=2),
    "80_conv_standard_2D_square_input_asymmetric_kernel___dilated____padded__":
        lambda x, conv2d_weight: F.conv2d(x, conv2d_weight, padding=(2, 4), dilation=(2, 3)),
    "81_conv_transposed_2D_asymmetric_input_square_kernel___dilated____padded____strided__":
        _transposed2d(stride=5, padding=1, dilation=2),
    "82_conv_depthwise_2D_square_input_square_kernel": _depthwise,
    "83_conv_depthwise_2D_square_input_asymmetric_kernel": _depthwise,
    "84_conv_depthwise_2D_asymmetric_input_square_kernel": _depthwise,
    "85_conv_depthwise_2D_asymmetric_input_asymmetric_kernel": _depthwise,
    "86_conv_depthwise_separable_2D":
        lambda x, depthwise_weight, pointwise_weight: F.conv2d(
            F.conv2d(x, depthwise_weight, padding=1, groups=x.shape[1]), pointwise_weight),
    "87_conv_pointwise_2D": lambda x, conv1d_weight: F.conv2d(x, conv1d_weight),
    "88_MinGPTNewGelu": lambda x: 0.5 * x * (1.0 + torch.tanh(
        math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0)))),
    "89_cumsum": lambda x: torch.cumsum(x, dim=1),
    "90_cumprod": lambda x: torch.cumprod(x, dim=1),
    "91_cumsum_reverse": lambda x: torch.cumsum(x.flip(1), dim=1).flip(1),
    "92_cumsum_exclusive": _exclusive_cumsum,
    "93_masked_cumsum": lambda x, mask: torch.cumsum(x * mask, dim=1),
    "94_MSELoss": lambda predictions, targets: F.mse_loss(predictions, targets),
    "95_CrossEntropyLoss": lambda predictions, targets: F.cross_entropy(predictions, targets),
    "96_HuberLoss": lambda predictions, targets: F.smooth_l1_loss(predictions, targets),
    "97_ScaledDotProductAttention":
        lambda q, k, v, scale: F.scaled_dot_product_attention(q, k, v, scale=scale),
    "98_KLDivLoss": lambda predictions, targets: F.kl_div(torch.log(predictions), targets,
                                                         reduction="batchmean"),
    "99_TripletMarginLoss": _triplet,
    "100_HingeLoss": lambda predictions, targets: torch.mean(
        torch.clamp(1 - predictions * targets, min=0)),
}
