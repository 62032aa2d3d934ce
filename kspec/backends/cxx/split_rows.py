"""The split pattern per row: `t[outer] = f(reductions over R)` in two phases, for reductions
the rows pattern does not read well (kspec/lowering/plan.py: a rows launch's split fallback).

Phase 1 cuts every row's reduction into `parts` slices; each (row, slice) is a work item of a
team that folds the slice into part[slice * rows + row]. Two orientations, chosen at launch
from the strides (the Triton rows pattern's STRIDED test):

- `<name>_rows`: a warp per work item, its lanes on consecutive reduced elements (a row that
  is contiguous along its innermost reduced index: LayerNorm's, BatchNorm's (n, h, w), a
  matrix-vector product's);
- `<name>_strided`: a thread per work item; consecutive threads take consecutive rows, so
  loads are coalesced along the last kept index when the reduced one steps through memory
  (a sum over a middle axis, RMSNorm over channels).

Several reduced indices are one flat range; each thread decomposes its first element once,
then steps its indices with carries (no division per element). The slice count follows
kspec.lowering.policy (few long rows split, many rows do not; schedule {"split": n} forces n,
{"strided": bool} the orientation). Phase 2, `<name>_finish`: a thread per row folds its
partials in order (compensated f32 sums, as everywhere) and evaluates the statement.
"""
from __future__ import annotations

from ... import ir
from ...lowering.policy import row_split
from .code import Code
from .generic import Arg, extent_product, grid_size
from .patterns import LaunchContext, PatternUnit, statement_text
from .rows import Acc, reduces

THREADS = 256   # threads per block in both phases
LOCALS = ("t", "slice", "chunk", "end")   # the template's own names


