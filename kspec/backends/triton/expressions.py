"""IR expressions -> Triton expressions.

`TRITON_OPS` is the backend's expression table: op name -> format string over rendered operands.
`Emitter` renders expressions inside one tile of a kernel: it knows the code for each index
variable (already shaped for broadcasting), which buffers are held in registers, and it
emits each distinct load once per scope.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import ir
from ...dtypes import DType
from ...lowering.padding import dim_tests
from ...shapes import Shape

TL_DTYPE = {
    DType.bool: "tl.int1", DType.u8: "tl.uint8", DType.i8: "tl.int8", DType.i16: "tl.int16",
    DType.i32: "tl.int32", DType.i64: "tl.int64", DType.f16: "tl.float16",
    DType.bf16: "tl.bfloat16", DType.f32: "tl.float32", DType.f64: "tl.float64",
}


def compute_dtype(d: DType) -> DType:
    """Halves are computed in f32; everything else in its own dtype."""
    return DType.f32 if d.is_half else d


def tl_compute(d: DType) -> str:
    return TL_DTYPE[compute_dtype(d)]


# Helper functions the generated module defines (see templates/module.py.j2).
TRITON_OPS: dict[str, str] = {
    "add": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})", "div": "({0} / {1})",
    "mod": "_mod({0}, {1})", "pow": "_pow({0}, {1})", "neg": "(-{0})",
    "lt": "({0} < {1})", "le": "({0} <= {1})", "gt": "({0} > {1})", "ge": "({0} >= {1})",
    "eq": "({0} == {1})", "ne": "({0} != {1})",
    "and": "({0} & {1})", "or": "({0} | {1})", "not": "({0} == 0)",
    "where": "tl.where({0}, {1}, {2})",
    "maximum": "_max({0}, {1})", "minimum": "_min({0}, {1})",
    "clamp": "_min(_max({0}, {1}), {2})",
    "exp": "tl.exp({0})", "exp2": "tl.exp2({0})", "log": "tl.log({0})", "log2": "tl.log2({0})",
    "log1p": "_log1p({0})", "sqrt": "tl.sqrt({0})", "rsqrt": "tl.rsqrt({0})",
    "sin": "tl.sin({0})", "cos": "tl.cos({0})", "tanh": "_tanh({0})",
    "sigmoid": "_sigmoid({0})", "erf": "tl.erf({0})",
    "gelu": "(0.5 * {0} * (1.0 + tl.erf({0} * 0.7071067811865476)))",
    "gelu_tanh": "_gelu_tanh({0})", "silu": "({0} * _sigmoid({0}))",
    "softplus": "_softplus({0})", "abs": "tl.abs({0})", "relu": "_max({0}, 0)",
    "floor": "tl.floor({0})", "ceil": "tl.ceil({0})",
}
# Ops whose operands must meet in the result's (or the promoted) compute dtype first.
_FLOAT_ONLY = {"div", "exp", "exp2", "log", "log2", "log1p", "sqrt", "rsqrt", "sin", "cos",
               "tanh", "sigmoid", "erf", "gelu", "gelu_tanh", "silu", "softplus"}
_INT_IDENTITY = {"floor", "ceil"}


def shape_code(s: Shape) -> str:
    """A shape expression over the kernel's symbol arguments (same syntax in Python/Triton)."""
    return f"({s})" if not s.is_const else str(s.value)


def literal(value: object, d: DType) -> str:
    """A Python literal of value in d's compute type: the shortest text that reads back as the
    same double (`1e-05`, not `1e-05.0`), negative ones parenthesised so any operator may take
    them. Triton types a float literal as f32 against f32 tensors, as PyTorch does."""
    if isinstance(value, bool) and not d.is_float:
        return "1" if value else "0"
    if d.is_float:
        v = float(value)  # type: ignore[arg-type]
        if v != v:
            return "float('nan')"
        if v in (float("inf"), float("-inf")):
            return "float('inf')" if v > 0 else "(-float('inf'))"
        text = repr(v)
    else:
        text = str(int(value))  # type: ignore[arg-type]
    return f"({text})" if text.startswith("-") else text


