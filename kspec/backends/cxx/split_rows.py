"""The split pattern per row: `t[outer] = f(reductions over R)` in two phases, for reductions
the rows pattern does not read well (kspec/lowering/plan.py: a rows launch's split fallback;
argmax / argmin over an index some load has before its last dim: planner.cxx_launches).

Phase 1 cuts every row's reduction into `parts` slices and folds each (row, slice) into
part[slice * rows + row]. Two orientations of one kernel, chosen at launch from the strides
(the Triton rows pattern's STRIDED test):

- `<name>_rows`: a warp per (row, slice), its lanes on consecutive reduced elements (a row
  that is contiguous along its innermost reduced index: LayerNorm's, BatchNorm's (n, h, w), a
  matrix-vector product's); the lanes merge with shuffles;
- `<name>_columns`: a block per (tile of COLUMNS x lanes consecutive rows, slice). Lane l
  holds rows tile + c * lanes + l (c < COLUMNS): every load of a warp is one coalesced run
  along the kept innermost index where the reduced one steps through memory (a sum over a
  middle axis, RMSNorm over channels), each thread keeps COLUMNS accumulators in registers,
  and the block's warps interleave the slice's reduced positions, merging in shared memory in
  warp order.

Each thread loads UNROLL positions' terms (times its columns) before folding any: that many
independent loads in flight per thread, where one fold's dependence on its load would
otherwise leave one. Several reduced indices are one flat range; each thread decomposes its
first position once, then steps its indices with carries (no division per element).
What a thread folds is folds.py's: plain reductions, argmax / argmin as (value, index) pairs,
and a mean with the later sum of squared deviations from it (a "centred" pair: one pass over
the row for both statistics, from shifted sums). The slice count follows
kspec.lowering.policy.row_split per orientation (few long rows split, many rows do not;
schedule {"split": n} forces n, {"columns": bool} the orientation). Phase 2,
`<name>_finish`: a thread per row merges its partials in slice order and evaluates the
statements.
"""
from __future__ import annotations

from ... import ir
from ...lowering.pairs import fused_pairs
from ...lowering.policy import row_split
from ...ops import ARG_REDUCTIONS
from .code import Code
from .folds import ArgFold, CentredFold, PlainFold
from .generic import Arg, extent_product, grid_size
from .ctype import storage_ctype
from .patterns import LaunchContext, PatternUnit, aligned, statement_text
from .rows import reduces

THREADS = 256   # threads per block in both phases (the columns orientation: at most)
COLUMNS = 4     # rows per lane in the columns orientation
UNROLL = {"rows": 8, "columns": 2}   # positions loaded before folding, per orientation
LOCALS = ("t", "slice", "chunk", "end", "tile", "tiles", "first", "warp", "warps", "step",
          "u", "COLS", "UNROLL")   # the template's own names


def make_folds(ctx: LaunchContext) -> list:
    """The launch's folds: one per reduction of its statement, or one centred pair."""
    stmts = ctx.launch.statements
    if len(stmts) == 2:
        (kind, second), = fused_pairs(stmts).values()
        assert kind == "centred", kind
        return [CentredFold(ctx.r, ctx.namer, stmts[0].value, second)]
    out = []
    for red in reduces(stmts[0].value):
        fold = ArgFold if red.op in ARG_REDUCTIONS else PlainFold
        out.append(fold(ctx.r, ctx.namer, red))
    return out


