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
