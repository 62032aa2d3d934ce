"""Reductions whose result depends on the order of the terms: argmax / argmin, which carry the
index of the extreme beside its value (torch's rules: the first index, NaN as the extreme)."""
from __future__ import annotations

from ... import ir
from ...shapes import Shape
from .expressions import TL_DTYPE, Scope, compute_dtype, shape_code


class OrderedPatterns:
    """argmax/argmin in a looped reduction (the loop nest)."""

    def arg_reduce_into(self, r: ir.Reduce, scope: Scope, loop_ext: Shape) -> str:
        """Emit argmax/argmin over r's one index; returns the [BLOCK_P, 1] register of the
        index. Each lane folds its terms in increasing index order with a strict comparison,
        so it keeps its first extreme; the lanes then meet through a combiner that breaks
        ties towards the smaller index. A lane that only saw padding holds the identity with
        index 0, which can win only when every term equals the identity, where 0 is right."""
        acc = self.em.fresh("arg")
        acc_dt = self.accumulator(extreme_of(r))
        tl_acc = TL_DTYPE[acc_dt]
        ident = self.identity("max" if r.op == "argmax" else "min", acc_dt)
        better = ">" if r.op == "argmax" else "<"
        indent = scope.indent
        self.lines.append(f"{indent}{acc} = tl.full([BLOCK_P, BLOCK_R], {ident}, {tl_acc})")
        self.lines.append(f"{indent}{acc}_i = tl.full([BLOCK_P, BLOCK_R], 0, tl.int64)")
        end = self.space(shape_code(loop_ext))
        self.lines.append(f"{indent}for r0 in range(0, {end}, BLOCK_R):")
        inner = Scope(self.lines, indent + "    ")
        self.lines.append(f"{inner.indent}offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]")
        self.lines.append(f"{inner.indent}rmask = offs_r < {end}")
        mask = "pmask & rmask"
        self.bind_reduce_vars(r, inner, "offs_r")
        body = self.em.expr(r.body, inner, mask)
        if compute_dtype(r.body.dtype) != acc_dt:
            body = f"({body}).to({tl_acc})"
        v = f"{acc}_v"
        self.lines += [
            f"{inner.indent}{v} = {body}",
            # NaN beats every number once, and nothing beats a NaN: the first NaN stays
            f"{inner.indent}{acc}_take = ({mask}) & (({v} {better} {acc}) | "
            f"(({v} != {v}) & ({acc} == {acc})))",
            f"{inner.indent}{acc} = tl.where({acc}_take, {v}, {acc})",
            f"{inner.indent}{acc}_i = tl.where({acc}_take, offs_r.to(tl.int64), {acc}_i)"]
        self.lines.append(f"{indent}{acc}, {acc}_i = tl.reduce(({acc}, {acc}_i), 1, "
                          f"_{r.op}_combine, keep_dims=True)")
        return f"{acc}_i"


def extreme_of(r: ir.Reduce) -> ir.Reduce:
    """The max (min) reduction with r's body: its accumulator type is r's value type."""
    return ir.Reduce("max" if r.op == "argmax" else "min", r.vars, r.body, r.body.dtype)
