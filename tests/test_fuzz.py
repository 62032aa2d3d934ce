"""The front end never fails with anything but a module or a kspec.KspecError.

(a) programs generated from the grammar itself (hypothesis.extra.lark.from_lark),
(b) random text and random bytes,
(c) random mutations (delete / insert / swap / duplicate characters and slices) of valid and
    malformed programs: the specs in specs/, the round-trip programs and the error goldens,
(d) structured random kernels (shape expressions, affine indices, reduction ranges), which must
    also round-trip through the printer when they are valid.

Every other exception (a Python traceback for the user) is a front-end bug. Each property is
bounded by max_examples so that the whole file runs in well under a minute on two cores.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import kspec
from kspec.dsl import compile_source
from kspec.dsl.parser import grammar_text
from kspec.printer import format_module

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_roundtrip import PROGRAMS  # noqa: E402

ROOT = HERE.parent


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def seeds() -> list[str]:
    texts = list(PROGRAMS.values())
    texts += [p.read_text() for p in sorted((ROOT / "specs").glob("*.kspec"))]
    texts += [p.read_bytes().decode("utf-8", "surrogateescape")
              for p in sorted((HERE / "golden" / "errors").glob("*.kspec"))]
    return texts


SEEDS = seeds()


def compile_ok_or_kspec_error(text: str) -> None:
    """The property: a module, or a KspecError whose text names the file and position."""
    try:
        mod = kspec.loads(text, "fuzz.kspec")
    except kspec.KspecError as e:
        message = str(e)
        assert message.startswith("fuzz.kspec:"), message
        assert e.pos is not None, message
        # the caret lies on a line of the excerpt, at most one column past its end
        lines = e.pos.source.split("\n")
        assert 1 <= e.pos.line <= len(lines), message
        assert 1 <= e.pos.col <= len(lines[e.pos.line - 1]) + 1, message
        assert message.count("\n") == 2 and message.endswith("^"), message
        return
    assert isinstance(mod, kspec.Module)


# --- (a) from the grammar ---------------------------------------------------------------------
# from_lark picks among a rule's alternatives uniformly and opens a Hypothesis span per rule, so
# with kspec's ten-level precedence chain (expr -> or_test -> ... -> atom) most draws exceed
# Hypothesis's nesting limit or its buffer, at seconds per example. The generator therefore uses
# the grammar plus aliases that add no sentence: each precedence rule may also derive any lower
# one directly, and atom's NAME and NUMBER alternatives are repeated LEAF_WEIGHT times. Earley is
# used only because the aliases make the grammar ambiguous.
LEAF_WEIGHT = 8


def weighted_grammar(text: str, k: int = LEAF_WEIGHT) -> str:
    chain = re.findall(r"^\?(\w+):", text, flags=re.M)
    lines, extra = [], []
    for line in text.splitlines():
        m = re.match(r"\?(\w+): ", line)
        if m:
            rule = m.group(1)
            alts = [f"_w_{rule}_{lower}" for lower in chain[chain.index(rule) + 1:]]
            extra += [f"_w_{rule}_{lower}: {lower}" for lower in chain[chain.index(rule) + 1:]]
            if rule == "atom":
                for i in range(k):
                    extra += [f"_w_name_{i}: NAME", f"_w_number_{i}: NUMBER"]
                    alts += [f"_w_name_{i}", f"_w_number_{i}"]
            if alts:
                line = line.replace(": ", ": " + " | ".join(alts) + " | ", 1)
        lines.append(line)
    return "\n".join(lines + extra) + "\n"


GRAMMAR = Lark(weighted_grammar(grammar_text()), parser="earley", lexer="dynamic")

# Names come from a small pool that makes valid programs likely (dtypes, functions, reductions,
# shape symbols, index names) plus arbitrary identifiers; keywords and names are padded with a
# space so that adjacent terminals do not merge (`kernel` + `f` is not `kernelf`).
_POOL = ["x", "y", "z", "w", "b", "t", "i", "j", "k", "r", "N", "M", "K", "f32", "f16", "bf16",
         "i32", "i64", "u8", "bool", "f64", "exp", "max", "min", "sum", "mean", "prod", "where",
         "clamp", "pow", "sqrt", "gelu_tanh", "inf", "true", "false", "eps", "for", "not"]
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_NAME = st.one_of(st.sampled_from(_POOL),
                  st.tuples(st.sampled_from(_LETTERS),
                            st.text(_LETTERS + "0123456789", max_size=5)).map("".join))
_NUMBER = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "7", "1.0", "0.5", "1e-5", ".5", "5.", "1E+3", "2.5e3",
                     "1e", "1.2.3", "3x", "0x10", "1_000", "1e400", "9" * 30]),
    st.integers(0, 10 ** 6).map(str),
)
_SPECIAL = {
    "NAME": _NAME.map(lambda t: f" {t} "),
    "NUMBER": _NUMBER.map(lambda t: f" {t} "),
    "CMP": st.sampled_from(["<=", ">=", "==", "!=", ">"]),
    "_NL": st.sampled_from(["\n", "\r\n", "\n\n  ", "\n# comment\n"]),
    # ignored terminals: a comment must end its line or it would swallow the rest of it
    "COMMENT": st.sampled_from(["# c\n", "#\n"]),
    "__IGNORE_0": st.sampled_from([" ", "\t", "  ", "\f"]),
    "__IGNORE_1": st.sampled_from([" ", "\t", "  ", "\f"]),
    "__IGNORE_2": st.just("\\\n"),
}


def grammar_strategy(start: str) -> st.SearchStrategy[str]:
    """from_lark with cheap strategies for every terminal (from_regex is slow)."""
    terminals, rules, ignore = GRAMMAR.grammar.compile([start], ())
    explicit = {}
    for t in terminals:
        if t.name in _SPECIAL:
            explicit[t.name] = _SPECIAL[t.name]
        elif type(t.pattern).__name__ == "PatternStr":
            v = t.pattern.value
            explicit[t.name] = st.just(f" {v} " if v.isalpha() else v)
    return from_lark(GRAMMAR, start=start, explicit=explicit)


PROGRAM = grammar_strategy("start")
STATEMENT = grammar_strategy("stmt")
EXPRESSION = grammar_strategy("expr")


def test_weighted_grammar_is_the_grammar():
    """The aliases add rules, never terminals: the weighted grammar speaks the same tokens."""
    real = Lark(grammar_text(), parser="lalr")
    assert {t.name for t in GRAMMAR.terminals} == {t.name for t in real.terminals}


@fuzz(60)
@given(PROGRAM)
def test_grammar_programs(text):
    compile_ok_or_kspec_error(text)


HEADER = ("kernel f(x: f32[N], w: f32[N, M], s: f32 = 1.0, n: i32 = 2, c: bool = true) "
          "-> out: f32[N] {\n")


@fuzz(120)
@given(st.lists(STATEMENT, min_size=1, max_size=3))
def test_grammar_statements_in_a_kernel(stmts):
    # A kernel whose signature is valid, so the statements reach the semantic checks.
    compile_ok_or_kspec_error(HEADER + "\n".join(stmts) + "\n    out[i] = x[i]\n}\n")


@fuzz(200)
@given(EXPRESSION, st.sampled_from(["out[i]", "t[i]", "t", "t[i, j]"]))
def test_grammar_expressions_in_a_statement(expr, target):
    body = f"    {target} = {expr}\n" + ("" if target == "out[i]" else "    out[i] = x[i]\n")
    compile_ok_or_kspec_error(HEADER + body + "}\n")


def test_generated_expressions_are_often_valid():
    """Guard against a generator that only ever exercises the parser's error path."""
    outcomes = []

    @settings(max_examples=100, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(EXPRESSION)
    def probe(expr):
        try:
            kspec.loads(HEADER + f"    out[i] = {expr}\n}}\n")
            outcomes.append(True)
        except kspec.KspecError:
            outcomes.append(False)

    probe()
    assert sum(outcomes) >= 5, f"{sum(outcomes)} of {len(outcomes)} valid"


# --- (b) random text and bytes ----------------------------------------------------------------
@fuzz(300)
@given(st.text(max_size=200))
def test_random_text(text):
    compile_ok_or_kspec_error(text)


_ALPHABET = st.sampled_from(list("kernel f32[N](x,y):->{}=+-*/%<>!#;.e0123456789 ijk\n\t_\\\0é"))


@fuzz(300)
@given(st.lists(_ALPHABET, max_size=200).map("".join))
def test_random_kspec_like_text(text):
    compile_ok_or_kspec_error(text)


@fuzz(200)
@given(st.binary(max_size=300))
def test_random_bytes(data):
    # as kspec.load reads a file: undecodable bytes become lone surrogates
    compile_ok_or_kspec_error(data.decode("utf-8", "surrogateescape"))


# --- (c) mutations of real programs -----------------------------------------------------------
_INSERT = st.one_of(_ALPHABET, st.sampled_from(
    ["(", ")", "[", "]", "{", "}", ",", " for k", " for k < 3", "//", "**", " not ", " and ",
     "1e", "\n", ";", "x[i]", "i + 1", "2 * ", "sum(", "where(", "f16(", "->", ": f32",
     "= 1", "#", "\\\n", "\r", "\0"]))


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        op = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "replace"]))
        i = draw(st.integers(0, n))
        j = min(n, i + draw(st.integers(0, 12)))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(_INSERT) + text[i:]
        elif op == "swap" and n >= 2:
            a, b = sorted((draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))))
            text = text[:a] + text[b] + text[a + 1:b] + text[a] + text[b + 1:] if a < b else text
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + draw(_INSERT) + text[j:]
    return text


