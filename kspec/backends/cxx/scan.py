"""The scan pattern of the plan lowering: `t[.., j] = op(body for k <rel> j)` (kspec.lowering's
scan launch) in linear work, as a person writes a row scan on a GPU (templates/scan.j2):

- a warp per row (grid-stride over rows), the row walked in tiles of lanes * CHUNK positions;
- each lane takes CHUNK consecutive positions of the tile and keeps their running value in
  registers (its chunk's inclusive prefix);
- the warp scans the lanes' chunk totals with lane shuffles (kspec_warp_scan, xor exchanges
  only, so every dialect's one shuffle primitive serves); each lane adds the totals of the
  lanes before it and the row's carry from earlier tiles;
- the carry takes the tile's total (compensated for f32 sums, as every C++ f32 sum is).

Every scan is rendered as an inclusive forward one over positions s = 0 .. n - 1: a reversed
scan (`k >= j`, `k > j`) stores position s at j = n - 1 - s, an exclusive one (`k < j`, `k > j`)
reads its term one position back (the identity at s = 0), as the Triton scan pattern does.
"""
from __future__ import annotations

from ... import ir
from .code import Code, convert
from .exprs import Accumulator, OpContext, identity
from .generic import extent_product, grid_size
from .patterns import LaunchContext, PatternUnit, statement_text
from .rows import OP_CODE

THREADS = 256   # threads per block: THREADS / lanes rows at a time
CHUNK = 8       # consecutive positions per lane in a tile
LOCALS = ("s0", "first", "terms", "total", "before", "tile", "base", "s", "term", "carry")


def lower_scan(ctx: LaunchContext, name: str) -> PatternUnit:
    (stmt,) = ctx.launch.statements
    scan: ir.Scan = stmt.value
    r, d = ctx.r, ctx.d
    outer = list(ctx.launch.outer)
    row_lines = ctx.decompose("row", outer)
    (k,) = ctx.name_vars([scan.var])
    (j,) = ctx.name_vars([scan.bound])
    acc = r.accumulator(ir.Reduce(scan.op, (scan.var,), scan.body, scan.dtype))
    ctype = acc.ctype
    n = r.shape(scan.bound.extent).text
    # the template's n is the row length; s the position of the inclusive forward scan
    at = (lambda s: f"n - 1 - {s}") if scan.reverse else (lambda s: s)   # noqa: E731
    back = ("(s - 1)" if scan.reverse else "s - 1") if scan.exclusive else "s"
    term = convert(r.render(scan.body), ctype, d)
    term_lines = [f"const int64_t {k} = {at(back)};", f"term = {term.text};"]
    valid = "s < n && s >= 1" if scan.exclusive else "s < n"
    value = Code("kspec_combine<OP>(base, terms[c])", ctype)
    store_lines = [f"const int64_t {j} = {at('s')};",
                   ctx.store(stmt.target, list(stmt.index), value, scan.dtype)]
    carry = Accumulator.make(scan.op, "carry", ctype, d, ctx.namer.fresh)
    fold = carry.fold(Code("tile", ctype), OpContext(d, ctype, r.helpers))
    base = f"carry - {carry.comp}" if carry.comp else "carry"
    r.helpers |= {"kspec_combine", "kspec_max", "kspec_min", "kspec_warp_scan"}
    rows = ctx.total([v.extent for v in outer])
    text = "\n".join([*row_lines, *term_lines, *store_lines, n, rows, fold])
    args, params = ctx.finish_args(text)
    data = dict(rows=rows, n=n, row_lines=row_lines, ctype=ctype, op=OP_CODE[scan.op],
                identity=identity(scan.op, ctype, d).text, carry=carry.declare(), fold=fold,
                base=base, term_lines=term_lines, valid=valid, store_lines=store_lines,
                chunk=CHUNK, threads=THREADS)
    outer_shapes, lanes = [v.extent for v in outer], d.warp_size

    def pick(env, buffers, info):
        count = extent_product(outer_shapes, env)
        if count == 0 or scan.bound.extent.evaluate(env) == 0:
            return []
        if info.cpu:
            return [(name, 1, 1, {})]
        return [(name, grid_size(count, THREADS // lanes), THREADS, {})]

    return PatternUnit(name, "scan", statement_text(stmt), "scan.j2", args, params, data,
                       [name], pick)
