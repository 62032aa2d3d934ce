"""The cases of bench/large.py: per spec, sizes where 32-bit offsets overflow ("offsets": a
tensor of more than 2^31 elements) or a reduction spans more than 10^7 elements
("reduction"), and what a case needs in memory, measured without allocating anything.

A case's float64 reference can be larger than the GPU (softmax at 2^31 elements: ~52 GB of
float64 temporaries). Where the spec's outputs are independent along a shape symbol (rows,
batches, queries), the case names it as `chunk`: the reference is evaluated on slices of the
inputs along that symbol and compared with the same slice of the kernel's output. The memory
estimate traces the reference (and the magnitudes the tolerance uses) on meta tensors, so
the dry run and the driver know every intermediate's size without a GPU.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

Sizes = dict[str, int]

OFFSET_LIMIT = 2 ** 31          # elements: a signed 32-bit offset overflows past this
REDUCTION_LIMIT = 10 ** 7       # elements in one reduction
# per output element while comparing: the reference and its magnitude (float64) plus
# tolerance.compare's temporaries and the error metrics (54 B, measured on the CPU)
COMPARE_BYTES = 16 + 56
SLACK = 0.9                     # plan slices to 90% of the budget: allocator rounding
ROWS = 524_300                  # x 4096 = 2^31 + 49152: the last 12 rows lie past 2^31
LONG = 10_000_019               # a prime above 10^7: no block size divides it


@dataclass(frozen=True)
class Case:
    spec: str
    case: str                           # "offsets" or "reduction"
    sizes: Sizes                        # on the GPU
    small: Sizes                        # --scale small (CPU): the same code path, tiny
    why: str                            # one line: why these sizes
    chunk: str | None = None            # the reference runs in slices along this symbol
    scalars: dict[str, float] = field(default_factory=dict)   # non-default scalar values
    scale_by: tuple[str, ...] = ()      # float inputs x prod(these)^-1/4: O(1) contractions
    ints: dict[str, str] = field(default_factory=dict)        # integer input -> bound symbol
    positive: tuple[str, ...] = ()      # inputs drawn from [0.5, 1.5) (variances)
    skip: str = ""                      # why this case is not run (no sizes then)

    @property
    def key(self) -> str:
        return f"{self.spec}/{self.case}"


def _rows(spec: str, reduce_rows: bool, chunk: str = "M", **kw: Any) -> list[Case]:
    """[M, N] specs: offsets at 524300 x 4096 (independent rows: chunked along M); with a
    row reduction, also 3 rows of 10^7 + 19 (one row longer than any block)."""
    out = [Case(spec, "offsets", {"M": ROWS, "N": 4096}, {"M": 6, "N": 37},
                "524300 x 4096 = 2^31 + 49152 elements; rows are independent", chunk, **kw)]
    if reduce_rows:
        out.append(Case(spec, "reduction", {"M": 3, "N": LONG}, {"M": 3, "N": 301},
                        "each row reduces 10^7 + 19 elements", chunk, **kw))
    else:
        out.append(Case(spec, "reduction", {}, {}, "", skip="pointwise: no reduction"))
    return out


def _whole(spec: str, **kw: Any) -> list[Case]:
    """A reduction of the whole [M, N] input to a scalar: nothing to chunk."""
    return [Case(spec, "offsets", {"M": ROWS, "N": 4096}, {"M": 6, "N": 37},
                 "2^31 + 49152 elements reduced to one value; the float64 reference of the "
                 "whole input cannot be chunked (above the default budget)", **kw),
            Case(spec, "reduction", {"M": 4099, "N": 4099}, {"M": 19, "N": 23},
                 "one reduction over 4099^2 = 16.8M elements", **kw)]


def _matmul(spec: str, a_km: bool = False) -> list[Case]:
    big = {"M": ROWS, "K": 4096, "N": 64}
    return [Case(spec, "offsets", big, {"M": 37, "K": 24, "N": 19},
                 "the [M, K] operand has 2^31 + 49152 elements, N short; rows of C are "
                 "independent (chunked along M)" + (" (a is [K, M])" if a_km else ""),
                 "M", scale_by=("K",)),
            Case(spec, "reduction", {"M": 16, "K": LONG, "N": 16}, {"M": 5, "K": 301, "N": 7},
                 "a depth of 10^7 + 19: each output sums that many products", "M",
                 scale_by=("K",))]


def _conv(spec: str, bias: bool) -> list[Case]:
    small = {"N": 2, "C": 3, "H": 9, "W": 8, "O": 2, "KH": 3, "KW": 3}
    return [Case(spec, "offsets", {"N": 128, "C": 16, "H": 1026, "W": 1026, "O": 4, "KH": 3,
                                   "KW": 3}, small,
                 "x has 128 x 16 x 1026^2 = 2.16e9 elements, 4 filters; images are independent "
                 "(chunked along N: the reference gathers 9 windows per element)", "N",
                 scale_by=("C", "KH", "KW")),
            Case(spec, "reduction", {"N": 1, "C": 1_111_112, "H": 4, "W": 4, "O": 2, "KH": 3,
                                     "KW": 3}, {**small, "C": 40},
                 "each output sums C x 3 x 3 = 10,000,008 products", "N",
                 scale_by=("C", "KH", "KW"))]


def _image(spec: str, no_reduction: str = "", **kw: Any) -> list[Case]:
    return [Case(spec, "offsets", {"N": 128, "C": 16, "H": 1026, "W": 1026},
                 {"N": 2, "C": 3, "H": 8, "W": 6},
                 "128 x 16 x 1026^2 = 2.16e9 elements; images are independent (small ones, "
                 "so that a slice of the reference fits)", "N", **kw),
            Case(spec, "reduction", {}, {}, "",
                 skip=no_reduction or "the only reduction is a 2 x 2 window")]


SDPA_SCALE = {"scale": 0.125}           # 1 / sqrt(64)

CASES: list[Case] = [
    *[c for s in ("relu", "gelu", "gelu_tanh", "silu", "leaky_relu", "swiglu")
      for c in _rows(s, False)],
    *[c for s in ("softmax", "log_softmax", "l2_normalize", "rmsnorm", "logsumexp", "row_sum",
                  "layernorm") for c in _rows(s, True)],
    Case("matvec", "offsets", {"M": ROWS, "K": 4096}, {"M": 6, "K": 37},
         "the matrix has 524300 x 4096 = 2^31 + 49152 elements; rows are independent", "M",
         scale_by=("K",)),
    Case("matvec", "reduction", {"M": 3, "K": LONG}, {"M": 3, "K": 301},
         "each row's dot product spans 10^7 + 19 elements", "M", scale_by=("K",)),
    Case("col_sum", "offsets", {"M": ROWS, "N": 4096}, {"M": 6, "N": 37},
         "2^31 + 49152 elements; columns are independent (chunked along N)", "N"),
    Case("col_sum", "reduction", {"M": LONG, "N": 3}, {"M": 301, "N": 3},
         "each column reduces 10^7 + 19 elements (strided)", "N"),
    *_whole("sum_squares"), *_whole("mse_loss"), *_whole("bce_with_logits"),
    Case("cross_entropy", "offsets", {"M": ROWS, "C": 4096}, {"M": 6, "C": 37},
         "logits of 2^31 + 49152 elements; the mean over rows cannot be chunked",
         ints={"label": "C"}),
    Case("cross_entropy", "reduction", {"M": 3, "C": LONG}, {"M": 3, "C": 301},
         "each row's log-sum-exp and pick span 10^7 + 19 classes", ints={"label": "C"}),
    Case("vector_add", "offsets", {"N": OFFSET_LIMIT + 4099}, {"N": 1000},
         "2^31 + 4099 elements per vector (three: above the default budget)", "N"),
    Case("vector_add", "reduction", {}, {}, "", skip="elementwise: no reduction"),
    Case("axpy", "offsets", {"N": OFFSET_LIMIT + 4099}, {"N": 1000},
         "2^31 + 4099 elements per vector (three: above the default budget)", "N",
         scalars={"alpha": 0.5}),
    Case("axpy", "reduction", {}, {}, "", skip="elementwise: no reduction"),
    *_matmul("matmul"), *_matmul("matmul_nt"), *_matmul("matmul_tn", a_km=True),
    *[Case("matmul_bias_gelu", c.case, c.sizes, c.small, c.why, c.chunk, scale_by=c.scale_by)
      for c in _matmul("matmul")],
    Case("bmm", "offsets", {"B": 8, "M": 65_544, "K": 4096, "N": 64},
         {"B": 2, "M": 19, "K": 24, "N": 9},
         "a has 8 x 65544 x 4096 = 2^31 + 262144 elements, N short; batches independent",
         "B", scale_by=("K",)),
    Case("bmm", "reduction", {"B": 2, "M": 16, "K": LONG, "N": 16},
         {"B": 2, "M": 5, "K": 301, "N": 7}, "a depth of 10^7 + 19 per batch", "B",
         scale_by=("K",)),
    Case("attention", "offsets", {"B": 1, "H": 32, "S": 1_048_600, "T": 80, "D": 64},
         {"B": 1, "H": 2, "S": 37, "T": 19, "D": 16},
         "q and o have 32 x 1048600 x 64 = 2^31 + 49152 elements, 80 keys; queries are "
         "independent (chunked along S)", "S", scalars=SDPA_SCALE),
    Case("attention", "reduction", {"B": 1, "H": 1, "S": 16, "T": LONG, "D": 64},
         {"B": 1, "H": 1, "S": 5, "T": 301, "D": 16},
         "the softmax and the weighted sum run over 10^7 + 19 keys", "S", scalars=SDPA_SCALE),
    Case("causal_attention", "offsets", {"B": 512, "H": 1025, "S": 64, "D": 64},
         {"B": 2, "H": 2, "S": 19, "D": 16},
         "q, k, v, o have 512 x 1025 x 64 x 64 = 2^31 + 2^21 elements; 64 keys keep the "
         "float64 reference's S^2 scores small; batches independent", "B",
         scalars=SDPA_SCALE),
    Case("causal_attention", "reduction", {}, {}, "",
         skip="the key axis is the query axis: 10^7 keys would be 10^14 scores"),
    Case("conv1d", "offsets", {"N": 32, "C": 64, "L": 1_048_600, "O": 8, "K": 3},
         {"N": 2, "C": 3, "L": 17, "O": 2, "K": 3},
         "x has 32 x 64 x 1048600 = 2^31 + 49152 elements, 8 filters; chunked along N", "N",
         scale_by=("C", "K")),
    Case("conv1d", "reduction", {"N": 1, "C": 3_333_340, "L": 8, "O": 2, "K": 3},
         {"N": 2, "C": 40, "L": 8, "O": 2, "K": 3},
         "each output sums C x 3 = 10,000,020 products", "N", scale_by=("C", "K")),
    *_conv("conv2d", True), *_conv("conv2d_stride2", False),
    *_image("avg_pool2d"), *_image("max_pool2d"),
    *_image("batchnorm", positive=("running_var",), no_reduction="per-channel affine: no "
            "reduction"),
    # language 1.1
    *_rows("argmax", True), *_rows("cumsum", True),
    Case("cross_entropy_labels", "offsets", {"M": ROWS, "C": 4096}, {"M": 6, "C": 37},
         "logits of 2^31 + 49152 elements; the mean over rows cannot be chunked",
         ints={"label": "C"}),
    Case("cross_entropy_labels", "reduction", {"M": 3, "C": LONG}, {"M": 3, "C": 301},
         "each row's log-sum-exp spans 10^7 + 19 classes; the gather picks one",
         ints={"label": "C"}),
    Case("embedding", "offsets", {"V": 1000, "D": 4096, "B": ROWS, "S": 1},
         {"V": 11, "D": 37, "B": 6, "S": 2},
         "the output has 524300 x 4096 = 2^31 + 49152 elements gathered from 1000 rows; "
         "tokens are independent (chunked along B)", "B", ints={"tok": "V"}),
    Case("embedding", "reduction", {}, {}, "", skip="a gather: no reduction"),
    *_conv("conv2d_pad", True),
    Case("conv_transpose2d", "offsets", {"N": 128, "C": 16, "H": 1026, "W": 1026, "O": 1,
                                         "KH": 3, "KW": 3},
         {"N": 2, "C": 3, "H": 5, "W": 4, "O": 2, "KH": 3, "KW": 3},
         "x has 128 x 16 x 1026^2 = 2.16e9 elements, the output 128 x 2049^2 x 1; images are "
         "independent (chunked along N)", "N", scale_by=("C", "KH", "KW")),
    Case("conv_transpose2d", "reduction", {"N": 1, "C": 4_444_448, "H": 4, "W": 4, "O": 2,
                                           "KH": 3, "KW": 3},
         {"N": 2, "C": 40, "H": 4, "W": 4, "O": 2, "KH": 3, "KW": 3},
         "each output sums C x 3 x 3 = 4e7 terms, of which the stride-2 division keeps 1-4 "
         "taps per channel: at least 4.4e6 and up to 1.8e7 products", "N",
         scale_by=("C", "KH", "KW")),
    *_image("max_pool2d_pad", no_reduction="the only reduction is a 3 x 3 window"),
    Case("rope", "offsets", {"B": 512, "S": 1025, "H": 64, "D": 64},
         {"B": 2, "S": 5, "H": 3, "D": 8},
         "x has 512 x 1025 x 64 x 64 = 2^31 + 2^21 elements; batches are independent", "B"),
    Case("rope", "reduction", {}, {}, "", skip="elementwise: no reduction"),
    Case("group_norm", "offsets", {"N": 64, "G": 8, "C": 64, "L": 65_550},
         {"N": 2, "G": 2, "C": 3, "L": 11},
         "x has 64 x 8 x 64 x 65550 = 2^31 + 196608 elements; samples are independent",
         "N"),
    Case("group_norm", "reduction", {"N": 2, "G": 2, "C": 4, "L": 2_500_007},
         {"N": 2, "G": 2, "C": 3, "L": 50},
         "each group's mean and variance span 4 x 2500007 = 10,000,028 elements", "N"),
]


# --- what a case holds ---------------------------------------------------------------------
def tensor_elements(kernel: Any, sizes: Sizes) -> dict[str, int]:
    """Elements of every input and output tensor at `sizes`."""
    k = kernel.ir
    return {t.name: math.prod(d.evaluate(sizes) for d in t.dims)
            for t in (*k.tensor_params, *k.outputs)}


def reduction_spans(kernel: Any, sizes: Sizes) -> list[int]:
    """Elements each reduction of the kernel runs over, at `sizes`."""
    from kspec import ir

    # a scan carries its running value along its whole range, as a reduction does
    return [math.prod(v.extent.evaluate(sizes) for v in node.vars) if isinstance(node, ir.Reduce)
            else node.var.extent.evaluate(sizes)
            for stmt in kernel.ir.body for node in ir.walk(stmt.value)
            if isinstance(node, (ir.Reduce, ir.Scan))]


def chunk_dims(kernel: Any, symbol: str) -> dict[str, list[int]]:
    """Per input/output tensor, the dims whose extent is exactly `symbol` (sliced together).
    A dim that merely involves the symbol (H // 2) cannot be sliced: refuse such a case."""
    from kspec.shapes import Shape

    exact = Shape.sym(symbol)
    out: dict[str, list[int]] = {}
    for t in (*kernel.ir.tensor_params, *kernel.ir.outputs):
        dims = [i for i, d in enumerate(t.dims) if d == exact]
        if any(symbol in d.symbols() and d != exact for d in t.dims):
            raise ValueError(f"{t.name}: a dim of {t.name} is a function of {symbol}; the "
                             f"reference cannot be sliced along it")
        out[t.name] = dims
    return out


def arguments(kernel: Any, case: Case, sizes: Sizes, device: torch.device | str,
              seed: int) -> list[Any]:
    """The kernel's arguments in signature order, generated on `device` (never on the CPU
    for a GPU run: a 2^31-element tensor would take minutes to generate and copy)."""
    from kspec import ir

    gen = torch.Generator(device=device).manual_seed(seed)
    factor = math.prod(sizes[s] for s in case.scale_by) ** -0.25 if case.scale_by else 1.0
    args: list[Any] = []
    for p in kernel.ir.params:
        if isinstance(p, ir.ScalarParam):
            args.append(case.scalars.get(p.name, p.default))
            continue
        shape = tuple(d.evaluate(sizes) for d in p.dims)
        dt = p.dtype.torch
        if p.name in case.ints:
            t = torch.randint(0, sizes[case.ints[p.name]], shape, generator=gen, device=device,
                              dtype=dt)
        elif p.name in case.positive:
            t = torch.rand(shape, generator=gen, device=device, dtype=dt).add_(0.5)
        else:
            t = torch.randn(shape, generator=gen, device=device, dtype=dt)
            if factor != 1.0:
                t.mul_(factor)
        args.append(t)
    return args


def slice_args(kernel: Any, args: list[Any], dims: dict[str, list[int]], start: int,
               length: int) -> list[Any]:
    """Views of the tensor arguments narrowed to [start, start + length) along the chunk
    symbol's dims (no copies)."""
    out = []
    for p, a in zip(kernel.ir.params, args):
        if isinstance(a, torch.Tensor):
            for d in dims.get(p.name, []):
                a = a.narrow(d, start, length)
        out.append(a)
    return out


# --- memory, without allocating ------------------------------------------------------------
class _LiveBytes(torch.utils._python_dispatch.TorchDispatchMode):
    """Peak bytes of the tensors alive at once among those created inside the mode (views
    count nothing: they share their base's memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0

    def _free(self, n: int) -> None:
        self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not any(r.alias_info is not None for r in func._schema.returns):
            for t in torch.utils._pytree.tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    n = t.numel() * t.element_size()
                    self.live += n
                    weakref.finalize(t, self._free, n)
        self.peak = max(self.peak, self.live)
        return out


def reference_peak(kernel: Any, case: Case, sizes: Sizes) -> int:
    """Peak bytes of checking one slice at `sizes`: the float64 reference and the magnitudes
    (tolerance.magnitude), the reference's outputs held while the magnitudes run, traced on
    meta tensors; or the comparison after them, if that is larger."""
    from kspec.verify.tolerance import magnitude

    args = _meta_args(kernel, case, sizes)
    with _LiveBytes() as mode:
        want = kernel.reference(*args)
        mags = magnitude(kernel, args)
        del want, mags
    outs = sum(math.prod(d.evaluate(sizes) for d in o.dims) for o in kernel.ir.outputs)
    return max(mode.peak, COMPARE_BYTES * outs)


def _meta_args(kernel: Any, case: Case, sizes: Sizes) -> list[Any]:
    from kspec import ir

    return [case.scalars.get(p.name, p.default) if isinstance(p, ir.ScalarParam) else
            torch.empty(tuple(d.evaluate(sizes) for d in p.dims), dtype=p.dtype.torch,
                        device="meta") for p in kernel.ir.params]


def temporaries_bytes(kernel: Any, sizes: Sizes) -> int:
    """Bytes of the intermediates the plan stores in memory (as float32): what a backend
    allocates besides the outputs. A fused attention stores none."""
    from kspec.lowering import plan_kernel

    plan = plan_kernel(kernel.ir)
    stored = {t for launch in plan.launches for t in launch.stores}
    temps = [plan.program.buffers[n] for n in plan.program.temporaries if n in stored]
    return sum(4 * math.prod(d.evaluate(sizes) for d in t.dims) for t in temps)


def _part(case: Case, sizes: Sizes, length: int) -> Sizes:
    return {**sizes, case.chunk: length} if case.chunk else sizes


@dataclass
class Plan:
    """A case's memory plan: bytes of the inputs and outputs, the reference's slices."""

    io_bytes: int
    temp_bytes: int
    ref_bytes: int          # one slice's reference + magnitudes + comparison
    chunks: int
    total_bytes: int
    largest_tensor: int     # elements
    longest_reduction: int  # elements
    over_budget: str = ""   # non-empty: why this case does not fit the budget


def plan_case(kernel: Any, case: Case, sizes: Sizes, budget: int,
              chunks: int | None = None) -> Plan:
    """How many slices the reference needs so that inputs + outputs + one slice's reference
    fit `budget` bytes (or `chunks` slices when given, e.g. 2 at --scale small, so that the
    sliced path runs on the CPU too)."""
    elems = tensor_elements(kernel, sizes)
    k = kernel.ir
    sizes_of = {t.name: t.dtype.torch.itemsize for t in (*k.tensor_params, *k.outputs)}
    io = sum(n * sizes_of[name] for name, n in elems.items())
    temps = temporaries_bytes(kernel, sizes)
    spans = reduction_spans(kernel, sizes)
    n = sizes[case.chunk] if case.chunk else 1
    length = n if chunks is None else math.ceil(n / chunks)
    ref = reference_peak(kernel, case, _part(case, sizes, length))
    room = SLACK * budget - io
    # the reference grows about linearly with the slice: shrink it until it fits (a few
    # rounds, as gathers and einsums do not scale exactly)
    for _ in range(5):
        if chunks is not None or ref <= room or length == 1:
            break
        length = max(1, min(length - 1, int(length * max(room, 0) / ref)))
        ref = reference_peak(kernel, case, _part(case, sizes, length))
    chunks = math.ceil(n / length)
    total = io + max(temps, ref)
    plan = Plan(io, temps, ref, chunks, total, max(elems.values()), max(spans, default=0))
    if total > budget:
        plan.over_budget = (f"needs {total / 1e9:.1f} GB > the budget of {budget / 1e9:.0f} GB "
                            f"(--budget-gb)")
    return plan
