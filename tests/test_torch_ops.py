"""kspec inside PyTorch on the CPU: kernels as torch.library custom ops (opcheck through the
Triton interpreter, torch.compile(fullgraph=True) of a module using two of them), a missing
backward reported at the call, and arguments as PyTorch users pass them (numpy arrays, lists,
0-dim tensors for scalars, zero-size dimensions, tensors on several devices)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import kspec
from kspec import KspecLaunchError
from kspec.errors import KspecGradError
from kspec.torch_ops import schema

ROOT = Path(__file__).resolve().parent.parent


def spec(name: str) -> kspec.Kernel:
    return kspec.load(ROOT / "specs" / f"{name}.kspec")[name]


def _bf16(*shape: int) -> torch.Tensor:
    return torch.randn(*shape).to(torch.bfloat16)


OPCHECK = {
    "softmax": lambda: ((torch.randn(3, 7),), {}),
    "layernorm": lambda: ((_bf16(3, 8), _bf16(8), _bf16(8)), {"eps": 1e-5}),
    "matmul_bias_gelu": lambda: ((torch.randn(3, 5).half(), torch.randn(5, 4).half(),
                                  torch.randn(4).half()), {}),
    "row_sum": lambda: ((torch.randn(4, 6),), {}),
}


@pytest.mark.parametrize("name", sorted(OPCHECK))
def test_opcheck(name: str) -> None:
    args, kwargs = OPCHECK[name]()
    op = spec(name).op()
    torch.library.opcheck(op, args, kwargs)   # schema, fake tensors, autograd, AOT dynamic


def test_schema_and_names() -> None:
    ln = spec("layernorm")
    assert schema(ln.ir) == ("(Tensor x, Tensor w, Tensor b, float eps=1e-05) -> "
                             "(Tensor, Tensor, Tensor)")
    op = ln.op()
    assert ln.op() is op                              # registered once
    assert spec("layernorm").op() is op               # the same kernel loaded again
    qualname = op._qualname
    assert qualname.startswith("kspec::layernorm_")
    assert len(qualname) == len("kspec::layernorm_") + 8
    # two kernels of one name from different sources are two ops
    a = kspec.loads("kernel twice(x: f32[N]) -> y: f32[N] { y[i] = x[i] * 2.0 }").twice.op()
    b = kspec.loads("kernel twice(x: f32[N]) -> y: f32[N] { y[i] = x[i] + x[i] + 1.0 }").twice.op()
    assert a._qualname != b._qualname
    x = torch.arange(3.0)
    assert torch.equal(a(x), x * 2) and torch.equal(b(x), x * 2 + 1)
    assert torch.equal(getattr(torch.ops.kspec, a._qualname.split("::")[1])(x), x * 2)
    scal = kspec.loads("kernel sc(x: i32[N], k: i64 = 2, on: bool = true) -> y: i32[N] "
                       "{ y[i] = where(on, x[i] * k, x[i]) }").sc
    assert schema(scal.ir) == "(Tensor x, int k=2, bool on=True) -> Tensor"


class TwoOps(torch.nn.Module):
    """gelu(a @ w + b) then a row sum: two kspec ops with a torch op between them."""

    def __init__(self) -> None:
        super().__init__()
        self.mm = spec("matmul_bias_gelu").op()
        self.rs = spec("row_sum").op()
        self.register_buffer("w", torch.randn(8, 6).half())
        self.register_buffer("b", torch.randn(6).half())

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.rs(self.mm(a, self.w, self.b).float() * 2.0)


# aot_eager: dynamo (fullgraph) and AOTAutograd with the fake implementations, which is what
# the op registration decides. Inductor also compiles this module on CPU (checked by hand:
# ~35 s cold with its C++ compiles), too slow for this file; KSPEC_TEST_INDUCTOR=1 adds it.
BACKENDS = ["aot_eager"] + (["inductor"] if __import__("os").environ.get(
    "KSPEC_TEST_INDUCTOR") == "1" and shutil.which("g++") else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_fullgraph(backend: str) -> None:
    torch._dynamo.reset()
    m = TwoOps()
    a = torch.randn(4, 8).half()
    compiled = torch.compile(m, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(a), m(a), atol=1e-2, rtol=1e-2)
    a5 = torch.randn(5, 8).half()                    # a new size: a (dynamic) recompile
    torch.testing.assert_close(compiled(a5), m(a5), atol=1e-2, rtol=1e-2)


def test_autograd_refused_at_the_call() -> None:
    """The op's backward is derived (tests/test_grad.py); where there is none (a transposed
    convolution's scatter) the op refuses at the call, and a bare launcher has no autograd."""
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    w, bias = torch.randn(2, 3, 3, 3), torch.randn(3)
    with pytest.raises(KspecGradError, match=r"kspec::conv_transpose2d_[0-9a-f]{8} has no "
                       r"backward \(x require grad\): the read pad\(x, 0\.0\)\[n, c, "
                       r"\(p - r \+ 1\) / 2"):
        spec("conv_transpose2d").op()(x, w, bias)
    k = spec("softmax")
    x = torch.randn(2, 3, requires_grad=True)
    assert k.op()(x).requires_grad
    fn = k.build("triton")
    with pytest.raises(KspecLaunchError, match="softmax has no backward yet; x requires grad"):
        fn(x)
    with torch.no_grad():                            # no grad wanted: both run
        assert not k.op()(x).requires_grad and not fn(x).requires_grad
    fn(x.detach())                                   # remembered signature without grad
    with pytest.raises(KspecLaunchError, match="no backward"):
        fn(x)                                        # ... does not let a grad input through


