"""The IR printer round-trips: format_module(ir) parsed and checked again gives an equal IR,
with and without annotate=True, and printing is a fixed point after one round."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kspec import ir
from kspec.dsl import compile_source
from kspec.ops import FUNCTIONS, OPS, REDUCTIONS
from kspec.printer import format_module

# The examples of KSPEC.md, then programs that together use every operator, function, cast and
# reduction, `for r < E`, scalars with defaults, several outputs and affine indices.
PROGRAMS: dict[str, str] = {
    "kspec_md": """
# comments run to the end of the line
kernel softmax(x: f32[M, N]) -> y: f32[M, N] {
    m[i]    = max(x[i, j] for j)
    e[i, j] = exp(x[i, j] - m[i])
    y[i, j] = e[i, j] / sum(e[i, k] for k)
}

kernel matmul_bias_gelu(a: f16[M, K], b: f16[K, N], bias: f16[N]) -> c: f16[M, N] {
    acc[i, j] = sum(a[i, k] * b[k, j] for k)
    c[i, j]   = gelu(acc[i, j] + bias[j])
}

kernel layernorm(x: bf16[M, N], w: bf16[N], b: bf16[N], eps: f32 = 1e-5)
        -> (y: bf16[M, N], mu: f32[M], rstd: f32[M]) {
    mu[i]   = mean(x[i, j] for j)
    var[i]  = mean((x[i, j] - mu[i]) ** 2 for j)
    rstd[i] = rsqrt(var[i] + eps)
    y[i, j] = (x[i, j] - mu[i]) * rstd[i] * w[j] + b[j]
}
""",
    "conv_tc": """
kernel conv(x: f32[N, C, H, W], w: f32[O, C, KH, KW]) -> z: f32[N, O, H - KH + 1, W - KW + 1] {
    z[n, o, p, q] = sum(x[n, c, p + r, q + s] * w[o, c, r, s] for c, r, s)
}
""",
    "avgpool_explicit_range": """
kernel pool(x: f32[N, C, H, W]) -> y: f32[N, C, (H - 3) // 2 + 1, (W - 3) // 2 + 1] {
    y[n, c, p, q] = mean(x[n, c, 2*p + r, 2*q + s] for r < 3, s < 3)
}
""",
    "arith_operators": """
kernel arith(a: f32[N], b: f32[N]) -> (s: f32[N], d: f32[N], p: f32[N], q: f32[N],
                                       m: f32[N], e: f32[N], n: f32[N], u: f32[N]) {
    s[i] = a[i] + b[i]
    d[i] = a[i] - b[i] - (a[i] - b[i])
    p[i] = a[i] * b[i] * 2
    q[i] = a[i] / b[i] / (a[i] / b[i])
    m[i] = a[i] % b[i]
    e[i] = a[i] ** b[i] ** 2 + (a[i] ** b[i]) ** 2 + (-a[i]) ** 2
    n[i] = -a[i] - -b[i] + -(a[i] * b[i])
    u[i] = +a[i] + (a[i] + b[i]) * (a[i] - b[i])
}
""",
    "comparisons_logic": """
kernel logic(a: f32[N], b: i32[N]) -> (lt: bool[N], ge: bool[N], eq: bool[N], lg: bool[N]) {
    lt[i] = a[i] < b[i]
    ge[i] = (a[i] >= 0) == (b[i] <= 0)
    eq[i] = a[i] == 1.5 or a[i] != 2 and not (a[i] > 3)
    lg[i] = not lt[i] and (ge[i] or eq[i]) or not not lt[i]
}
""",
    "unary_functions": """
kernel fns(x: f32[N]) -> y: f32[N] {
    a[i] = exp(x[i]) + exp2(x[i]) + log(x[i]) + log2(x[i]) + log1p(x[i]) + sqrt(x[i])
    b[i] = rsqrt(x[i]) + abs(x[i]) + sin(x[i]) + cos(x[i]) + tanh(x[i]) + sigmoid(x[i])
    c[i] = erf(x[i]) + floor(x[i]) + ceil(x[i]) + relu(x[i]) + gelu(x[i]) + gelu_tanh(x[i])
    y[i] = a[i] + b[i] + c[i] + silu(x[i]) + softplus(x[i])
}
""",
    "binary_functions": """
kernel fns2(x: f32[N], lo: f32 = -1.0, hi: f32 = inf) -> y: f32[N] {
    y[i] = (max(x[i], 0) + min(x[i], 1.0) + pow(x[i], 3) + clamp(x[i], lo, hi)
            + where(x[i] > 0, x[i], 0.5 * x[i]))
}
""",
    "casts": """
