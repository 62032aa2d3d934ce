"""A contraction's kernels besides the tensor-core tile (tensorcore.py): split-K and the
memory-bound matrix-vector product.

- Split-K: when the output tiles leave multiprocessors idle and the depth is long (KernelBench
  level1/6: a 256 x 256 output over 524288), program (tile, sid) multiplies slice `sid` of
  the depth and stores its f32 tile in the partial buffer part[SPLIT_K][batch][M][N]; then
  `splitk_sum`, a program per output tile, adds the SPLIT_K partials in slice order
  (compensated, deterministic: no atomics) and applies the epilogue. SPLIT_K is a schedule
  key chosen at launch from the sizes and the multiprocessors (kspec.lowering.policy,
  the C++ split-K's policy); with SPLIT_K = 1 the kernel applies the epilogue itself.
- matvec: a product with at most NARROW_GEMM rows or columns (matrix-vector, vector-matrix)
  reads its matrix once and does two flops per element: a tensor-core tile would idle all
  but one of its columns. A program streams a BLOCK_M x BLOCK_K (or BLOCK_K x BLOCK_N) slab
  of the matrix with loads along its contiguous axis, multiplies by the vector's slice and
  keeps one compensated partial sum per lane, reduced once at the end; few rows also split
  the depth (policy.row_split, as a long-row reduction does) into the same partials.
"""
from __future__ import annotations

from ... import ir
from ...dtypes import DType
from ...lowering.policy import NARROW_GEMM
from .common import extent_code, product, torch_dtype
from .expressions import Scope, shape_code