def test_numpy_and_sequences() -> None:
    rs = spec("row_sum").build("triton")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for _ in range(2):                               # the second call: remembered path
        torch.testing.assert_close(rs(x), torch.tensor([3.0, 12.0]))
    torch.testing.assert_close(rs([[1, 2], [3, 4]]), torch.tensor([3.0, 7.0]))  # declared dtype
    with pytest.raises(KspecLaunchError, match="'x' has dtype torch.float64"):
        rs(x.astype(np.float64))                     # an array keeps its dtype, checked
    with pytest.raises(KspecLaunchError, match="'x' cannot be converted"):
        rs([[1, 2], [3]])


def test_ops_take_tensors_as_torch_operators_do() -> None:
    # the dispatcher checks the schema before kspec sees the call: README says so
    op = spec("row_sum").op()
    for a in (np.ones((2, 3), np.float32), [[1.0, 2.0], [3.0, 4.0]]):
        with pytest.raises(RuntimeError, match="Expected a value of type 'Tensor' for argument"):
            op(a)
    x = torch.randn(3, 4)
    torch.testing.assert_close(spec("leaky_relu").op()(x, torch.tensor(0.25)),
                               torch.nn.functional.leaky_relu(x, 0.25))


def _scalar_launchers():
    k = spec("leaky_relu")
    yield pytest.param(k.build("triton"), id="triton")
    if shutil.which("g++") or shutil.which("clang++"):
        from kspec.backends.cxx import emulate
        yield pytest.param(emulate.build(k.ir), id="cxx-cpu")


@pytest.mark.parametrize("fn", _scalar_launchers())
def test_zero_dim_scalar_every_call(fn) -> None:
    x = torch.randn(3, 4)
    for slope in (0.1, 0.1, 0.3, np.float32(0.3)):   # the 2nd call crashed in Triton
        s = slope if isinstance(slope, np.floating) else torch.tensor(slope)
        torch.testing.assert_close(fn(x, s), torch.nn.functional.leaky_relu(x, float(slope)))


def test_zero_size_dimensions() -> None:
    assert spec("softmax").build("triton")(torch.randn(3, 0)).shape == (3, 0)
    assert spec("softmax").build("triton")(torch.randn(0, 5)).shape == (0, 5)
    rs = spec("row_sum").build("triton")
    assert torch.equal(rs(torch.randn(3, 0)), torch.zeros(3))        # sum over nothing: 0
    assert rs(torch.randn(0, 4)).shape == (0,)
    mm = spec("matmul").build("triton")
    a, b = torch.randn(2, 0).half(), torch.randn(0, 3).half()
    assert torch.equal(mm(a, b), torch.zeros(2, 3).half())            # K = 0: zeros
    prod = kspec.loads("kernel p(x: f32[M, N]) -> y: f32[M] { y[i] = prod(x[i, j] for j) }").p
    assert torch.equal(prod.build("triton")(torch.randn(2, 0)), torch.ones(2))
    amax = kspec.loads("kernel m(x: f32[M, N]) -> y: f32[M] { y[i] = max(x[i, j] for j) }").m
    with pytest.raises(KspecLaunchError, match="empty range, which has no identity"):
        amax.build("triton")(torch.randn(2, 0))
    assert amax.build("triton")(torch.randn(0, 3)).shape == (0,)    # nothing to reduce
    assert torch.equal(spec("row_sum").op()(torch.randn(3, 0)), torch.zeros(3))


def test_devices_checked_in_binding() -> None:
    add = kspec.loads("kernel add(x: f32[N], y: f32[N]) -> z: f32[N] { z[i] = x[i] + y[i] }").add
    with pytest.raises(KspecLaunchError, match="several devices: x on cpu, y on meta"):
        add.build("triton")(torch.randn(4), torch.randn(4, device="meta"))
    with FakeTensorMode():                           # two GPUs without having them
        x, y = torch.empty(4, device="cuda:0"), torch.empty(4, device="cuda:1")
        with pytest.raises(KspecLaunchError, match="x on cuda:0, y on cuda:1"):
            add.bind(x, y)
