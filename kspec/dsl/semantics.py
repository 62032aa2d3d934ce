"""Semantic checks: syntax tree -> typed IR.

One pass per statement builds typed expressions (names resolved, dtypes promoted), collecting
every tensor access; then index ranges are inferred from bare uses and affine accesses and every
access is proved in bounds or turned into a launch-time check.
"""
from __future__ import annotations

from .. import ir
from ..dtypes import DTYPES, DType
from ..errors import SourcePos
from ..shapes import Shape
from . import ast
from .context import (KEYWORDS, RESERVED, StatementScope, Var, builtin_kind, constant_value,
                      dims_text, error, ordered_symbols, shape_of, start)
from .expressions import ExpressionChecks
from .indices import split_gather
from .ranges import RangeChecks
from .scans import check_scan_ranges


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
        kernels.append(KernelChecker(kdef).check())
    return ir.Module(tuple(kernels), tree.name)


class KernelChecker(ExpressionChecks, RangeChecks):
    """One kernel's checks: declarations and statements here, expressions and ranges in
    the mixins."""

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
    def given_range(self, var: Var, bound: ast.Node, target: str, decl) -> None:
        """`i < E` on an intermediate's left-hand side (language 1.2), for an intermediate
        whose indices no unpadded read bounds (a padded convolution that a pool reads)."""
        if isinstance(decl, ir.TensorDecl):
            raise error(f"'{target}' is an output: its declared dims give the ranges of its "
                        f"left-hand-side indices; write '{var.name}' without '<'", var.pos)
        self.give_range(var, bound, "a left-hand-side range")

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
        st = StatementScope()
        scope: dict[str, Var] = {}
        lhs: list[Var] = []
        for node in s.indices or []:
            bound = None
            if isinstance(node, ast.BinOp) and node.op == "<" and isinstance(node.a, ast.Name):
                node, bound = node.a, node.b     # `conv[n < N, o, d < D] = ...`: a given range
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
            if bound is not None:
                self.given_range(var, bound, name, decl)
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

