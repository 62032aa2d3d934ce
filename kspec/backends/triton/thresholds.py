"""The generated Triton launch's size-dependent choices as data (kspec.lowering.branches), from
the same plan and constants as the host code codegen.py writes, so that the verifier can draw
shapes on both sides of each and say which ran:

- rows launches: SPLIT (several programs per row once a row reaches 2 x SPLIT_SLICE elements
  and the row blocks give under 2 programs per multiprocessor, templates' _row_split), SINGLE
  (the row in one block up to ROW_BLOCK, STRIDED_TILE // STRIDED_KEPT when strided) and
  STRIDED (a strided input along the reduced index);
- contractions: the narrow-product matvec kernel (at most NARROW_GEMM rows or columns), each
  kernel's SPLIT_K (split-K, splitk.py), COMPENSATED (a slice of COMPENSATED_DEPTH or more)
  and a convolution's WINDOW (at least WINDOW_CHANNELS channels);
- a pure split reduction: one slice or several;
- every launch: INDEX64 (an offset reaching 2^31).
tests/test_gate_branches.py runs the host code on the drawn shapes to keep these in step.
"""
from __future__ import annotations

from ... import ir
from ...lowering import Launch, plan_kernel
from ...lowering.plan import reduces_of
from ...lowering.branches import Branch, BranchValue, Condition, Region, Sight
from ...shapes import Shape
from ...lowering.policy import NARROW_GEMM
from .common import product
from .rows import ROW_BLOCK, STRIDED_KEPT, STRIDED_TILE
from .tensorcore import COMPENSATED_DEPTH, WINDOW_CHANNELS

SPLIT_SLICE = 16384     # the shortest slice a split program reduces (templates' _row_split)
INDEX_LIMIT = 2 ** 31


def branches(kernel: ir.Kernel, multiprocessors: int = 4) -> list[Branch]:
    """Every size-dependent choice of the kernel's generated launch, for a device with
    `multiprocessors` (the CPU interpreter: 4, as _row_split assumes)."""
    plan = plan_kernel(kernel, rows_any_axes=True)
    out: list[Branch] = []
    for n, launch in enumerate(plan.launches):
        _launch(kernel.name, str(n), launch, (), multiprocessors, out)
    sizes = list({str(e): e for e in (product(list(t.dims)) for t in (
        *kernel.tensor_params, *kernel.outputs)) if not e.is_const}.values())
    out.append(Branch("INDEX64", "index arithmetic in 64 bits once an offset reaches 2^31", (
        BranchValue("32-bit", (Region(tuple(_le(e, INDEX_LIMIT - 1) for e in sizes)),),
                    (Sight(f"{kernel.name}_", "INDEX64", False),)),
        BranchValue("64-bit", tuple(Region((_gt(e, INDEX_LIMIT - 1),)) for e in sizes),
                    (Sight(f"{kernel.name}_", "INDEX64", True),)))))
    return out


def _launch(name: str, n: str, launch: Launch, context: tuple[Condition, ...],
            sms: int, out: list[Branch]) -> None:
    if launch.pattern == "rows" and launch.fallback:
        _rows(name, n, launch, context, sms, out)
    elif launch.pattern == "contraction" and launch.fallback:
        _contraction(name, n, launch, context, sms, out)
    elif launch.pattern == "split" and not launch.fallback:
        lengths = [product([v.extent for v in r.vars]) for st in launch.statements
                   for r in reduces_of(st.value)]
        kernel = f"{name}_{n}_split_partial"
        out.append(Branch(f"{n}.SPLIT", "a reduction in one slice or several", (
            BranchValue("one slice", (Region((*context, *(_le(e, 2 * SPLIT_SLICE - 1)
                                                          for e in lengths))),),
                        (Sight(kernel, "SPLIT", 1),)),
            BranchValue("split", tuple(Region((*context, _gt(e, 2 * SPLIT_SLICE - 1)))
                                       for e in lengths),
                        (Sight(kernel, "SPLIT", above=1),)))))


def _rows(name: str, n: str, launch: Launch, context: tuple[Condition, ...], sms: int,
          out: list[Branch]) -> None:
    length = product([v.extent for v in launch.reduced])
    rows = product([v.extent for v in launch.outer])
    rows_kernel, split_kernel = f"{name}_{n}_rows", f"{name}_{n}a_split_partial"
    unsplit = _le(length, 2 * SPLIT_SLICE - 1)    # _row_split: length // SPLIT_SLICE < 2
    out.append(Branch(f"{n}.SPLIT", "one program per block of rows, or several per row", (
        BranchValue("rows", (Region((*context, unsplit)),), (Sight(rows_kernel),)),
        BranchValue("split", (Region((*context, _gt(length, 2 * SPLIT_SLICE - 1),
                                      _le(rows, 2 * sms))),), (Sight(split_kernel),)))))
    narrow = STRIDED_TILE // STRIDED_KEPT
    out.append(Branch(f"{n}.SINGLE", "the row in one block, or a loop over blocks", (
        BranchValue("single", (Region((*context, _le(length, ROW_BLOCK))),
                               Region((*context, _le(length, narrow)), "strided")),
                    (Sight(rows_kernel, "SINGLE", True),)),
        BranchValue("looped", (Region((*context, _gt(length, ROW_BLOCK), unsplit)),
                               Region((*context, _gt(length, narrow), unsplit), "strided")),
                    (Sight(rows_kernel, "SINGLE", False),)))))
    out.append(Branch(f"{n}.STRIDED", "rows read along memory, or tiles of the kept index", (
        BranchValue("along rows", (Region(context),), tuple(
            Sight(k, "STRIDED", False) for k in (rows_kernel, split_kernel))),
        BranchValue("strided", (Region(context, "strided"),), tuple(
            Sight(k, "STRIDED", True) for k in (rows_kernel, split_kernel))))))


