"""Semantic checks: syntax tree -> typed IR.

One pass per statement builds typed expressions (names resolved, dtypes promoted), collecting
every tensor access; then index ranges are inferred from bare uses and affine accesses and every
access is proved in bounds or turned into a launch-time check.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from .. import ir
from ..dtypes import DTYPES, DType, Level, accumulator, float_of, promote
from ..errors import KspecSemanticError, SourcePos
from ..ops import ARG_REDUCTIONS, BINARY_SYMBOLS, FUNCTIONS, OPS, REDUCTIONS
from ..shapes import FloorDiv, Shape
from . import ast
from .indices import IndexReader, gather_read, pad_value, split_gather
from .scans import check_scan, check_scan_ranges, is_scan

LITERAL_NAMES = {"inf": (float("inf"), DType.f32), "true": (True, DType.bool),
                 "false": (False, DType.bool)}
KEYWORDS = {"kernel", "for", "and", "or", "not"}
RESERVED = (set(FUNCTIONS) | set(REDUCTIONS) | set(DTYPES) | set(LITERAL_NAMES) | {"gelu_tanh"}
            | KEYWORDS)


def builtin_kind(name: str) -> str:
    """What a reserved name is, for messages: "a keyword", "a dtype", ..."""
    if name in KEYWORDS:
        return "a keyword"
    if name in DTYPES:
        return "a dtype"
    if name in LITERAL_NAMES:
        return "a literal"
    if name in REDUCTIONS and name not in FUNCTIONS:
        return "a reduction"
    return "a built-in function"


def start(node: ast.Node) -> SourcePos:
    """Where an expression begins (a BinOp's own position is its operator)."""
    while isinstance(node, ast.BinOp):
        node = node.a
    return node.pos


def ordered_symbols(shape: Shape) -> list[str]:
    out: list[str] = []
    for mono, _ in shape.terms:
        for atom in mono:
            if isinstance(atom, str):
                out.append(atom)
            else:
                parts = (atom.num, atom.den) if isinstance(atom, FloorDiv) else (atom.a, atom.b)
                out += [s for p in parts for s in ordered_symbols(p)]
    return out


def did_you_mean(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def dims_text(n: int) -> str:
    return f"{n} dim" if n == 1 else f"{n} dims"


def error(message: str, pos: SourcePos | None) -> KspecSemanticError:
    return KspecSemanticError(message, pos)


def check_file(tree: ast.File) -> ir.Module:
    seen: dict[str, ast.KernelDef] = {}
    kernels = []
    for kdef in tree.kernels:
        if kdef.name in KEYWORDS:
            raise error(f"'{kdef.name}' is a keyword and cannot name a kernel", kdef.pos)
        if kdef.name in seen:
            raise error(f"kernel '{kdef.name}' is defined twice (first at line "
                        f"{seen[kdef.name].pos.line})", kdef.pos)
        seen[kdef.name] = kdef
        kernels.append(_KernelChecker(kdef).check())
    return ir.Module(tuple(kernels), tree.name)


# --- shape expressions -------------------------------------------------------------------------
def shape_of(node: ast.Node, symbols: dict[str, SourcePos], what: str,
             names: dict[str, str] | None = None) -> Shape:
    """A dim or range written in source -> Shape. Unknown upper-or-lower-case names become shape
    symbols (recorded in `symbols`) unless `names` says they are something else."""
    if isinstance(node, ast.Num):
        if not isinstance(node.value, int):
            raise error(f"{what} must be an integer, not '{node.text}'", node.pos)
        return Shape.const(node.value)
    if isinstance(node, ast.Name):
        kind = (names or {}).get(node.id)
        if node.id in RESERVED or (kind is not None and kind != "a shape symbol"):
            raise error(f"'{node.id}' is {kind or builtin_kind(node.id)}; {what} may use "
                        f"only integers and shape symbols", node.pos)
        symbols.setdefault(node.id, node.pos)
        return Shape.sym(node.id)
    if isinstance(node, ast.UnOp) and node.op in "+-":
        inner = shape_of(node.a, symbols, what, names)
        return -inner if node.op == "-" else inner
    if isinstance(node, ast.BinOp) and node.op in ("+", "-", "*", "//"):
        a = shape_of(node.a, symbols, what, names)
        b = shape_of(node.b, symbols, what, names)
        if node.op == "//":
            if b.is_const and b.value == 0:
                raise error("division by zero in a shape expression", node.pos)
            return a // b
        return a + b if node.op == "+" else a - b if node.op == "-" else a * b
    if isinstance(node, ast.Call) and node.name in ("min",) and len(node.args) == 2:
        return shape_of(node.args[0], symbols, what, names).min(
            shape_of(node.args[1], symbols, what, names))
    raise error(f"{what} may use only integers, shape symbols, + - * // and parentheses",
                node.pos)


def constant_value(node: ast.Node, what: str = "a default value") -> int | float | bool:
    """A scalar parameter's default (or a pad value): a number, optionally negated, or
    inf/true/false."""
    if isinstance(node, ast.Num):
        return node.value
    if isinstance(node, ast.Name) and node.id in LITERAL_NAMES:
        return LITERAL_NAMES[node.id][0]
    if isinstance(node, ast.UnOp) and node.op in "+-":
        v = constant_value(node.a, what)
        if isinstance(v, bool):
            raise error(f"{what} cannot be a negated bool", node.pos)
        return -v if node.op == "-" else v
    raise error(f"{what} must be a constant: a number, inf, true or false, "
                "optionally negated", start(node))


# --- per-statement bookkeeping -----------------------------------------------------------------
@dataclass
class _Var:
    name: str
    uid: int
    pos: SourcePos
    extent: Shape | None = None      # fixed: output dims or an explicit `for k < E`
    explicit: bool = False           # the extent is given, not inferred
    reduced: bool = False            # bound by a reduction's `for`, not the left-hand side
    bounded: bool = False            # given by `for k < E`: bare uses are only bounds-checked
    ir: ir.IndexVar | None = None


@dataclass
class _Access:
    tensor: str
    dims: tuple[Shape, ...]
    index: list[tuple[dict[int, int], Shape, SourcePos]]  # per dim: {uid: coeff}, offset, pos
    pos: SourcePos


@dataclass
class _Statement:
    vars: list[_Var] = field(default_factory=list)
    accesses: list[_Access] = field(default_factory=list)
    scans: list[tuple[_Var, _Var, SourcePos]] = field(default_factory=list)  # (k, j, where)
    padded: set[int] = field(default_factory=set)   # uids used in padded reads
    gathered: set[int] = field(default_factory=set)  # uids added to a gathered index


class _KernelChecker:
    def __init__(self, kdef: ast.KernelDef):
        self.kdef = kdef
        self.names: dict[str, str] = {}           # name -> what it is, for clash messages
        self.symbols: dict[str, SourcePos] = {}
        self.decls: dict[str, ir.TensorDecl | ir.ScalarParam] = {}
        self.assigned: dict[str, SourcePos] = {}
        self.targets: dict[str, SourcePos] = {}   # every statement target, for use-before-def
        self.checks: list[ir.Check] = []
        self.next_uid = 0
        self.current: SourcePos | None = None     # the statement being checked

    # --- declarations -----------------------------------------------------------------------
    def declare(self, name: str, kind: str, pos: SourcePos) -> None:
        if name in RESERVED:
            raise error(f"'{name}' is {builtin_kind(name)} and cannot name {kind}", pos)
        if name in self.names:
            raise error(f"'{name}' is already {self.names[name]}; names of tensors, scalars, "
                        f"shape symbols and index variables must differ", pos)
        self.names[name] = kind

    def dtype(self, t: ast.TypeRef) -> DType:
        if t.dtype not in DTYPES:
            raise error(f"unknown dtype '{t.dtype}'; expected one of {' '.join(DTYPES)}", t.pos)
        return DTYPES[t.dtype]

    def dims(self, t: ast.TypeRef) -> tuple[Shape, ...]:
        if t.dims is None:
            return ()
        return tuple(shape_of(d, self.symbols, "a dim", self.names) for d in t.dims)

    def check(self) -> ir.Kernel:
        k = self.kdef
        params: list[ir.TensorDecl | ir.ScalarParam] = []
        for p in k.params:
            self.declare(p.name, "a parameter", p.pos)
        for o in k.outputs:
            self.declare(o.name, "an output", o.pos)
        for p in k.params:
            dt = self.dtype(p.type)
            if p.type.dims is None:
                default = None
                if p.default is not None:
                    default = self.default_for(p, dt)
                decl: ir.TensorDecl | ir.ScalarParam = ir.ScalarParam(p.name, dt, default, p.pos)
                self.names[p.name] = "a scalar parameter"
            else:
                if p.default is not None:
                    raise error(f"tensor parameter '{p.name}' cannot have a default",
                                start(p.default))
                decl = ir.TensorDecl(p.name, dt, self.dims(p.type), p.pos)
                self.names[p.name] = "an input tensor"
            self.decls[p.name] = decl
            params.append(decl)
        input_symbols = set(self.symbols)
        outputs = []
        for o in k.outputs:
            decl = ir.TensorDecl(o.name, self.dtype(o.type), self.dims(o.type), o.pos)
            self.decls[o.name] = decl
            outputs.append(decl)
        for name, pos in self.symbols.items():
            if name in self.names:
                raise error(f"'{name}' is {self.names[name]} and cannot be a shape symbol", pos)
        for name in self.symbols:
            self.names[name] = "a shape symbol"
        self.check_bindable(params, input_symbols)
        for out in outputs:
            for n, d in enumerate(out.dims):
                self.require_positive(d, f"dim {n} of output '{out.name}' is {d}", out.pos)

        for s in k.body:
            self.targets.setdefault(s.target, s.pos)
        body = [self.statement(s) for s in k.body]
        for o in outputs:
            if o.name not in self.assigned:
                raise error(f"output '{o.name}' is never assigned", o.pos)
        intermediates = tuple(d for name, d in self.decls.items()
                              if name not in {p.name for p in k.params} | {o.name for o in outputs})
        # in order of first appearance in the declared dims as the IR (and its printout) has
        # them, so that a printed and re-parsed kernel lists its symbols in the same order
        order = [s for d in (*params, *outputs) if isinstance(d, ir.TensorDecl)
                 for shape in d.dims for s in ordered_symbols(shape)]
        symbols = tuple(dict.fromkeys(order + list(self.symbols)))
        return ir.Kernel(k.name, tuple(params), tuple(outputs), intermediates, tuple(body),
                         symbols, tuple(self.checks), k.pos)

    def default_for(self, p: ast.Param, dt: DType) -> int | float | bool:
        value = constant_value(p.default)
        if dt == DType.bool and not isinstance(value, bool):
            raise error(f"default of bool parameter '{p.name}' must be true or false",
                        start(p.default))
        if dt != DType.bool and isinstance(value, bool):
            raise error(f"default of {dt} parameter '{p.name}' cannot be {str(value).lower()}",
                        start(p.default))
        if dt.is_int and isinstance(value, float):
            raise error(f"default of {dt} parameter '{p.name}' must be an integer",
                        start(p.default))
        return float(value) if dt.is_float else value

    def check_bindable(self, params: list, input_symbols: set[str]) -> None:
        """Every shape symbol must be recoverable from the input tensors' shapes at launch:
        bare in some dim, or solvable from a dim linear in it once the others are known."""
        known: set[str] = set()
        dims = [d for p in params if isinstance(p, ir.TensorDecl) for d in p.dims]
        progress = True
        while progress:
            progress = False
            for d in dims:
                unknown = d.symbols() - known
                if len(unknown) == 1:
                    (sym,) = unknown
                    lin = d.linear_in(sym)
                    if lin is not None and lin[0] != 0:
                        known.add(sym)
                        progress = True
        for name, pos in self.symbols.items():
            if name not in known:
                where = "the inputs' dims" if name in input_symbols else "any input's dims"
                raise error(f"shape symbol '{name}' cannot be bound from {where}; its value "
                            f"would be unknown at launch", pos)

    def require_positive(self, extent: Shape, what: str, pos: SourcePos | None) -> None:
        need = extent - 1
        if extent.is_const and extent.value < 1:
            raise error(f"{what}; it must be at least 1", pos)
        if not need.provably_nonneg():
            self.checks.append(ir.Check(need, ">=", f"{what}, which must be at least 1", pos))

    # --- statements -------------------------------------------------------------------------
    def statement(self, s: ast.Stmt) -> ir.Assign:
        name = s.target
        self.current = s.pos
        decl = self.decls.get(name)
        if isinstance(decl, (ir.ScalarParam,)) or (
                isinstance(decl, ir.TensorDecl) and name in {p.name for p in self.kdef.params}):
            raise error(f"'{name}' is {self.names[name]} and cannot be assigned; assign the "
                        f"result to a new name", s.pos)
        if name in self.assigned:
            raise error(f"'{name}' is assigned twice (first at line {self.assigned[name].line})",
                        s.pos)
        if decl is None:
            self.declare(name, "an intermediate", s.pos)
        st = _Statement()
        scope: dict[str, _Var] = {}
        lhs: list[_Var] = []
        for node in s.indices or []:
            if isinstance(node, ast.Index) or split_gather(node)[0] is not None:
                raise error("a left-hand-side index cannot read a tensor: a gather is only "
                            "for reads (x[i, t[i]]); a scatter is not expressible",
                            start(node))
            if not isinstance(node, ast.Name):
                raise error("a left-hand-side index must be a plain index variable, not an "
                            "expression", start(node))
            if node.id in scope:
                raise error(f"index '{node.id}' appears twice on the left-hand side", node.pos)
            self.check_index_name(node.id, node.pos)
            var = self.new_var(st, node.id, node.pos)
            scope[node.id] = var
            lhs.append(var)
        if isinstance(decl, ir.TensorDecl):  # an output: its dims fix the ranges
            if s.indices is None and decl.dims:
                raise error(f"output '{name}' has {dims_text(decl.rank)}; assign it as "
                            f"{name}[{', '.join('ijklmn'[:decl.rank])}] = ...", s.pos)
            if len(lhs) != decl.rank:
                raise error(f"wrong number of indices for '{name}': it has "
                            f"{dims_text(decl.rank)}, {len(lhs)} given", s.pos)
            for var, dim in zip(lhs, decl.dims):
                var.extent, var.explicit = dim, True
        value, _ = self.expr(s.value, scope, st)
        self.solve_ranges(st)
        check_scan_ranges(self, st)
        index = tuple(v.ir for v in lhs)
        if decl is None:
            decl = ir.TensorDecl(name, value.dtype, tuple(v.extent for v in lhs), s.pos)
            self.decls[name] = decl
            self.names[name] = "a tensor" if lhs else "a scalar"
        self.assigned[name] = s.pos
        return ir.Assign(name, index, value, s.pos)

    def check_index_name(self, name: str, pos: SourcePos) -> None:
        if name in RESERVED:
            raise error(f"'{name}' is {builtin_kind(name)} and cannot be an index variable", pos)
        if name in self.names or name in self.targets:
            what = self.names.get(name, "a tensor")
            raise error(f"'{name}' is {what} and cannot be an index variable", pos)

    def new_var(self, st: _Statement, name: str, pos: SourcePos) -> _Var:
        var = _Var(name, self.next_uid, pos)
        self.next_uid += 1
        st.vars.append(var)
        return var

    # --- expressions ------------------------------------------------------------------------
    def expr(self, node: ast.Node, scope: dict[str, _Var], st: _Statement
             ) -> tuple[ir.Expr, Level]:
        if isinstance(node, ast.Num):
            dt = DType.f32 if isinstance(node.value, float) else DType.i64
            return ir.Const(node.value, dt), Level.LITERAL
        if isinstance(node, ast.Name):
            return self.name(node, scope)
        if isinstance(node, ast.Index):
            return self.load(node, scope, st)
        if isinstance(node, ast.Padded):
            return self.padded(node, scope, st)
        if isinstance(node, ast.Call):
            return self.call(node, scope, st)
        if isinstance(node, ast.Generator):
            return self.reduction(node, scope, st)
        if isinstance(node, ast.UnOp):
            a, lv = self.expr(node.a, scope, st)
            if node.op == "+":
                self.require_numeric(a, "unary '+'", node.pos)
                return a, lv
            if node.op == "-":
                self.require_numeric(a, "unary '-'", node.pos)
                return ir.Op("neg", (a,), a.dtype), lv
            self.require_bool(a, "'not'", start(node.a))
            return ir.Op("not", (a,), DType.bool), lv
        assert isinstance(node, ast.BinOp)
        if node.op == "//":
            raise error("'//' is only allowed in shape expressions; use floor(a / b)", node.pos)
        op = node.op if node.op in ("and", "or") else BINARY_SYMBOLS[node.op]
        a = self.expr(node.a, scope, st)
        b = self.expr(node.b, scope, st)
        return self.apply(op, [a, b], node.pos, f"'{node.op}'")

    def apply(self, op: str, operands: list[tuple[ir.Expr, Level]], pos: SourcePos,
              what: str) -> tuple[ir.Expr, Level]:
        rule = OPS[op].rule
        args = tuple(e for e, _ in operands)
        if rule == "logic":
            for e in args:
                self.require_bool(e, what, pos)
            return ir.Op(op, args, DType.bool), min(lv for _, lv in operands)
        if rule in ("arith", "div", "float", "same"):
            for e in args:
                self.require_numeric(e, what, pos)
        dt, lv = promote([(e.dtype, lv) for e, lv in operands])
        if rule == "cmp":
            dt = DType.bool
        elif rule in ("div", "float"):
            dt = float_of(dt)
        return ir.Op(op, args, dt), lv

    def require_bool(self, e: ir.Expr, what: str, pos: SourcePos) -> None:
        if e.dtype != DType.bool:
            raise error(f"{what} needs bool operands, got {e.dtype}; compare with a number "
                        f"(x != 0) to get a bool", pos)

    def require_numeric(self, e: ir.Expr, what: str, pos: SourcePos) -> None:
        if e.dtype == DType.bool:
            raise error(f"{what} needs numbers, got bool; convert with i32(...) or "
                        f"where(...)", pos)

    def name(self, node: ast.Name, scope: dict[str, _Var]) -> tuple[ir.Expr, Level]:
        n = node.id
        if n in scope:
            return ir.IndexValue(scope[n].ir or self.ir_var(scope[n])), Level.LITERAL
        if n in LITERAL_NAMES:
            value, dt = LITERAL_NAMES[n]
            return ir.Const(value, dt), Level.LITERAL
        decl = self.decls.get(n)
        if isinstance(decl, ir.ScalarParam):
            return ir.ScalarRef(n, decl.dtype), Level.SCALAR
        if n in self.symbols:
            return ir.ShapeValue(Shape.sym(n)), Level.LITERAL
        self.require_defined(n, node.pos)
        if isinstance(decl, ir.TensorDecl):
            if decl.rank == 0:
                return ir.ScalarRef(n, decl.dtype), Level.TENSOR
            raise error(f"'{n}' is a tensor with {dims_text(decl.rank)}; index it as "
                        f"{n}[{', '.join('ijklmn'[:decl.rank])}]", node.pos)
        if n in FUNCTIONS or n in REDUCTIONS or n in DTYPES:
            raise error(f"'{n}' is {builtin_kind(n)}; call it as {n}(...)", node.pos)
        hint = did_you_mean(n, [*self.names, *scope, *LITERAL_NAMES])
        raise error(f"unknown name '{n}'" + (hint or f"; it is not a parameter, shape symbol, "
                    f"index variable or tensor of kernel '{self.kdef.name}'"), node.pos)

    def require_defined(self, n: str, pos: SourcePos) -> None:
        if n in self.targets and n not in self.assigned:
            line = self.targets[n].line
            if self.targets[n] == self.current:
                raise error(f"'{n}' is used in its own definition; a tensor is assigned once, "
                            f"from inputs and tensors assigned before it", pos)
            raise error(f"'{n}' is used before it is assigned (at line {line})", pos)

    def ir_var(self, var: _Var) -> ir.IndexVar:
        # Extents are filled in by solve_ranges once the whole statement has been seen.
        var.ir = ir.IndexVar(var.name, var.uid, Shape.const(0))
        return var.ir

    def padded(self, node: ast.Padded, scope: dict[str, _Var], st: _Statement
               ) -> tuple[ir.Expr, Level]:
        call = node.call
        if call.name != "pad":
            raise error(f"'{call.name}(...)' cannot be indexed; only a padded read "
                        f"pad(x, 0)[...] is a call followed by [...]", call.pos)
        if len(call.args) != 2:
            raise error(f"pad takes a tensor and the value outside it, pad(x, 0)[...]; "
                        f"{len(call.args)} argument{'s' * (len(call.args) != 1)} given",
                        call.pos)
        tensor = call.args[0]
        if not isinstance(tensor, ast.Name):
            raise error("pad's first argument must be the name of a tensor, as in "
                        "pad(x, 0)[i - 1, j]", start(tensor))
        load, lv = self.load(ast.Index(tensor.id, node.args, tensor.pos), scope, st,
                             padded=True)
        decl = self.decls[tensor.id]
        assert isinstance(load, ir.Load) and isinstance(decl, ir.TensorDecl)
        pad = pad_value(node, decl, constant_value(call.args[1], "a pad value"))
        return ir.Load(load.tensor, load.index, load.dtype, pad), lv

    def load(self, node: ast.Index, scope: dict[str, _Var], st: _Statement,
             padded: bool = False, gather_in: str | None = None) -> tuple[ir.Expr, Level]:
        """A tensor read; `gather_in` names the tensor whose index this read gives."""
        n = node.name
        self.require_defined(n, node.pos)
        decl = self.decls.get(n)
        if not isinstance(decl, ir.TensorDecl):
            if isinstance(decl, ir.ScalarParam):
                raise error(f"'{n}' is a scalar and cannot be indexed", node.pos)
            if n in self.symbols:
                raise error(f"'{n}' is a shape symbol and cannot be indexed", node.pos)
            if n in FUNCTIONS or n in REDUCTIONS or n in DTYPES:
                raise error(f"'{n}' is {builtin_kind(n)}; call it with (...), not [...]",
                            node.pos)
            hint = did_you_mean(n, [t for t, d in self.decls.items()
                                    if isinstance(d, ir.TensorDecl)] + list(self.targets))
            raise error(f"unknown tensor '{n}'" + (hint or f"; it is not a parameter or output "
                        f"of kernel '{self.kdef.name}', nor assigned in it"), node.pos)
        if decl.rank == 0:
            raise error(f"'{n}' is a scalar and cannot be indexed", node.pos)
        if len(node.args) != decl.rank:
            raise error(f"wrong number of indices for '{n}': it has {dims_text(decl.rank)}, "
                        f"{len(node.args)} given", node.pos)
        affines, parts = [], []
        reader = self.index_reader(scope)
        for arg in node.args:
            read, rest = split_gather(arg)
            gather = None if read is None else gather_read(self, read, n, scope, st, padded,
                                                           gather_in)
            coeffs, offset, div = reader.index(rest, padded)
            terms = tuple((scope_var.ir or self.ir_var(scope_var), c)
                          for scope_var in st.vars if (c := coeffs.get(scope_var.uid, 0)) != 0)
            affines.append(ir.Affine(terms, offset, div, gather, start(arg)))
            if gather is not None:   # bounds: the launch checks t's values (binding.py)
                st.gathered |= set(coeffs)
                coeffs, offset = {}, Shape.const(0)
            parts.append((coeffs, offset, start(arg)))
        if padded:  # reads anywhere: its indices neither fix ranges nor need bounds checks
            st.padded |= {u for coeffs, _, _ in parts for u in coeffs}
        else:
            st.accesses.append(_Access(n, decl.dims, parts, node.pos))
        return ir.Load(n, tuple(affines), decl.dtype), Level.TENSOR

    def index_reader(self, scope: dict[str, _Var]) -> IndexReader:
        return IndexReader(lambda n: scope[n].uid if n in scope else None,
                           lambda n: n in self.symbols,
                           lambda n: self.names.get(n) or (builtin_kind(n) if n in RESERVED
                                                           else None))

    def call(self, node: ast.Call, scope: dict[str, _Var], st: _Statement
             ) -> tuple[ir.Expr, Level]:
        n, nargs = node.name, len(node.args)
        if n in DTYPES:
            if nargs != 1:
                raise error(f"the cast {n}(...) takes one argument, {nargs} given", node.pos)
            a, lv = self.expr(node.args[0], scope, st)
            return ir.Cast(a, DTYPES[n]), lv
        if n in ("sum", "prod", "mean"):
            raise error(f"'{n}' is a reduction; write {n}(expr for k)", node.pos)
        if n in ("max", "min") and nargs != 2:
            raise error(f"{n} takes two arguments, or a generator: {n}(expr for k)", node.pos)
        if n == "pad" and n not in self.names:
            raise error("pad(x, v) is a padded read; index it: pad(x, 0)[i - 1, j]", node.pos)
        if n not in FUNCTIONS:
            decl = self.decls.get(n)
            if isinstance(decl, ir.TensorDecl):
                raise error(f"'{n}' is a tensor; index it with [...], not (...)", node.pos)
            raise error(f"unknown function '{n}'" + did_you_mean(
                n, [*FUNCTIONS, *DTYPES, *REDUCTIONS]), node.pos)
        op = FUNCTIONS[n]
        arity = OPS[op].arity
        if nargs != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise error(f"{n} takes {arity} {plural}, {nargs} given", node.pos)
        operands = [self.expr(a, scope, st) for a in node.args]
        if op == "where":
            (c, _), a, b = operands
            if c.dtype != DType.bool:
                raise error(f"where's condition must be bool, got {c.dtype}; compare it "
                            f"(x > 0) to get a bool", start(node.args[0]))
            if (a[0].dtype == DType.bool) != (b[0].dtype == DType.bool):
                raise error(f"dtype mismatch in where: the branches are {a[0].dtype} and "
                            f"{b[0].dtype}; both must be numbers or both bool", start(node.args[2]))
            dt, lv = promote([(a[0].dtype, a[1]), (b[0].dtype, b[1])])
            return ir.Op("where", (c, a[0], b[0]), dt), lv
        return self.apply(op, operands, node.pos, n)

    def reduction(self, node: ast.Generator, scope: dict[str, _Var], st: _Statement
                  ) -> tuple[ir.Expr, Level]:
        if node.fn not in REDUCTIONS:
            if node.fn in FUNCTIONS or node.fn in DTYPES:
                raise error(f"'{node.fn}' is not a reduction; reductions are "
                            f"{', '.join(REDUCTIONS)}", node.pos)
            raise error(f"unknown reduction '{node.fn}'", node.pos)
        if is_scan(node, scope):
            return check_scan(self, node, scope, st)
        inner = dict(scope)
        vars_ = []
        for rv in node.vars:
            if rv.name in scope:
                if scope[rv.name].reduced:
                    raise error(f"reduction index '{rv.name}' is already reduced by an "
                                f"enclosing reduction; use another name", rv.pos)
                raise error(f"reduction index '{rv.name}' is also a free index of the statement "
                            f"(it is on the left-hand side); reduce over another name", rv.pos)
            if rv.name in {v.name for v in vars_}:
                raise error(f"reduction index '{rv.name}' is listed twice", rv.pos)
            self.check_index_name(rv.name, rv.pos)
            var = self.new_var(st, rv.name, rv.pos)
            var.reduced = True
            if rv.bound is not None:
                var.extent = shape_of(rv.bound, self.symbols, "a reduction range", self.names)
                var.explicit = var.bounded = True
                if any(s not in self.names for s in var.extent.symbols()):
                    unknown = sorted(s for s in var.extent.symbols() if s not in self.names)
                    raise error(f"unknown shape symbol '{unknown[0]}' in the range of "
                                f"'{rv.name}'; a range may use the shape symbols of the "
                                f"kernel's parameters", start(rv.bound))
                self.require_positive(var.extent, f"the range of '{rv.name}' is {var.extent}",
                                      start(rv.bound))
            inner[rv.name] = var
            vars_.append(var)
        if node.fn in ARG_REDUCTIONS and len(vars_) != 1:
            raise error(f"{node.fn} runs over one index, {len(vars_)} given; "
                        f"write {node.fn}(expr for k)", node.vars[1].pos)
        body, lv = self.expr(node.body, inner, st)
        if body.dtype == DType.bool and node.fn not in ("sum", "max", "min"):
            raise error(f"{node.fn} of bool values; convert with i32(...)", node.pos)
        if node.fn in ("sum", "prod"):
            dt = body.dtype if body.dtype.is_float else accumulator(body.dtype)
        elif node.fn == "mean":
            dt = float_of(body.dtype)
        elif node.fn in ARG_REDUCTIONS:
            dt, lv = DType.i64, Level.TENSOR
        else:
            dt = body.dtype
        irvars = tuple(v.ir or self.ir_var(v) for v in vars_)
        return ir.Reduce(node.fn, irvars, body, dt), lv

    # --- ranges ---------------------------------------------------------------------------------
    def solve_ranges(self, st: _Statement) -> None:
        by_uid = {v.uid: v for v in st.vars}
        # 1. bare uses: the range is the dim; several bare uses must agree.
        origin: dict[int, str] = {v.uid: "its declaration" for v in st.vars if v.explicit}
        for acc in st.accesses:
            for d, (coeffs, offset, pos) in enumerate(acc.index):
                if len(coeffs) == 1 and offset == 0 and next(iter(coeffs.values())) == 1:
                    var = by_uid[next(iter(coeffs))]
                    dim = acc.dims[d]
                    where = f"{acc.tensor} (dim {d})"
                    if var.extent is None:
                        var.extent, origin[var.uid] = dim, where
                    elif var.bounded:
                        continue  # `for k < E`: only the bounds check below applies
                    elif var.extent != dim:
                        self.unify(var, var.extent, origin[var.uid], dim, where, pos)
        # 2. indices used only inside affine expressions: the largest in-bounds range.
        progress = True
        while progress:
            progress = False
            candidates: dict[int, Shape] = {}
            for acc in st.accesses:
                for d, (coeffs, offset, pos) in enumerate(acc.index):
                    unknown = [u for u in coeffs if by_uid[u].extent is None]
                    if len(unknown) != 1:
                        continue
                    u = unknown[0]
                    c = coeffs[u]
                    rest_max = offset + sum((by_uid[k].extent - 1) * v for k, v in coeffs.items()
                                            if k != u and v > 0)
                    rest_min = offset + sum((by_uid[k].extent - 1) * v for k, v in coeffs.items()
                                            if k != u and v < 0)
                    if c > 0:
                        bound = (acc.dims[d] - 1 - rest_max) // c + 1
                    else:
                        bound = rest_min // (-c) + 1
                    candidates[u] = candidates[u].min(bound) if u in candidates else bound
            for u, extent in candidates.items():
                var = by_uid[u]
                var.extent = extent
                self.require_positive(extent, f"the inferred range of index '{var.name}' is "
                                      f"{extent} (the largest that keeps every access using "
                                      f"it in bounds)", var.pos)
                progress = True
        for var in st.vars:
            if var.extent is None and var.uid in st.gathered:
                raise error(f"cannot infer the range of index '{var.name}': an index added "
                            f"to a gathered one is not bounded by it; give it a range "
                            f"(for {var.name} < 3) or use it in another read", var.pos)
            if var.extent is None and var.uid in st.padded:
                fix = (f"give it a range (for {var.name} < 3)" if var.reduced else
                       "assign a declared output here")
                raise error(f"cannot infer the range of index '{var.name}': a padded read "
                            f"does not bound its indices; {fix} or use it in an unpadded read",
                            var.pos)
            if var.extent is None and not var.reduced:
                raise error(f"cannot infer the range of index '{var.name}'; use it bare as an "
                            f"index of a tensor on the right-hand side", var.pos)
            if var.extent is None:
                raise error(f"cannot infer the range of index '{var.name}'; use it bare as a "
                            f"tensor index or give it a range: for {var.name} < N", var.pos)
            if var.ir is None:
                self.ir_var(var)
            object.__setattr__(var.ir, "extent", var.extent)
            object.__setattr__(var.ir, "given", var.bounded)
        # 3. every access in bounds: proved here, or checked at launch.
        for acc in st.accesses:
            for d, (coeffs, offset, pos) in enumerate(acc.index):
                hi = offset + sum((by_uid[u].extent - 1) * c for u, c in coeffs.items() if c > 0)
                lo = offset + sum((by_uid[u].extent - 1) * c for u, c in coeffs.items() if c < 0)
                dim = acc.dims[d]
                self.in_bounds(dim - 1 - hi, f"{acc.tensor} (dim {d}, size {dim}) is indexed up "
                               f"to {hi}", pos, f"; the largest valid index is {dim - 1}")
                self.in_bounds(lo, f"{acc.tensor} (dim {d}) is indexed down to {lo}", pos,
                               "; the smallest valid index is 0")

    def unify(self, var: _Var, a: Shape, a_from: str, b: Shape, b_from: str,
              pos: SourcePos) -> None:
        if (a - b).is_const or (a - b - 1).provably_nonneg() or (b - a - 1).provably_nonneg():
            raise error(f"index '{var.name}' is used with two ranges: {a} from {a_from} and "
                        f"{b} from {b_from}", pos)
        self.checks.append(ir.Check(a - b, "==", f"index '{var.name}' ranges over {a} from "
                                    f"{a_from} and {b} from {b_from}; they must be equal", pos))

    def in_bounds(self, slack: Shape, what: str, pos: SourcePos, hint: str = "") -> None:
        if slack.is_const and slack.value < 0 or (-slack - 1).provably_nonneg():
            raise error(f"index out of bounds: {what}{hint}", pos)
        if not slack.provably_nonneg():
            self.checks.append(ir.Check(slack, ">=", f"index out of bounds: {what}", pos))
