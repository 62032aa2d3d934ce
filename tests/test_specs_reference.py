"""The spec library against PyTorch: every kernel in specs/ parses and checks, and its f64
reference agrees with an independent PyTorch implementation (torch.nn.functional and friends,
run in float64 on upcast inputs) at several shapes, including size 1 and odd/prime sizes.

Each spec is registered in CASES with its input generators, shapes and the PyTorch function it
matches; a spec file without an entry (or an entry without a file) fails test_every_spec_has_a_case.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import kspec

SPECS = Path(__file__).resolve().parent.parent / "specs"
SPEC_FILES = sorted(SPECS.glob("*.kspec"))

Sizes = dict[str, int]
Arg = Callable[[torch.Generator, Sizes], Any]

# Both sides compute in float64; only summation order differs, so the tolerance is tight.
RTOL, ATOL = 1e-9, 1e-10


# --- input generators ---------------------------------------------------------------------------
def randn(dtype: torch.dtype, *dims: str) -> Arg:
    """Normal samples, rounded to `dtype` (so the f64 upcast is exactly what the kernel sees)."""
    def make(g: torch.Generator, s: Sizes) -> torch.Tensor:
        return torch.randn([s[d] for d in dims], generator=g, dtype=torch.float64).to(dtype)
    return make


def positive(dtype: torch.dtype, *dims: str) -> Arg:
    """Values in [0.1, 2.1): variances must be positive."""
    def make(g: torch.Generator, s: Sizes) -> torch.Tensor:
        u = torch.rand([s[d] for d in dims], generator=g, dtype=torch.float64)
        return (2 * u + 0.1).to(dtype)
    return make


def labels(classes: str, *dims: str) -> Arg:
    """Integer class labels in [0, classes)."""
    def make(g: torch.Generator, s: Sizes) -> torch.Tensor:
        return torch.randint(0, s[classes], [s[d] for d in dims], generator=g, dtype=torch.int64)
    return make


def const(value: float) -> Arg:
    return lambda g, s: value


def shapes(names: str, *rows: tuple[int, ...]) -> list[Sizes]:
    """shapes("M N", (1, 1), (5, 13)) -> [{"M": 1, "N": 1}, {"M": 5, "N": 13}]"""
    keys = names.split()
    assert all(len(r) == len(keys) for r in rows)
    return [dict(zip(keys, r)) for r in rows]


# Reused shape sets: size 1 in every position, odd and prime sizes, nothing large.
VECTOR = shapes("N", (1,), (2,), (7,), (31,), (257,))
MATRIX = shapes("M N", (1, 1), (1, 7), (3, 1), (5, 13), (17, 31), (2, 64))
MATMUL = shapes("M K N", (1, 1, 1), (1, 7, 1), (3, 1, 5), (5, 13, 3), (17, 31, 11), (16, 32, 8))
F16, BF16, F32 = torch.float16, torch.bfloat16, torch.float32


@dataclass(frozen=True)
class Case:
    args: list[Arg]                     # positional arguments, in signature order
    expected: Callable[..., Any]        # the PyTorch implementation, on float64 inputs
    shapes: list[Sizes]
    calls: list[dict[str, Any]] = field(default_factory=lambda: [{}])  # keyword arguments


CASES: dict[str, Case] = {}


def case(name: str, args: list[Arg], sizes: list[Sizes],
         calls: list[dict[str, Any]] | None = None) -> Callable:
    """Register the decorated PyTorch function as the expected result of spec `name`."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        assert name not in CASES, name
        CASES[name] = Case(args, fn, sizes, calls or [{}])
        return fn
    return register


# --- element-wise -------------------------------------------------------------------------------
@case("vector_add", [randn(F32, "N"), randn(F32, "N")], VECTOR)
def _vector_add(a, b):
    return torch.add(a, b)


@case("axpy", [const(-1.75), randn(F32, "N"), randn(F32, "N")], VECTOR)
def _axpy(alpha, x, y):
    return torch.add(y, x, alpha=alpha)


@case("relu", [randn(F32, "M", "N")], MATRIX)
def _relu(x):
    return F.relu(x)