kernel casts(x: f32[N], b: bool[N]) -> (y: f64[N], z: i8[N]) {
    h[i] = f16(x[i]) + bf16(x[i]) + f32(i64(x[i]))
    y[i] = f64(h[i]) + f64(i32(b[i])) + f64(i16(x[i])) + f64(u8(x[i]))
    z[i] = i8(bool(x[i]))
}
""",
    "reductions": """
kernel reds(x: f32[M, N], m: bool[M, N]) -> (s: f32[M], p: f32[M], a: f32[N], b: f32[N],
                                            e: f32, c: i64[M]) {
    s[i] = sum(x[i, j] for j)
    p[i] = prod(x[i, j] for j)
    a[j] = max(x[i, j] for i)
    b[j] = min(x[i, j] for i) + max(max(x[i, j], 0.0) for i)
    e = mean(x[i, j] for i, j)
    c[i] = sum(m[i, j] for j)
}
""",
    "arg_reductions_and_scans": """
kernel picks(x: f32[M, N]) -> (hi: i64[M], lo: i64[M], c: f32[M, N], r: f32[M, N]) {
    hi[i] = argmax(x[i, j] for j)
    lo[i] = argmin(x[i, j] * 2.0 for j)
    c[i, j] = sum(x[i, k] for k <= j) + prod(x[i, k] for k < j)
    r[i, j] = max(x[i, k] for k >= j) - min(x[i, k] for k >= j) + sum(x[i, k] for k > j)
}
""",
    "nested_reductions": """
kernel nested(x: f32[B, M, N]) -> y: f32[B] {
    y[b] = max(sum(exp(x[b, i, j] - max(x[b, i, k] for k)) for j) for i)
}
""",
    "scalars_defaults": """
kernel scal(x: f32[N], alpha: f32 = 0.5, beta: f64 = -2, k: i32 = 3, flag: bool = false,
            gain: f16, big: f32 = 1e+30, tiny: f32 = -inf, on: bool = true) -> y: f32[N] {
    t = alpha * 2 + beta
    y[i] = where(flag or on, x[i] * t + k, max(x[i], tiny)) * gain + big
}
""",
    "symbols_and_indices_as_values": """
kernel iota(x: f32[M, N]) -> (y: f32[M, N], tri: f32[M, N]) {
    y[i, j] = x[i, j] / N + i * N + j - M
    tri[i, j] = where(j <= i, x[i, j], 0.0)
}
""",
    "affine_indices": """
kernel shifts(x: f32[N], w: f32[K], z: f32[M, 2 * M + 3]) -> (y: f32[N - K + 1], r: f32[N],
                                                        d: f32[M]) {
    y[i] = sum(x[i + k] * w[K - 1 - k] for k)
    r[i] = x[N - 1 - i]
    d[i] = z[i, 2 * i + 3] + z[i, -i + 2 * M] + z[i, 3]
}
""",
    "shape_arithmetic": """
kernel shapes(x: f32[N, 2 * C], g: f32[C + 1], p: f32[N * C, 4]) -> y: f32[N, C] {
    y[n, c] = x[n, 2 * c + 1] * g[c + 1] + p[n * 0 + c + 1, 0] - x[n, c + C] / (C + 1)
}
""",
    "several_kernels_semicolons": """
kernel a(x: i32[N]) -> y: i64[N] { y[i] = x[i] * 2; }
kernel b(x: u8[N]) -> (y: i32[N]) { t[i] = i32(x[i]) % 7 ; y[i] = t[i] + 1 }
kernel c(x: f32[N],) -> (y: f32[N],) {

    y[i] = x[i]   # trailing comment

}
""",
    "multiline": """
kernel ml(a: f16[M, K],
          b: f16[K, N]) -> c: f32[M,
                                  N] {
    c[i, j] = sum(
        a[i, k]
        * b[k, j]
        for k
    ) \\
    + 1
}
""",
    "attention": """
kernel attention(q: f16[B, H, S, D], k: f16[B, H, T, D], v: f16[B, H, T, D], scale: f32 = 0.125)
        -> o: f16[B, H, S, D] {
    s[b, h, i, j] = sum(f32(q[b, h, i, d]) * f32(k[b, h, j, d]) for d) * scale
    m[b, h, i] = max(s[b, h, i, j] for j)
    p[b, h, i, j] = exp(s[b, h, i, j] - m[b, h, i])
    o[b, h, i, d] = sum(p[b, h, i, j] * v[b, h, j, d] for j) / sum(p[b, h, i, j] for j)
}
""",
    "cross_entropy": """