def lower_split_rows(ctx: LaunchContext, name: str) -> PatternUnit:
    stmts = ctx.launch.statements
    r, d = ctx.r, ctx.d
    folds = make_folds(ctx)
    outer = list(stmts[0].index)
    red_vars = list(folds[0].reduces[0].vars)
    red_names = [ctx.namer.fresh(v.name) for v in red_vars]
    for f in folds:   # every reduction runs over the same extents: one loop
        for red in f.reduces:
            ctx.name_vars(list(red.vars), red_names)
    outer_names = ctx.name_vars(outer)
    for s in stmts[1:]:
        ctx.name_vars(list(s.index), outer_names)
    row_lines = ctx.decompose("row", outer)
    at = {v: ctx.namer.fresh(f"{v}_at") for v in outer_names}
    zeros = [f"const int64_t {n} = 0;" for n in red_names]
    centred = [f for f in folds if isinstance(f, CentredFold)]
    shift_lines = [f"{f.shift.name}[c] = {f.shift_value(r)};" for f in centred]
    lin = ctx.namer.fresh("linear")
    start = ctx.decompose(lin, red_vars, mutable=True)
    step = advance_lines(ctx, red_vars, red_names, "step")
    terms = [(t, value) for f in folds for t, value in zip(f.terms, f.term_values(r, red_names))]
    packs, packed_terms = packed_terms_of(ctx, folds, outer[-1], red_names)
    parts = {id(v): ctx.namer.fresh(f"part_{v.name}") for f in folds for v in f.partials}
    sh = {id(v): ctx.namer.fresh(f"{v.name}_sh") for f in folds for v in f.partials}
    data = dict(
        row_lines=row_lines, at=list(at.items()), zeros=zeros, shift_lines=shift_lines,
        shifts=[f.shift for f in centred], start=start, step=step, linear=lin,
        states=[v for f in folds for v in f.states],
        terms=terms,
        folds=[x for f in folds for x in f.fold("[c]", "[u][c]")],
        totals=[x for f in folds for x in f.total("[c]")],
        warp=[x for f in folds for x in f.warp("[0]")],
        shared=[(v, sh[id(v)]) for f in folds for v in f.partials],
        merge_shared=[x for f in folds for x in f.merge(
            "[c]", [f"{sh[id(v)]}[q][c * lanes + lane]" for v in f.partials])],
        write=[f"{parts[id(v)]}[slice * rows + row] = {v.name}[c];"
               for f in folds for v in f.partials],
        n=ctx.total([v.extent for v in red_vars]), rows=ctx.total([v.extent for v in outer]),
        threads=THREADS, columns=COLUMNS, unroll=UNROLL, max_warps=THREADS // d.warp_size,
        fold_kinds=[f.kind for f in folds], packs=packs, packed_terms=packed_terms)
    data.update(finish_data(ctx, folds, parts, zeros))
    r.helpers |= {"kspec_team_reduce", "kspec_combine", "kspec_max", "kspec_min"}
    if any(isinstance(f, ArgFold) for f in folds):
        r.helpers.add("kspec_warp_arg")
    extra = tuple(Arg("tensor", p, f"{v.ctype}* {d.restrict} {p}", v.ctype, f"{name}.{p}")
                  for f in folds for v in f.partials for p in [parts[id(v)]])
    extra += (Arg("launch", "parts", "int64_t parts", "int64_t", "parts"),)
    text = "\n".join([*row_lines, *shift_lines, *start, *step, *(v for _, v in terms), *packs,
                      *data["folds"], *data["merge_finish"], *data["stores"],
                      *data["finish_shifts"], data["n"], data["rows"], *parts.values(),
                      "parts"])
    args, params = ctx.finish_args(text, extra)
    data["accs"] = [(v, parts[id(v)]) for f in folds for v in f.partials]
    scratch_types = [(parts[id(v)], v.ctype) for f in folds for v in f.partials]
    vectors = sorted({ld.tensor for ld in vector_loads(folds, outer[-1])})
    variants = [f"{name}_rows", f"{name}_columns"]
    variants += [f"{name}_columns_v{COLUMNS}"] * bool(packs) + [f"{name}_finish"]
    return PatternUnit(name, "split", "; ".join(statement_text(s) for s in stmts),
                       "split_rows.j2", args, params, data, variants,
                       *split_launcher(name, stmts[0], red_vars, outer, scratch_types,
                                       d.warp_size, vectors if packs else None))


def vector_loads(folds: list, last: ir.IndexVar) -> list[ir.Load]:
    """Loads of the reduced terms that the packed columns variant reads COLUMNS at a time:
    the last index is the kept innermost one, bare, and no other index uses it."""
    out = []
    for f in folds:
        for node in ir.walk(f.reduces[0].body):
            if (isinstance(node, ir.Load) and node.pad is None and node.index
                    and node.index[-1].bare == last
                    and all(last not in a.vars() for a in node.index[:-1])):
                out.append(node)
    return out


def packed_terms_of(ctx: LaunchContext, folds: list, last: ir.IndexVar,
                    red_names: list[str]) -> tuple[list[str], list[tuple]]:
    """(the pack loads, the terms read from them) of the packed columns variant: lane l's
    rows are COLUMNS consecutive ones, so each vector load of a position is one aligned
    COLUMNS-wide access at the first of them (whose indices are bound when the packs load)."""
    r, d = ctx.r, ctx.d
    loads = {(ld.tensor, ld.index): ld for ld in vector_loads(folds, last)}
    if not loads:
        return [], []
    names = {key: ctx.namer.fresh(f"{ld.tensor}_v") for key, ld in loads.items()}
    lines = []
    for key, ld in loads.items():
        ctype = storage_ctype(ctx.elements[ld.tensor], d)
        addr = r.element(ld.tensor, [r.affine(a) for a in ld.index])
        lines.append(f"const kspec_pack<{ctype}, COLS> {names[key]} = "
                     f"*reinterpret_cast<const kspec_pack<{ctype}, COLS>*>(&{addr});")

    def hook(e):
        if isinstance(e, ir.Load) and (e.tensor, e.index) in names:
            return r.from_storage(f"{names[(e.tensor, e.index)]}.v[c]", ctx.elements[e.tensor])
        return None

    r.load_hook = hook
    try:
        terms = [(t, value) for f in folds
                 for t, value in zip(f.terms, f.term_values(r, red_names))]
    finally:
        r.load_hook = None
    r.helpers.add("kspec_pack")
    return lines, terms


