"""The derived `<name>_vjp` kernels on a GPU, on every backend: each agrees with its float64
reference (which tests/test_grad.py checks against torch.autograd) at odd sizes past one tile,
and a small model built from kspec ops trains a step under torch.compile on the GPU with the
gradients of eager PyTorch. Skipped without a GPU."""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

import kspec
from kspec.autodiff import vjp_kernel
from kspec.verify.inputs import choose_sizes, random_arguments
from kspec.verify.tolerance import compare, magnitude
from test_grad import CASES, LAYERS, ThreeLayers

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU "
                                "(torch.cuda.is_available() is False)")

SPECS = Path(__file__).resolve().parent.parent / "specs"
BACKENDS = ["triton", "cuda", "hip"]


def _vjp(spec: str) -> kspec.Kernel:
    forward = kspec.load(SPECS / f"{spec}.kspec")[spec]
    return kspec.Kernel(vjp_kernel(forward.ir), forward.module)


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _within(kernel: kspec.Kernel, env: dict[str, int], limit: int = 2 ** 22) -> dict[str, int]:
    """env with its largest sizes halved (kept odd, every extent still positive and every
    launch check holding) until no tensor passes `limit` elements: drawn in 33-301, a 4-D
    tensor reached 2.6 GB, its inputs and float64 reference made on the CPU took minutes
    (batchnorm's, attention's: the GPU run hit its time limit there)."""
    tensors = (*kernel.ir.tensor_params, *kernel.ir.outputs)

    def largest(e: dict[str, int]) -> int:
        return max(math.prod(d.evaluate(e) for d in t.dims) for t in tensors)

    def valid(e: dict[str, int]) -> bool:
        return all(d.evaluate(e) >= 1 for t in tensors for d in t.dims) and \
            all(c.holds(e) for c in kernel.ir.checks)
    env = dict(env)
    while largest(env) > limit:
        for name in sorted(env, key=env.get, reverse=True):
            smaller = {**env, name: max(1, env[name] // 2 | 1)}
            if smaller[name] < env[name] and valid(smaller):
                env = smaller
                break
        else:
            break
    return env


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", CASES)
def test_vjp_agrees_with_reference(spec: str, backend: str) -> None:
    v = _vjp(spec)
    fn = v.build(backend)
    rng = random.Random(f"{spec}/{backend}")
    envs = [choose_sizes(v.ir, rng, high=9),
            _within(v, choose_sizes(v.ir, rng, low=33, high=301))]
    for n, env in enumerate(e for e in envs if all(c.holds(e) for c in v.ir.checks)):
        cpu_args = random_arguments(v.ir, env, seed=n)
        args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in cpu_args]
        got = _as_tuple(fn(*args))
        torch.cuda.synchronize()
        want = _as_tuple(v.reference(*cpu_args))
        for decl, g, w, mag in zip(v.ir.outputs, got, want, magnitude(v, cpu_args)):
            assert g.is_cuda and g.dtype == decl.dtype.torch
            result = compare(g.cpu(), w, decl.dtype, mag)
            assert result.ok, f"{backend} {decl.name} at {env}: {result.detail}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_module_trains_a_step_on_the_gpu(backend: str) -> None:
    """tests/test_grad_aot.py's three layers on the GPU, compiled with fullgraph: the loss and
    every parameter's gradient as eager PyTorch's (f32 on both sides, TF32 off)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    layers = kspec.loads(LAYERS)
    ops = (layers.linear_gelu.op(backend), kspec.load(SPECS / "rmsnorm.kspec").rmsnorm.op(backend),
           layers.linear.op(backend),
           kspec.load(SPECS / "cross_entropy.kspec").cross_entropy.op(backend))
    model, eager = ThreeLayers(ops).cuda(), ThreeLayers().cuda()
    gen = torch.Generator(device="cuda").manual_seed(2)
    x = torch.randn(37, 6, device="cuda", generator=gen)
    label = torch.randint(0, 5, (37,), device="cuda", generator=gen)
    torch._dynamo.reset()
    step = torch.compile(model, fullgraph=True)
    loss, want = step(x, label), eager(x, label)
    loss.backward()
    want.backward()
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"{name}: {m}")
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * p.grad
    assert step(x, label).item() < loss.item()