@fuzz(600)
@given(mutated())
def test_mutated_programs(text):
    compile_ok_or_kspec_error(text)


# --- (d) structured programs: shapes, affine indices, ranges -----------------------------------
# Random kernels that are often valid, to drive the range inference and bounds proofs (the
# generators above rarely get that far). Valid ones must also survive print -> parse.
_SYMS = ["N", "M", "K"]


@st.composite
def _dim(draw, depth=0):
    c = draw(st.integers(0, 6))
    if c <= 3 or depth > 1:
        return draw(st.sampled_from(_SYMS))
    if c == 4:
        return str(draw(st.integers(-1, 9)))
    op = draw(st.sampled_from(["+", "-", "*", "//"]))
    return f"({draw(_dim(depth + 1))} {op} {draw(_dim(depth + 1))})"


@st.composite
def _index(draw, names):
    terms = []
    for _ in range(draw(st.integers(1, 3))):
        c = draw(st.integers(0, 5))
        if c <= 2 and names:
            terms.append(draw(st.sampled_from(names)))
        elif c == 3 and names:
            terms.append(f"{draw(st.integers(-3, 3))} * {draw(st.sampled_from(names))}")
        elif c == 4:
            terms.append(str(draw(st.integers(-2, 4))))
        else:
            terms.append(draw(st.sampled_from(_SYMS)))
    return "".join([terms[0]] + [f" {draw(st.sampled_from('+-'))} {t}" for t in terms[1:]])


