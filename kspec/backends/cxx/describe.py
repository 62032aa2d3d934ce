"""The C++ plan as text (`kcompile --emit plan --target cuda|hip`): the units planner.py
lowers a kernel to, each with its pattern, its functions and the schedule its launcher
follows (the variants picked at launch and their conditions, tiles, precision, split-K, the
split policy). Read from the units' data and the patterns' own constants, never from the
generated code, so that what is printed is what the launcher does."""
from __future__ import annotations

from ... import ir
from ...lowering import plan_kernel
from ...lowering import policy
from . import attention, rows, splitk, split_rows
from .dialect import Dialect
from .generic import THREADS as LOOP_THREADS
from .generic import GenericPlan, Unit
from .patterns import THREADS as POINTWISE_THREADS
from .patterns import PatternUnit
from .render import plan_for
from ..target import ARCHS


def plan_text(kernel: ir.Kernel, dialect: Dialect, arch: str | None = None,
              schedule: dict | None = None) -> str:
    """The shared plan, then the C++ units the backend renders for `arch`."""
    plan = plan_for(kernel, dialect, arch, schedule=schedule)
    d = plan.dialect
    target = f"{d.name} {arch}" if arch else d.name
    cores = d.tensor_cores or "none"
    lines = [f"C++ plan ({target}: {d.warp_size} lanes, tensor cores {cores}"
             f"{_multiprocessors(arch)}): {len(plan.units)} unit(s)"]
    if plan.temporaries:
        lines.append("  temporaries: " + ", ".join(
            f"{t.name}: {t.dtype.name}[{', '.join(str(x) for x in t.dims)}]"
            for t in plan.temporaries))
    for k, unit in enumerate(plan.units):
        lines += [f"  {k}. {_pattern(unit)} {unit.name}" +
                  ("  (standby: launched by another unit)" if unit.standby else "")]
        lines += [f"      {line}" for line in unit_lines(unit, plan)]
    return f"{plan_kernel(kernel, rows_any_axes=True)}\n" + "\n".join(lines) + "\n"


def _multiprocessors(arch: str | None) -> str:
    return f", {ARCHS[arch][3]} multiprocessors" if arch in ARCHS else ""


def _pattern(unit) -> str:
    if isinstance(unit, attention.AttentionUnit):
        return "attention"
    return unit.pattern if isinstance(unit, PatternUnit) else "loop_nest"


def unit_lines(unit, plan: GenericPlan) -> list[str]:
    """One unit's statement, functions and launch-time schedule."""
    out = [f"statement: {unit.statement}", "functions: " + ", ".join(unit.functions())]
    if isinstance(unit, attention.AttentionUnit):
        return out + _attention(unit)
    if isinstance(unit, Unit):
        return out + _loop_nest(unit)
    describe = {"pointwise": _pointwise, "rows": _rows, "contraction": _contraction,
                "splitk_sum": _splitk_sum,
                "split": _split_rows if unit.template == "split_rows.j2" else _split}
    return out + describe[unit.pattern](unit, plan.dialect)


def _loop_nest(unit: Unit) -> list[str]:
    lines = [f"one thread per element of {unit.target}, {LOOP_THREADS}-thread blocks; "
             f"reductions as for-loops"]
    return lines + ([f"note: {unit.note}"] if unit.note else [])


def _pointwise(unit: PatternUnit, d: Dialect) -> list[str]:
    width = unit.data["width"]
    if width == 1:
        return [f"launch: _v1, {POINTWISE_THREADS}-thread blocks, grid-stride"]
    return [f"launch: _v{width} ({width} elements per thread, 16-byte packs) when "
            f"{unit.data['n_inner']} % {width} == 0 and every vectorised tensor is "
            f"contiguous along its last dim and aligned to {width} elements "
            f"(schedule 'vector': False: never); else _v1",
            f"grid: chunks / {POINTWISE_THREADS} blocks of {POINTWISE_THREADS} threads"]


