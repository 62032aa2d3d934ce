"""The magnitude behind each output value (kspec/verify/magnitude.py), the scale its tolerance
allows rounding on: through a function of a computed value it carries the derivative times
that value's magnitude; inputs read as they are carry nothing."""
from __future__ import annotations

import torch

import kspec
from kspec.verify.tolerance import magnitude

SOURCE = """
kernel conv_tanh(x: f32[M, K], w: f32[K]) -> y: f32[M] {
    v[i] = sum(x[i, k] * w[k] for k)
    y[i] = tanh(v[i])
}
kernel sin_input(x: f32[N]) -> y: f32[N] {
    y[i] = sin(x[i])
}
kernel clamped(x: f32[M, K], w: f32[K]) -> y: f32[M] {
    y[i] = clamp(sum(x[i, k] * w[k] for k), -0.5, 0.5)
}
kernel masked(x: f32[N, N], v: f32[N]) -> y: f32[N] {
    s[i, j] = where(j <= i, x[i, j], -inf)
    m[i] = max(s[i, j] for j)
    y[i] = sum(exp(s[i, j] - m[i]) * v[j] for j)
}
"""
MODULE = kspec.loads(SOURCE, "magnitude.kspec")


def test_a_function_of_a_sum_carries_its_terms_through_the_derivative() -> None:
    x, w = torch.randn(6, 40), torch.randn(40)
    (mag,) = magnitude(MODULE.conv_tanh, [x, w])
    v = x.double() @ w.double()
    terms = (x.double() * w.double()).abs().sum(1)
    want = v.tanh().abs() + (1 - v.tanh() ** 2) * terms
    torch.testing.assert_close(mag, want, rtol=1e-12, atol=0)


def test_an_input_read_as_it_is_carries_no_rounding() -> None:
    x = torch.randn(50) * 100
    (mag,) = magnitude(MODULE.sin_input, [x])
    torch.testing.assert_close(mag, x.double().sin().abs(), rtol=1e-12, atol=0)


def test_clamp_passes_the_magnitude_only_inside_its_range() -> None:
    x, w = torch.randn(64, 30), torch.randn(30)
    (mag,) = magnitude(MODULE.clamped, [x, w])
    v = x.double() @ w.double()
    inside = v.abs() < 0.5
    terms = (x.double() * w.double()).abs().sum(1)
    assert inside.any() and (~inside).any()
    torch.testing.assert_close(mag[inside], (v.abs() + terms)[inside], rtol=1e-12, atol=0)
    torch.testing.assert_close(mag[~inside], torch.full_like(v, 0.5)[~inside], rtol=1e-12,
                               atol=0)


def test_an_infinite_mask_is_exact_and_leaves_magnitudes_finite() -> None:
    """The -inf literal counts 0: as |inf| it had made every row's magnitude inf (NaN where
    exp's slope is 0), which nan_to_num then turned into a zero tolerance."""
    x, v = torch.randn(9, 9), torch.randn(9)
    (mag,) = magnitude(MODULE.masked, [x, v])
    s = x.double().masked_fill(~torch.ones(9, 9, dtype=torch.bool).tril(), float("-inf"))
    p = (s - s.amax(1, keepdim=True)).exp()
    torch.testing.assert_close(mag, p @ v.double().abs(), rtol=1e-12, atol=0)