def lower_split_rows(ctx: LaunchContext, name: str) -> PatternUnit:
    (stmt,) = ctx.launch.statements
    r, d = ctx.r, ctx.d
    accs = [Acc(ctx, red) for red in reduces(stmt.value)]
    outer = list(stmt.index)
    red_vars = list(accs[0].reduce.vars)
    red_names = [ctx.namer.fresh(v.name) for v in red_vars]
    for a in accs:   # every reduction of the statement runs over the same extents: one loop
        ctx.name_vars(list(a.reduce.vars), red_names)
    row_lines = ctx.decompose("row", outer)
    lin = ctx.namer.fresh("linear")
    start = ctx.decompose(lin, red_vars, mutable=True)
    step = advance_lines(ctx, red_vars, red_names, "lanes")
    folds = [a.fold(r.render(a.reduce.body)) for a in accs]
    parts = [ctx.namer.fresh(f"part{k}") for k in range(len(accs))]
    combine = [a.fold(Code(f"{p}[q * rows + row]", a.ctype)) for a, p in zip(accs, parts)]
    for a in accs:
        r.seed(a.reduce, r.finish(a.reduce, Code(a.name, a.ctype)))
    value = r.render(stmt.value)
    store = ctx.store(stmt.target, outer, value, stmt.value.dtype)
    r.helpers |= {"kspec_team_reduce", "kspec_combine", "kspec_max", "kspec_min"}
    n_text = ctx.total([v.extent for v in red_vars])
    rows_text = ctx.total([v.extent for v in outer])
    extra = tuple(Arg("tensor", p, f"{a.ctype}* {d.restrict} {p}", a.ctype, f"{name}.{p}")
                  for a, p in zip(accs, parts))
    extra += (Arg("launch", "parts", "int64_t parts", "int64_t", "parts"),)
    text = "\n".join([*row_lines, *start, *step, *folds, *combine, store, n_text, rows_text,
                      *parts, "parts"])
    args, params = ctx.finish_args(text, extra)
    data = dict(row_lines=row_lines, start=start, step=step, folds=folds, combine=combine,
                store=store, n=n_text, rows=rows_text, linear=lin, accs=list(zip(accs, parts)),
                threads=THREADS)
    n_shape = [v.extent for v in red_vars]
    outer_shapes = [v.extent for v in outer]
    reads = strided_reads(stmt)
    lanes = d.warp_size

    def strided(buffers, info) -> bool:
        forced = info.schedule.get("strided")
        if forced is not None:
            return bool(forced)
        return is_strided(reads, buffers)

    def count(env, info) -> int:
        """Slices per row. The scratch is sized before the launch sees the strides, so the
        count does not depend on the orientation: a block is counted as the rows
        orientation's THREADS / lanes rows (the STRIDED one's rows are THREADS, but it takes
        long reductions only over few rows, where both counts reach the same cap)."""
        forced = info.schedule.get("split") if info is not None else None
        if isinstance(forced, int) and forced >= 1:
            return forced
        if info is None or info.cpu:
            return 1
        return row_split(extent_product(outer_shapes, env), extent_product(n_shape, env),
                         THREADS // lanes, info.multiprocessors)

    def scratch(env, info):
        n = count(env, info)
        rows = extent_product(outer_shapes, env)
        return {f"{name}.{p}": ((n * rows,), a.ctype) for a, p in zip(accs, parts)}

    def pick(env, buffers, info):
        rows = extent_product(outer_shapes, env)
        if rows == 0:
            return []
        n = count(env, info)
        phase1 = f"{name}_strided" if strided(buffers, info) else f"{name}_rows"
        if info.cpu:
            return [(phase1, 1, 1, {"parts": n}), (f"{name}_finish", 1, 1, {"parts": n})]
        teams = THREADS if phase1.endswith("_strided") else THREADS // lanes
        return [(phase1, grid_size(rows * n, teams), THREADS, {"parts": n}),
                (f"{name}_finish", grid_size(rows, THREADS), THREADS, {"parts": n})]

    return PatternUnit(name, "split", statement_text(stmt), "split_rows.j2", args, params,
                       data, [f"{name}_rows", f"{name}_strided", f"{name}_finish"], pick,
                       scratch)


def advance_lines(ctx: LaunchContext, vars_: list[ir.IndexVar], names: list[str],
             step: str) -> list[str]:
    """Lines moving the index names `step` elements on (row-major): the last index steps and
    carries into the ones before it (the first never wraps: the loop bound stops it)."""
    if len(vars_) == 1:
        return [f"{names[0]} += {step};"]
    exts = [ctx.r.shape(v.extent).text for v in vars_]
    last, inner = names[-1], exts[-1]
    carry = []
    for k in range(len(vars_) - 2, -1, -1):
        pad = "    " * (len(vars_) - 2 - k)
        if k == 0:
            carry.append(f"{pad}++{names[0]};")
        else:
            carry += [f"{pad}if (++{names[k]} == {exts[k]}) {{", f"{pad}    {names[k]} = 0;"]
    closes = ["    " * k + "}" for k in range(len(vars_) - 3, -1, -1)]
    return [f"{last} += {step};", f"while ({last} >= {inner}) {{", f"    {last} -= {inner};",
            *("    " + x for x in carry), *("    " + x for x in closes), "}"]


def strided_reads(stmt: ir.Assign) -> list[tuple[str, int]]:
    """(tensor, dim) of every load inside a reduction of stmt with the reduction's innermost
    index bare in that dim."""
    reads: list[tuple[str, int]] = []
    for red in reduces(stmt.value):
        for node in ir.walk(red.body):
            if isinstance(node, ir.Load):
                reads += [(node.tensor, k) for k, a in enumerate(node.index)
                          if a.bare == red.vars[-1]]
    return list(dict.fromkeys(reads))


def is_strided(reads: list[tuple[str, int]], buffers: dict) -> bool:
    """The STRIDED orientation: of the tensors read along the innermost reduced index, the
    largest has a stride other than 1 there (a vector-matrix product reads the matrix, not
    the vector, down a column)."""
    seen = [(buffers[t].numel(), buffers[t].stride(k) != 1 and buffers[t].shape[k] != 1)
            for t, k in reads if t in buffers]
    return max(seen)[1] if seen else False