kernel xent(logits: f32[N, C], target: i64[N]) -> loss: f32 {
    m[n] = max(logits[n, c] for c)
    lse[n] = m[n] + log(sum(exp(logits[n, c] - m[n]) for c))
    picked[n] = sum(where(c == target[n], logits[n, c], 0.0) for c)
    loss = mean(lse[n] - picked[n] for n)
}
""",
    "precedence": """
kernel prec(a: f32[N], b: f32[N], c: f32[N]) -> (y: f32[N], z: bool[N]) {
    y[i] = a[i] - (b[i] - c[i]) + a[i] / (b[i] * c[i]) - -a[i] ** 2 + (a[i] + b[i]) % c[i] \
           - 2 ** -a[i] + a[i] ** (b[i] ** c[i]) + (-1) ** 2 - 1 - -1
    z[i] = not (a[i] < b[i]) == (b[i] < c[i]) or a[i] + 1 > b[i] and (a[i] > 0) != (c[i] > 0)
}
""",
}


ROOT = Path(__file__).resolve().parent.parent
# the spec library, where present, round-trips too
SPECS = {f"spec:{p.stem}": p for p in sorted((ROOT / "specs").glob("*.kspec"))}


def source(name: str) -> str:
    return SPECS[name].read_text() if name in SPECS else PROGRAMS[name]


@pytest.mark.parametrize("annotate", [False, True], ids=["plain", "annotated"])
@pytest.mark.parametrize("name", [*PROGRAMS, *SPECS])
def test_print_parse_gives_equal_ir(name, annotate):
    first = compile_source(source(name), f"{name}.kspec")
    text = format_module(first, annotate=annotate)
    second = compile_source(text, f"{name}.printed.kspec")
    assert second == first, text
    # a fixed point: printing the re-parsed IR gives the same text
    assert format_module(second, annotate=annotate) == text


def test_programs_cover_the_language():
    """Every operator, function, cast and reduction of the language appears in PROGRAMS."""
    used_ops: set[str] = set()
    used_casts: set[str] = set()
    used_reductions: set[str] = set()
    given_ranges = 0
    defaults = 0
    several_outputs = 0
    affine = 0
    for name, text in PROGRAMS.items():
        module = compile_source(text, name)
        for k in module.kernels:
            defaults += sum(1 for p in k.scalar_params if p.default is not None)
            several_outputs += len(k.outputs) > 1
            for stmt in k.body:
                for e in ir.walk(stmt.value):
                    if isinstance(e, ir.Op):
                        used_ops.add(e.op)
                    elif isinstance(e, ir.Cast):
                        used_casts.add(str(e.dtype))
                    elif isinstance(e, ir.Reduce):
                        used_reductions.add(e.op)
                        given_ranges += sum(v.given for v in e.vars)
                    elif isinstance(e, ir.Load):
                        affine += any(a.bare is None for a in e.index)
    assert set(OPS) - used_ops == set()
    assert {op for op in FUNCTIONS.values()} <= used_ops
    assert used_casts == {"bool", "u8", "i8", "i16", "i32", "i64", "f16", "bf16", "f32", "f64"}
    assert used_reductions == set(REDUCTIONS)
    assert given_ranges and defaults and several_outputs and affine


def test_annotation_is_only_comments():
    module = compile_source(PROGRAMS["conv_tc"] + PROGRAMS["shape_arithmetic"])
    plain = format_module(module)
    annotated = format_module(module, annotate=True)
    stripped = "\n".join(re.sub(r"\s*#.*$", "", line) for line in annotated.splitlines())
    assert [ln for ln in stripped.splitlines() if ln.strip()] == \
        [ln for ln in plain.splitlines() if ln.strip()]


@pytest.mark.parametrize("expr", [" + ".join(["x[i]"] * 100), "-" * 99 + "x[i]",
                                  "exp(" * 99 + "x[i]" + ")" * 99],
                         ids=["sum", "neg", "calls"])
def test_deepest_accepted_expression_round_trips(expr):
    """The parser accepts expressions up to MAX_DEPTH levels; the rest of the front end and the
    printer must handle that depth too."""
    from kspec.dsl.parser import MAX_DEPTH

    assert MAX_DEPTH == 100
    first = compile_source(f"kernel f(x: f32[N]) -> y: f32[N] {{\n    y[i] = {expr}\n}}\n")
    assert compile_source(format_module(first)) == first
