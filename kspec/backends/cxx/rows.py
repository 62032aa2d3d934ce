"""The rows and split patterns of the plan lowering (see patterns.py).

rows: a team of threads per row, either one warp (short rows) or the whole block. Each
reduction statement is one pass over the row: every thread folds its elements into accumulators,
the team combines them with lane shuffles (and shared memory across warps), and every thread
gets the per-row value in a register, which later statements of the group read. Elements read
by two or more passes are cached in registers when the row fits (VPT values per thread, a
compile-time variant chosen at launch); otherwise every pass re-reads memory.

split: a reduction to a scalar in two phases: P blocks fold interleaved chunks into partials,
then one block combines the partials and evaluates the statement.
"""
from __future__ import annotations

from ... import ir
from ...dtypes import DType
from .code import Code, convert
from .ctype import compute_ctype
from .exprs import combine, identity
from .generic import Arg, grid_size
from .loops import alpha_key
from .patterns import LaunchContext, PatternUnit, statement_text

OP_CODE = {"sum": 0, "mean": 0, "prod": 1, "max": 2, "min": 3}
WARP_VPT = (1, 2, 4, 8)          # one warp per row: rows up to 8 x lanes
BLOCK_VPT = (0, 4, 8, 16)        # one block per row (0: looped, no cache)


def _reduces(e: ir.Expr) -> list[ir.Reduce]:
    out, seen = [], set()
    for n in ir.walk(e):
        if isinstance(n, ir.Reduce) and alpha_key(n) not in seen:
            seen.add(alpha_key(n))
            out.append(n)
    return out


class _Acc:
    def __init__(self, ctx: LaunchContext, r: ir.Reduce):
        self.reduce = r
        c = ctx.r.accumulator(r)
        self.ctx = c
        self.ctype = c.ctype
        self.name = ctx.namer.fresh(f"{r.op}_{'_'.join(v.name for v in r.vars)}")
        self.identity = identity(r.op, c.ctype, ctx.d).text
        self.op = OP_CODE[r.op]

    def fold(self, x: Code) -> str:
        return combine(self.reduce.op, self.name, convert(x, self.ctype, self.ctx.dialect), self.ctx)


