"""The rows and split patterns of the plan lowering (see patterns.py).

rows: a team of threads per row, either one warp (short rows) or the whole block. Each
reduction statement is one pass over the row: every thread folds its elements into accumulators,
the team combines them with lane shuffles (and shared memory across warps), and every thread
gets the per-row value in a register, which later statements of the group read. Elements read
by two or more passes are cached in registers when the row fits (VPT values per thread, a
compile-time variant chosen at launch); otherwise every pass re-reads memory.

The block variant for a row: where the contiguous (_c) variant applies, the largest VPT that
leaves a team of at least MIN_TEAM_WARPS warps and moves at most PACKS_PER_THREAD 16-byte packs
of each row tensor per thread (4096-long rows: bf16 VPT 16 on 256 threads, f32 VPT 8 on 512);
else the smallest VPT that fits 512 threads. Per row, every thread pays the fixed costs (index
math, the lane shuffles and barriers of every reduction), so fewer threads per row mean fewer
instructions per row; too few threads leave too few bytes in flight. Measured on an NVIDIA
H200 at 16384 x 4096 (bench/NOTES.md): layernorm bf16 512 x 8 0.0955 ms, 256 x 16 0.0758 ms,
128 x 32 0.0803 ms; softmax f32 512 x 8 0.1334 ms, 256 x 16 0.1358, 128 x 32 0.1354.
schedule {"rows": "b8"} (b4, b16, b32) forces a VPT at launch; {"rows": "block"} skips the
warp variants; {"rows": "loop"} forces VPT 0.

split: a reduction to a scalar in two phases: P blocks fold interleaved chunks into partials,
then one block combines the partials and evaluates the statement.
"""
from __future__ import annotations

import re

from ... import ir
from ...dtypes import DType
from ...lowering.policy import scalar_split
from .code import Code, convert
from .ctype import compute_ctype, storage_ctype
from .exprs import Accumulator
from .generic import Arg, extent_product, grid_size
from .loops import alpha_key
from .patterns import LaunchContext, PatternUnit, aligned, element_size, statement_text

OP_CODE = {"sum": 0, "mean": 0, "prod": 1, "max": 2, "min": 3}
WARP_VPT = (1, 2, 4, 8)          # one warp per row: rows up to 8 x lanes
BLOCK_VPT = (0, 4, 8, 16)        # one block per row (0: looped, no cache)
BLOCK_VPT_C = (32,)              # contiguous variants only (the int64_t ones would spill)
MAX_THREADS = 512                # a block per row: at most this many threads (launch bounds)
MIN_TEAM_WARPS = 4               # contiguous rows: the largest VPT that keeps this many warps
PACKS_PER_THREAD = 2             # ... and moves at most this many 16-byte packs per tensor
INDEX_LIMIT = (1 << 31) - (1 << 20)   # 32-bit index math below this (with room for the steps)


def reduces(e: ir.Expr) -> list[ir.Reduce]:
    out, seen = [], set()
    for n in ir.walk(e):
        if isinstance(n, ir.Reduce) and alpha_key(n) not in seen:
            seen.add(alpha_key(n))
            out.append(n)
    return out


class Acc:
    """A reduction's per-thread accumulator in a rows or split kernel (compensated for f32
    sums: exprs.compensated), and the team-reduction op code the templates pass on."""

    def __init__(self, ctx: LaunchContext, r: ir.Reduce):
        self.reduce = r
        c = ctx.r.accumulator(r)
        self.ctx = c
        self.ctype = c.ctype
        self.name = ctx.namer.fresh(f"{r.op}_{'_'.join(v.name for v in r.vars)}")
        self.acc = Accumulator.make(r.op, self.name, c.ctype, ctx.d, ctx.namer.fresh)
        self.identity = self.acc.identity
        self.decl = self.acc.declare()
        self.total = self.acc.total()
        self.op = OP_CODE[r.op]

    def fold(self, x: Code) -> str:
        return self.acc.fold(convert(x, self.ctype, self.ctx.dialect), self.ctx)