@case("leaky_relu", [randn(F32, "M", "N")], MATRIX, calls=[{}, {"slope": 0.2}])
def _leaky_relu(x, slope=0.01):
    return F.leaky_relu(x, slope)


@case("gelu", [randn(F32, "M", "N")], MATRIX)
def _gelu(x):
    return F.gelu(x)


@case("gelu_tanh", [randn(F32, "M", "N")], MATRIX)
def _gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


@case("silu", [randn(F32, "M", "N")], MATRIX)
def _silu(x):
    return F.silu(x)


@case("swiglu", [randn(F16, "M", "N"), randn(F16, "M", "N")], MATRIX)
def _swiglu(a, b):
    return F.silu(a) * b


# --- row-wise normalisations ------------------------------------------------------------------
@case("softmax", [randn(F32, "M", "N")], MATRIX)
def _softmax(x):
    return torch.softmax(x, dim=-1)


@case("log_softmax", [randn(F32, "M", "N")], MATRIX)
def _log_softmax(x):
    return torch.log_softmax(x, dim=-1)


@case("logsumexp", [randn(F32, "M", "N")], MATRIX)
def _logsumexp(x):
    return torch.logsumexp(x, dim=-1)


@case("layernorm", [randn(BF16, "M", "N"), randn(BF16, "N"), randn(BF16, "N")], MATRIX,
      calls=[{}, {"eps": 0.5}])
def _layernorm(x, w, b, eps=1e-5):
    y, mu, rstd = torch.ops.aten.native_layer_norm(x, [x.shape[-1]], w, b, eps)
    return y, mu.reshape(-1), rstd.reshape(-1)


@case("rmsnorm", [randn(F32, "M", "N"), randn(F32, "N")], MATRIX, calls=[{}, {"eps": 0.5}])
def _rmsnorm(x, w, eps=1e-6):
    return F.rms_norm(x, [x.shape[-1]], w, eps)


@case("batchnorm", [randn(F32, "N", "C", "H", "W"), randn(F32, "C"), positive(F32, "C"),
                    randn(F32, "C"), randn(F32, "C")],
      shapes("N C H W", (1, 1, 1, 1), (2, 3, 5, 7), (3, 1, 4, 1), (1, 8, 3, 3)),
      calls=[{}, {"eps": 0.25}])
def _batchnorm(x, running_mean, running_var, w, b, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, w, b, training=False, eps=eps)


@case("group_norm", [randn(F32, "N", "G", "C", "L"), randn(F32, "G", "C"), randn(F32, "G", "C")],
      shapes("N G C L", (1, 1, 1, 2), (2, 3, 5, 7), (3, 1, 4, 1), (1, 4, 1, 5), (2, 2, 2, 1)),
      calls=[{}, {"eps": 0.25}])
def _group_norm(x, w, b, eps=1e-5):
    n, g, c, l = x.shape
    y = F.group_norm(x.reshape(n, g * c, l), g, w.reshape(-1), b.reshape(-1), eps)
    return y.reshape(n, g, c, l)


@case("l2_normalize", [randn(F32, "M", "N")], MATRIX, calls=[{}, {"eps": 1.5}])
def _l2_normalize(x, eps=1e-12):
    return F.normalize(x, p=2.0, dim=-1, eps=eps)


# --- reductions -------------------------------------------------------------------------------
@case("row_sum", [randn(F32, "M", "N")], MATRIX)
def _row_sum(x):
    return torch.sum(x, dim=1)


@case("col_sum", [randn(F32, "M", "N")], MATRIX)
def _col_sum(x):
    return torch.sum(x, dim=0)


@case("sum_squares", [randn(F32, "M", "N")], MATRIX)
def _sum_squares(x):
    return torch.linalg.vector_norm(x) ** 2


# --- matrix products --------------------------------------------------------------------------
@case("matmul", [randn(F16, "M", "K"), randn(F16, "K", "N")], MATMUL)
def _matmul(a, b):
    return torch.matmul(a, b)


@case("matmul_nt", [randn(F16, "M", "K"), randn(F16, "N", "K")], MATMUL)
def _matmul_nt(a, b):
    return F.linear(a, b)