def lower_rows(ctx: LaunchContext, name: str) -> PatternUnit:
    launch = ctx.launch
    r, d = ctx.r, ctx.d
    n_outer = len(launch.outer)
    outer_names = [ctx.namer.fresh(v.name) for v in launch.outer]
    jname = ctx.namer.fresh(launch.inner.name)
    outputs = {o.name: o for o in ctx.kernel.outputs}
    # every statement's outer indices and its inner index (reduction or last index) -> names
    inner_of: dict[int, ir.IndexVar] = {}
    for stmt in launch.statements:
        ctx.name_vars(list(stmt.index[:n_outer]), outer_names)
        if len(stmt.index) > n_outer:
            ctx.name_vars([stmt.index[-1]], [jname])
        for red in _reduces(stmt.value):
            ctx.name_vars(list(red.vars), [jname])
    outer_lines = ctx.decompose("row", list(launch.outer))

    registers: dict[str, Code] = {}
    position = {v: ("o", k) for s in launch.statements for k, v in enumerate(s.index[:n_outer])}
    inner_vars = {v for v, n in ctx.var_names.items() if n == jname}

    def row_key(e: ir.Load):
        key = []
        for a in e.index:
            terms = []
            for v, c in a.terms:
                if v in inner_vars:
                    terms.append(("j", c))
                elif v in position:
                    terms.append((position[v], c))
                else:
                    return None
            key.append((tuple(terms), a.offset))
        if not any(t[0] == "j" for a in key for t in a[0]):
            return None
        return (e.tensor, tuple(key))

    # loads read by two passes or more: cached in registers when the row fits
    passes: dict[object, set[int]] = {}
    first: dict[object, ir.Load] = {}
    for k, stmt in enumerate(launch.statements):
        for node in ir.walk(stmt.value):
            if isinstance(node, ir.Load) and node.tensor not in {s.target for s in
                                                                 launch.statements}:
                key = row_key(node)
                if key is not None:
                    passes.setdefault(key, set()).add(k)
                    first.setdefault(key, node)
    cached = {key: ctx.namer.fresh(f"{first[key].tensor}_c") for key, ks in passes.items()
              if len(ks) > 1}
    caching = [False]

    def hook(e):
        name_ = e.tensor if isinstance(e, ir.Load) else e.name
        if name_ in registers:
            return registers[name_]
        if caching[0] and isinstance(e, ir.Load):
            key = row_key(e)
            if key in cached:
                return Code(f"{cached[key]}[c]", r.from_storage("v", ctx.elements[e.tensor]).ctype)
        return None

    r.load_hook = hook
    cache_decls, cache_loads = [], []
    for key, cname in cached.items():
        value = r.render(first[key])
        cache_decls.append(f"{value.ctype} {cname}[VPT > 0 ? VPT : 1];")
        cache_loads.append(f"{cname}[c] = {value};")

    steps = []
    for stmt in launch.statements:
        is_vector = len(stmt.index) > n_outer
        if is_vector:
            out = {"comment": statement_text(stmt), "reduce": False}
            for mode in ("cached", "looped"):
                caching[0] = mode == "cached"
                value = r.render(stmt.value)
                out[mode] = ctx.store(stmt.target, list(stmt.index), value, stmt.value.dtype)
            steps.append(out)
            continue
        accs = [_Acc(ctx, red) for red in _reduces(stmt.value)]
        folds = {}
        for mode in ("cached", "looped"):
            caching[0] = mode == "cached"
            folds[mode] = [a.fold(r.render(a.reduce.body)) for a in accs]
        caching[0] = False
        for a in accs:
            r.seed(a.reduce, r.finish(a.reduce, Code(a.name, a.ctype)))
        value = r.render(stmt.value)
        reg = ctx.namer.fresh(f"{stmt.target}_row")
        decl = outputs.get(stmt.target)
        if decl is not None and decl.dtype != stmt.value.dtype:
            pass
        kept = value
        if decl is not None and (decl.dtype.is_half or (decl.dtype.is_int and
                                                          decl.dtype != DType.i64)):
            kept = r.cast(value, stmt.value.dtype, decl.dtype)   # as memory would hold it
        ctype = compute_ctype(stmt.value.dtype)
        kept = convert(kept, ctype, d)
        store = (ctx.store(stmt.target, list(stmt.index), Code(reg, ctype), stmt.value.dtype)
                 if stmt.target in launch.stores else "")
        registers[stmt.target] = Code(reg, ctype)
        steps.append({"comment": statement_text(stmt), "reduce": True, "accs": accs,
                      "folds": folds, "reg": reg, "ctype": ctype, "value": kept.text,
                      "store": store})
    r.load_hook = None
    r.helpers |= {"kspec_team_reduce", "kspec_max", "kspec_min"}
    n_text = r.shape(launch.inner.extent).text
    rows_text = ctx.total([v.extent for v in launch.outer])
    data = dict(outer_lines=outer_lines, cache_decls=cache_decls, cache_loads=cache_loads,
                steps=steps, n=n_text, rows=rows_text, j=jname)
    text = "\n".join([*outer_lines, *cache_loads, n_text, rows_text] + [
        "\n".join([s.get("cached", ""), s.get("looped", ""), s.get("value", ""),
                   s.get("store", ""), *sum(s.get("folds", {}).values(), [])]) for s in steps])
    args, params = ctx.finish_args(text)
    lanes = d.warp_size
    variants = [f"{name}_w{v}" for v in WARP_VPT] + [f"{name}_b{v}" for v in BLOCK_VPT]
    n_shape, outer_shapes = launch.inner.extent, [v.extent for v in launch.outer]

    def pick(env, buffers, info):
        n = n_shape.evaluate(env)
        rows = 1
        for e in outer_shapes:
            rows *= e.evaluate(env)
        if rows == 0:
            return []
        forced = info.schedule.get("rows")
        if info.cpu:
            if forced == "loop" or n > 16:
                return [(f"{name}_b0", 1, 1, {})]
            v = next((v for v in WARP_VPT if v >= n), None)
            return [(f"{name}_w{v}" if v else f"{name}_b16", 1, 1, {})]
        if forced != "loop" and forced != "block":
            v = next((v for v in WARP_VPT if v * lanes >= n), None)
            if v is not None:
                per_block = 256 // lanes
                return [(f"{name}_w{v}", min(-(-rows // per_block), 1 << 30), 256, {})]
        if forced != "loop":
            for v in BLOCK_VPT[1:]:
                threads = 1 << max(0, (-(-n // v) - 1).bit_length())
                if threads <= 512:
                    return [(f"{name}_b{v}", min(rows, 1 << 30), max(threads, lanes), {})]
        return [(f"{name}_b0", min(rows, 1 << 30), 512, {})]

    return PatternUnit(name, "rows", "; ".join(statement_text(s) for s in launch.statements),
                       "rows.j2", args, params, data, variants, pick)


def lower_split(ctx: LaunchContext, name: str) -> PatternUnit:
    (stmt,) = ctx.launch.statements
    r, d = ctx.r, ctx.d
    accs = [_Acc(ctx, red) for red in _reduces(stmt.value)]
    phase1 = []
    parts = []
    for k, a in enumerate(accs):
        red = a.reduce
        lin = ctx.namer.fresh("linear")
        ctx.name_vars(list(red.vars))
        decomp = ctx.decompose(lin, list(red.vars))
        body = r.render(red.body)
        part = ctx.namer.fresh(f"part{k}")
        parts.append(part)
        phase1.append({"acc": a, "linear": lin, "extent": ctx.total([v.extent for v in red.vars]),
                       "decompose": decomp, "fold": a.fold(body), "part": part})
    phase2 = []
    for a, part in zip(accs, parts):
        fold = combine(a.reduce.op, a.name, Code(f"{part}[q]", a.ctype), a.ctx)
        phase2.append({"acc": a, "fold": fold})
        r.seed(a.reduce, r.finish(a.reduce, Code(a.name, a.ctype)))
    value = r.render(stmt.value)
    store = ctx.store(stmt.target, [], value, stmt.value.dtype)
    r.helpers |= {"kspec_team_reduce", "kspec_max", "kspec_min"}
    extra = tuple(Arg("tensor", p, f"{a.ctype}* {d.restrict} {p}", a.ctype, f"{name}.{p}")
                  for a, p in zip(accs, parts))
    extra += (Arg("launch", "parts", "int64_t parts", "int64_t", "parts"),)
    text = "\n".join([store, *(x for s in phase1 for x in (*s["decompose"], s["fold"],
                                                         s["extent"], s["part"])),
                      *(s["fold"] for s in phase2), "parts"])
    args, params = ctx.finish_args(text, extra)
    data = dict(phase1=phase1, phase2=phase2, store=store)
    extents = [[v.extent for v in a.reduce.vars] for a in accs]

    def count(env, info) -> int:
        if info is None or info.cpu:
            return 1
        biggest = max(_prod(e, env) for e in extents)
        return max(1, min(4 * info.multiprocessors * 4, biggest // 8192))

    def scratch(env, info):
        n = count(env, info)
        return {f"{name}.{p}": ((n,), a.ctype) for a, p in zip(accs, parts)}

    def pick(env, buffers, info):
        n = count(env, info)
        block = 1 if info.cpu else 256
        return [(f"{name}_partial", n, block, {"parts": n}),
                (f"{name}_finish", 1, block, {"parts": n})]

    return PatternUnit(name, "split", statement_text(stmt), "split.j2", args, params, data,
                       [f"{name}_partial", f"{name}_finish"], pick, scratch)


def _prod(extents, env) -> int:
    out = 1
    for e in extents:
        out *= e.evaluate(env)
    return out


__all__ = ["lower_rows", "lower_split", "grid_size"]