class SplitKPatterns:
    """Mixed into the launch writer (writer.LaunchWriterBase) with TensorCorePatterns."""

    # --- shared ----------------------------------------------------------------------------
    def partial_dtype(self) -> DType:
        """The partials' dtype: the contraction's accumulator (f32; f64 for f64 sums)."""
        return DType.f64 if self.launch.contraction.reduce.dtype == DType.f64 else DType.f32

    def gemm_sizes(self) -> tuple[str, str, str, str]:
        """Codes of the flattened M, N, K and batch sizes (recorded as index spaces)."""
        c = self.launch.contraction
        m, n, k = (self.space(extent_code(vs)) for vs in (c.iv, c.jv, c.kv))
        return m, n, k, self.space(shape_code(product([v.extent for v in c.batch])))

    def partial_offset(self, slice_code: str) -> str:
        """The flat offset of (slice, offs_b, offs_m, offs_n) in part[SPLIT_K][batch][M][N]."""
        m, n, _, batch = self.gemm_sizes()
        first = f"({slice_code} * {batch} + offs_b)" if self.launch.contraction.batch \
            else slice_code
        return f"({first} * {m} + offs_m) * {n} + offs_n"

    def partial_size(self) -> str:
        """Host code: the partials' element count (an index space: INDEX64 counts it)."""
        m, n, _, batch = self.gemm_sizes()
        return f"SPLIT_K * {m} * {n} * {batch}"

    def partial_alloc(self) -> str:
        """Host line allocating the partials (one element when the launch does not split)."""
        dt = torch_dtype(self.partial_dtype())
        return (f"{self.part} = torch.empty(({self.partial_size()} if SPLIT_K > 1 else 1,), "
                f"dtype={dt}, device=device)")

    def depth_slice(self, k: str) -> None:
        """k_lo, k_hi: the depth this program multiplies, whole BLOCK_K steps of slice sid."""
        self.lines += ["if SPLIT_K > 1:  # slice sid of the depth (split-K)",
                       f"    k_step = (({k} + SPLIT_K - 1) // SPLIT_K + BLOCK_K - 1) "
                       "// BLOCK_K * BLOCK_K",
                       "    k_lo = sid * k_step",
                       f"    k_hi = tl.minimum(k_lo + k_step, {k})",
                       "else:",
                       "    k_lo = 0",
                       f"    k_hi = {k}"]

    def output_tile(self, grouped: bool) -> tuple[dict[ir.IndexVar, str], dict[ir.IndexVar, str]]:
        """Program ids and offs_m [BLOCK_M, 1], offs_n [1, BLOCK_N] (offs_b: the batch) of the
        output tile; the codes of the row and column indices. `grouped`: programs sharing a
        band of rows of A run together (L2 reuse)."""
        c = self.launch.contraction
        m, n, _, _ = self.gemm_sizes()
        self.program_id("pid")
        if grouped or c.batch:
            self.lines.append(f"blocks_m = ({m} + BLOCK_M - 1) // BLOCK_M")
        self.lines.append(f"blocks_n = ({n} + BLOCK_N - 1) // BLOCK_N")
        if c.batch:  # one grid axis: the second and third hold at most 65535 programs
            self.lines.append("offs_b = pid // (blocks_m * blocks_n)")
            self.lines.append("pid = pid % (blocks_m * blocks_n)")
        if grouped:
            self.lines.append("group = pid // (GROUP_M * blocks_n)")
            self.lines.append("first_m = group * GROUP_M")
            self.lines.append("size_m = tl.minimum(blocks_m - first_m, GROUP_M)")
            self.lines.append("pid_m = first_m + (pid % (GROUP_M * blocks_n)) % size_m")
            self.lines.append("pid_n = (pid % (GROUP_M * blocks_n)) // size_m")
        else:
            self.lines.append("pid_m = pid // blocks_n")
            self.lines.append("pid_n = pid % blocks_n")
        self.lines.append("offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]")
        self.lines.append("offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]")
        # several row (column) indices are one flattened GEMM dim, split back here
        rows = self.split_flat("offs_m", c.iv, "")
        cols = self.split_flat("offs_n", c.jv, "")
        if c.batch:
            codes = self.decompose("offs_b", list(c.batch), [f"b{q}" for q in range(len(c.batch))])
            self.em.var_code.update(zip(c.batch, codes))
        return rows, cols

    def epilogue(self, acc: str, rows: dict[ir.IndexVar, str], cols: dict[ir.IndexVar, str],
                 scope: Scope) -> None:
        """The statement on the output tile, its sum replaced by `acc`, stored."""
        c = self.launch.contraction
        stmt = self.launch.statements[0]
        m, n, _, _ = self.gemm_sizes()
        self.em.replace[id(c.reduce)] = acc
        self.em.var_code.update(rows)
        self.em.var_code.update(cols)
        mask = f"(offs_m < {m}) & (offs_n < {n})"
        value = self.em.expr(stmt.value, scope, mask)
        self.store(stmt.target, [self.em.var_code[v] for v in stmt.index], value, mask,
                   scope.indent)

    def partial_or_epilogue(self, acc: str, rows: dict[ir.IndexVar, str],
                            cols: dict[ir.IndexVar, str]) -> None:
        """A slice's partial tile (SPLIT_K > 1; splitk_sum applies the epilogue), else the
        epilogue."""
        m, n, _, _ = self.gemm_sizes()
        self.lines += ["if SPLIT_K > 1:",
                       f"    tl.store(part_ptr + {self.partial_offset('sid')}, {acc}, "
                       f"mask=(offs_m < {m}) & (offs_n < {n}))",
                       "else:"]
        self.epilogue(acc, rows, cols, Scope(self.lines, "    "))

    # --- matvec ----------------------------------------------------------------------------
    def body_matvec(self) -> None:
        """[BLOCK_M, BLOCK_N, BLOCK_K] products per step (one of BLOCK_M, BLOCK_N small), a
        compensated sum per lane, reduced over the depth lanes at the end."""
        c = self.launch.contraction
        em = self.em
        m, n, k, _ = self.gemm_sizes()
        rows, cols = self.output_tile(grouped=False)
        self.program_id("sid", 1)
        self.space(self.partial_size())
        self.lines.append("offs_m3 = offs_m[:, :, None]")
        self.lines.append("offs_n3 = offs_n[:, :, None]")
        rows3 = self.split_flat("offs_m3", c.iv, "")
        cols3 = self.split_flat("offs_n3", c.jv, "")
        acc_dt = "tl.float64" if self.partial_dtype() == DType.f64 else "tl.float32"
        # the loop reads memory at two flops an element: the compensation's adds are free
        self.lines.append(f"acc = tl.full([BLOCK_M, BLOCK_N, BLOCK_K], 0.0, {acc_dt})")
        self.lines.append("acc_lost = tl.full([BLOCK_M, BLOCK_N, BLOCK_K], 0.0, acc.dtype)")
        self.depth_slice(k)
        self.lines.append("for k0 in range(k_lo, k_hi, BLOCK_K):")
        loop = Scope(self.lines, "    ")
        self.lines.append("    offs_k = k0 + tl.arange(0, BLOCK_K)[None, None, :]")
        em.var_code.update(rows3)
        em.var_code.update(cols3)
        em.var_code.update(self.split_flat("offs_k", c.kv, "    "))
        a = em.expr(c.a, loop, f"(offs_m3 < {m}) & (offs_k < {k})")
        b = em.expr(c.b, loop, f"(offs_k < {k}) & (offs_n3 < {n})")
        inside = f"(offs_m3 < {m}) & (offs_n3 < {n}) & (offs_k < {k})"
        self.lines.append(f"    acc, acc_lost = _kahan_add(acc, acc_lost, "
                          f"tl.where({inside}, ({a}).to(acc.dtype) * ({b}).to(acc.dtype), 0.0))")
        self.lines.append("acc, acc_lost = tl.reduce((acc, acc_lost), 2, _kahan_combine)")
        self.lines.append("acc = acc - acc_lost")
        self.partial_or_epilogue("acc", rows, cols)
        self.constexprs = ["BLOCK_M", "BLOCK_N", "BLOCK_K", "SPLIT_K"]
        self.emit_launch(*self.matvec_schedule())

    def matvec_schedule(self) -> tuple:
        """emit_launch's arguments for the matvec kernel: 4096-element slabs of the matrix
        (the wide operand) on a GPU, 64k on the interpreter; 512 deep along its rows when they
        are contiguous, else 16 deep and wide along its contiguous columns; the narrow side
        whole (at most 4)."""
        c = self.launch.contraction
        m, n, k, batch = self.gemm_sizes()
        along_a, along_b = (self.contiguous_depth(f) for f in (c.a, c.b))
        p2, narrow = "triton.next_power_of_2", NARROW_GEMM
        # the interpreter pays per operation, not per element: a step of 64k elements costs
        # it about what one of 64 does
        schedule = {
            "ALONG_K": f"{along_a} if {m} >= {n} else {along_b}",
            "SLAB": "4096 if device.type == 'cuda' else 65536",
            "BLOCK_K": f"min({p2}({k}), 512 if ALONG_K and SLAB > 512 else 16)",
            "BLOCK_M": f"min({p2}({m}), {narrow} if {m} < {n} else "
                       f"max(1, SLAB // (BLOCK_K * min({p2}({n}), {narrow}))))",
            "BLOCK_N": f"min({p2}({n}), {narrow} if {n} <= {m} else "
                       f"max(1, SLAB // (BLOCK_K * BLOCK_M)))",
            "SPLIT_K": f"_row_split(triton.cdiv({m}, BLOCK_M) * triton.cdiv({n}, BLOCK_N) * "
                       f"{batch}, {k}, 1, device)",
            "WARPS": "4"}
        grid = f"triton.cdiv({m}, BLOCK_M) * triton.cdiv({n}, BLOCK_N) * {batch}, SPLIT_K"
        constexprs = {"BLOCK_M": "BLOCK_M", "BLOCK_N": "BLOCK_N", "BLOCK_K": "BLOCK_K",
                      "SPLIT_K": "SPLIT_K"}
        return schedule, grid, constexprs, "WARPS", (), (self.partial_alloc(),)

    def contiguous_depth(self, factor: ir.Expr) -> str:
        """Host test: the largest tensor the factor loads is contiguous along the last depth
        index (True when it loads none with that index bare)."""
        kv = self.launch.contraction.kv[-1]
        reads = [(node.tensor, d) for node in ir.walk(factor) if isinstance(node, ir.Load)
                 for d, a in enumerate(node.index) if a.bare == kv]
        reads = list(dict.fromkeys(reads))
        if not reads:
            return "True"
        if len(reads) == 1:
            return f"{reads[0][0]}.stride({reads[0][1]}) == 1"
        return "max(" + ", ".join(f"({t}.numel(), {t}.stride({d}) == 1)" for t, d in reads) + \
            ")[1]"

    # --- splitk_sum ------------------------------------------------------------------------
    def body_splitk_sum(self) -> None:
        """A program per output tile adds the SPLIT_K partials in slice order, compensated,
        and applies the epilogue."""
        m, n, _, batch = self.gemm_sizes()
        rows, cols = self.output_tile(grouped=False)
        self.space(self.partial_size())
        mask = f"(offs_m < {m}) & (offs_n < {n})"
        acc_dt = "tl.float64" if self.partial_dtype() == DType.f64 else "tl.float32"
        self.lines += [f"acc = tl.full([BLOCK_M, BLOCK_N], 0.0, {acc_dt})",
                       "acc_lost = tl.full([BLOCK_M, BLOCK_N], 0.0, acc.dtype)",
                       "for s in range(0, SPLIT_K):",
                       f"    part = tl.load(part_ptr + {self.partial_offset('s')}, mask={mask}, "
                       "other=0.0)",
                       "    acc, acc_lost = _kahan_add(acc, acc_lost, part)",
                       "acc = acc - acc_lost"]
        self.epilogue("acc", rows, cols, Scope(self.lines, ""))
        self.constexprs = ["BLOCK_M", "BLOCK_N", "SPLIT_K"]
        p2 = "triton.next_power_of_2"
        self.emit_launch(
            {"BLOCK_N": f"min({p2}({n}), 128)",
             "BLOCK_M": f"min({p2}({m}), max(1, 1024 // BLOCK_N))", "WARPS": "4"},
            f"triton.cdiv({m}, BLOCK_M) * triton.cdiv({n}, BLOCK_N) * {batch}",
            {"BLOCK_M": "BLOCK_M", "BLOCK_N": "BLOCK_N", "SPLIT_K": "SPLIT_K"}, "WARPS")
