"""Independent PyTorch implementations of the level1 translations 1-30
(bench/kernelbench/level1/<stem>.kspec), for tests/test_kernelbench_translations.py: each
takes the kernel's inputs by name and returns its output, written from the problem's PyTorch
code with torch ops (the matmuls, einsum, triu/tril and torch's activations)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

TORCH: dict[str, Callable[..., torch.Tensor]] = {
    "1_Square_matrix_multiplication_": lambda A, B: torch.matmul(A, B),
    "2_Standard_matrix_multiplication_": lambda A, B: torch.matmul(A, B),
    "3_Batched_matrix_multiplication": lambda A, B: torch.bmm(A, B),
    "4_Matrix_vector_multiplication_": lambda A, B: torch.matmul(A, B),
    "5_Matrix_scalar_multiplication": lambda A, s: A * s,
    "6_Matmul_with_large_K_dimension_": lambda A, B: torch.matmul(A, B),
    "7_Matmul_with_small_K_dimension_": lambda A, B: torch.matmul(A, B),
    "8_Matmul_with_irregular_shapes_": lambda A, B: torch.matmul(A, B),
    "9_Tall_skinny_matrix_multiplication_": lambda A, B: torch.matmul(A, B),
    "10_3D_tensor_matrix_multiplication": lambda A, B: torch.matmul(A, B),
    "11_4D_tensor_matrix_multiplication": lambda A, B: torch.einsum("bijl,lk->bijk", A, B),
    "12_Matmul_with_diagonal_matrices_": lambda A, B: torch.diag(A) @ B,
    "13_Matmul_for_symmetric_matrices": lambda A, B: torch.matmul(A, B),
    "14_Matmul_for_upper_triangular_matrices": lambda A, B: torch.triu(torch.matmul(A, B)),
    "15_Matmul_for_lower_triangular_matrices": lambda A, B: torch.tril(torch.matmul(A, B)),
    "16_Matmul_with_transposed_A": lambda A, B: torch.matmul(A.T, B),
    "17_Matmul_with_transposed_B": lambda A, B: torch.matmul(A, B.T),
    "18_Matmul_with_transposed_both": lambda A, B: torch.matmul(A.T, B.T),
    "19_ReLU": lambda x: torch.relu(x),
    "20_LeakyReLU": lambda x, negative_slope: F.leaky_relu(x, negative_slope),
    "21_Sigmoid": lambda x: torch.sigmoid(x),
    "22_Tanh": lambda x: torch.tanh(x),
    "23_Softmax": lambda x: torch.softmax(x, dim=1),
    "24_LogSoftmax": lambda x: torch.log_softmax(x, dim=1),
    "25_Swish": lambda x: F.silu(x),
    "26_GELU_": lambda x: F.gelu(x),
    "27_SELU_": lambda x: torch.selu(x),
    "28_HardSigmoid": lambda x: F.hardsigmoid(x),
    "29_Softplus": lambda x: F.softplus(x),
    "30_Softsign": lambda x: F.softsign(x),
}