@case("matmul_tn", [randn(F16, "K", "M"), randn(F16, "K", "N")], MATMUL)
def _matmul_tn(a, b):
    return torch.matmul(a.T, b)


@case("bmm", [randn(BF16, "B", "M", "K"), randn(BF16, "B", "K", "N")],
      shapes("B M K N", (1, 1, 1, 1), (3, 5, 7, 2), (2, 1, 13, 1), (1, 16, 8, 4)))
def _bmm(a, b):
    return torch.bmm(a, b)


@case("matmul_bias_gelu", [randn(F16, "M", "K"), randn(F16, "K", "N"), randn(F16, "N")], MATMUL)
def _matmul_bias_gelu(a, b, bias):
    return F.gelu(F.linear(a, b.T, bias))


@case("matvec", [randn(F32, "M", "K"), randn(F32, "K")],
      shapes("M K", (1, 1), (1, 9), (7, 1), (13, 17), (64, 3)))
def _matvec(a, x):
    return torch.mv(a, x)


# --- convolution and pooling ------------------------------------------------------------------
CONV1D = shapes("N C L O K", (1, 1, 1, 1, 1), (2, 3, 11, 5, 3), (1, 4, 7, 2, 7), (3, 1, 9, 1, 2))
CONV2D = shapes("N C H W O KH KW", (1, 1, 1, 1, 1, 1, 1), (2, 3, 7, 9, 5, 3, 3),
                (1, 2, 5, 4, 3, 5, 1), (3, 1, 6, 6, 2, 2, 3))
POOL = shapes("N C H W", (1, 1, 2, 2), (2, 3, 5, 7), (1, 2, 8, 3), (3, 1, 2, 9))


@case("conv1d", [randn(F32, "N", "C", "L"), randn(F32, "O", "C", "K")], CONV1D)
def _conv1d(x, w):
    return F.conv1d(x, w)


@case("conv2d", [randn(F32, "N", "C", "H", "W"), randn(F32, "O", "C", "KH", "KW"),
                 randn(F32, "O")], CONV2D)
def _conv2d(x, w, bias):
    return F.conv2d(x, w, bias)


@case("conv2d_stride2", [randn(F32, "N", "C", "H", "W"), randn(F32, "O", "C", "KH", "KW")],
      CONV2D + shapes("N C H W O KH KW", (1, 2, 8, 7, 3, 3, 2)))
def _conv2d_stride2(x, w):
    return F.conv2d(x, w, stride=2)


@case("max_pool2d", [randn(F32, "N", "C", "H", "W")], POOL)
def _max_pool2d(x):
    return F.max_pool2d(x, 2)


@case("avg_pool2d", [randn(F32, "N", "C", "H", "W")], POOL)
def _avg_pool2d(x):
    return F.avg_pool2d(x, 2)


# padded reads (language 1.1): padding 1, and the transposed convolution's exact division
@case("conv2d_pad", [randn(F32, "N", "C", "H", "W"), randn(F32, "O", "C", "KH", "KW"),
                     randn(F32, "O")], CONV2D)
def _conv2d_pad(x, w, bias):
    return F.conv2d(x, w, bias, padding=1)


@case("max_pool2d_pad", [randn(F32, "N", "C", "H", "W")],
      shapes("N C H W", (1, 1, 1, 1), (2, 3, 5, 7), (1, 2, 8, 3), (3, 1, 2, 9)))
def _max_pool2d_pad(x):
    return F.max_pool2d(x, 3, stride=2, padding=1)


@case("conv_transpose2d", [randn(F32, "N", "C", "H", "W"), randn(F32, "C", "O", "KH", "KW"),
                           randn(F32, "O")],
      shapes("N C H W O KH KW", (1, 1, 1, 1, 1, 3, 3), (2, 3, 7, 5, 4, 3, 3),
             (1, 2, 4, 3, 3, 4, 2), (2, 1, 3, 6, 2, 5, 3)))
def _conv_transpose2d(x, w, bias):
    return F.conv_transpose2d(x, w, bias, stride=2, padding=1)


@case("rope", [randn(F32, "B", "S", "H", "D"), randn(F32, "S", "D"), randn(F32, "S", "D")],
      shapes("B S H D", (1, 1, 1, 2), (2, 5, 3, 8), (1, 7, 2, 6)))