def lower_rows(ctx: LaunchContext, name: str) -> PatternUnit:
    launch = ctx.launch
    r, d = ctx.r, ctx.d
    n_outer = len(launch.outer)
    outer_names = [ctx.namer.fresh(v.name) for v in launch.outer]
    jname = ctx.namer.fresh(launch.inner.name)
    outputs = {o.name: o for o in ctx.kernel.outputs}
    # every statement's outer indices and its inner index (reduction or last index) -> names
    for stmt in launch.statements:
        ctx.name_vars(list(stmt.index[:n_outer]), outer_names)
        if len(stmt.index) > n_outer:
            ctx.name_vars([stmt.index[-1]], [jname])
        for red in reduces(stmt.value):
            ctx.name_vars(list(red.vars), [jname])
    outer_lines = ctx.decompose("row", list(launch.outer))
    # the row's indices are IDX (int in the contiguous variants): widened where used as values
    r.narrow_indices = {ctx.var_names[v] for v in launch.outer} | {jname}

    registers: dict[str, Code] = {}
    position = {v: ("o", k) for s in launch.statements for k, v in enumerate(s.index[:n_outer])}
    inner_vars = {v for v, n in ctx.var_names.items() if n == jname}

    def row_key(e: ir.Load):
        if e.pad is not None:   # padded reads are not cached: their tests stay with the load
            return None
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
    targets = {s.target for s in launch.statements}

    def vector_load(e) -> bool:
        """Loads moved V at a time by the contiguous variants: the last index is the row's
        index, the others do not use it."""
        return (isinstance(e, ir.Load) and e.pad is None and bool(e.index)
                and e.tensor not in targets
                and e.index[-1].bare in inner_vars
                and all(not (set(a.vars()) & inner_vars) for a in e.index[:-1]))

    vec_tensors = sorted({n.tensor for s in launch.statements for n in ir.walk(s.value)
                          if vector_load(n)}
                         | {s.target for s in launch.statements if len(s.index) > n_outer})
    width = max(1, 16 // max([element_size(ctx.elements[t], d) for t in vec_tensors] or [16]))
    packing = {"on": False, "packs": {}}

    def hook(e):
        name_ = e.tensor if isinstance(e, ir.Load) else e.name
        if name_ in registers:
            return registers[name_]
        if caching[0] and isinstance(e, ir.Load):
            key = row_key(e)
            if key in cached:
                return Code(f"{cached[key]}[c]", r.from_storage("v", ctx.elements[e.tensor]).ctype)
        if packing["on"] and vector_load(e):
            key = (e.tensor, e.index)
            if key not in packing["packs"]:
                packing["packs"][key] = (ctx.namer.fresh(f"{e.tensor}_v"), e)
            return r.from_storage(f"{packing['packs'][key][0]}.v[ke]", ctx.elements[e.tensor])
        return None

    def at_j0(fn):
        """fn() rendered with the row's index named j0 (the first element of a pack)."""
        saved = {v: ctx.var_names[v] for v in inner_vars}
        for v in inner_vars:
            ctx.var_names[v] = "j0"
        try:
            return fn()
        finally:
            ctx.var_names.update(saved)

    def packed(fn):
        """fn() rendered for the contiguous variants: vector loads read from packs of V
        elements, loaded once per pack. Returns (the pack loads, fn's result)."""
        packing["on"], packing["packs"] = True, {}
        try:
            out = fn()
        finally:
            packing["on"] = False
        lines = []
        for pname, ld in packing["packs"].values():
            ctype = storage_ctype(ctx.elements[ld.tensor], d)
            addr = at_j0(lambda: r.element(ld.tensor, [r.affine(a) for a in ld.index]))
            lines.append(f"const kspec_pack<{ctype}, V> {pname} = "
                         f"*reinterpret_cast<const kspec_pack<{ctype}, V>*>(&{addr});")
        return lines, out

    def packed_store(stmt, value_fn):
        """The vector statement's store for the contiguous variants: (packs and the output
        pack's declaration, the element's line, the pack's store)."""
        out = ctx.namer.fresh(f"{stmt.target}_v")
        ctype = storage_ctype(ctx.elements[stmt.target], d)
        packs, value = packed(value_fn)
        line = (f"{out}.v[ke] = "
                f"{r.to_storage(value, stmt.value.dtype, ctx.elements[stmt.target])};")
        addr = at_j0(lambda: r.element(stmt.target, [Code(ctx.var_names[v], "int64_t")
                                                     for v in stmt.index]))
        tail = f"*reinterpret_cast<kspec_pack<{ctype}, V>*>(&{addr}) = {out};"
        return [*packs, f"kspec_pack<{ctype}, V> {out};"], [line], [tail]

    r.load_hook = hook
    cache_decls, cache_loads, cache_packs, cache_loads_v = [], [], [], []
    for key, cname in cached.items():
        value = r.render(first[key])
        cache_decls.append(f"{value.ctype} {cname}[VPT > 0 ? VPT : 1];")
        cache_loads.append(f"{cname}[c] = {value};")
        packs, value_v = packed(lambda: r.render(first[key]))
        cache_packs += packs
        cache_loads_v.append(f"{cname}[c] = {value_v};")

    steps = []
    for stmt in launch.statements:
        is_vector = len(stmt.index) > n_outer
        if is_vector:
            out = {"comment": statement_text(stmt), "reduce": False}
            for mode in ("cached", "looped"):
                caching[0] = mode == "cached"
                value = r.render(stmt.value)
                out[mode] = [ctx.store(stmt.target, list(stmt.index), value, stmt.value.dtype)]
                out[mode + "_v"] = packed_store(stmt, lambda: r.render(stmt.value))
            caching[0] = False
            steps.append(out)
            continue
        accs = [Acc(ctx, red) for red in reduces(stmt.value)]
        folds = {}
        for mode in ("cached", "looped"):
            caching[0] = mode == "cached"
            folds[mode] = [a.fold(r.render(a.reduce.body)) for a in accs]
            packs, lines = packed(lambda: [a.fold(r.render(a.reduce.body)) for a in accs])
            folds[mode + "_v"] = (packs, lines, [])
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
    r.helpers |= {"kspec_team_reduce", "kspec_combine", "kspec_max", "kspec_min", "kspec_pack"}
    n_text = r.shape(launch.inner.extent).text
    rows_text = ctx.total([v.extent for v in launch.outer])

    def flat(x):
        return "\n".join(y if isinstance(y, str) else flat(y) for y in x)

    text = "\n".join([*outer_lines, *cache_loads, *cache_packs, *cache_loads_v, n_text,
                      rows_text] + [flat([s.get(k, "") for k in (
                          "cached", "looped", "cached_v", "looped_v", "value", "store")])
                                    + flat(s.get("folds", {}).values()) for s in steps])
    args, params = ctx.finish_args(text)
    # the impl's strides are IDX: int64_t, or int in the contiguous variants (32-bit offsets)
    impl_params = []
    for line in params:
        for a in args:
            if a.kind == "stride":
                line = re.sub(rf"\bint64_t {a.name}\b", f"IDX {a.name}", line)
        impl_params.append(line)
    arg_names = {a.name for a in args}
    unit_strides = [ctx.strides[t][-1] for t in vec_tensors
                    if ctx.strides[t] and ctx.strides[t][-1] in arg_names]
    lanes = d.warp_size
    info_ = []
    for warp, vpts in ((True, WARP_VPT), (False, BLOCK_VPT + BLOCK_VPT_C)):
        for v in vpts:
            base = f"{name}_{'w' if warp else 'b'}{v}"
            if warp or v not in BLOCK_VPT_C:
                info_.append(dict(name=base, warp=warp, vpt=v, v=1, idx="int64_t"))
            info_.append(dict(name=base + "c", warp=warp, vpt=v,
                              v=min(width, v) if v else width, idx="int"))
    vwidth = {i["name"]: i["v"] for i in info_}
    data = dict(outer_lines=[line.replace("const int64_t ", "const IDX ") for line in outer_lines],
                cache_decls=cache_decls, cache_loads=cache_loads, cache_packs=cache_packs,
                cache_loads_v=cache_loads_v, steps=steps, n=n_text, rows=rows_text, j=jname,
                impl_params=impl_params, unit_strides=unit_strides, variant_info=info_,
                max_threads=MAX_THREADS, min_team=MIN_TEAM_WARPS, packs=PACKS_PER_THREAD)
    variants = [i["name"] for i in info_]
    n_shape, outer_shapes = launch.inner.extent, [v.extent for v in launch.outer]
    tensors = list(ctx.tensors)

    def contiguous(variant, n, rows, buffers, info) -> str:
        """The contiguous variant when every vectorised tensor has unit last stride and
        aligned packs, n is a multiple of the pack and every offset fits 31 bits.

        What the variant holds in IDX (int): the row's indices (below rows and n), the pack
        starts j0 (below n plus one step of lanes * V, which INDEX_LIMIT's 2^20 of room
        covers), the strides, and every element offset `i * s0 + j * s1 + ...` with each
        partial sum at most the tensor's largest offset, sum((size - 1) * |stride|), checked
        for every tensor the unit touches (inputs, outputs, temporaries). Index variables
        read as values are widened to int64_t (StatementRenderer.narrow_indices); the row
        loop, rows and the shape symbols are int64_t. Tests: tests/test_cxx_accuracy.py."""
        if not info.schedule.get("vector", True) or n % vwidth[variant + "c"]:
            return variant
        v = vwidth[variant + "c"]
        if rows >= INDEX_LIMIT or n >= INDEX_LIMIT:
            return variant
        for t in tensors:
            buf = buffers.get(t)
            if buf is None:
                return variant
            if sum((s - 1) * abs(st) for s, st in zip(buf.shape, buf.stride())) >= INDEX_LIMIT:
                return variant
        for t in vec_tensors:
            buf = buffers[t]
            if buf.dim() == 0 or buf.stride(-1) != 1 or (v > 1 and not aligned(buf, v)):
                return variant
        return variant + "c"

    def threads_for(n, vpt):
        return max(1 << max(0, (-(-n // vpt) - 1).bit_length()), lanes)

    def block_vpt(n, forced, c):
        """The block variant's VPT (None: the row does not fit in registers). Forced by
        schedule {"rows": "b<VPT>"}; else, where the contiguous variant applies, the largest
        VPT that leaves a team of at least MIN_TEAM_WARPS warps and moves at most
        PACKS_PER_THREAD 16-byte packs of each row tensor per thread (more of the row per
        thread: fewer per-thread costs per row; more threads: more bytes in flight); else the
        smallest VPT that fits (the most threads)."""
        fits = [v for v in BLOCK_VPT[1:] + BLOCK_VPT_C if threads_for(n, v) <= MAX_THREADS]
        fast = [v for v in fits if c(f"{name}_b{v}").endswith("c")]
        slow = [v for v in fits if v in BLOCK_VPT]
        if isinstance(forced, str) and re.fullmatch(r"b\d+", forced):
            want = int(forced[1:])
            if want in fast or want in slow:
                return want
        if fast:
            light = [v for v in fast if v <= PACKS_PER_THREAD * width] or [min(fast)]
            team = [v for v in light if threads_for(n, v) >= MIN_TEAM_WARPS * lanes]
            return max(team) if team else min(light)
        return min(slow) if slow else None

    def pick(env, buffers, info):
        n = n_shape.evaluate(env)
        rows = extent_product(outer_shapes, env)
        if rows == 0:
            return []
        forced = info.schedule.get("rows")

        def c(variant):
            return contiguous(variant, n, rows, buffers, info)

        block_forced = isinstance(forced, str) and re.fullmatch(r"b\d+", forced) is not None
        if info.cpu:   # one thread: a block variant holds rows up to VPT elements
            want = block_vpt(n, forced, c) if block_forced else None
            if want is not None and n <= want:
                return [(c(f"{name}_b{want}"), 1, 1, {})]
            if forced == "loop" or n > 16:
                return [(c(f"{name}_b0"), 1, 1, {})]
            v = next((v for v in WARP_VPT if v >= n), None)
            return [(c(f"{name}_w{v}" if v else f"{name}_b16"), 1, 1, {})]
        if forced != "loop" and forced != "block" and not block_forced:
            v = next((v for v in WARP_VPT if v * lanes >= n), None)
            if v is not None:
                per_block = 256 // lanes
                return [(c(f"{name}_w{v}"), min(-(-rows // per_block), 1 << 30), 256, {})]
        if forced != "loop":
            v = block_vpt(n, forced, c)
            if v is not None:
                return [(c(f"{name}_b{v}"), min(rows, 1 << 30), threads_for(n, v), {})]
        return [(c(f"{name}_b0"), min(rows, 1 << 30), MAX_THREADS, {})]

    return PatternUnit(name, "rows", "; ".join(statement_text(s) for s in launch.statements),
                       "rows.j2", args, params, data, variants, pick)


def lower_split(ctx: LaunchContext, name: str) -> PatternUnit:
    (stmt,) = ctx.launch.statements
    r, d = ctx.r, ctx.d
    accs = [Acc(ctx, red) for red in reduces(stmt.value)]
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
        fold = a.fold(Code(f"{part}[q]", a.ctype))
        phase2.append({"acc": a, "fold": fold})
        r.seed(a.reduce, r.finish(a.reduce, Code(a.name, a.ctype)))
    value = r.render(stmt.value)
    store = ctx.store(stmt.target, [], value, stmt.value.dtype)
    r.helpers |= {"kspec_team_reduce", "kspec_combine", "kspec_max", "kspec_min"}
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
        return scalar_split(max(extent_product(e, env) for e in extents), info.multiprocessors)

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


__all__ = ["lower_rows", "lower_split", "grid_size"]
