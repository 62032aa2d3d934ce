"""The reduction patterns of the plan in Triton: rows (a group of per-row reductions and the
row vectors after them, one program per BLOCK_P rows) and split (several programs per row,
then a combining pass).

Orientation is chosen at launch from the strides: when the innermost reduced index steps
through memory with a stride and the last kept index is contiguous (a column sum, a sum over
a middle axis, per-channel statistics over [N, C, H, W]'s C), programs own a tile of the last
kept index (coalesced loads along it) and loop over the reduced index, accumulating in
registers (STRIDED); otherwise a program owns whole rows and reads along them.
"""
from __future__ import annotations

from ... import ir
from ...dtypes import DType
from ...lowering.normalize import has_reduce
from ...lowering.pairs import fused_pairs
from ...lowering.plan import reduces_of, vector_axes
from ...shapes import Shape
from .common import TRITON_SIG, JitKernel, product, torch_dtype
from .expressions import Scope, shape_code
from .writer import outside_reduces

COMBINER = {"sum": "_add", "mean": "_add", "prod": "_mul", "max": "_max", "min": "_min"}
STRIDED_TILE = 4096     # elements of a STRIDED tile: BLOCK_P kept x BLOCK_R reduced
STRIDED_KEPT = 64       # most kept elements per STRIDED tile (256 B of f32 per reduced step)
ROW_BLOCK = 8192        # the longest row one rows block holds (longer rows loop; thresholds.py)


