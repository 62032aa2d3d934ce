"""Derived gradients (kspec/autodiff): the VJP program's float64 reference against torch.autograd
through the forward's float64 reference, at odd shapes; the printed programs (goldens, round
trip); build-time errors where there is no derivative."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import kspec
from kspec.autodiff import vjp_kernel, vjp_source
from kspec.binding import bind
from kspec.dsl import compile_source
from kspec.errors import KspecGradError
from kspec.printer import format_kernel
from kspec.verify.reference import evaluate

SPECS = Path(__file__).parent.parent / "specs"
GOLDEN = Path(__file__).parent / "golden"


def _inputs(k, sizes: dict[str, int], gen: torch.Generator) -> dict:
    args = {}
    for p in k.params:
        if isinstance(p, kspec.ir.ScalarParam):
            args[p.name] = p.default if p.default is not None else 0.37
            continue
        shape = [d.evaluate(sizes) for d in p.dims]
        if p.dtype.is_float:
            t = torch.randn(shape, generator=gen, dtype=torch.float64)
            if "var" in p.name:   # a variance: positive
                t = t.abs() + 0.5
            args[p.name] = t.requires_grad_()
        else:   # class labels: below the last dim of the first input
            high = next(iter(args.values())).shape[-1]
            args[p.name] = torch.randint(0, high, shape, generator=gen)
    return args


def _run(k, args: dict, keep_grad: bool = False) -> dict:
    b = bind(k, tuple(args[p.name] for p in k.params), {}, strict_dtypes=False,
             check_grad=False)
    tensors = {n: args[n] for n in b.tensors} if keep_grad else b.tensors
    return evaluate(k, tensors, b.scalars, b.env, keep_grad=keep_grad)


def check_gradients(spec: str, sizes: dict[str, int], seed: int = 0) -> None:
    k = kspec.load(SPECS / f"{spec}.kspec")[spec].ir
    vjp = vjp_kernel(k)
    gen = torch.Generator().manual_seed(seed)
    args = _inputs(k, sizes, gen)
    outs = _run(k, args, keep_grad=True)
    floats = [o for o in k.outputs if o.dtype.is_float]
    dys = {o.name: torch.randn(outs[o.name].shape, generator=gen, dtype=torch.float64)
           for o in floats}
    wrt = [p.name for p in k.tensor_params if p.dtype.is_float]
    want = torch.autograd.grad([outs[o.name] for o in floats], [args[n] for n in wrt],
                               [dys[o.name] for o in floats], allow_unused=True)
    vargs = {n: a.detach() if isinstance(a, torch.Tensor) else a for n, a in args.items()}
    vargs.update({f"d{n}": dy.reshape(-1) if dy.dim() == 0 else dy for n, dy in dys.items()})
    got = _run(vjp, vargs)
    assert [o.name for o in vjp.outputs] == [f"d{n}" for n in wrt]
    for n, w in zip(wrt, want):
        w = torch.zeros_like(args[n]) if w is None else w
        torch.testing.assert_close(got[f"d{n}"], w, rtol=1e-9, atol=1e-10,
                                   msg=lambda m: f"d{n}: {m}")


CASES = {
    "softmax": {"M": 5, "N": 7},
    "layernorm": {"M": 3, "N": 11},
    "rmsnorm": {"M": 4, "N": 9},
    "matmul_bias_gelu": {"M": 5, "K": 7, "N": 3},
    "cross_entropy": {"M": 6, "C": 5},
    "attention": {"B": 2, "H": 3, "S": 5, "T": 7, "D": 3},
    "log_softmax": {"M": 3, "N": 13},
    "logsumexp": {"M": 3, "N": 13},
    "silu": {"M": 2, "N": 13},
    "gelu_tanh": {"M": 3, "N": 5},
    "mse_loss": {"M": 3, "N": 5},
    "bce_with_logits": {"M": 3, "N": 5},
    "l2_normalize": {"M": 3, "N": 13},
    "swiglu": {"M": 3, "N": 13},
    "leaky_relu": {"M": 3, "N": 5},
    "batchnorm": {"N": 3, "C": 5, "H": 3, "W": 7},
    "group_norm": {"N": 3, "G": 2, "C": 3, "L": 5},
    # the input's gradient a padded gather over the output (kspec/autodiff/gather.py); stride 2
    # leaves the last row and column of x unread (zero gradient)
    "conv2d": {"N": 2, "C": 3, "H": 7, "W": 9, "O": 5, "KH": 3, "KW": 2},
    "conv2d_stride2": {"N": 2, "C": 3, "H": 10, "W": 8, "O": 5, "KH": 3, "KW": 3},
    "conv2d_pad": {"N": 2, "C": 3, "H": 5, "W": 7, "O": 3, "KH": 3, "KW": 4},
}


@pytest.mark.parametrize("spec", CASES)
def test_gradient_matches_autograd_on_reference(spec):
    check_gradients(spec, CASES[spec])


@pytest.mark.parametrize("spec", ["softmax", "layernorm", "conv2d_stride2"])
def test_printed_vjp_golden(spec):
    k = kspec.load(SPECS / f"{spec}.kspec")[spec].ir
    assert vjp_source(k) == (GOLDEN / "grad" / f"{spec}.vjp.kspec").read_text()


@pytest.mark.parametrize("spec", ["softmax", "layernorm", "cross_entropy", "attention",
                                  "matmul_bias_gelu"])
def test_printed_vjp_round_trips(spec):
    text = vjp_source(kspec.load(SPECS / f"{spec}.kspec")[spec].ir)
    checked = compile_source(text).kernels[0]
    assert format_kernel(checked) == text
    assert compile_source(format_kernel(checked)).kernels[0] == checked


ERRORS = {
    "argmax": ("kernel argmax(x: f32[M, N]) -> y: i64[M] {\n"
               "    y[i] = argmax(x[i, j] for j)\n}\n",
               "<string>:1:8: no derivative: kernel argmax has no derivative: no output is a "
               "float (y: i64)"),
    "integer": ("kernel count(x: i32[N]) -> (s: i64, t: bool) {\n"
                "    s = sum(x[i] for i)\n    t = s > 0\n}\n",
                "<string>:1:8: no derivative: kernel count has no derivative: no output is a "
                "float (s: i64, t: bool)"),
    "argmax_to_float": ("kernel f(x: f32[M, N]) -> y: f32[M] {\n"
                        "    y[i] = f32(argmax(x[i, j] for j))\n}\n",
                        "<string>:2:5: no derivative: argmax/argmin have no derivative: a "
                        "float output depends on an integer index"),
    "conv_transpose": ((SPECS / "conv_transpose2d.kspec").read_text(),
                       "<string>:6:5: no derivative: the read pad(x, 0.0)[n, c, (p - r + 1) / 2, "
                       "(q - s + 1) / 2] has no derivative yet: its adjoint is a scatter (a "
                       "divided or gathered index)"),
    "diagonal": ("kernel f(x: f32[N, N]) -> y: f32[N] {\n    y[i] = x[i, i] + 1.0\n}\n",
                 "<string>:2:5: no derivative: the read x[i, i] has no derivative yet: its "
                 "adjoint is a scatter (an index variable in two dims)"),
    "prod": ("kernel f(x: f32[M, N]) -> y: f32[M] {\n    y[i] = prod(x[i, j] for j)\n}\n",
             "<string>:2:5: no derivative: prod(j) has no derivative yet"),
    "scan": ("kernel f(x: f32[M, N]) -> y: f32[M, N] {\n"
             "    y[i, j] = sum(x[i, k] for k <= j)\n}\n",
             "<string>:2:5: no derivative: sum(... for k <= j): scans have no derivative yet"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_no_derivative_is_a_build_time_error(case):
    source, message = ERRORS[case]
    k = kspec.loads(source).kernels
    with pytest.raises(KspecGradError) as e:
        vjp_source(next(iter(k.values())).ir)
    assert str(e.value).split("\n")[0] == message


def test_opcheck_with_autograd():
    """torch.library.opcheck's autograd checks on the CPU (Triton interpreter): the registered
    backward is well formed and traces under AOT dispatch."""
    torch.manual_seed(0)
    for name, args in [("softmax", (torch.randn(3, 5, requires_grad=True),)),
                       ("rmsnorm", (torch.randn(3, 5, requires_grad=True),
                                    torch.randn(5, requires_grad=True), 1e-6))]:
        torch.library.opcheck(kspec.load(SPECS / f"{name}.kspec")[name].op(), args,
                              test_utils=("test_schema", "test_autograd_registration",
                                          "test_faketensor", "test_aot_dispatch_dynamic"))


# tests/test_gpu_grad.py and bench/training_step.py train the same layers
LAYERS = (Path(__file__).parent.parent / "bench" / "specs" / "mlp_layers.kspec").read_text()


class ThreeLayers(torch.nn.Module):
    def __init__(self, ops=None):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.w1 = torch.nn.Parameter(torch.randn(6, 7, generator=gen) * 0.4)
        self.b1 = torch.nn.Parameter(torch.randn(7, generator=gen) * 0.1)
        self.g = torch.nn.Parameter(1 + 0.1 * torch.randn(7, generator=gen))
        self.w2 = torch.nn.Parameter(torch.randn(7, 5, generator=gen) * 0.4)
        self.ops = ops

    def forward(self, x, label):
        if self.ops is None:   # eager PyTorch
            h = torch.nn.functional.gelu(x @ self.w1 + self.b1)
            h = torch.nn.functional.rms_norm(h, [7], self.g, eps=1e-6)
            return torch.nn.functional.cross_entropy(h @ self.w2, label)
        lin_gelu, rms, lin, ce = self.ops
        return ce(lin(rms(lin_gelu(x, self.w1, self.b1), self.g), self.w2), label)


def test_module_trains_a_step_under_torch_compile():
    layers = kspec.loads(LAYERS)
    ops = (layers.linear_gelu.op(), kspec.load(SPECS / "rmsnorm.kspec").rmsnorm.op(),
           layers.linear.op(), kspec.load(SPECS / "cross_entropy.kspec").cross_entropy.op())
    model, eager = ThreeLayers(ops), ThreeLayers()
    gen = torch.Generator().manual_seed(2)
    x, label = torch.randn(9, 6, generator=gen), torch.randint(0, 5, (9,), generator=gen)
    torch._dynamo.reset()
    step = torch.compile(model, fullgraph=True)
    loss = step(x, label)
    want = eager(x, label)
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
    loss.backward()
    want.backward()
    for (n, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{n}: {m}")
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * p.grad
    assert step(x, label).item() < loss.item()