def _rope(x, c, sn):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * c[:, None] + rotated * sn[:, None]


# arg-reductions and scans (language 1.1)
@case("argmax", [randn(F32, "M", "N")], shapes("M N", (1, 1), (3, 7), (5, 130)))
def _argmax(x):
    return torch.argmax(x, dim=1)


@case("cumsum", [randn(F32, "M", "N")], shapes("M N", (1, 1), (3, 7), (2, 300)))
def _cumsum(x):
    return torch.cumsum(x, dim=1)


# --- losses -----------------------------------------------------------------------------------
@case("cross_entropy", [randn(F32, "M", "C"), labels("C", "M")],
      shapes("M C", (1, 1), (1, 5), (7, 1), (13, 10), (32, 3)))
def _cross_entropy(x, label):
    return F.cross_entropy(x, label)


@case("cross_entropy_labels", [randn(F32, "M", "C"), labels("C", "M")],
      shapes("M C", (1, 1), (1, 5), (7, 1), (13, 10), (32, 3)))
def _cross_entropy_labels(x, label):
    return F.cross_entropy(x, label)


@case("embedding", [randn(F16, "V", "D"), lambda g, s: labels("V", "B", "S")(g, s).int()],
      shapes("V D B S", (1, 1, 1, 1), (7, 5, 2, 3), (31, 8, 3, 17)))
def _embedding(table, tok):
    return F.embedding(tok.long(), table)


@case("mse_loss", [randn(F32, "M", "N"), randn(F32, "M", "N")], MATRIX)
def _mse_loss(a, b):
    return F.mse_loss(a, b)


@case("bce_with_logits", [randn(F32, "M", "N"), positive(F32, "M", "N")], MATRIX)
def _bce_with_logits(x, t):
    # Soft targets in [0.05, 1.05) exercise the x*t term beyond 0/1 labels.
    return F.binary_cross_entropy_with_logits(x, t)


# --- attention --------------------------------------------------------------------------------
def inv_sqrt(dim: str) -> Arg:
    """The usual softmax scale 1/sqrt(D)."""
    return lambda g, s: s[dim] ** -0.5


@case("attention", [randn(F16, "B", "H", "S", "D"), randn(F16, "B", "H", "T", "D"),
                    randn(F16, "B", "H", "T", "D"), inv_sqrt("D")],
      shapes("B H S T D", (1, 1, 1, 1, 1), (2, 3, 5, 7, 4), (1, 2, 9, 1, 3), (1, 1, 16, 16, 8)))
def _attention(q, k, v, scale):
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


@case("causal_attention", [randn(BF16, "B", "H", "S", "D"), randn(BF16, "B", "H", "S", "D"),
                           randn(BF16, "B", "H", "S", "D"), const(0.3)],
      shapes("B H S D", (1, 1, 1, 1), (2, 3, 5, 4), (1, 2, 9, 3), (1, 1, 16, 8)))
def _causal_attention(q, k, v, scale):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)


# --- the tests ----------------------------------------------------------------------------------
@functools.cache
def kernel(name: str) -> kspec.Kernel:
    return kspec.load(SPECS / f"{name}.kspec")[name]


def upcast(a: Any) -> Any:
    """Float tensors to float64; integer tensors and Python scalars unchanged."""
    return a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a


def assert_outputs(got: Any, want: Any) -> None:
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        # Float outputs come back as float64, unrounded, of the declared shape (KSPEC.md).
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)


def check_against_torch(name: str, sizes: Sizes, kwargs: dict[str, Any]) -> None:
    c = CASES[name]
    seed = zlib.crc32(f"{name}{sorted(sizes.items())}".encode())
    g = torch.Generator().manual_seed(seed)
    args = [make(g, sizes) for make in c.args]
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    got = kernel(name).reference(*args, **kwargs)
    for a, b in zip(args, before):  # the reference must not write to its inputs
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)
    assert_outputs(got, c.expected(*map(upcast, args), **kwargs))


def _size_id(sizes: Sizes) -> str:
    return "x".join(f"{k}{v}" for k, v in sizes.items())