@st.composite
def structured_program(draw):
    params, tensors = [], []
    for n, rank in enumerate(draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))):
        dtype = draw(st.sampled_from(["f32", "f16", "i32", "bool"]))
        if rank == 0:
            params.append(f"s{n}: {dtype}")
        else:
            params.append(f"x{n}: {dtype}[{', '.join(draw(_dim()) for _ in range(rank))}]")
            tensors.append((f"x{n}", rank))
    lhs = ["i", "j"][:draw(st.integers(0, 2))]
    out = f"y: f32[{', '.join(draw(_dim()) for _ in lhs)}]" if lhs else "y: f32"

    def access(names):
        if not tensors:
            return "1.0"
        name, rank = draw(st.sampled_from(tensors))
        return f"{name}[{', '.join(draw(_index(names)) for _ in range(rank))}]"

    reduced = draw(st.lists(st.sampled_from(["k", "r", "s"]), max_size=2, unique=True))
    body = " + ".join(access(lhs + reduced) for _ in range(draw(st.integers(1, 3))))
    if reduced:
        fors = [v + (f" < {draw(_dim())}" if draw(st.booleans()) else "") for v in reduced]
        op = draw(st.sampled_from(["sum", "max", "mean", "prod", "min"]))
        body = f"{op}({body} for {', '.join(fors)})"
        if lhs and draw(st.booleans()):
            body += " + " + access(lhs)
    target = f"y[{', '.join(lhs)}]" if lhs else "y"
    return f"kernel f({', '.join(params)}) -> {out} {{\n    {target} = {body}\n}}\n"


@fuzz(300)
@given(structured_program())
def test_structured_programs(text):
    try:
        module = compile_source(text, "fuzz.kspec")
    except kspec.KspecError as e:
        assert str(e).startswith("fuzz.kspec:") and e.pos is not None
        return
    assert compile_source(format_module(module)) == module


# --- regressions found by the fuzzers ----------------------------------------------------------
DEEP = ["x[i]" + " + x[i]" * 3000, "-" * 3000 + "x[i]", "exp(" * 2000 + "x[i]" + ")" * 2000,
        " ** ".join(["x[i]"] * 1000), "(" * 3000 + "x[i]" + ")" * 3000,
        "sum(" * 500 + "x[i]" + " for k)" * 500]


@pytest.mark.parametrize("expr", DEEP, ids=["sum", "neg", "call", "pow", "paren", "reduce"])
def test_deeply_nested_expressions(expr):
    compile_ok_or_kspec_error(f"kernel f(x: f32[N]) -> y: f32[N] {{\n    y[i] = {expr}\n}}\n")


@pytest.mark.parametrize("text", [
    "kernel f(x: f32[N]) -> y: f32 {\n    y = sum(x[k * 0] for k)\n}\n",   # zero coefficient
    "kernel f(x: f32[N]) -> y: f32[N] {\n    y[i] = x[i + k - k]\n}\n",
    "kernel f(x: f32[N]) -> y: f32[N] {\n  y[i] = x[i]\n}" + "\n" * 5000,
    "\r\n".join(["kernel f(x: f32[N]) -> y: f32[N] {", "    y[i] = x[i] +", "}"]),
    "kernel f(x: f32[N]) -> y: f32[N] {\f\n    y[i] = q\n}\n",
    "",
    "\n\n# only a comment",
])
def test_regressions(text):
    compile_ok_or_kspec_error(text)
