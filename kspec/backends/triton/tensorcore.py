"""The tensor-core patterns: contraction (a GEMM with fused prologue and epilogue, several
indices per GEMM dim, so convolution is an implicit GEMM) and attention (online softmax)."""
from __future__ import annotations

from ... import ir
from ...dtypes import DType
from ...lowering.plan import window_min_channels
from .common import extent_code, product
from .expressions import TL_DTYPE, Scope, shape_code


# Contraction depth from which partial products are added with compensation: KernelBench's
# matrix-vector product (K = 2^20, uniform inputs) was 51 off against a 26 tolerance on an H200
# with one plain f32 accumulator; below this depth the plain chain is far inside tolerance.
COMPENSATED_DEPTH = 65536


# A convolution's window steps are 16 channels deep (BLOCK_K), walked from half a step.
WINDOW_BLOCK_K = 16
WINDOW_CHANNELS = window_min_channels(WINDOW_BLOCK_K)


class TensorCorePatterns:
    """Mixin for LaunchWriterBase: body_contraction and body_attention."""

    def body_contraction(self) -> None:
        c = self.launch.contraction
        m, n, k, batch_total = self.gemm_sizes()
        rows, cols = self.output_tile(grouped=True)
        self.program_id("sid", 1)
        self.space(self.partial_size())
        self.lines.append(f"acc = tl.full([BLOCK_M, BLOCK_N], 0.0, {self.acc_dtype(c)})")
        self.lines.append("if COMPENSATED:")
        self.lines.append("    acc_lost = tl.full([BLOCK_M, BLOCK_N], 0.0, acc.dtype)")
        operand = self.operand_dtype(c)
        self.depth_loop(rows, cols, operand, k)
        self.partial_or_epilogue("acc", rows, cols)
        self.contraction_launch(operand, m, n, k, batch_total)

    def depth_loop(self, rows: dict[ir.IndexVar, str], cols: dict[ir.IndexVar, str],
                   operand: str | None, k: str) -> None:
        """The contraction's depth loop into acc: the flattened depth in BLOCK_K steps, and
        for a convolution also the window walked one offset per step (WINDOW)."""
        c, em = self.launch.contraction, self.em
        window, channels = c.window_split()
        if window:
            # a convolution's depth two ways, chosen at launch (WINDOW): flattened (c, r, s)
            # in BLOCK_K steps, each element's indices split by divisions; or the window's
            # offsets (r, s) one per step, as scalars, and only the channels c in BLOCK_K
            # steps (the address of x is then a row base plus a channel offset)
            wk = extent_code(window)
            self.depth_slice(f"({extent_code(channels)} if WINDOW else {k})")
            self.lines += ["if WINDOW:",
                           "    c_steps = (k_hi - k_lo + BLOCK_K - 1) // BLOCK_K",
                           f"    for kt in range(0, c_steps * {wk}):",
                           f"        k0 = k_lo + kt // {wk} * BLOCK_K",
                           f"        kw = kt % {wk}"]
            em.var_code.update(self.split_flat("kw", window, "        "))
            self.depth_step(rows, cols, channels, extent_code(channels), operand, "        ")
            self.lines += ["else:", "    for k0 in range(k_lo, k_hi, BLOCK_K):"]
            self.depth_step(rows, cols, c.kv, k, operand, "        ")
        else:
            self.depth_slice(k)
            self.lines.append("for k0 in range(k_lo, k_hi, BLOCK_K):")
            self.depth_step(rows, cols, c.kv, k, operand, "    ")

    def contraction_launch(self, operand: str | None, m: str, n: str, k: str,
                           batch_total: str) -> None:
        """The host side: the tile from the sizes and the device, the depth order, split-K and
        compensation, then the launch."""
        c = self.launch.contraction
        window, channels = c.window_split()
        self.constexprs = ["BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "PRECISION", "INTERPRETED",
                           "SPLIT_K", "COMPENSATED"] + ["WINDOW"] * bool(window)
        tile_n, tile_k, stages, warps = self.gemm_tile(c, operand)
        prelude: list[str] = []
        depth_major = self.depth_major_axes(c, operand)
        if depth_major is not None and tile_n == 64:
            # B row-major on TF32 tensor cores: a depth-major copy first (one pass over B)
            # lets the contraction run the depth-major tiles, 1.6x faster on an H200
            # (bench/sweeps/triton_f32_tiles.py); worth it when A has rows to reuse it over
            prelude += [f"DEPTH_MAJOR_B = schedule.get('{self.n}.DEPTH_MAJOR_B', "
                        f"_f32_dot_precision(device) == 'tf32x3' and {m} >= 512)",
                        "if DEPTH_MAJOR_B:",
                        f"    {c.b.tensor} = _depth_major({c.b.tensor}, {depth_major[0]}, "
                        f"{depth_major[1]})"]
            tile_n, tile_k, stages, warps = ("128 if DEPTH_MAJOR_B else 64",
                                             "64 if DEPTH_MAJOR_B else 32",
                                             "3 if DEPTH_MAJOR_B else 4",
                                             "(8 if DEPTH_MAJOR_B else 4)")
        wave = f"triton.cdiv({m}, 128) * triton.cdiv({n}, 256) * {batch_total}"
        if tile_n == 256:   # grids smaller than one wave of 128x256 tiles keep 128x128
            tile_n = f"256 if {wave} >= _multiprocessors(device) else 128"
        prelude.append(f"TILE_N, TILE_K, TILE_STAGES = _fit_gemm_tile(device, "
                       f"{self.operand_bytes(operand)}, 128, {tile_n}, {tile_k}, {stages}"
                       f"{self.staged_tiles(c)}) if device.type == 'cuda' else (32, 32, 1)")
        schedule = {"BLOCK_M": "128 if device.type == 'cuda' else 32"}
        # no wider than the product's columns (KernelBench level2/54's 64 output channels ran
        # 1.9x faster in 64-wide tiles than in 128-wide, half of them masked; H200)
        schedule["BLOCK_N"] = f"min(TILE_N, max(16, triton.next_power_of_2({n})))"
        steps = f"triton.cdiv({k}, BLOCK_K)"
        if window:
            # the window's offsets one at a time from 8 channels on, in 16-deep steps: on an
            # H200 at KernelBench level-2 shapes 1.2-2.3x faster than the flattened depth in
            # its best tile (bench/sweeps/session10_conv.py, 8 to 64 channels); the flat
            # depth in 32-deep steps, 1.03-1.9x faster than 64 there
            schedule["WINDOW"] = f"{extent_code(channels)} >= {WINDOW_CHANNELS}"
            schedule["BLOCK_K"] = f"{WINDOW_BLOCK_K} if WINDOW else min(TILE_K, 32)"
            steps = f"(triton.cdiv({extent_code(channels)}, BLOCK_K) if WINDOW else {steps})"
        else:
            schedule["BLOCK_K"] = "TILE_K"
        warps_code = "4" if warps == 4 else f"{warps} if device.type == 'cuda' else 4"
        if window and warps == 8:   # 128 x 64 tiles and narrower: 4 warps, 1.02-1.09x (H200)
            warps_code = "(8 if BLOCK_N >= 128 else 4) if device.type == 'cuda' else 4"
        schedule.update({"STAGES": "TILE_STAGES", "WARPS": warps_code,
                         "PRECISION": self.precision(c, operand)})
        constexprs = {"BLOCK_M": "BLOCK_M", "BLOCK_N": "BLOCK_N", "BLOCK_K": "BLOCK_K",
                      "GROUP_M": "8", "PRECISION": "PRECISION",
                      "INTERPRETED": "device.type != 'cuda'"}
        if window:
            constexprs["WINDOW"] = "WINDOW"
        # output tiles too few to fill the GPU split a long depth (policy.depth_split)
        schedule["SPLIT_K"] = (f"_split_k(triton.cdiv({m}, BLOCK_M) * triton.cdiv({n}, BLOCK_N)"
                               f" * {batch_total}, {steps}, device)")
        schedule["COMPENSATED"] = f"triton.cdiv({k}, SPLIT_K) >= {COMPENSATED_DEPTH}"
        constexprs.update({"SPLIT_K": "SPLIT_K", "COMPENSATED": "COMPENSATED",
                           "num_stages": "STAGES"})
        self.emit_launch(
            schedule,
            f"triton.cdiv({m}, BLOCK_M) * triton.cdiv({n}, BLOCK_N) * {batch_total}, SPLIT_K",
            constexprs, "WARPS", prelude=tuple(prelude), setup=(self.partial_alloc(),))

    def depth_step(self, rows: dict[ir.IndexVar, str], cols: dict[ir.IndexVar, str],
                   kv: tuple[ir.IndexVar, ...], k: str, operand: str | None, indent: str) -> None:
        """One BLOCK_K step of the depth loop: the A and B tiles at depth indices `kv` (flattened
        from k0 + lane, `k` long; any other depth index has its code already) into acc."""
        c, em = self.launch.contraction, self.em
        m, n, _, _ = self.gemm_sizes()
        loop = Scope(self.lines, indent)
        self.lines.append(f"{indent}offs_ka = k0 + tl.arange(0, BLOCK_K)[None, :]")
        self.lines.append(f"{indent}offs_kb = k0 + tl.arange(0, BLOCK_K)[:, None]")
        em.raw_loads = operand is not None
        em.var_code.update(rows)
        em.var_code.update(self.split_flat("offs_ka", kv, indent))
        mask_a, mask_b = f"(offs_m < {m}) & (offs_ka < {k})", f"(offs_kb < {k}) & (offs_n < {n})"
        a = self.padded_operand(em.expr(c.a, loop, mask_a), c.a, mask_a)
        em.var_code.update(self.split_flat("offs_kb", kv, indent))
        em.var_code.update(cols)
        b = self.padded_operand(em.expr(c.b, loop, mask_b), c.b, mask_b)
        em.raw_loads = False
        precision = "" if operand is not None and operand != "tl.float32" else \
            ", input_precision=PRECISION"
        a, b = self.dot_operands(a, b, operand, indent)
        # a deep K (chosen at launch) adds each step's partial product with Kahan compensation:
        # one f32 accumulator over 10^6 terms loses ~1e-4 of the sum (KernelBench's tolerance)
        dot = f"tl.dot({a}, {b}{precision})"
        self.lines += [f"{indent}if COMPENSATED:",
                       f"{indent}    acc, acc_lost = _kahan_add(acc, acc_lost, {dot})",
                       f"{indent}else:",
                       f"{indent}    acc = tl.dot({a}, {b}, acc{precision})"]

    @staticmethod
    def padded_operand(code: str, e: ir.Expr, mask: str) -> str:
        """An operand computed from loads (the backward's dp * p + where(s == m, dm / ties,
        0)) is 0 outside the tile's mask: its masked loads read 0 there, and 0 / 0 is NaN,
        which the tensor cores' sum spreads over the whole output tile."""
        return code if isinstance(e, ir.Load) else f"tl.where({mask}, {code}, 0.0)"

    def gemm_tile(self, c, operand: str | None) -> tuple[int, int, int, int]:
        """(BLOCK_N, BLOCK_K, stages, warps) for 128-row tiles on a GPU, from sweeps on an H200
        (bench/NOTES.md). f16/bf16: 128x256x64 in 3 stages, 0.96 of cuBLAS at 8192^3. f32 on
        three TF32 products (bench/sweeps/triton_f32_tiles.py): 128x128x64, 3 stages, 8 warps
        when B is read along the depth (nn.Linear's weight: 1.72x cuBLAS IEEE at
        1024x8192x8192), else 128x64x32, 4 stages, 4 warps (B row-major: 1.07x at 4096^3, where
        wider tiles were 1.5-3x slower)."""
        if operand not in (None, "tl.float32"):
            return 256, 64, 3, 8
        b_last = c.b.index[-1].bare if isinstance(c.b, ir.Load) else None
        if b_last is not None and b_last in c.kv:
            return 128, 64, 3, 8
        return 64, 32, 4, 4

    @staticmethod
    def depth_major_axes(c, operand: str | None) -> tuple[int, int] | None:
        """(depth axis, column axis) of B when it is a plain f32 load read along its columns
        (its last index a column index) with one depth and one column index, all indices
        bare and at most one batch index: the operands _depth_major can copy."""
        b = c.b
        if operand != "tl.float32" or not isinstance(b, ir.Load) or len(b.index) > 3:
            return None
        bare = [a.bare for a in b.index]
        if None in bare or len(c.kv) != 1 or len(c.jv) != 1 or bare[-1] != c.jv[0]:
            return None
        if c.kv[0] not in bare or len(set(bare)) != len(bare):
            return None
        return bare.index(c.kv[0]), bare.index(c.jv[0])

    @staticmethod
    def staged_tiles(c) -> str:
        """_fit_gemm_tile's last arguments where an operand is computed (the backward's
        dy * f'(x) times a weight): the tiles Triton stages per operand and the computed flag;
        "" for two plain loads. Every tensor an operand reads counts as a tile, vectors too:
        on sm_90 the attention backward's dq (ds from dp, s, and three row vectors) took 288
        KiB at 128x64x32 in 4 stages, more than its two tiles alone."""
        if isinstance(c.a, ir.Load) and isinstance(c.b, ir.Load):
            return ""

        def tiles(e: ir.Expr) -> int:
            return max(1, len({(x.tensor, x.index) for x in ir.walk(e) if isinstance(x, ir.Load)}))
        return f", {tiles(c.a)}, {tiles(c.b)}, True"

    @staticmethod
    def operand_bytes(operand: str | None) -> int:
        """Bytes per element of tl.dot's operands (None: converted to f32)."""
        return 2 if operand in ("tl.float16", "tl.bfloat16") else 4

    def split_flat(self, offs: str, vars_: tuple[ir.IndexVar, ...], indent: str
                   ) -> dict[ir.IndexVar, str]:
        """Codes for the variables of a flattened (row-major) tile dimension."""
        if len(vars_) == 1:
            return {vars_[0]: offs}
        saved, self.lines = self.lines, []
        codes = self.decompose(offs, list(vars_), [f"{offs}_{v.name}" for v in vars_])
        saved += [indent + line for line in self.lines]
        self.lines = saved
        return dict(zip(vars_, codes))

    def operand_dtype(self, c) -> str | None:
        """The dtype tl.dot gets: both operands' storage dtype when they agree on a tensor-core
        type (f16, bf16, f32); None means convert both to f32."""
        dts = {n.dtype for f in (c.a, c.b) for n in ir.walk(f) if isinstance(n, ir.Load)}
        plain = all(isinstance(f, ir.Load) for f in (c.a, c.b))
        if plain and len(dts) == 1 and next(iter(dts)) in (DType.f16, DType.bf16, DType.f32):
            return TL_DTYPE[next(iter(dts))]
        return None

    def precision(self, c, operand: str | None) -> str:
        """Host code choosing tl.dot's input precision for f32 operands: one TF32 product when
        the user allows it, else f32 accuracy (_f32_dot_precision: three TF32 products on GPUs
        that have them, IEEE elsewhere). f16/bf16 operands and f64 sums ignore it."""
        if operand not in (None, "tl.float32") or c.reduce.dtype == DType.f64:
            return "'ieee'"
        return "'tf32' if schedule.get('allow_tf32') else _f32_dot_precision(device)"

    def acc_dtype(self, c) -> str:
        return "tl.float64" if c.reduce.dtype == DType.f64 else "tl.float32"

    # --- attention -------------------------------------------------------------------------
    def dot_operands(self, a: str, b: str, operand: str | None, indent: str) -> tuple[str, str]:
        """Operands for tl.dot: storage dtype on the tensor cores, f32 otherwise; bf16 is
        computed in f32 under the interpreter, whose bf16 arithmetic is wrong (Triton 3.9)."""
        if operand is None:
            return f"({a}).to(tl.float32)", f"({b}).to(tl.float32)"
        if operand == "tl.bfloat16":
            ta, tb = self.em.fresh("opa"), self.em.fresh("opb")
            self.lines += [f"{indent}{ta} = {a}", f"{indent}{tb} = {b}",
                           f"{indent}if INTERPRETED:", f"{indent}    {ta} = {ta}.to(tl.float32)",
                           f"{indent}    {tb} = {tb}.to(tl.float32)"]
            return ta, tb
        return a, b

    def body_attention(self) -> None:
        att = self.launch.attention
        sc, oc = att.scores, att.out
        em = self.em
        qlen, klen = shape_code(sc.i.extent), shape_code(sc.j.extent)
        dk, dv = shape_code(sc.k.extent), shape_code(oc.j.extent)
        self.program_id("pid")
        self.lines.append(f"blocks_q = ({qlen} + BLOCK_M - 1) // BLOCK_M")
        # one grid axis (the second holds at most 65535 programs); a batch's query blocks are
        # neighbours, so its keys and values stay in L2 between them
        self.lines.append("pid_m = pid % blocks_q")
        self.lines.append("offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]")
        self.lines.append("offs_dk = tl.arange(0, BLOCK_D)[None, :]")
        self.lines.append("offs_dk_row = tl.arange(0, BLOCK_D)[:, None]")
        self.lines.append("offs_dv = tl.arange(0, BLOCK_DV)[None, :]")
        if sc.batch:
            self.lines.append("offs_b = pid // blocks_q")
            codes = self.decompose("offs_b", list(sc.batch), [f"b{q}" for q in range(len(sc.batch))])
            for v, code in zip(sc.batch, codes):
                em.var_code[v] = code
            for v, code in zip(oc.batch, codes):
                em.var_code[v] = code
            for v, code in zip(att.out_stmt.index[:-2], codes):
                em.var_code[v] = code
        top = Scope(self.lines, "")
        operand = self.operand_dtype(sc)
        em.raw_loads = operand is not None
        em.var_code[sc.i], em.var_code[sc.k] = "offs_m", "offs_dk"
        q = em.expr(sc.a, top, f"(offs_m < {qlen}) & (offs_dk < {dk})")
        em.raw_loads = False
        self.lines.append("m_i = tl.full([BLOCK_M, 1], float('-inf'), tl.float32)")
        self.lines.append("l_i = tl.full([BLOCK_M, 1], 0.0, tl.float32)")
        self.lines.append("acc = tl.full([BLOCK_M, BLOCK_DV], 0.0, tl.float32)")
        self.lines.append(f"for j0 in range(0, {klen}, BLOCK_N):")
        loop = Scope(self.lines, "    ")
        self.lines.append("    offs_n = j0 + tl.arange(0, BLOCK_N)[None, :]")
        self.lines.append("    offs_n_row = j0 + tl.arange(0, BLOCK_N)[:, None]")
        em.raw_loads = operand is not None
        em.var_code[sc.k], em.var_code[sc.j] = "offs_dk_row", "offs_n"
        kt = em.expr(sc.b, loop, f"(offs_dk_row < {dk}) & (offs_n < {klen})")
        em.raw_loads = False
        qa, kb = self.dot_operands(q, kt, operand, "    ")
        precision = ", input_precision=PRECISION" if operand in (None, "tl.float32") else ""
        self.lines.append(f"    qk = tl.dot({qa}, {kb}{precision})")
        # the score statement's epilogue (scale, masks) on the tile, the sum replaced by qk
        em.replace[id(sc.reduce)] = "qk"
        em.var_code[sc.i], em.var_code[sc.j] = "offs_m", "offs_n"
        score = em.expr(att.scores_stmt.value, loop, f"(offs_m < {qlen}) & (offs_n < {klen})")
        # scores in base 2 (exp(x) = exp2(x * log2 e)): the row statistics never leave the
        # kernel, so only p and the rescaling factor see the change of base
        self.lines.append(f"    s_blk = ({score}) * 1.4426950408889634")
        self.lines.append("    if not EVEN_N:")
        self.lines.append(f"        s_blk = tl.where(offs_n < {klen}, s_blk, float('-inf'))")
        self.lines.append("    m_new = _max(m_i, tl.reduce(s_blk, 1, _max, keep_dims=True))")
        # rows with no finite score yet subtract 0, not -inf (exp(-inf - -inf) would be NaN)
        self.lines.append("    m_safe = tl.where(m_new == float('-inf'), 0.0, m_new)")
        self.lines.append("    alpha = tl.exp2(m_i - m_safe)")
        self.lines.append("    p = tl.exp2(s_blk - m_safe)")
        self.lines.append("    l_i = l_i * alpha + tl.reduce(p, 1, _add, keep_dims=True)")
        # p is computed in f32 and joins v on the tensor cores in v's storage dtype
        operand_v = TL_DTYPE[oc.b.dtype] if isinstance(oc.b, ir.Load) and oc.b.dtype in (
            DType.f16, DType.bf16, DType.f32) else None
        em.raw_loads = operand_v is not None
        em.var_code[oc.k], em.var_code[oc.j] = "offs_n_row", "offs_dv"
        v = em.expr(oc.b, loop, f"(offs_n_row < {klen}) & (offs_dv < {dv})")
        em.raw_loads = False
        p_code = "p" if operand_v is None else f"p.to({operand_v})"
        pa, vb = self.dot_operands(p_code, v, operand_v, "    ")
        precision = ", input_precision=PRECISION" if operand_v in (None, "tl.float32") else ""
        self.lines.append(f"    acc = acc * alpha + tl.dot({pa}, {vb}{precision})")
        self.lines.append("    m_i = m_new")
        em.replace[id(oc.reduce)] = "acc"
        em.registers[att.l_name] = "l_i"
        em.registers[att.m_name] = "m_i"
        em.var_code[oc.i], em.var_code[oc.j] = "offs_m", "offs_dv"
        out_index = att.out_stmt.index
        em.var_code[out_index[-2]], em.var_code[out_index[-1]] = "offs_m", "offs_dv"
        mask = f"(offs_m < {qlen}) & (offs_dv < {dv})"
        value = em.expr(att.out_stmt.value, top, mask)
        self.store(att.out_stmt.target, [em.var_code[x] for x in out_index], value, mask)
        self.constexprs = ["BLOCK_M", "BLOCK_N", "BLOCK_D", "BLOCK_DV", "PRECISION", "INTERPRETED",
                           "EVEN_N"]
        batch_total = shape_code(product([x.extent for x in sc.batch]))
        cuda = "device.type == 'cuda'"
        self.emit_launch(
            # the best of a sweep on an H200 at 16x16x2048 f16, head dims 64 and 128
            # (bench/NOTES.md): 128x64 tiles, 8 warps, 3 stages; smaller where they do not fit
            # (codegen chose this kernel only when some tile fits: ATTENTION_TILE)
            {"BLOCK_D": "ATTENTION_D", "BLOCK_DV": "ATTENTION_DV",
             "BLOCK_M": f"ATTENTION_TILE[0] if {cuda} else 16",
             "BLOCK_N": f"ATTENTION_TILE[1] if {cuda} else 16",
             "STAGES": f"ATTENTION_TILE[2] if {cuda} else 1",
             "WARPS": f"8 if {cuda} else 4",
             "PRECISION": self.precision(sc, operand)},
            f"triton.cdiv({qlen}, BLOCK_M) * {batch_total}",
            {"BLOCK_M": "BLOCK_M", "BLOCK_N": "BLOCK_N", "BLOCK_D": "BLOCK_D",
             "BLOCK_DV": "BLOCK_DV", "PRECISION": "PRECISION",
             "INTERPRETED": "device.type != 'cuda'", "EVEN_N": f"{klen} % BLOCK_N == 0",
             "num_stages": "STAGES"}, "WARPS")
