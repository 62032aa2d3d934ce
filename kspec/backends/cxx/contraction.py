"""The contraction pattern on the tensor cores: C[rows, cols] = epilogue(A[rows, depth] x
B[depth, cols]) with f16, bf16 or f32 operands and f32 accumulators (templates/contraction.j2).

A block computes a BM x BN tile of C, held in its warps' registers. The depth is walked in BK
steps through a ring of STAGES shared-memory buffers, later steps being copied in while one is
multiplied. The dialect's tensor-core path (templates/tensor_cores/<path>.j2) lays out shared
memory and supplies the matrix instructions: `wgmma` (NVIDIA sm_90a: 128-byte swizzled
buffers, warpgroups of 64 rows), `mma_sync` (NVIDIA sm_80+: ldmatrix, mma.sync m16n8k16, rows
padded by PAD elements so that ldmatrix's eight 16-byte rows hit distinct banks), `mfma` (AMD
CDNA, on request). CUDA and HIP source compiled for NVIDIA share the NVIDIA paths; other
targets keep the generic loop nest.

f32 operands follow the launch's precision policy (precision.py): `tf32x3` and
`tf32` take the NVIDIA paths' f32 variants, templates/tensor_cores/<path>_tf32.j2, in which
shared memory holds plain f32 and each operand value is split after its shared-memory load
into TF32 parts (a = hi + lo); `ieee` keeps the loop nest, as do AMD targets (MFMA's xf32 is
not generated). The CPU emulation runs the same template through the `emulated` path, one
thread walking every tile, so that the staging, the split and the epilogue are checked on CPU.

Each operand is staged in shared memory along the direction its memory is contiguous in: A
"K-major" (rows of depth, when its last index is the depth) or "MN-major"; likewise B. The
paths read either layout (ldmatrix with or without .trans, wgmma's transpose bits; the f32
variants with plain shared loads, wgmma's B split into K-major buffers).

Operands are loaded in chunks of 16 bytes (8 f16/bf16 elements, 4 f32) along their staging
direction. An operand that is a plain load of a tensor whose last index is that direction's
index is copied with cp.async in the `async` variants, which the launcher picks when the tensor
is contiguous there, 16-byte aligned and the extent is a multiple of the chunk; otherwise (any
prologue expression, a convolution's gathered rows, odd shapes) every element is computed and
stored by the threads, with zeros outside the matrix (the `safe` variants).

Deep contractions (K >= splitk.SPLIT_DEPTH) launch split-K variants instead: slices of the
depth in separate blocks, each step's products added with compensation, then a kernel summing
the slices' partial tiles and applying the epilogue (splitk.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import ir
from ...dtypes import DType
from ...lowering.plan import Contraction, window_min_channels
from .code import Code
from .ctype import storage_ctype
from .generic import Arg, extent_product, grid_size
from .patterns import LaunchContext, PatternUnit, statement_text
from .precision import precision_for
from .splitk import SUM_THREADS, forced_slices, scratch_shape, split_slices, split_tile
from .staging import contiguous_load, stage_operand

PAD = 8          # elements added to every shared-memory row (f16/bf16)
# f32 rows: 4 floats along the depth (K-major: a fragment's 8 rows x 4 depths hit distinct
# banks), 8 along rows or columns (MN-major: 4 depths x 8 rows)
PAD_F32 = {True: 4, False: 8}
CHUNK = 8        # f16/bf16 elements per 16-byte copy
CHUNK_F32 = 4
GROUP_M = 8      # tiles of C are visited in groups of 8 tile-rows, for L2 reuse of B
# The template's own locals (templates/contraction.j2): kspec names are renamed around them.
LOCALS = ("acc", "As", "Bs", "lane", "warp", "tid", "m0", "n0", "kt", "kk", "mi", "ni", "KT",
          "fetch", "stage", "M", "N", "K", "Z", "zb", "ch", "row", "col", "kq", "ok", "src",
          "dst", "h", "e", "tiles_m", "tiles_n", "af", "bf", "wm0", "wn0", "a_s", "b_s",
          "group", "first_m", "gsize", "in_group", "tm", "tn", "vals", "ri", "ki", "v", "t",
          "BM", "BN", "BK", "WARPS_M", "WARPS_N", "STAGES", "ASYNC", "THREADS", "WM", "WN",
          "MI", "NI", "A_ROWS", "A_COLS", "B_ROWS", "B_COLS", "A_TILE", "B_TILE", "bfr",
          "r_", "c_", "s_", "it", "load", "A_IT", "B_IT", "A_src", "B_src", "A_row_ok",
          "B_row_ok", "A_step", "B_step", "GROUPS", "wg", "SPLIT", "partial", "parts",
          "slice", "steps", "per", "kt0", "comp", "step", "total", "lin", "sum", "sc",
          "ssmall", "ahi", "alo", "bhi", "blo", "Bh", "Bl", "HL_TILE", "convert",
          "block", "blocks", "q", "nb", "kc", "x_", "hi", "lo", "g_", "t_",
          "h_", "l_", "o_", "dh", "dl", "bh", "bl")

# The f32 variant of each tensor-core path: its template and tile table
F32_KINDS = {"mma_sync": "mma_sync_tf32", "wgmma": "wgmma_tf32", "emulated": "emulated"}


@dataclass(frozen=True)
class Tile:
    """One compiled tile configuration (a template instantiation) of a tensor-core path.
    mma_sync: WARPS_M x WARPS_N warps, each a (BM / WARPS_M) x (BN / WARPS_N) part of the tile.
    wgmma: WARPS_M / 4 warpgroups of 64 rows each (WARPS_N = 1), BK = 64 (f32: 32, one
    128-byte row). `path` is the kind (F32_KINDS for f32 operands); `emulated` runs one CPU
    thread."""

    bm: int
    bn: int
    bk: int
    warps_m: int
    warps_n: int
    stages: int
    path: str = "mma_sync"

    @property
    def lanes(self) -> int:
        return 64 if self.path == "mfma" else 32

    @property
    def f32(self) -> bool:
        return self.path in F32_KINDS.values()

    @property
    def key(self) -> str:
        return f"{self.bm}x{self.bn}x{self.bk}w{self.warps_m * self.warps_n}s{self.stages}"

    @property
    def threads(self) -> int:
        return 1 if self.path == "emulated" else self.lanes * self.warps_m * self.warps_n

    def shared_bytes(self, a_kmajor: bool, b_kmajor: bool) -> int:
        if self.path == "wgmma":    # unpadded, swizzled; 1 KB to align the atoms
            return 2 * self.stages * (self.bm + self.bn) * self.bk + 1024
        pad_k, pad_mn = (PAD_F32[True], PAD_F32[False]) if self.f32 else (PAD, PAD)
        a = (self.bm * (self.bk + pad_k)) if a_kmajor else (self.bk * (self.bm + pad_mn))
        b = (self.bn * (self.bk + pad_k)) if b_kmajor else (self.bk * (self.bn + pad_mn))
        ring = (4 if self.f32 else 2) * self.stages * (a + b)
        if self.path == "wgmma_tf32":   # + B's TF32 parts, two buffers of hi and lo, aligned
            return ring + 2 * 2 * 4 * self.bn * self.bk + 1024
        return ring

    def valid(self) -> bool:
        if self.path in ("wgmma", "wgmma_tf32"):
            return (self.bk == (64 if self.path == "wgmma" else 32) and self.warps_n == 1
                    and self.warps_m % 4 == 0 and self.bm == 16 * self.warps_m
                    and self.bn in (64, 128, 256) and self.stages >= 3)
        wm, wn = self.bm // self.warps_m, self.bn // self.warps_n
        if self.path == "mfma":
            return (wm % 32 == 0 and wn % 32 == 0 and self.bk % 8 == 0 and self.stages >= 2
                    and self.bm % self.warps_m == 0 and self.bn % self.warps_n == 0)
        if self.path == "emulated":
            return (self.bm % CHUNK_F32 == 0 and self.bn % CHUNK_F32 == 0
                    and self.bk % 8 == 0 and self.stages >= 1)
        k_step = 8 if self.path == "mma_sync_tf32" else 16
        return (wm % 16 == 0 and wn % 16 == 0 and self.bk % k_step == 0
                and self.bm % self.warps_m == 0 and self.bn % self.warps_n == 0
                and self.stages >= 2)


def parse_tile(text: str, path: str = "mma_sync") -> Tile:
    """'128x256x32w8s3' -> Tile. mma_sync splits the warps 2 x (w / 2) (1 x 1 for one warp);
    wgmma stacks them in warpgroups along the rows."""
    import re

    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)w(\d+)s(\d+)", text)
    if m is None:
        raise ValueError(f"tile {text!r} is not BMxBNxBKwWARPSsSTAGES (e.g. 128x256x32w8s3)")
    bm, bn, bk, w, s = map(int, m.groups())
    if path in ("wgmma", "wgmma_tf32", "emulated"):
        tile = Tile(bm, bn, bk, w, 1, s, path)
    else:
        wm = 2 if w >= 2 else 1
        tile = Tile(bm, bn, bk, wm, w // wm, s, path)
    if not tile.valid():
        raise ValueError(f"tile {text!r} is not valid for the {path} tensor-core path")
    return tile


# Compiled by default per path: a large tile for big problems, a small one for the rest (and
# the element-wise variant). `schedule={"<launch>.tile": "..."}` compiles that tile alone.
# The f32 paths hold four accumulator sets (templates/tensor_cores/*_tf32.j2: each depth
# step's two sums, the compensated total), so their tiles keep 32 accumulators a thread.
DEFAULT_TILES = {"mma_sync": ("128x128x32w4s4", "64x128x32w4s4"),
                 "wgmma": ("128x256x64w8s4", "128x128x64w8s4"),
                 "mfma": ("128x128x32w4s2", "64x64x32w4s2"),
                 "mma_sync_tf32": ("128x64x32w8s3", "64x64x32w4s3"),
                 "wgmma_tf32": ("128x64x32w8s4", "64x64x32w4s4"),
                 # the large tile's depth step is the NVIDIA f32 paths' (BK = 32: four truncated
                 # tensor-core sums a step), the small one's walks odd depths in many steps
                 "emulated": ("32x32x32w1s1", "16x16x8w1s1")}
TILE_CHOICES = {
    "mma_sync": ("128x256x32w8s3", "128x256x32w8s4", "128x128x32w4s4", "128x128x32w8s3",
                 "128x128x64w4s3", "64x128x32w4s4", "64x64x32w4s4", "256x128x32w8s3"),
    "wgmma": ("128x256x64w8s3", "128x256x64w8s4", "128x128x64w8s4", "128x128x64w8s5",
              "64x256x64w4s4", "64x128x64w4s4", "128x64x64w8s4"),
    "mfma": ("128x128x32w4s2", "128x128x16w4s2", "64x64x32w4s2", "128x64x32w4s2"),
    "mma_sync_tf32": ("128x64x32w8s3", "128x64x32w8s4", "64x128x32w8s3", "64x64x32w4s3",
                      "64x64x32w4s4", "128x64x16w8s4"),
    "wgmma_tf32": ("128x64x32w8s4", "128x64x32w8s5", "128x64x32w8s3", "64x64x32w4s4",
                   "64x64x32w4s5"),
    "emulated": ("32x32x32w1s1", "16x16x8w1s1")}


def tensor_core_dtype(c: Contraction, precision: str = "tf32x3") -> DType | None:
    """f16 or bf16 when both operands are of it (the inputs the tensor cores take); f32 when
    both are f32 and the precision policy is not "ieee"."""
    if c.a.dtype == c.b.dtype and c.a.dtype in (DType.f16, DType.bf16):
        return c.a.dtype
    if c.a.dtype == c.b.dtype == DType.f32 and precision != "ieee":
        return DType.f32
    return None


def tile_kind(path: str, elem: DType) -> str:
    """The template and tile table of `path` for operands of `elem`."""
    return F32_KINDS[path] if elem == DType.f32 else path


def lower_contraction(ctx: LaunchContext, name: str, index: int, schedule: dict | None
                      ) -> list[PatternUnit]:
    """The unit of launch `index` (its schedule keys are "<index>.tile", "<index>.precision"),
    compiling the schedule's tiles; then, where split-K variants are compiled, the unit of
    their sum kernel, on standby (the contraction launches it, with its parameter list:
    splitk.py)."""
    launch = ctx.launch
    (stmt,) = launch.statements
    c: Contraction = launch.contraction
    d, r = ctx.d, ctx.r
    precision = precision_for(schedule, index)
    elem = tensor_core_dtype(c, precision)
    kind = tile_kind(d.tensor_cores, elem)
    tiles = tiles_for(schedule, index, kind)
    chunk = CHUNK_F32 if elem == DType.f32 else CHUNK
    ectype = storage_ctype(elem, d)
    window, channels = c.window_split()
    copies4 = kind in F32_KINDS.values()
    batch_lines = ctx.decompose("zb", list(c.batch))
    ops = {side: stage_operand(ctx, e, side, own, c.kv, c.batch, elem, copies4, window, channels)
           for side, e, own in (("A", c.a, c.iv), ("B", c.b, c.jv))}
    # the window's offsets, once per depth step from its index `wi` (templates/contraction.j2)
    window_data = None if not window else dict(
        lines=ctx.decompose("wi", list(window)), total=ctx.total([v.extent for v in window]),
        channels=ctx.total([v.extent for v in channels]))

    # the epilogue: the statement's value with the sum replaced by the accumulator
    acc = Code("v", "float")
    r.seed(c.reduce, r.finish(c.reduce, acc))
    epi_lines = [*ctx.decompose("row", list(c.iv)), *ctx.decompose("col", list(c.jv))]
    value = r.render(stmt.value)
    store = ctx.store(stmt.target, list(stmt.index), value, stmt.value.dtype)

    totals = {"M": ctx.total([v.extent for v in c.iv]), "N": ctx.total([v.extent for v in c.jv]),
              "K": ctx.total([v.extent for v in c.kv]),
              "Z": ctx.total([v.extent for v in c.batch])}
    r.helpers |= {"kspec_pack", "kspec_sum_add", *path_helpers(kind)}
    staged = [line for op in ops.values() for line in (
        *(op.copies["address"] if op.copies else ()), *((op.copies["step"],) if op.copies else ()),
        *op.elements, *(op.window_elements or ()),
        *((*op.hoisted["lines"], *op.hoisted["stored"]) if op.hoisted else ()))]
    window_text = [*window_data["lines"], window_data["total"], window_data["channels"]
                   ] if window_data else []
    text = "\n".join([*batch_lines, *staged, *window_text, *epi_lines, store, *totals.values()])
    args, params = ctx.finish_args(text)
    # the split-K kernels' parameters: the same, then the partial buffer and the slice count
    extra = (Arg("tensor", "partial", f"float* {d.restrict} partial", "float",
                 f"{name}.partial"),
             Arg("launch", "parts", "int64_t parts", "int64_t", "parts"))
    split_args, split_params = ctx.finish_args(text + "\npartial\nparts", extra)
    has_async = any(op.copies for op in ops.values())
    variants, configs = [], []
    # with copies possible, the element-wise path is a fallback for odd inputs: the last
    # (small) tile alone; without, it is the path, in every tile
    # (a convolution's depth: both orders in every tile, the window one `_window`; copies
    # need a single depth index, so the two never meet)
    for t in tiles:
        for asynchronous in (True, False) if has_async else (False,):
            if asynchronous or not has_async or t == tiles[-1]:
                fn = f"{name}_{t.key}_{'async' if asynchronous else 'safe'}"
                variants.append(fn)
                configs.append(dict(fn=fn, tile=t, asynchronous=asynchronous, split=False,
                                    window=False))
        if window:
            variants.append(f"{name}_{t.key}_window")
            configs.append(dict(fn=variants[-1], tile=t, asynchronous=False, split=False,
                                window=True))
    small = split_tile(tiles, kind, parse_tile)
    # named apart from the contraction's kernels: it has no tensor cores and no tile
    sum_fn = f"{name.removesuffix('contraction')}splitk_sum" if small else None
    if small is not None:
        for asynchronous in (True, False) if has_async else (False,):
            fn = f"{name}_{small.key}_splitk{'async' if asynchronous else 'safe'}"
            variants.append(fn)
            configs.append(dict(fn=fn, tile=small, asynchronous=asynchronous, split=True,
                                window=False))
    data = dict(batch_lines=batch_lines, ops=ops, window=window_data, epi_lines=epi_lines,
                store=store, totals=totals, a_kmajor=ops["A"].kmajor, b_kmajor=ops["B"].kmajor,
                ectype=ectype, configs=configs, dtype=elem.name, group_m=GROUP_M,
                pad=PAD, pad_k=PAD_F32[True], pad_mn=PAD_F32[False], chunk=chunk,
                split_params=split_params, sum_fn=sum_fn, contraction=name,
                sum_threads=SUM_THREADS, kind=kind, precision=precision)

    shapes = {k: [v.extent for v in vs] for k, vs in
              (("M", c.iv), ("N", c.jv), ("K", c.kv), ("Z", c.batch), ("KC", channels))}
    async_checks = []
    for op, extent in ((ops["A"], "K" if ops["A"].kmajor else "M"),
                       (ops["B"], "K" if ops["B"].kmajor else "N")):
        if op.copies is not None:
            async_checks.append((op.copies["tensor"], extent))

    def slices(size: dict[str, int], info) -> int:
        """The launch choice between the direct kernel (0) and split-K over S slices."""
        forced = None if info is None else forced_slices(info.schedule, index)
        # the CPU emulation: split-K only where the schedule forces it (tests)
        if small is None or info is None or (info.cpu and forced is None):
            return 0
        return split_slices(size["Z"], size["M"], size["N"], size["K"], small,
                            info.multiprocessors, forced)

    def scratch(env, info):
        size = {k: extent_product(v, env) for k, v in shapes.items()}
        n = slices(size, info) if size["M"] * size["N"] * size["Z"] else 0
        if not n:
            return {}
        return {f"{name}.partial": (scratch_shape(n, size["Z"] * size["M"] * size["N"]),
                                    "float")}

    def pick(env, buffers, info):
        size = {k: extent_product(v, env) for k, v in shapes.items()}
        if size["M"] == 0 or size["N"] == 0 or size["Z"] == 0:
            return []
        fast = has_async and info.schedule.get("vector", True) and all(
            async_copy_ok(buffers[t], size[e], chunk) for t, e in async_checks)
        n = slices(size, info)
        if n:
            return split_launches(size, n, fast)
        asked = info.schedule.get(f"{index}.tile") or info.schedule.get("tile")
        if asked:
            tile = parse_tile(asked, kind)
        elif len(tiles) == 1:
            tile = tiles[0]
        else:   # the large tile when it still gives every multiprocessor a block
            big = tiles[0]
            n_big = size["Z"] * -(-size["M"] // big.bm) * -(-size["N"] // big.bn)
            tile = big if n_big >= info.multiprocessors else tiles[1]
        if has_async and not fast:
            tile = tiles[-1]
        fn = f"{name}_{tile.key}_{'async' if fast else 'safe'}"
        if window and walk_window(size["KC"], info.schedule.get(f"{index}.window"), tile.bk):
            fn = f"{name}_{tile.key}_window"
        grid = size["Z"] * -(-size["M"] // tile.bm) * -(-size["N"] // tile.bn)
        smem = tile.shared_bytes(ops["A"].kmajor, ops["B"].kmajor)
        return [(fn, grid, tile.threads, {}, smem)]

    def split_launches(size: dict[str, int], n: int, fast: bool) -> list:
        """The slices' kernel, then (n > 1) the kernel summing their partial tiles; both take
        the split-K parameter list, the sum unit's."""
        fn = f"{name}_{small.key}_splitk{'async' if fast else 'safe'}"
        grid = n * size["Z"] * -(-size["M"] // small.bm) * -(-size["N"] // small.bn)
        smem = small.shared_bytes(ops["A"].kmajor, ops["B"].kmajor)
        out = [(fn, grid, small.threads, {"parts": n}, smem, sum_unit)]
        if n > 1:
            elements = size["Z"] * size["M"] * size["N"]
            out.append((sum_fn, grid_size(elements, SUM_THREADS), SUM_THREADS, {"parts": n}, 0,
                        sum_unit))
        return out

    unit = PatternUnit(name, "contraction", statement_text(stmt), "contraction.j2", args,
                       params, data, variants, pick, scratch, index=index, launch=launch)
    if small is None:
        return [unit]
    sum_unit = PatternUnit(sum_fn, "splitk_sum", statement_text(stmt), "contraction_sum.j2",
                            split_args, split_params, data, [sum_fn], lambda *_: [],
                            standby=True)
    return [unit, sum_unit]


def walk_window(channels: int, forced: bool | None, depth_step: int) -> bool:
    """A convolution's launch walks its window one offset per depth step (else the depth
    flattened): as the schedule's "<index>.window" says, else from half a step of channels
    (plan.window_min_channels)."""
    return channels >= window_min_channels(depth_step) if forced is None else bool(forced)


def async_copy_ok(t, extent: int, chunk: int = CHUNK) -> bool:
    """Tensor `t` can be staged by 16-byte (asynchronous) copies along its last dim: unit
    stride, aligned base, other strides and the extent multiples of a chunk (16 bytes of
    elements)."""
    if t.dim() == 0 or t.stride(-1) != 1 or extent % chunk:
        return False
    if t.data_ptr() % 16:
        return False
    return all(t.stride(k) % chunk == 0 or t.shape[k] == 1 for k in range(t.dim() - 1))


def tiles_for(schedule: dict | None, index: int, path: str) -> list[Tile]:
    """The tile configurations compiled for launch `index`, of the tile kind `path`."""
    schedule = schedule or {}
    asked = schedule.get(f"{index}.tile") or schedule.get("tile")
    if asked:
        return [parse_tile(asked, path)]
    return [parse_tile(t, path) for t in DEFAULT_TILES[path]]


def eligible(launch, d, schedule: dict | None = None, index: int = 0) -> bool:
    """The launch is a contraction the target's tensor-core path takes: f16/bf16 operands on
    every path but the CPU emulation's, f32 on the paths with an f32 variant (F32_KINDS) under
    a precision other than "ieee"."""
    if launch.pattern != "contraction" or d.tensor_cores not in DEFAULT_TILES:
        return False
    elem = tensor_core_dtype(launch.contraction, precision_for(schedule, index))
    if elem == DType.f32:
        return d.tensor_cores in F32_KINDS
    return elem is not None and d.tensor_cores != "emulated"


def loop_nest_reason(launch, d, schedule: dict | None = None, index: int = 0) -> str:
    """Why a contraction that `eligible` refuses runs as the generic loop nest."""
    if d.tensor_cores not in DEFAULT_TILES:
        return "a contraction on the loop nest: the target's default has no tensor-core path"
    precision = precision_for(schedule, index)
    elem = tensor_core_dtype(launch.contraction, precision)
    if elem is None:
        dtypes = sorted({launch.contraction.a.dtype.name, launch.contraction.b.dtype.name})
        return (f"a contraction on the loop nest: operands {' and '.join(dtypes)}"
                + (f", precision {precision}" if "f32" in dtypes else ""))
    return f"a contraction on the loop nest: no {elem.name} variant on {d.tensor_cores}"


def path_helpers(kind: str) -> set[str]:
    """The helper sets (templates/tensor_cores/<name>.j2) a tile kind's kernels call."""
    return {"mma_sync": {"tc_mma_sync", "tc_copies"}, "wgmma": {"tc_wgmma", "tc_copies"},
            "mfma": {"tc_mfma"}, "mma_sync_tf32": {"tc_mma_sync_tf32", "tc_tf32", "tc_copies"},
            "wgmma_tf32": {"tc_wgmma_tf32", "tc_wgmma", "tc_tf32", "tc_copies"},
            "emulated": {"tc_emulated"}}[kind]