REFERENCE_CASES = [
    pytest.param(name, sizes, kw, id=f"{name}-{_size_id(sizes)}"
                 + "".join(f"-{k}={v}" for k, v in kw.items()))
    for name, c in CASES.items() for sizes in c.shapes for kw in c.calls
]


@pytest.mark.parametrize("name,sizes,kwargs", REFERENCE_CASES)
def test_reference_matches_torch(name: str, sizes: Sizes, kwargs: dict[str, Any]) -> None:
    check_against_torch(name, sizes, kwargs)


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_spec_parses_and_checks(path: Path) -> None:
    mod = kspec.load(path)
    assert [k.name for k in mod] == [path.stem], "one kernel per file, named like the file"
    lines = path.read_text().splitlines()
    header = " ".join(line for line in lines[:next(i for i, l in enumerate(lines)
                                                    if not l.startswith("#"))])
    assert header.startswith("# ") and "torch" in header, \
        "a spec starts with a comment saying what it is and which PyTorch op it matches"


def test_every_spec_has_a_case() -> None:
    files = {p.stem for p in SPEC_FILES}
    assert len(files) >= 24
    assert sorted(files - set(CASES)) == [], "specs without a PyTorch comparison in CASES"
    assert sorted(set(CASES) - files) == [], "CASES entries without a spec file"


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_covers_size_one_and_odd_sizes(name: str) -> None:
    sizes = CASES[name].shapes
    assert any(1 in s.values() for s in sizes), "no shape with a size-1 dim"
    assert any(v > 2 and v % 2 for s in sizes for v in s.values()), "no odd size above 2"


# Convolution and pooling index arithmetic (p + r, 2*p + r, H // 2) at random small sizes.
@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["conv1d", "conv2d", "conv2d_stride2", "max_pool2d", "avg_pool2d"]),
       st.data())
def test_windowed_kernels_at_random_sizes(name: str, data: st.DataObject) -> None:
    dim = st.integers(1, 4)
    k = data.draw(dim, "kernel size")
    sizes = {"N": data.draw(dim), "C": data.draw(dim), "O": data.draw(dim),
             "K": k, "KH": k, "KW": data.draw(dim, "KW")}
    low = 2 if name.endswith("pool2d") else max(sizes["KH"], sizes["KW"])
    sizes.update(L=data.draw(st.integers(k, 12)), H=data.draw(st.integers(low, 12)),
                 W=data.draw(st.integers(low, 12)))
    check_against_torch(name, sizes, {})


# --- regressions: bugs found while writing the spec library, now fixed ----------------------
def _ref(src: str, *args: Any) -> Any:
    return kspec.loads(src)["k"].reference(*args)


def test_regression_bounded_reduction_index_used_bare() -> None:
    x = torch.randn(2, 5)
    got = _ref("kernel k(x: f32[M, N]) -> y: f32[M] {\n y[i] = sum(x[i, k] for k < 3) }", x)
    torch.testing.assert_close(got, x.double()[:, :3].sum(1))


def test_regression_shape_symbol_in_reduction_range() -> None:
    x = torch.randn(7)
    got = _ref("kernel k(x: f32[N]) -> y: f32 {\n y = sum(x[2*k] for k < N // 2) }", x)
    torch.testing.assert_close(got, x.double()[0:6:2].sum())


def test_regression_integer_output_read_back_unconverted() -> None:
    x = torch.tensor([1.0, -1.0])
    _, z = _ref("kernel k(x: f32[N]) -> (y: i32[N], z: f32[N]) {\n"
                " y[i] = x[i] * 2.5\n z[i] = y[i] + 0.5 }", x)
    torch.testing.assert_close(z, torch.tensor([2.5, -1.5], dtype=torch.float64))


def test_regression_bool_output_read_back_crashes() -> None:
    x = torch.tensor([0.0, 2.0])
    _, z = _ref("kernel k(x: f32[N]) -> (y: bool[N], z: f32[N]) {\n"
                " y[i] = x[i]\n z[i] = where(y[i], 1.0, 0.0) }", x)
    torch.testing.assert_close(z, torch.tensor([0.0, 1.0], dtype=torch.float64))