def _rows(unit: PatternUnit, d: Dialect) -> list[str]:
    data, lanes = unit.data, d.warp_size
    n = data["n"]
    width = max(i["v"] for i in data["variant_info"])
    warp = ", ".join(f"w{v} when {n} <= {v * lanes}" for v in rows.WARP_VPT)
    block = ", ".join(f"b{v}" for v in rows.BLOCK_VPT[1:] + rows.BLOCK_VPT_C)
    return [
        f"rows: {data['rows']}, row length: {n}",
        f"one warp per row ({256 // lanes} rows per 256-thread block): {warp}",
        f"else one block per row, VPT values per thread cached in registers ({block}; "
        f"b{rows.BLOCK_VPT_C[0]} contiguous only), threads = next power of 2 of "
        f"ceil({n} / VPT), at most {rows.MAX_THREADS}: with the contiguous variant the "
        f"largest VPT <= {rows.PACKS_PER_THREAD * width} ({rows.PACKS_PER_THREAD} "
        f"16-byte packs per tensor) that keeps {rows.MIN_TEAM_WARPS} warps, else the "
        f"smallest VPT that fits",
        f"else b0: the row looped, re-read per pass, {rows.MAX_THREADS} threads",
        f"contiguous variant (suffix c: int offsets, {width}-wide packs): every vectorised "
        f"tensor has unit last stride and aligned packs, {n} % V == 0, every offset below "
        f"{rows.INDEX_LIMIT}; else int64_t offsets, V = 1",
        "schedule keys: 'rows': 'loop' | 'block' | 'b<VPT>', 'vector': False",
    ]


def _split_policy(kept: str) -> str:
    return (f"slices per row: policy.row_split(rows, length, {kept}, multiprocessors): 1 up "
            f"to {policy.SINGLE_PASS} elements, else min({policy.MAX_SPLIT}, length // "
            f"{policy.SLICE}, {policy.PROGRAMS_PER_SM} x multiprocessors // blocks)")


def _split_rows(unit: PatternUnit, d: Dialect) -> list[str]:
    threads = split_rows.THREADS
    return [
        _split_policy(f"{threads // d.warp_size} rows a block"),
        f"phase 1: _strided (a thread per (row, slice)) when the reduced index steps "
        f"through memory, else _rows (a warp per (row, slice)); {threads}-thread blocks",
        "phase 2: _finish, a thread per row folds its partials in order",
        "schedule keys: 'split': n, 'strided': bool",
    ]


def _split(unit: PatternUnit, d: Dialect) -> list[str]:
    return [
        f"blocks: policy.scalar_split(length, multiprocessors): min({policy.MAX_SPLIT}, "
        f"{4 * policy.PROGRAMS_PER_SM} x multiprocessors, length // {policy.SLICE}), at least 1",
        "phase 1: _partial, each block folds interleaved chunks into a partial; "
        "phase 2: _finish, one block combines the partials",
    ]


def _contraction(unit: PatternUnit, d: Dialect) -> list[str]:
    data = unit.data
    direct = [c for c in data["configs"] if not c["split"]]
    split = [c for c in data["configs"] if c["split"]]
    tiles = list(dict.fromkeys(c["tile"].key for c in direct))
    f32 = data["dtype"] == "f32"
    precision = (f"{data['precision']} (precision.py)" if f32 else
                 f"{data['dtype']} products, exact; f32 accumulation")
    lines = [f"tile kind: {data['kind']}, operands {data['dtype']}, precision {precision}",
             f"tiles: {', '.join(tiles)}" + (
                 f": {tiles[0]} when its tiles give every multiprocessor a block, else "
                 f"{tiles[1]}" if len(tiles) > 1 else ""),
             f"tile order: groups of {data['group_m']} tile-rows"]
    if any(c["asynchronous"] for c in direct):
        lines.append(f"copies: _async (16-byte asynchronous copies) when every copied "
                     f"operand is contiguous and aligned; else _safe with {tiles[-1]}")
    window = data.get("window")
    if window:
        lines.append(f"depth: the window one offset per step, the channels in tiles (_window) "
                     f"from half a depth step of channels ({window['channels']} >= BK / 2), "
                     f"else flattened")
    if split:
        lines.append(f"split-K from K >= {splitk.SPLIT_DEPTH}: {split[0]['tile'].key}, one "
                     f"slice when the tiles fill the multiprocessors, else enough for "
                     f"{splitk.BLOCKS_PER_SM} blocks per multiprocessor (at most "
                     f"{splitk.MAX_SLICES}, {splitk.MIN_SLICE_STEPS} depth steps a slice); "
                     f"slices summed by {data['sum_fn']}")
    else:
        lines.append("split-K: none (the forced tile holds too many accumulators)")
    keys = ["tile", "precision", "splitk", *(("window",) if window else ())]
    return lines + ["schedule keys: " + ", ".join(f"'{unit.index}.{k}'" for k in keys)
                    + ", 'vector': False"]


def _splitk_sum(unit: PatternUnit, d: Dialect) -> list[str]:
    return [f"one thread per element of the output sums the slices' partial tiles in order, "
            f"{splitk.SUM_THREADS}-thread blocks"]


def _attention(unit: attention.AttentionUnit) -> list[str]:
    return [f"fused when the head dims are at most {max(attention.HEADS)} (padded to "
            f"{' or '.join(str(h) for h in attention.HEADS)}); else the standby units: "
            + ", ".join(u.name for u in unit.fallback)]


__all__ = ["plan_text", "unit_lines"]