class RowPatterns:
    """Mixed into the launch writer (writer.LaunchWriterBase): rows and split."""

    # --- shared ----------------------------------------------------------------------------
    def row_extent(self) -> Shape:
        """The flattened length of a row: the product of the reduced indices' extents."""
        return product([v.extent for v in self.launch.reduced])

    def strided_code(self) -> str:
        """Host test for the STRIDED orientation: of the tensors read inside a reduction with
        its innermost reduced index bare in some dim, the largest has a stride there other
        than 1 (a vector-matrix product reads the matrix, not the vector, down a column)."""
        in_memory = {name for name, _ in self.buffers()}
        reads: list[tuple[str, int]] = []   # (tensor, dim of the innermost reduced index)
        for stmt in self.launch.statements:
            for r in reduces_of(stmt.value):
                for node in ir.walk(r.body):
                    if isinstance(node, ir.Load) and node.tensor in in_memory:
                        reads += [(node.tensor, d) for d, a in enumerate(node.index)
                                  if a.bare == r.vars[-1]]
        reads = list(dict.fromkeys(reads))
        if len(reads) < 2:
            return f"{reads[0][0]}.stride({reads[0][1]}) != 1" if reads else "False"
        return "max(" + ", ".join(f"({t}.numel(), {t}.stride({d}) != 1)" for t, d in reads) + \
            ")[1]"

    def kept_tile_code(self, strided: str) -> str:
        """Host code: BLOCK_P, kept elements per program (STRIDED: a tile of the last kept
        index; else rows, several per program when they are short)."""
        outer = self.launch.outer
        last = shape_code(outer[-1].extent) if outer else "1"
        return f"min(triton.next_power_of_2({last}), {STRIDED_KEPT}) if {strided} else 1"

    def outer_setup_rows(self, outer: list[ir.IndexVar], block: str) -> list[str]:
        """offs_p (the flat row number, [block, 1]), pmask and one code per outer index.
        STRIDED with several outer indices: the program's rows are a tile of the last one
        (contiguous, so loads along it vectorise) and the others are scalars; otherwise the
        flat row number is decomposed (consecutive rows across all outer indices)."""
        if len(outer) < 2:
            return self.outer_setup(outer, block)
        codes = [f"p{k}" for k in range(len(outer))]
        total = self.space(shape_code(product([v.extent for v in outer])))
        last = shape_code(outer[-1].extent)
        self.program_id("pid")
        saved, self.lines = self.lines, []
        self.lines += [f"blocks_p = ({last} + {block} - 1) // {block}",
                       f"{codes[-1]} = (pid % blocks_p) * {block} + tl.arange(0, {block})[:, None]",
                       f"pmask = {codes[-1]} < {last}",
                       "p_rest = pid // blocks_p",
                       f"offs_p = p_rest * {last} + {codes[-1]}"]
        # the other indices are one value per program, given the tile's shape (0 * the last
        # index): a load indexed by them alone is then a tile load, which the row mask masks
        self.assign_decomposed("p_rest", outer[:-1], codes[:-1], f" + 0 * {codes[-1]}")
        blocked, self.lines = self.lines, []
        self.lines += [f"offs_p = pid * {block} + tl.arange(0, {block})[:, None]",
                       f"pmask = offs_p < {total}"]
        self.assign_decomposed("offs_p", outer, codes)
        flat = self.lines
        self.lines = saved + ["if STRIDED:"] + ["    " + x for x in blocked] + \
            ["else:"] + ["    " + x for x in flat]
        return codes

    def assign_decomposed(self, offs: str, vars_: list[ir.IndexVar], codes: list[str],
                          broadcast: str = "") -> None:
        """Decompose offs into exactly the names `codes` (both orientations define the same),
        each followed by `broadcast`."""
        parts = self.decompose(offs, vars_, [f"{c}_d" for c in codes])
        self.lines += [f"{c} = {part}{broadcast}" for c, part in zip(codes, parts)]

    def outer_grid(self, block: str) -> str:
        outer = self.launch.outer
        total = shape_code(product([v.extent for v in outer]))
        if len(outer) < 2:
            return f"triton.cdiv({total}, {block})"
        rest = shape_code(product([v.extent for v in outer[:-1]]))
        return (f"({rest} * triton.cdiv({shape_code(outer[-1].extent)}, {block}) if STRIDED "
                f"else triton.cdiv({total}, {block}))")

    def row_split_code(self) -> str:
        """Host code: programs per block of rows (1: the rows launch; more: its split
        fallback), from the sizes and the device's multiprocessors (templates: _row_split)."""
        total = shape_code(product([v.extent for v in self.launch.outer]))
        kept = self.kept_tile_code(self.strided_code())
        return f"_row_split({total}, {shape_code(self.row_extent())}, {kept}, device)"

    def widest_load(self) -> int:
        """Bytes per element of the widest input tensor the launch reads."""
        inputs = {p.name for p in self.kernel.tensor_params}
        sizes = [n.dtype.bits // 8 for s in self.launch.statements for n in ir.walk(s.value)
                 if isinstance(n, ir.Load) and n.tensor in inputs]
        return max(sizes, default=4)

    # --- rows ------------------------------------------------------------------------------
    def body_rows(self) -> None:
        codes = self.outer_setup_rows(list(self.launch.outer), "BLOCK_P")
        n = self.space(shape_code(self.row_extent()))
        self.lines.append("if SINGLE:")
        self.lines.append("    offs_r = tl.arange(0, BLOCK_R)[None, :]")
        self.lines.append(f"    rmask = offs_r < {n}")
        self.rows_pass(codes, single=True)
        self.lines.append("else:")
        self.rows_pass(codes, single=False)
        self.constexprs = ["BLOCK_P", "BLOCK_R", "SINGLE", "STRIDED"]
        total = shape_code(product([v.extent for v in self.launch.outer]))
        last = shape_code(self.launch.outer[-1].extent)
        self.emit_launch(
            {"STRIDED": self.strided_code(),
             # STRIDED: 64 kept x 64 reduced (a channel axis of 64 in one pass); rows: whole
             # rows up to 8192 in registers
             "BLOCK_R": f"min(triton.next_power_of_2({n}), "
                        f"{STRIDED_TILE // STRIDED_KEPT} if STRIDED else {ROW_BLOCK})",
             "BLOCK_P": f"min(triton.next_power_of_2({last} if STRIDED else {total}), "
                        f"max(1, ({STRIDED_TILE} if STRIDED else 2048) // BLOCK_R))",
             # H200 (bench/NOTES.md): 4096-wide f32 rows ran best with 16 warps (softmax,
             # rmsnorm, row_sum), 4096-wide bf16 rows with 8 (layernorm); so by bytes per tile
             "WARPS": f"4 if BLOCK_R * BLOCK_P <= 2048 else "
                      f"(8 if BLOCK_R * BLOCK_P * {self.widest_load()} < 16384 else 16)"},
            self.outer_grid("BLOCK_P"),
            {"BLOCK_P": "BLOCK_P", "BLOCK_R": "BLOCK_R", "SINGLE": f"{n} <= BLOCK_R",
             "STRIDED": "STRIDED"}, "WARPS")

    def rows_pass(self, outer_codes: list[str], single: bool) -> None:
        scope = Scope(self.lines, "    ")
        mask = "pmask & rmask"
        self.em.registers, self.em.replace = {}, {}
        self.fused = {} if single else fused_pairs(self.launch.statements)
        outer_ext = tuple(v.extent for v in self.launch.outer)
        inner_ext = tuple(v.extent for v in self.launch.reduced)
        n = shape_code(self.row_extent())
        for stmt in self.launch.statements:
            if has_reduce(stmt.value):
                for v, c in zip(stmt.index, outer_codes):
                    self.em.var_code[v] = c
                value = self.statement_value(stmt, scope, mask, "offs_r", self.row_extent(),
                                             single)
                reg = f"{stmt.target}_row"
                self.lines.append(f"{scope.indent}{reg} = {value}")
                self.em.registers[stmt.target] = reg
                if stmt.target in self.launch.stores:
                    self.store(stmt.target, outer_codes, reg, "pmask", scope.indent)
                continue
            outs, ins = vector_axes(stmt, outer_ext, inner_ext)
            for v, c in zip(outs, outer_codes):
                self.em.var_code[v] = c
            inner = scope
            if not single:
                self.lines.append(f"{scope.indent}for r0 in range(0, {n}, BLOCK_R):")
                inner = Scope(self.lines, scope.indent + "    ")
                self.lines.append(f"{inner.indent}offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]")
                self.lines.append(f"{inner.indent}rmask = offs_r < {n}")
            self.bind_vars(ins, inner, "offs_r")
            value = self.em.expr(stmt.value, inner, mask)
            codes = [self.em.var_code[v] for v in stmt.index]
            self.store(stmt.target, codes, value, mask, inner.indent)

    # --- split -----------------------------------------------------------------------------
    def write_split(self) -> None:
        """Reductions per row of `outer` (none: to a scalar) in two kernels. Phase 1: program
        (pid, sid) reduces slice `sid` of every reduction's range for its rows into
        part_k[sid, row] (with a fused partner, pairs.py, also the running state it needs);
        many programs keep the GPU busy, and short per-lane chains keep f32 sums accurate
        over 10^8 terms. Phase 2: a program per block of rows combines the partials and
        evaluates the statements in order."""
        stmts = self.launch.statements
        self.fused = fused_pairs(stmts)
        partners = {id(s) for _, s in self.fused.values()}
        reds = [r for st in stmts for r in reduces_of(st.value) if id(r) not in partners]
        exts = [self.space(shape_code(product([v.extent for v in r.vars]))) for r in reds]
        rows = shape_code(product([v.extent for v in self.launch.outer]))
        self.space(f"SPLIT * {rows}")
        targets = {st.target for st in stmts}
        tail, tail_args, tail_sig = self.scalar_and_symbol_params()
        params, args, signature = self.buffer_params(
            [(n, rank) for n, rank in self.buffers() if n not in targets])
        slots = self.part_params(reds, params, args, signature)
        self.split_partial(reds, exts, rows, {**signature, **tail_sig})
        consts = ["BLOCK_P", "BLOCK_R", "SPLIT", "STRIDED", *self.divisors.values(), "INDEX64"]
        names = ", ".join(sorted(targets))
        self.ctx.kernels.append(JitKernel(
            f"{self.name}_partial", params + tail + [f"{c}: tl.constexpr" for c in consts],
            self.lines, f"split reduction, phase 1 -> partials of {names}",
            {**signature, **tail_sig, **{c: "constexpr" for c in consts}},
            {"BLOCK_P": 1, "BLOCK_R": 1024, "SPLIT": 512, "STRIDED": False, "INDEX64": False,
             **{d: 7 for d in self.divisors.values()}}))
        outside = {x.tensor if isinstance(x, ir.Load) else x.name
                   for st in stmts for x in outside_reduces(st.value)
                   if isinstance(x, (ir.Load, ir.ScalarRef))}
        loads = [(n, rank) for n, rank in self.buffers() if n not in targets and n in outside]
        stored = [(st.target, len(st.index)) for st in stmts if st.target in self.launch.stores]
        params2, args2, sig2 = self.buffer_params(loads + stored)
        self.part_params(reds, params2, args2, sig2)
        self.split_finish(reds, exts, rows, {**sig2, **tail_sig})
        consts = ["BLOCK_P", "SPLIT", "SPLIT_BLOCK", "STRIDED", "INDEX64"]
        self.ctx.kernels.append(JitKernel(
            f"{self.name}_finish", params2 + tail + [f"{c}: tl.constexpr" for c in consts],
            self.lines, f"split reduction, phase 2 -> {names}",
            {**sig2, **tail_sig, **{c: "constexpr" for c in consts}},
            {"BLOCK_P": 1, "SPLIT": 512, "SPLIT_BLOCK": 512, "STRIDED": False,
             "INDEX64": False}))
        self.split_host(exts, rows, slots, args + tail_args, args2 + tail_args)

    def state_fields(self, r: ir.Reduce) -> tuple[tuple[str, str], ...]:
        """(field, identity) of the running state a fused partner of r needs in phase 2."""
        kind = self.fused[id(r)][0] if id(r) in self.fused else None
        return STATE.get(kind, ())

    def part_params(self, reds: list[ir.Reduce], params: list[str], args: list[str],
                    signature: dict[str, str]) -> list[tuple[str, DType]]:
        """Add the partials' buffers (one per reduction, and its partner's state) to a
        kernel's parameters; returns (host name, dtype) of each."""
        slots: list[tuple[str, DType]] = []
        for k, r in enumerate(reds):
            dt = self.accumulator(r)
            for field in [""] + [f"_{f}" for f, _ in self.state_fields(r)]:
                params.append(f"part{k}{field}_ptr")
                args.append(f"part{k}{field}_{self.n}")
                signature[f"part{k}{field}_ptr"] = "*" + TRITON_SIG[dt]
                slots.append((f"part{k}{field}_{self.n}", dt))
        return slots

    def split_partial(self, reds: list[ir.Reduce], exts: list[str], rows: str,
                      signature: dict[str, str]) -> None:
        self.lines = []
        codes = self.outer_setup_rows(list(self.launch.outer), "BLOCK_P")
        self.program_id("sid", 1)
        for st in self.launch.statements:
            for v, c in zip(st.index, codes):
                self.em.var_code[v] = c
        scope = Scope(self.lines, "")
        for k, (r, ext) in enumerate(zip(reds, exts)):
            self.lines.append(f"chunk{k} = (({ext} + SPLIT - 1) // SPLIT + BLOCK_R - 1) "
                              f"// BLOCK_R * BLOCK_R")
            self.lines.append(f"end{k} = tl.minimum(sid * chunk{k} + chunk{k}, {ext})")
            part = self.reduce_into(r, scope, "pmask", "offs_r",
                                    product([v.extent for v in r.vars]), single=False,
                                    span=(f"sid * chunk{k}", f"end{k}"), partial=True)
            for field, value in [("", part)] + [(f"_{f}", f"{part}_{f}")
                                                for f, _ in self.state_fields(r)]:
                self.lines.append(f"tl.store(part{k}{field}_ptr + sid * {rows} + offs_p, "
                                  f"{value}, mask=pmask)")
        self.lines = self.index_prologue(signature) + self.lines

    def split_finish(self, reds: list[ir.Reduce], exts: list[str], rows: str,
                     signature: dict[str, str]) -> None:
        self.lines, self.program_ids = [], {}
        self.em.registers = {}
        codes = self.outer_setup_rows(list(self.launch.outer), "BLOCK_P")
        self.lines.append("offs_s = tl.arange(0, SPLIT_BLOCK)[None, :]")
        tile = f"offs_s * {rows} + offs_p"
        mask = "pmask & (offs_s < SPLIT)"
        for k, (r, ext) in enumerate(zip(reds, exts)):
            ident = self.identity(r.op, self.accumulator(r))
            self.lines.append(f"vals{k} = tl.load(part{k}_ptr + {tile}, mask={mask}, "
                              f"other={ident})")
            red = f"tl.reduce(vals{k}, 1, {COMBINER[r.op]}, keep_dims=True)"
            if r.op == "mean":
                red = f"{red} / {ext}"
            elif r.body.dtype == DType.bool and r.op in ("max", "min"):
                red = f"({red} != 0)"
            self.lines.append(f"red{k} = {red}")
            self.em.replace[id(r)] = f"red{k}"
            fields = self.state_fields(r)
            if fields:
                names = [f"state{k}_{f}" for f, _ in fields]
                self.lines += [f"{n} = tl.load(part{k}_{f}_ptr + {tile}, mask={mask}, "
                               f"other={ident})" for n, (f, ident) in zip(names, fields)]
                kind, partner = self.fused[id(r)]
                self.lines.append(f"{', '.join(names)} = tl.reduce(({', '.join(names)}), 1, "
                                  f"_{'welford' if kind == 'centred' else 'exp_sum'}, "
                                  f"keep_dims=True)")
                self.em.replace[id(partner)] = f"partner{k}"
                self.lines.append(f"partner{k} = {partner_value(kind, partner, names, ext)}")
        scope = Scope(self.lines, "")
        for st in self.launch.statements:
            for v, c in zip(st.index, codes):
                self.em.var_code[v] = c
            reg = f"{st.target}_row"
            self.lines.append(f"{reg} = {self.em.expr(st.value, scope, 'pmask')}")
            self.em.registers[st.target] = reg
            if st.target in self.launch.stores:
                self.store(st.target, codes, reg, "pmask")
        self.lines = self.index_prologue(signature) + self.lines

    def split_host(self, exts: list[str], rows: str, slots: list[tuple[str, DType]],
                   args1: list[str], args2: list[str]) -> None:
        host = self.ctx.host
        targets = ", ".join(st.target for st in self.launch.statements)
        host.append(f"# launch {self.n}: split reduction -> {targets}")
        longest = f"max({', '.join(exts)}, 1)"
        strided = self.strided_code() if self.launch.outer else "False"
        split = self.split_default or f"max(1, min(1024, {longest} // 16384))"
        schedule = {
            "STRIDED": strided,
            "SPLIT": split,
            "BLOCK_P": self.kept_tile_code("STRIDED"),
            # 2048 contiguous elements (or a 4096-element STRIDED tile) per step, 8 per
            # thread: with 4 programs per multiprocessor some 32 KB in flight on each, what
            # an H200's latency x bandwidth asks (not yet measured)
            "BLOCK_R": f"min({STRIDED_TILE} // BLOCK_P if STRIDED else 2048, "
                       f"triton.next_power_of_2(max(1, -(-{longest} // SPLIT))))",
            "WARPS": "max(4, min(16, BLOCK_P * BLOCK_R // 256))",
            "INDEX64": self.index64_code()}
        for k, v in schedule.items():
            host.append(f"{k} = schedule.get('{self.n}.{k}', {v})")
        grid = self.outer_grid("BLOCK_P")
        self.note_schedule((), schedule, {}, f"{grid}, SPLIT")
        for name, dt in slots:
            host.append(f"{name} = torch.empty((SPLIT * {rows},), dtype={torch_dtype(dt)}, "
                        f"device=device)")
        divisors = "".join(f"{d}={code}, " for code, d in self.divisors.items())
        host.append(f"{self.name}_partial[({grid}, SPLIT)]({', '.join(args1)}, "
                    f"BLOCK_P=BLOCK_P, BLOCK_R=BLOCK_R, SPLIT=SPLIT, STRIDED=STRIDED, "
                    f"{divisors}INDEX64=INDEX64, num_warps=WARPS)")
        # phase 2 holds BLOCK_P x SPLIT partials: at most 4096 in registers
        host.append("SPLIT_BLOCK = triton.next_power_of_2(SPLIT)")
        host.append("BLOCK_P = max(1, min(BLOCK_P, 4096 // SPLIT_BLOCK))")
        host.append(f"{self.name}_finish[({grid},)]({', '.join(args2)}, BLOCK_P=BLOCK_P, "
                    f"SPLIT=SPLIT, SPLIT_BLOCK=SPLIT_BLOCK, STRIDED=STRIDED, INDEX64=INDEX64, "
                    f"num_warps=4)")


# the running state a fused partner (pairs.py) carries from phase 1 to phase 2 of a split:
# (field, identity); the fields are the names writer.welford / online_exp_sum give them
STATE = {"centred": (("n", "0.0"), ("m", "0.0"), ("q", "0.0")),
         "exp_sum": (("m", "float('-inf')"), ("s", "0.0"))}


def partner_value(kind: str, partner: ir.Reduce, state: list[str], ext: str) -> str:
    """The partner reduction's value from its merged state."""
    if kind == "centred":
        return f"{state[2]} / {ext}" if partner.op == "mean" else state[2]
    return f"tl.where({state[0]} == float('-inf'), float('nan'), {state[1]})"