def _contraction(name: str, n: str, launch: Launch, context: tuple[Condition, ...],
                 sms: int, out: list[Branch]) -> None:
    """The narrow-product matvec kernel or the tensor cores, each with or without split-K
    (splitk.py), and the tensor cores' compensated depth. The split regions hold for every
    tile the host code may pick (BLOCK_M 32 to 128, BLOCK_K 16 to 64)."""
    c = launch.contraction
    i, j = (product([v.extent for v in vs]) for vs in (c.iv, c.jv))
    depth = product([v.extent for v in c.kv])
    batch = product([v.extent for v in c.batch])
    wide = (_gt(i, NARROW_GEMM), _gt(j, NARROW_GEMM))
    matvec, kernel = f"{name}_{n}m_matvec", f"{name}_{n}_contraction"
    out.append(Branch(f"{n}.matvec", "a narrow product read once, or on the tensor cores", (
        BranchValue("matvec", (Region((*context, _le(i, NARROW_GEMM))),
                               Region((*context, _le(j, NARROW_GEMM)))), (Sight(matvec),)),
        BranchValue("tiles", (Region((*context, *wide)),), (Sight(kernel),)))))
    # policy.row_split over the matvec's programs (at most i * j * batch of them)
    few, short = _le(i * j * batch, 2 * sms), _le(depth, 2 * SPLIT_SLICE - 1)
    out.append(Branch(f"{n}m.SPLIT_K", "the matvec's depth in one slice or several", (
        BranchValue("one slice", tuple(Region((*context, _le(side, NARROW_GEMM), short))
                                       for side in (i, j)), (Sight(matvec, "SPLIT_K", 1),)),
        BranchValue("split", tuple(Region((*context, _le(side, NARROW_GEMM), few,
                                           _gt(depth, 2 * SPLIT_SLICE - 1))) for side in (i, j)),
                    (Sight(matvec, "SPLIT_K", above=1),)))))
    # policy.depth_split: a slice needs 32 steps, so 63 steps or fewer never split; one
    # tile (rows and columns within the smallest BLOCK_M and BLOCK_N) below `sms` splits
    one_tile = (_le(i, 32), _le(j, 32), _le(batch, sms - 1))
    out.append(Branch(f"{n}.SPLIT_K", "the tensor cores' depth in one slice or several", (
        BranchValue("one slice", (Region((*context, *wide, _le(depth, 63 * 16))),),
                    (Sight(kernel, "SPLIT_K", 1),)),
        BranchValue("split", (Region((*context, *wide, *one_tile, _gt(depth, 63 * 64))),),
                    (Sight(kernel, "SPLIT_K", above=1),)))))
    # a convolution's depth: the window's offsets one at a time from WINDOW_CHANNELS
    # channels on, else flattened
    window, channels = c.window_split()
    if window:
        ch = product([v.extent for v in channels])
        out.append(Branch(f"{n}.WINDOW", "the window one offset at a time, or the depth flat", (
            BranchValue("flat", (Region((*context, *wide, _le(ch, WINDOW_CHANNELS - 1))),),
                        (Sight(kernel, "WINDOW", False),)),
            BranchValue("window", (Region((*context, *wide, _gt(ch, WINDOW_CHANNELS - 1))),),
                        (Sight(kernel, "WINDOW", True),)))))
    # a slice of COMPENSATED_DEPTH or more: unsplit when the 128-row tiles alone fill the GPU
    out.append(Branch(f"{n}.COMPENSATED", "Kahan-added partial products for deep contractions", (
        BranchValue("plain", (Region((*context, *wide, _le(depth, COMPENSATED_DEPTH - 1))),),
                    (Sight(kernel, "COMPENSATED", False),)),
        BranchValue("compensated", (Region((*context, *wide, _gt(i, 128 * (sms - 1)),
                                            _gt(depth, COMPENSATED_DEPTH - 1))),),
                    (Sight(kernel, "COMPENSATED", True),)))))


def _gt(size: Shape, limit: int) -> Condition:
    return Condition(size, ">", limit)


def _le(size: Shape, limit: int) -> Condition:
    return Condition(size, "<=", limit)
