"""Expression typing of the semantic checks: names resolved, dtypes promoted, loads,
padded and gathered reads, calls and reductions, each access recorded for the range checks
(ranges.py). A mixin of semantics.KernelChecker, which holds the declarations."""
from __future__ import annotations

from .. import ir
from ..dtypes import DTYPES, DType, Level, accumulator, float_of, promote
from ..errors import SourcePos
from ..ops import ARG_REDUCTIONS, BINARY_SYMBOLS, FUNCTIONS, OPS, REDUCTIONS
from ..shapes import Shape
from . import ast
from .context import (Access, LITERAL_NAMES, RESERVED, StatementScope, Var, builtin_kind,
                      constant_value, did_you_mean, dims_text, error, shape_of, start)
from .indices import IndexReader, gather_read, pad_value, split_gather
from .scans import check_scan, is_scan


class ExpressionChecks:
    """The checks of one statement's expressions (mixed into the kernel checker)."""

    def check_index_name(self, name: str, pos: SourcePos) -> None:
        if name in RESERVED:
            raise error(f"'{name}' is {builtin_kind(name)} and cannot be an index variable", pos)
        if name in self.names or name in self.targets:
            what = self.names.get(name, "a tensor")
            raise error(f"'{name}' is {what} and cannot be an index variable", pos)

    def new_var(self, st: StatementScope, name: str, pos: SourcePos) -> Var:
        var = Var(name, self.next_uid, pos)
        self.next_uid += 1
        st.vars.append(var)
        return var

    def give_range(self, var: Var, bound: ast.Node, what: str) -> None:
        """`i < E` (a reduction's `for k < E`, an intermediate's left-hand side): i's range is
        E, a shape of the kernel's symbols that must be at least 1; bare reads with i are then
        bounds-checked rather than fixing it."""
        var.extent = shape_of(bound, self.symbols, what, self.names)
        var.explicit = var.bounded = True
        unknown = sorted(x for x in var.extent.symbols() if x not in self.names)
        if unknown:
            raise error(f"unknown shape symbol '{unknown[0]}' in the range of '{var.name}'; a "
                        f"range may use the shape symbols of the kernel's parameters",
                        start(bound))
        self.require_positive(var.extent, f"the range of '{var.name}' is {var.extent}",
                              start(bound))


    # --- expressions ------------------------------------------------------------------------
    def expr(self, node: ast.Node, scope: dict[str, Var], st: StatementScope
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

    def name(self, node: ast.Name, scope: dict[str, Var]) -> tuple[ir.Expr, Level]:
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

    def ir_var(self, var: Var) -> ir.IndexVar:
        # Extents are filled in by solve_ranges once the whole statement has been seen.
        var.ir = ir.IndexVar(var.name, var.uid, Shape.const(0))
        return var.ir

    def padded(self, node: ast.Padded, scope: dict[str, Var], st: StatementScope
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

    def load(self, node: ast.Index, scope: dict[str, Var], st: StatementScope,
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
            st.accesses.append(Access(n, decl.dims, parts, node.pos))
        return ir.Load(n, tuple(affines), decl.dtype), Level.TENSOR

    def index_reader(self, scope: dict[str, Var]) -> IndexReader:
        return IndexReader(lambda n: scope[n].uid if n in scope else None,
                           lambda n: n in self.symbols,
                           lambda n: self.names.get(n) or (builtin_kind(n) if n in RESERVED
                                                           else None))

    def call(self, node: ast.Call, scope: dict[str, Var], st: StatementScope
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

    def reduction(self, node: ast.Generator, scope: dict[str, Var], st: StatementScope
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
                self.give_range(var, rv.bound, "a reduction range")
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
