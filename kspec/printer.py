"""Typed IR -> kspec source. Parsing the printout gives back the same IR (tests check it);
`kcompile --emit ir` adds each statement's type and the launch checks as comments."""
from __future__ import annotations

from . import ir
from .ops import OPS, SOURCE_NAME


def format_module(module: ir.Module, annotate: bool = False) -> str:
    return "\n".join(format_kernel(k, annotate) for k in module.kernels)


def format_kernel(k: ir.Kernel, annotate: bool = False) -> str:
    params = ", ".join(_param(p) for p in k.params)
    outs = ", ".join(_decl(o) for o in k.outputs)
    lines = [f"kernel {k.name}({params}) -> ({outs}) {{"]
    decls = {d.name: d for d in (*k.outputs, *k.intermediates)}
    for stmt in k.body:
        index = ", ".join(f"{v.name} < {v.extent}" if v.given else v.name for v in stmt.index)
        target = stmt.target + (f"[{index}]" if stmt.index else "")
        line = f"    {target} = {format_expr(stmt.value)}"
        if annotate:
            line += f"    # {_decl(decls[stmt.target])}"
        lines.append(line)
    if annotate and k.checks:
        lines.append("    # checked at launch:")
        lines += [f"    #   {c.expr} {c.relation} 0: {c.message}" for c in k.checks]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _decl(d: ir.TensorDecl) -> str:
    dims = f"[{', '.join(map(str, d.dims))}]" if d.dims else ""
    return f"{d.name}: {d.dtype}{dims}"


def _param(p: ir.TensorDecl | ir.ScalarParam) -> str:
    if isinstance(p, ir.TensorDecl):
        return _decl(p)
    default = "" if p.default is None else f" = {_literal(p.default)}"
    return f"{p.name}: {p.dtype}{default}"


def _literal(v: int | float | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v == float("inf"):
        return "inf"
    if isinstance(v, float) and v == float("-inf"):
        return "-inf"
    return repr(v)


def format_index(a: ir.Affine) -> str:
    """One index as source text: `t[i] + k - 1`."""
    return _affine(a)


def _affine(a: ir.Affine) -> str:
    if a.gather is not None:   # `t[i] + k - 1`: the read first, then the affine rest
        read = format_expr(a.gather)
        rest = _affine(ir.Affine(a.terms, a.offset))
        if rest == "0":
            return read
        return f"{read} - {rest[1:]}" if rest.startswith("-") else f"{read} + {rest}"
    if a.div is not None:
        den = str(a.div)
        num = _affine(ir.Affine(a.terms, a.offset))
        return f"({num}) / {den if den.isidentifier() or a.div.is_const else f'({den})'}"
    parts = []
    for v, c in a.terms:
        text = v.name if abs(c) == 1 else f"{abs(c)} * {v.name}"
        parts.append(("-" if c < 0 else "") + text if not parts else
                     ("- " if c < 0 else "+ ") + text)
    off = a.offset
    if not parts:
        return str(off)
    if off == 0:
        return " ".join(parts)
    if off.is_const:
        return " ".join(parts) + (f" - {-off.value}" if off.value < 0 else f" + {off.value}")
    text = str(off)
    return " ".join(parts) + (f" + {text}" if text.isidentifier() else f" + ({text})")


_ATOM = 10


def format_expr(e: ir.Expr) -> str:
    return _fmt(e)[0]


def _fmt(e: ir.Expr) -> tuple[str, int]:
    """(text, precedence of its outermost operator)."""
    if isinstance(e, ir.Const):
        text = _literal(e.value)
        return (text, _ATOM) if not text.startswith("-") else (text, 7)
    if isinstance(e, ir.ShapeValue):
        return str(e.shape), _ATOM
    if isinstance(e, ir.ScalarRef):
        return e.name, _ATOM
    if isinstance(e, ir.IndexValue):
        return e.var.name, _ATOM
    if isinstance(e, ir.Load):
        name = e.tensor if e.pad is None else f"pad({e.tensor}, {_literal(e.pad.value)})"
        return f"{name}[{', '.join(_affine(a) for a in e.index)}]", _ATOM
    if isinstance(e, ir.Cast):
        return f"{e.dtype}({format_expr(e.arg)})", _ATOM
    if isinstance(e, ir.Reduce):
        vars_ = ", ".join(f"{v.name} < {v.extent}" if v.given else v.name for v in e.vars)
        return f"{e.op}({format_expr(e.body)} for {vars_})", _ATOM
    if isinstance(e, ir.Scan):
        return (f"{e.op}({format_expr(e.body)} for {e.var.name} {e.relation} "
                f"{e.bound.name})", _ATOM)
    info = OPS[e.op]
    if info.symbol is None:
        name = SOURCE_NAME.get(e.op, e.op)
        return f"{name}({', '.join(format_expr(a) for a in e.args)})", _ATOM
    prec = info.precedence
    if info.arity == 1:
        text, p = _fmt(e.args[0])
        # `-` binds looser than `**`; nested prefix operators are parenthesised for clarity
        inner = text if p > prec or (p == _ATOM) else f"({text})"
        sep = " " if e.op == "not" else ""
        return f"{info.symbol}{sep}{inner}", prec
    (lt, lp), (rt, rp) = _fmt(e.args[0]), _fmt(e.args[1])
    if e.op == "pow":  # right-associative, and its base must be an atom
        left = lt if lp == _ATOM else f"({lt})"
        right = rt if rp >= prec else f"({rt})"
    elif info.rule == "cmp":  # comparisons do not chain
        left = lt if lp > prec else f"({lt})"
        right = rt if rp > prec else f"({rt})"
    else:  # left-associative
        left = lt if lp >= prec else f"({lt})"
        right = rt if rp > prec else f"({rt})"
    return f"{left} {info.symbol} {right}", prec
