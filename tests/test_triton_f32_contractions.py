"""f32 contractions' launch-time branches through the Triton interpreter: the depth-major copy
of a row-major B (taken on GPUs with TF32 tensor cores, forced here by the schedule) gives the
reference's values for plain, batched and transposed-A layouts at odd sizes."""
from __future__ import annotations

import pytest
import torch

import kspec

pytest.importorskip("triton")

SPECS = kspec.loads("""
kernel mm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
    c[i, j] = sum(a[i, k] * b[k, j] for k)
}
kernel mm_tn_bias(a: f32[K, M], b: f32[K, N], bias: f32[N]) -> c: f32[M, N] {
    c[i, j] = sum(a[k, i] * b[k, j] for k) + bias[j]
}
kernel bmm(a: f32[B, M, K], b: f32[B, K, N]) -> c: f32[B, M, N] {
    c[q, i, j] = sum(a[q, i, k] * b[q, k, j] for k)
}
""")


def _inputs(name: str, g: torch.Generator) -> list[torch.Tensor]:
    r = lambda *s: torch.randn(*s, generator=g)   # noqa: E731
    if name == "mm":
        return [r(37, 45), r(45, 29)]
    if name == "mm_tn_bias":
        return [r(45, 37), r(45, 29), r(29)]
    return [r(3, 21, 45), r(3, 45, 19)]


@pytest.mark.parametrize("name", ["mm", "mm_tn_bias", "bmm"])
@pytest.mark.parametrize("depth_major", [False, True])
def test_depth_major_copy_of_b_keeps_the_values(name: str, depth_major: bool) -> None:
    kernel = SPECS[name]
    args = _inputs(name, torch.Generator().manual_seed(3))
    fn = kernel.build("triton", schedule={"0.DEPTH_MAJOR_B": depth_major})
    assert "_depth_major(b, " in fn.source
    out = fn(*args)
    ref = kernel.reference(*args)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_a_column_major_b_is_not_copied() -> None:
    """nn.Linear's weight is read along the depth already: no copy, the depth-major tile."""
    spec = kspec.loads("""
kernel linear(x: f32[M, K], w: f32[N, K]) -> y: f32[M, N] {
    y[i, j] = sum(x[i, k] * w[j, k] for k)
}""")
    source = spec.linear.source("triton")
    assert "_depth_major" not in source
    assert "_fit_gemm_tile(device, 4, 128, 128, 64, 3)" in source
