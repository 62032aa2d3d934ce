"""Rendering one kspec expression into C++ statements: reductions become (nested) for-loops.

`StatementRenderer.render(expr)` returns the C++ expression for the value and appends, to a
tree of lines, the loops that compute every reduction inside it. A reduction is placed at the
outermost loop level where all of its free indices are bound, so `sum(exp(x[i, j] - max(x[i, k]
for k)) for j)` computes the max once per `i`, not once per `j`; a reduction that occurs twice
in a statement is computed once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import ir
from ...dtypes import DType, accumulator
from ...lowering.scans import scan_as_reduce
from ...ops import ARG_REDUCTIONS
from ...shapes import FloorDiv, Min, Shape
from ...lowering.padding import dim_tests
from .code import (ADD, AND, EQ, MUL, REL, UNARY, Code, binary, call, cast, convert, literal,
                   ternary)
from .ctype import compute_ctype
from .dialect import Dialect
from .exprs import EXPR_TABLE, Accumulator, OpContext, identity, operand_ctype
from .names import Namer


@dataclass(frozen=True)
class Buffer:
    """A tensor as one statement kernel sees it: pointer, one stride per dim, element dtype."""

    pointer: str
    strides: tuple[str, ...]
    element: DType         # the dtype of the stored elements (a temporary's is a compute dtype)


@dataclass
class Loop:
    header: str
    items: list = field(default_factory=list)


@dataclass
class _Level:
    items: list                  # where lines go
    bound: frozenset             # index variables bound here and outside
    anchor: Loop | None = None   # insert before this item instead of appending
    owner: Loop | None = None    # the loop whose body this level is

    def add(self, item: object) -> None:
        if self.anchor is None:
            self.items.append(item)
        else:
            at = next(k for k, x in enumerate(self.items) if x is self.anchor)
            self.items.insert(at, item)


def flatten(items: list, indent: str, step: str = "    ") -> list[str]:
    out: list[str] = []
    for it in items:
        if isinstance(it, Loop):
            out.append(f"{indent}{it.header} {{")
            out += flatten(it.items, indent + step, step)
            out.append(f"{indent}}}")
        else:
            out.append(f"{indent}{it}")
    return out


class StatementRenderer:
    def __init__(self, dialect: Dialect, namer: Namer, buffers: dict[str, Buffer],
                 scalars: dict[str, tuple[str, DType]], symbols: dict[str, str],
                 var_names: dict[ir.IndexVar, str], bound: frozenset):
        self.d = dialect
        self.namer = namer
        self.buffers = buffers
        self.scalars = scalars          # scalar parameter -> (C name, dtype)
        self.symbols = symbols          # shape symbol -> C name
        self.var_names = var_names      # index variable -> C name (filled for loop variables)
        self.root: list = []
        self.levels: list[_Level] = [_Level(self.root, bound)]
        self.helpers: set[str] = set()
        self._memo: dict[object, tuple[Code, list]] = {}   # reductions already computed
        # Pattern lowerings: a load answered from registers (a per-row value, a cached row
        # element) instead of memory; returns None to load normally.
        self.load_hook = None
        # C names of index variables a pattern may hold in 32 bits (rows' contiguous variants,
        # whose IDX is int): their offsets fit, but as values they are widened to int64_t, as
        # the reference computes index arithmetic (`f32(i * j * 1048576)` overflows int).
        self.narrow_indices: set[str] = set()

    def seed(self, e: ir.Reduce, value: Code) -> None:
        """Make `e` render as `value` (a pattern's accumulator) instead of a loop."""
        self._memo[alpha_key(e)] = (value, self.root)

    # --- shapes ---------------------------------------------------------------------------
    def shape(self, s: Shape) -> Code:
        """A shape expression as int64_t C++ over the shape-symbol arguments, written as people
        write dims: `H - KH + 1` (positive terms, then negative ones, the constant last)."""
        terms: list[tuple[Code, bool]] = []
        for mono, coeff in s.terms:
            factors = [self._atom(a) for a in mono]
            if abs(coeff) != 1 or not factors:
                factors.insert(0, literal(abs(coeff), "int64_t", self.d))
            term = factors[0]
            for f in factors[1:]:
                term = binary(term, "*", f, MUL, "int64_t")
            terms.append((term, coeff < 0))
        if not terms:
            return literal(0, "int64_t", self.d)
        terms.sort(key=lambda t: (t[0].literal is not None, t[1]))
        return self._sum(terms)

    def product(self, factors: list[Code]) -> Code:
        out = factors[0] if factors else literal(1, "int64_t", self.d)
        for f in factors[1:]:
            out = binary(out, "*", f, MUL, "int64_t")
        return out

    def _sum(self, terms: list[tuple[Code, bool]]) -> Code:
        out, negative = terms[0]
        if negative:
            out = Code(f"-{out.wrapped(UNARY)}", "int64_t", UNARY)
        for term, negative in terms[1:]:
            out = binary(out, "-" if negative else "+", term, ADD, "int64_t")
        return out

    def _atom(self, a: object) -> Code:
        if isinstance(a, str):
            return Code(self.symbols[a], "int64_t")
        if isinstance(a, FloorDiv):
            self.helpers.add("kspec_floordiv")
            return call("kspec_floordiv", [self.shape(a.num), self.shape(a.den)], "int64_t")
        assert isinstance(a, Min)
        self.helpers.add("kspec_min")
        return call("kspec_min", [self.shape(a.a), self.shape(a.b)], "int64_t")

    # --- element addresses ----------------------------------------------------------------
    def offset(self, buf: Buffer, index: list[Code]) -> str:
        terms = [binary(i, "*", Code(s, "int64_t"), MUL, "int64_t") for i, s in
                 zip(index, buf.strides)]
        if not terms:
            return "0"
        out = terms[0]
        for t in terms[1:]:
            out = binary(out, "+", t, ADD, "int64_t")
        return out.text

    def affine(self, a: ir.Affine) -> Code:
        """One index of a tensor access: `p + r`, `2 * p + r - 1`, `t[i] + k` (a gather reads
        its index tensor here, as int64; bind() has checked its values)."""
        terms: list[tuple[Code, bool]] = []
        if a.gather is not None:
            g = a.gather
            terms.append((self.from_storage(self.element(g.tensor, [self.affine(b) for b in g.index]),
                                            self.buffers[g.tensor].element), False))
        for v, c in a.terms:
            name = Code(self.var_names[v], "int64_t")
            terms.append((name if abs(c) == 1 else binary(literal(abs(c), "int64_t", self.d),
                                                          "*", name, MUL, "int64_t"), c < 0))
        if a.offset != 0:
            off = self.shape(a.offset)
            if off.literal is not None and off.literal < 0:
                terms.append((literal(-off.literal, "int64_t", self.d), True))
            else:
                terms.append((off, False))
        return self._sum(terms) if terms else literal(0, "int64_t", self.d)

    def padded_load(self, e: ir.Load) -> Code:
        """pad(x, v)[...]: `(inside ? x[...] : v)`, inside testing only the bounds (and
        divisions) that the index ranges do not already guarantee."""
        assert e.pad is not None
        element, inside = self.load_parts(e)
        value = self.from_storage(element, self.buffers[e.tensor].element)
        if inside is None:
            return value
        return ternary(inside, value, literal(e.pad.value, value.ctype, self.d), value.ctype)

    def load_parts(self, e: ir.Load) -> tuple[str, Code | None]:
        """The element a load reads (`x[...]`, in storage) and, for a padded load, the test
        that it is inside the tensor (None: always inside)."""
        if e.pad is None:
            return self.element(e.tensor, [self.affine(a) for a in e.index]), None
        index = [self.affine(a) for a in e.index]
        tests: list[Code] = []
        zero = literal(0, "int64_t", self.d)
        for t in dim_tests(e):
            num, div = index[t.dim], e.index[t.dim].div
            if div is not None:
                den = self.shape(div)
                tests.append(binary(binary(num, "%", den, MUL, "int64_t"), "==", zero, EQ,
                                    "bool"))
                num = index[t.dim] = binary(num, "/", den, MUL, "int64_t")
            if t.low:
                tests.append(binary(zero, "<=", num, REL, "bool"))
            if t.high:
                tests.append(binary(num, "<", self.shape(t.size), REL, "bool"))
        if not tests:
            return self.element(e.tensor, index), None
        inside = tests[0]
        for t_ in tests[1:]:
            inside = binary(inside, "&&", t_, AND, "bool")
        return self.element(e.tensor, index), inside

    def element(self, tensor: str, index: list[Code]) -> str:
        buf = self.buffers[tensor]
        return f"{buf.pointer}[{self.offset(buf, index)}]"

    def from_storage(self, text: str, stored: DType) -> Code:
        """A loaded element as a value of its compute type."""
        if stored == DType.f16:
            return Code(self.d.half_to_float.format(x=text), "float")
        if stored == DType.bf16:
            return Code(self.d.bf16_to_float.format(x=text), "float")
        ctype = compute_ctype(stored)
        if stored.is_int and stored != DType.i64:
            # widened so that arithmetic on it is int64 arithmetic, as in the reference
            return Code(f"(int64_t){text}", "int64_t", UNARY, narrow=text)
        return Code(text, ctype)

    def to_storage(self, value: Code, value_dtype: DType, stored: DType) -> str:
        """The text stored into an element of dtype `stored` (a cast as in KSPEC.md)."""
        if stored.is_half:   # one rounding, float -> half
            v = convert(value, "float", self.d).text
            return (self.d.float_to_half if stored == DType.f16 else self.d.float_to_bf16
                    ).format(x=v)
        if stored.is_int:    # float -> int64 truncates toward zero, then narrow ints wrap
            v = convert(value, "int64_t", self.d)
            return v.text if stored == DType.i64 else cast(v, _INT_STORAGE[stored]).text
        return convert(value, compute_ctype(stored), self.d).text

    def cast(self, value: Code, src: DType, dst: DType) -> Code:
        """KSPEC.md's cast `dst(value)`, as a value of dst's compute type: floats round to
        nearest even, float to int truncates toward zero, narrow ints wrap, nonzero is true."""
        if dst == DType.bool:
            return convert(value, "bool", self.d)
        if dst.is_half:
            v = convert(value, "float", self.d)
            to, back = ((self.d.float_to_half, self.d.half_to_float) if dst == DType.f16 else
                        (self.d.float_to_bf16, self.d.bf16_to_float))
            return Code(back.format(x=to.format(x=v.text)), "float")
        if dst.is_float:
            return convert(value, compute_ctype(dst), self.d)
        v = convert(value, "int64_t", self.d)   # truncation toward zero for floats
        if dst != DType.i64 and value.literal is None:
            v = cast(cast(v, _INT_STORAGE[dst]), "int64_t")
        elif dst != DType.i64:
            v = literal(_wrap(int(v.literal), dst), "int64_t", self.d)  # type: ignore[arg-type]
        return v

    # --- expressions ----------------------------------------------------------------------
    def render(self, e: ir.Expr) -> Code:
        if isinstance(e, ir.Const):
            return literal(e.value, compute_ctype(e.dtype), self.d)
        if isinstance(e, ir.ShapeValue):
            return self.shape(e.shape)
        if isinstance(e, ir.IndexValue):
            name = self.var_names[e.var]
            if name in self.narrow_indices:
                return cast(Code(name, "IDX"), "int64_t")
            return Code(name, "int64_t")
        if self.load_hook is not None and isinstance(e, (ir.Load, ir.ScalarRef)):
            hooked = self.load_hook(e)
            if hooked is not None:
                return hooked
        if isinstance(e, ir.ScalarRef):
            if e.name in self.scalars:
                return Code(self.scalars[e.name][0], compute_ctype(e.dtype))
            buf = self.buffers[e.name]      # a 0-dim intermediate or output
            return self.from_storage(f"{buf.pointer}[0]", buf.element)
        if isinstance(e, ir.Load) and e.pad is not None:
            return self.padded_load(e)
        if isinstance(e, ir.Load):
            buf = self.buffers[e.tensor]
            return self.from_storage(self.element(e.tensor, [self.affine(a) for a in e.index]),
                                     buf.element)
        if isinstance(e, ir.Cast):
            return self.cast(self.render(e.arg), e.arg.dtype, e.dtype)
        if isinstance(e, ir.Reduce):
            return self.reduce(e)
        if isinstance(e, ir.Scan):   # the generic lowerings: the masked reduction per element
            return self.reduce(scan_as_reduce(e))
        assert isinstance(e, ir.Op)
        ctx = OpContext(self.d, operand_ctype(e.op, e.dtype, [a.dtype for a in e.args]),
                        self.helpers)
        args = [self.render(a) for a in e.args]
        if e.op == "where":
            args = [convert(args[0], "bool", self.d)] + [convert(a, ctx.ctype, self.d)
                                                          for a in args[1:]]
        else:
            args = [convert(a, ctx.ctype, self.d) for a in args]
        out = EXPR_TABLE[e.op](ctx, args)
        return convert(out, compute_ctype(e.dtype), self.d)

    def reduce(self, e: ir.Reduce) -> Code:
        live = {id(lv.items) for lv in self.levels}
        key = alpha_key(e)
        if key in self._memo and id(self._memo[key][1]) in live:
            return self._memo[key][0]
        # The outermost level binding every free index of this reduction.
        free = ir.free_vars(e)
        depth = next(k for k, lv in enumerate(self.levels) if free <= lv.bound)
        saved = self.levels
        if depth < len(saved) - 1:
            target = saved[depth]
            self.levels = saved[:depth] + [_Level(target.items, target.bound,
                                                  anchor=saved[depth + 1].owner)]
        try:
            result = self._emit_reduce(e)
        finally:
            self.levels = saved
        self._memo[key] = (result, saved[depth].items)
        return result

    def _emit_reduce(self, e: ir.Reduce) -> Code:
        if e.op in ARG_REDUCTIONS:
            return self._emit_arg_reduce(e)
        body_dtype = e.body.dtype
        acc_dtype = (accumulator(body_dtype) if e.op in ("sum", "mean", "prod")
                     else body_dtype)
        ctx = OpContext(self.d, compute_ctype(acc_dtype), self.helpers)
        names = [self.namer.fresh(v.name) for v in e.vars]
        acc_name = self.namer.fresh(f"{e.op}_{'_'.join(v.name for v in e.vars)}")
        acc = Accumulator.make(e.op, acc_name, ctx.ctype, self.d, self.namer.fresh)
        outer = self.levels[-1]
        outer.add(acc.declare())
        for v, name in zip(e.vars, names):
            self.var_names[v] = name
            loop = Loop(f"for (int64_t {name} = 0; {name} < {self.shape(v.extent)}; ++{name})")
            top = self.levels[-1]
            top.add(loop)
            self.levels.append(_Level(loop.items, top.bound | {v}, owner=loop))
        x = self.render(e.body)
        self.levels[-1].add(acc.fold(convert(x, ctx.ctype, self.d), ctx))
        del self.levels[len(self.levels) - len(e.vars):]
        if acc.total():   # after the loops: the last correction taken off the sum
            outer.add(acc.total())
        return self.finish(e, Code(acc.name, ctx.ctype))

    def _emit_arg_reduce(self, e: ir.Reduce) -> Code:
        """argmax/argmin: the best value and its index, replaced only by a strictly better
        term, so the first extreme stays (torch's tie rule); a NaN beats every number and
        nothing beats a NaN, so the first NaN stays (torch counts NaN as the extreme)."""
        (v,) = e.vars
        ctype = compute_ctype(e.body.dtype)
        extreme = "max" if e.op == "argmax" else "min"
        name = self.namer.fresh(v.name)
        best = self.namer.fresh(f"{extreme}_{v.name}")
        at = self.namer.fresh(f"{e.op}_{v.name}")
        outer = self.levels[-1]
        outer.add(f"{ctype} {best} = {identity(extreme, ctype, self.d).text};")
        outer.add(f"int64_t {at} = 0;")
        self.var_names[v] = name
        loop = Loop(f"for (int64_t {name} = 0; {name} < {self.shape(v.extent)}; ++{name})")
        outer.add(loop)
        self.levels.append(_Level(loop.items, outer.bound | {v}, owner=loop))
        x = self.namer.fresh("term")
        level = self.levels[-1]
        level.add(f"const {ctype} {x} = {convert(self.render(e.body), ctype, self.d).text};")
        better = ">" if e.op == "argmax" else "<"
        level.add(f"if ({x} {better} {best} || ({x} != {x} && {best} == {best})) "
                  f"{{ {best} = {x}; {at} = {name}; }}")
        self.levels.pop()
        return Code(at, "int64_t")

    def accumulator(self, e: ir.Reduce) -> OpContext:
        """The compute context of a reduction's accumulator."""
        acc_dtype = (accumulator(e.body.dtype) if e.op in ("sum", "mean", "prod")
                     else e.body.dtype)
        return OpContext(self.d, compute_ctype(acc_dtype), self.helpers)

    def finish(self, e: ir.Reduce, result: Code) -> Code:
        """The reduction's value from its accumulator (a mean divides by the count)."""
        ctx = self.accumulator(e)
        if e.op == "mean":
            count = self.product([self.shape(v.extent) for v in e.vars])
            out_ctype = compute_ctype(e.dtype)
            if ctx.ctype == "int64_t":   # an integer mean: exact sum, divided in double
                result = convert(binary(cast(result, "double"), "/", cast(count, "double"),
                                        MUL, "double"), out_ctype, self.d)
            else:
                result = binary(result, "/", convert(count, ctx.ctype, self.d), MUL, ctx.ctype)
        return convert(result, compute_ctype(e.dtype), self.d)

    def lines(self, indent: str) -> list[str]:
        return flatten(self.root, indent)


def alpha_key(e: ir.Expr, bound: dict | None = None) -> object:
    """A hashable key equal for expressions that differ only in the names of the indices their
    reductions bind: the two `max(x[i, k] for k)` of a logsumexp are one computation."""
    bound = {} if bound is None else bound
    if isinstance(e, ir.Reduce):
        inner = dict(bound)
        for n, v in enumerate(e.vars):
            inner[v] = ("bound", len(bound) + n, v.extent)
        return ("reduce", e.op, e.dtype, tuple(inner[v] for v in e.vars),
                alpha_key(e.body, inner))
    if isinstance(e, ir.Load):
        return ("load", e.tensor, e.dtype, e.pad, tuple(
            (tuple((bound.get(v, v), c) for v, c in a.terms), a.offset, a.div)
            for a in e.index))
    if isinstance(e, ir.IndexValue):
        return ("index", bound.get(e.var, e.var))
    if isinstance(e, ir.Op):
        return ("op", e.op, e.dtype, tuple(alpha_key(a, bound) for a in e.args))
    if isinstance(e, ir.Cast):
        return ("cast", e.dtype, alpha_key(e.arg, bound))
    return e     # Const, ShapeValue, ScalarRef: no indices


_INT_STORAGE = {DType.u8: "uint8_t", DType.i8: "int8_t", DType.i16: "int16_t",
                DType.i32: "int32_t", DType.i64: "int64_t"}


def _wrap(v: int, d: DType) -> int:
    bits = d.bits
    v &= (1 << bits) - 1
    if d != DType.u8 and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v