def constant_value(e: ir.Expr) -> int | float | bool | None:
    """The value of a constant expression (a literal, possibly negated or cast), else None."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Op) and e.op == "neg":
        v = constant_value(e.args[0])
        return None if v is None or isinstance(v, bool) else -v
    if isinstance(e, ir.Cast):
        v = constant_value(e.arg)
        if v is None:
            return None
        if e.dtype == DType.bool:
            return bool(v)
        return float(v) if e.dtype.is_float else int(v)
    return None


def _is_name(code: str) -> bool:
    return code.isidentifier() or code.replace("_", "a").isalnum()


@dataclass
class Scope:
    """Lines being emitted at one indentation, with the loads already emitted there."""

    lines: list[str]
    indent: str
    loads: dict[str, str] = field(default_factory=dict)
    values: dict[tuple, str] = field(default_factory=dict)   # let-bound subexpressions


class Emitter:
    """Renders expressions of one launch. `var_code` maps each index variable to its code,
    `mask` is the mask expression for loads in the current tile, `registers` maps buffers held
    in registers (per-row values computed earlier in the same program) to their variables."""

    def __init__(self, kernel_name: str):
        self.counter = 0
        self.kernel_name = kernel_name
        self.var_code: dict[ir.IndexVar, str] = {}
        self.registers: dict[str, str] = {}
        self.replace: dict[int, str] = {}   # id(node) -> code (a contraction's accumulator)
        self.raw_loads = False              # contraction operands keep their storage dtype
        self.scalars: set[str] = set()      # scalar parameters: kernel arguments by name
        self.uses: dict[ir.Expr, int] = {}  # structurally equal operations, counted
        # codes of shape values: Triton passes a size argument equal to 1 as a Python int,
        # which has no .to(), so these convert with tl.cast
        self.shape_codes: set[str] = set()

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    # --- addresses ------------------------------------------------------------------------
    def affine(self, a: ir.Affine) -> str:
        parts = []
        for v, c in a.terms:
            code = self.var_code[v]
            parts.append(code if c == 1 else f"{c} * {code}")
        if a.offset != 0 or not parts:
            parts.append(shape_code(a.offset))
        return " + ".join(parts)

    def address(self, name: str, index: tuple[ir.Affine | str, ...]) -> str:
        """The address of an element; an index is an affine form or already code."""
        terms = [f"({a if isinstance(a, str) else self.affine(a)}) * {name}_s{d}"
                 for d, a in enumerate(index)]
        return f"{name}_ptr" + "".join(f" + {t}" for t in terms)

    # --- expressions ----------------------------------------------------------------------
    def expr(self, e: ir.Expr, scope: Scope, mask: str) -> str:
        """Code for e (in its compute dtype). Loads are hoisted into `scope` once each."""
        if id(e) in self.replace:
            return self.replace[id(e)]
        value = constant_value(e)     # a literal, negated or cast: written as one literal
        if value is not None:
            return literal(value, e.dtype)
        if isinstance(e, ir.ShapeValue):
            code = shape_code(e.shape)
            self.shape_codes.add(code)
            return code
        if isinstance(e, ir.IndexValue):
            return self.var_code[e.var]
        if isinstance(e, ir.ScalarRef):
            if e.name in self.registers:
                return self.registers[e.name]
            if e.name in self.scalars:
                return e.name
            return self.load_code(e.name, (), e.dtype, scope, "True")
        if isinstance(e, ir.Load):
            if e.tensor in self.registers:
                return self.registers[e.tensor]
            if e.pad is not None:
                return self.padded_load(e, scope, mask)
            return self.load_code(e.tensor, self.gathered(e, scope, mask), e.dtype, scope, mask)
        if isinstance(e, ir.Cast):
            inner = self.expr(e.arg, scope, mask)
            return self.cast(inner, e.arg.dtype, e.dtype)
        if isinstance(e, ir.Reduce):
            raise AssertionError("reductions are rendered by the pattern, not inline")
        assert isinstance(e, ir.Op)
        # index codes are part of the key: one scope may render a variable two ways
        # (a contraction's depth index as a row of A and a column of B)
        key = (e, mask, self.raw_loads, frozenset(self.var_code.items()))
        if key in scope.values:
            return scope.values[key]
        code = self.op(e, scope, mask)
        if self.uses.get(e, 0) > 1 and not _is_name(code):
            code = self.bind(code, scope)
        scope.values[key] = code
        return code

    def bind(self, code: str, scope: Scope) -> str:
        """A let-bound variable for code: the next lines use its name, never its text again."""
        var = self.fresh("t")
        scope.lines.append(f"{scope.indent}{var} = {code}")
        return var

    def count_uses(self, roots: list[ir.Expr]) -> None:
        """Count structurally equal operations over the launch's statements: one used more
        than once is let-bound where it is first rendered, so its text appears once."""
        for root in roots:
            for node in ir.walk(root):
                if isinstance(node, ir.Op):
                    self.uses[node] = self.uses.get(node, 0) + 1

    def cast(self, code: str, src: DType, dst: DType) -> str:
        if dst == DType.bool:
            return f"({code} != 0)"
        if dst.is_half:  # round to the half type, keep computing in f32
            return f"{code}.to({TL_DTYPE[dst]}).to(tl.float32)"
        if compute_dtype(src) == compute_dtype(dst):
            return code
        return self.convert(code, TL_DTYPE[dst])

    def convert(self, code: str, tl_dtype: str) -> str:
        if code in self.shape_codes:
            return f"tl.cast({code}, {tl_dtype})"
        return f"{code}.to({tl_dtype})"

    def op(self, e: ir.Op, scope: Scope, mask: str) -> str:
        if e.op in _INT_IDENTITY and not e.dtype.is_float:
            return self.expr(e.args[0], scope, mask)
        if e.op == "pow" and isinstance(e.args[1], ir.Const) and e.args[1].value in (2, 2.0):
            base = self.operand(e.args[0], e.dtype, scope, mask, repeated=True)
            return f"({base} * {base})"
        if e.op in ("and", "or", "not"):
            targets = [a.dtype for a in e.args]
        elif e.op == "where":
            targets = [e.args[0].dtype, e.dtype, e.dtype]
        elif OPS_RULE_CMP(e.op):
            targets = [_meet(e.args[0].dtype, e.args[1].dtype)] * 2
        else:
            targets = [e.dtype] * len(e.args)
        form = TRITON_OPS[e.op]
        args = [self.operand(a, t, scope, mask, repeated=form.count("{%d}" % k) > 1)
                for k, (a, t) in enumerate(zip(e.args, targets))]
        return form.format(*args)

    def operand(self, e: ir.Expr, dst: DType, scope: Scope, mask: str, repeated: bool) -> str:
        """e's code in dst's compute dtype. A literal is written in that type (no conversion);
        an operand the op's text uses twice is let-bound, so nesting never repeats text."""
        value = constant_value(e)
        if value is not None:
            return literal(value, dst)
        code = self.to_compute(self.expr(e, scope, mask), e.dtype, dst)
        return self.bind(code, scope) if repeated and not _is_name(code) else code

    def to_compute(self, code: str, src: DType, dst: DType) -> str:
        """Convert an operand to the compute dtype of dst when it differs."""
        if compute_dtype(src) == compute_dtype(dst):
            return code
        return self.convert(code, tl_compute(dst))

    def padded_load(self, e: ir.Load, scope: Scope, mask: str) -> str:
        """pad(x, v)[...]: a load masked to the tensor (and to exact divisions), other=v.
        Each tested index is bound to a variable: the mask and the address use it."""
        assert e.pad is not None
        key = f"{e}|{mask}|{self.raw_loads}|{sorted(self.var_code.items(), key=str)}"
        if key in scope.loads:
            return scope.loads[key]
        index: list[ir.Affine | str] = list(e.index)
        tests: list[str] = []
        for t in dim_tests(e):
            a = e.index[t.dim]
            num = self.bind(self.affine(ir.Affine(a.terms, a.offset)), scope)
            if a.div is not None:
                den = shape_code(a.div)
                tests.append(f"({num} % {den} == 0)")
                num = self.bind(f"{num} // {den}", scope)
            tests += [f"({num} >= 0)"] * t.low + [f"({num} < {shape_code(t.size)})"] * t.high
            index[t.dim] = num
        inside = " & ".join(([mask] if mask != "True" else []) + tests) or "True"
        var = self.load_code(e.tensor, tuple(index), e.dtype, scope, inside, e.pad.value)
        scope.loads[key] = var
        return var

    def gathered(self, e: ir.Load, scope: Scope, mask: str) -> tuple[ir.Affine | str, ...]:
        """e's index with each gather as code: the index tensor is loaded first (in int64:
        an index times a row stride may pass 2^31), its values checked at launch."""
        out: list[ir.Affine | str] = []
        for a in e.index:
            if a.gather is None:
                out.append(a)
                continue
            g = a.gather
            code = self.load_code(g.tensor, g.index, g.dtype, scope, mask)
            code = f"{code}.to(tl.int64)" if g.dtype != DType.i64 else code
            rest = ir.Affine(a.terms, a.offset)
            out.append(code if not a.terms and a.offset == 0 else f"{code} + {self.affine(rest)}")
        return tuple(out)

    def load_code(self, name: str, index: tuple[ir.Affine | str, ...], dtype: DType, scope: Scope,
                  mask: str, pad: object = None) -> str:
        if pad is None and all(isinstance(a, ir.Affine) and not a.terms for a in index):
            # a constant index (`scale[0]`) addresses one element, in bounds (the checker
            # proves every access or checks it at launch): a scalar load, which Triton refuses
            # a tile-shaped mask for
            mask = "True"
        addr = self.address(name, index)
        key = f"{addr}|{mask}|{self.raw_loads}|{pad}"
        if key in scope.loads:
            return scope.loads[key]
        var = self.fresh(f"{name}_")
        other = "0" if dtype.is_int or dtype == DType.bool else "0.0"
        if pad is not None:
            other = literal(pad, dtype)
        load = f"tl.load({addr}, mask={mask}, other={other})" if mask != "True" else \
            f"tl.load({addr})"
        if not self.raw_loads and dtype.is_half:
            load += ".to(tl.float32)"
        elif dtype == DType.bool:
            load += " != 0"
        scope.lines.append(f"{scope.indent}{var} = {load}")
        scope.loads[key] = var
        return var


def OPS_RULE_CMP(op: str) -> bool:
    return op in ("lt", "le", "gt", "ge", "eq", "ne")


def _meet(a: DType, b: DType) -> DType:
    if a.is_float or b.is_float:
        return DType.f64 if DType.f64 in (a, b) else DType.f32
    return DType.i64
