"""Reductions whose result depends on the order of the terms: argmax / argmin, which carry the
index of the extreme beside its value (torch's rules: the first index, NaN as the extreme), and
scans (prefix sums, products, maxima, minima: the plan's scan pattern)."""
from __future__ import annotations

from ... import ir
from ...shapes import Shape
from .common import product
from .expressions import TL_DTYPE, Scope, compute_dtype, shape_code


SCAN_COMBINER = {"sum": "_add", "prod": "_mul", "max": "_max", "min": "_min"}


class OrderedPatterns:
    """argmax/argmin in a looped reduction (the loop nest); the scan pattern."""

    def body_scan(self) -> None:
        """BLOCK_P rows a program; each walks its row in blocks of BLOCK_J positions s, scans
        each block (tl.associative_scan) and adds the running value of the blocks before it.
        A reversed scan (`k >= j`) walks j = N - 1 - s; an exclusive one (`k < j`) reads the
        term at s - 1 (the identity at s = 0), so every scan is an inclusive forward one."""
        (stmt,) = self.launch.statements
        scan: ir.Scan = stmt.value
        codes = self.outer_setup(list(self.launch.outer), "BLOCK_P")
        for v, c in zip(self.launch.outer, codes):
            self.em.var_code[v] = c
        n = self.space(shape_code(scan.bound.extent))
        acc_dt = self.accumulator(ir.Reduce(scan.op, (scan.var,), scan.body, scan.dtype))
        tl_acc = TL_DTYPE[acc_dt]
        ident = self.identity(scan.op, acc_dt)
        comb = SCAN_COMBINER[scan.op]
        self.lines.append(f"carry = tl.full([BLOCK_P, 1], {ident}, {tl_acc})")
        self.lines.append(f"for j0 in range(0, {n}, BLOCK_J):")
        inner = Scope(self.lines, "    ")
        at = lambda s: f"({n} - 1 - ({s}))" if scan.reverse else s   # noqa: E731
        shift = " - 1" if scan.exclusive else ""
        self.lines += ["    offs_s = j0 + tl.arange(0, BLOCK_J)[None, :]",
                       f"    smask = offs_s < {n}",
                       f"    offs_j = {at('offs_s')}",
                       f"    offs_k = {at('offs_s' + shift)}"]
        kmask = "pmask & smask" + (" & (offs_s >= 1)" if scan.exclusive else "")
        self.em.var_code[scan.var] = "offs_k"
        body = self.em.expr(scan.body, inner, kmask)
        if compute_dtype(scan.body.dtype) != acc_dt:
            body = f"({body}).to({tl_acc})"
        self.lines += [f"    terms = tl.where({kmask}, {body}, {ident})",
                       f"    value = {comb}(carry, tl.associative_scan(terms, 1, {comb}))",
                       f"    carry = {comb}(carry, tl.reduce(terms, 1, {comb}, keep_dims=True))"]
        self.em.var_code[scan.bound] = "offs_j"
        index = [self.em.var_code[v] for v in stmt.index]
        self.store(stmt.target, index, "value", "pmask & smask", indent="    ")
        self.constexprs = ["BLOCK_P", "BLOCK_J"]
        rows = shape_code(product([v.extent for v in self.launch.outer]))
        self.emit_launch({"BLOCK_J": f"min(triton.next_power_of_2({n}), 1024)",
                          "BLOCK_P": f"min(triton.next_power_of_2({rows}), "
                                     f"max(1, 2048 // BLOCK_J))"},
                         f"triton.cdiv({rows}, BLOCK_P)",
                         {"BLOCK_P": "BLOCK_P", "BLOCK_J": "BLOCK_J"}, "4")

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