def finish_data(ctx: LaunchContext, folds: list, parts: dict, zeros: list[str]) -> dict:
    """The finishing kernel's lines: its states, the partials merged in slice order, the
    statements evaluated (a centred pair's mean read from its register) and stored."""
    r = ctx.r
    shifts = [f"const {f.shift.ctype} {f.shift.name} = {f.shift_value(r)};"
              for f in folds if isinstance(f, CentredFold)]
    merge = [x for f in folds for x in f.merge("", [f"{parts[id(v)]}[q * rows + row]"
                                                    for v in f.partials])]
    totals = [x for f in folds for x in f.total("", again=False)]
    for f in folds:
        f.values(r, "")
    stores, registers = [], {}
    for stmt in ctx.launch.statements:
        value = r.render(stmt.value)
        if stmt is not ctx.launch.statements[-1]:   # a centred pair's mean, read by the second
            reg = ctx.namer.fresh(f"{stmt.target}_row")
            stores.append(f"const {value.ctype} {reg} = {value};")
            registers[stmt.target] = Code(reg, value.ctype)
            r.load_hook = lambda e: registers.get(getattr(e, "tensor", None))
            value = Code(reg, value.ctype)
        if stmt.target in ctx.launch.stores:
            stores.append(ctx.store(stmt.target, list(stmt.index), value, stmt.value.dtype))
    r.load_hook = None
    return dict(finish_shifts=[*zeros, *shifts] if shifts else [], merge_finish=merge,
                totals_finish=totals, stores=stores)


def split_launcher(name: str, stmt: ir.Assign, red_vars: list[ir.IndexVar],
                   outer: list[ir.IndexVar], scratch_types: list[tuple[str, str]],
                   lanes: int, vectors: list[str] | None) -> tuple:
    """(pick, scratch) of a split-per-row unit: the orientation from the strides, the slice
    count per orientation (policy.row_split with the rows a block holds), the columns
    orientation's warps from the slice's length, its packed variant where `vectors` (the
    tensors it reads COLUMNS at a time) are contiguous and aligned along the kept innermost
    index and its extent is a multiple of COLUMNS (schedule {"vector": False}: never)."""
    n_shape = [v.extent for v in red_vars]
    outer_shapes = [v.extent for v in outer]
    reads = strided_reads(stmt)
    kept = {"rows": THREADS // lanes, "columns": COLUMNS * lanes}

    def count(env, info, orientation: str) -> int:
        forced = info.schedule.get("split") if info is not None else None
        if isinstance(forced, int) and forced >= 1:
            return forced
        if info is None or info.cpu:
            return 1
        return row_split(extent_product(outer_shapes, env), extent_product(n_shape, env),
                         kept[orientation], info.multiprocessors)

    def scratch(env, info):
        """Sized before the launch sees the strides: for the larger of the two counts."""
        n = max(count(env, info, o) for o in kept)
        rows = extent_product(outer_shapes, env)
        return {f"{name}.{p}": ((n * rows,), ctype) for p, ctype in scratch_types}

    def columns_variant(env, buffers, info) -> str:
        packed = (vectors is not None and info.schedule.get("vector", True)
                  and outer[-1].extent.evaluate(env) % COLUMNS == 0
                  and all(t in buffers and buffers[t].stride(-1) == 1
                          and aligned(buffers[t], COLUMNS) for t in vectors))
        return f"{name}_columns_v{COLUMNS}" if packed else f"{name}_columns"

    def pick(env, buffers, info):
        rows = extent_product(outer_shapes, env)
        if rows == 0:
            return []
        forced = info.schedule.get("columns")
        columns = bool(forced) if forced is not None else is_strided(reads, buffers)
        orientation = "columns" if columns else "rows"
        n = count(env, info, orientation)
        finish = (f"{name}_finish", 1 if info.cpu else grid_size(rows, THREADS),
                  1 if info.cpu else THREADS, {"parts": n})
        if info.cpu:
            phase1 = columns_variant(env, buffers, info) if columns else f"{name}_rows"
            return [(phase1, 1, 1, {"parts": n}), finish]
        if not columns:
            return [(f"{name}_rows", grid_size(rows * n, THREADS // lanes), THREADS,
                     {"parts": n}), finish]
        tiles = -(-rows // (COLUMNS * lanes))
        return [(columns_variant(env, buffers, info), grid_size(tiles * n, 1),
                 lanes * column_warps(extent_product(n_shape, env), n, THREADS // lanes),
                 {"parts": n}), finish]

    return pick, scratch


def column_warps(length: int, parts: int, most: int) -> int:
    """Warps of a columns block: a power of 2 up to `most`, each with at least 16 of the
    slice's positions (short reductions leave the other warps nothing to do)."""
    chunk = -(-length // parts)
    warps = 1
    while warps < most and 32 * warps <= chunk:
        warps *= 2
    return warps


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
    """The columns orientation: of the tensors read along the innermost reduced index, the
    largest has a stride other than 1 there (a vector-matrix product reads the matrix, not
    the vector, down a column)."""
    seen = [(buffers[t].numel(), buffers[t].stride(k) != 1 and buffers[t].shape[k] != 1)
            for t, k in reads if t in buffers]
    return max(seen)[1] if seen else False
