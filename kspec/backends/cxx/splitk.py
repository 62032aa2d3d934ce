"""Split-K for deep tensor-core contractions (contraction.py, templates/contraction.j2).

The direct kernels accumulate the whole depth in one f32 accumulator chain per element of C,
whose rounding error grows with the depth (the tensor cores' f32 additions are not rounded to
nearest; published measurements find them truncated): at K = 10^7 + 19 (matmul_bias_gelu, M = N = 16) the C++ result was 45
times outside the float64 gate on an H200, and the one block of the 16 x 16 output walked all
10^7 (1128 ms). (The f32 paths' direct kernels already add each step's products with
compensation, templates/tensor_cores/*_tf32.j2; split-K brings them the parallelism.) From
SPLIT_DEPTH on (Triton's COMPENSATED_DEPTH), the launch takes the split-K variants instead:

- `<unit>_<tile>_splitk{async,safe}`: block (slice, tile) multiplies steps
  [slice * per, (slice + 1) * per) of the depth (per = ceil(steps / S)). Each step's products
  start from zero and are added into the accumulator with Kahan compensation
  (kspec_sum_add), so the chain's error is that of one step plus a few ulps. With S > 1 the
  block writes its f32 tile to the scratch buffer partial[S][Z][M][N]; with S = 1 it applies
  the epilogue itself.
- `<kernel>_<launch>_splitk_sum` (S > 1; a unit of its own, on standby, whose parameter list
  both kernels take): one thread per element of C sums its S partials in slice order,
  compensated, and applies the epilogue (a plain kernel, no tensor cores).

S: output tiles that already fill the multiprocessors take one slice; fewer take enough
slices for BLOCKS_PER_SM blocks per multiprocessor, at most MAX_SLICES and at least
MIN_SLICE_STEPS depth steps each. Holding three accumulator sets per thread (sum,
compensation, the step's products), the variants are compiled with a small tile
(SPLIT_TILES), or with a tile forced by the schedule when it holds no more accumulators.
f32 operands (3xTF32) keep one more set, the small products' sum (templates/tensor_cores/
*_tf32.j2): each step's two sums are added, then compensated like the f16 steps' one; their
direct kernels hold the same four sets, so their tiles are as small.

Schedule keys (tests, the tuner): {"<launch>.splitk": S} (or "splitk" for every launch):
S >= 1 launches the split-K variant with S slices (at most one per depth step), 0 the direct
kernel, whatever the depth.
"""
from __future__ import annotations

from typing import Any, Mapping

from ...lowering.policy import BLOCKS_PER_SM, MAX_SLICES, MIN_SLICE_STEPS, depth_split

__all__ = ["BLOCKS_PER_SM", "MAX_SLICES", "MIN_SLICE_STEPS"]   # the policy's, named here too

SPLIT_DEPTH = 65536       # depth from which the split-K (compensated) variant is launched
SUM_THREADS = 256         # threads per block of the finish kernel
SPLIT_TILES = {"mma_sync": "64x64x32w4s4", "wgmma": "64x64x64w4s4", "mfma": "64x64x32w4s2",
               "mma_sync_tf32": "64x64x32w4s3", "wgmma_tf32": "64x64x32w4s4",
               "emulated": "16x16x8w1s1"}


def accumulators(tile: Any) -> int:
    """f32 accumulators per thread of a tile (one set)."""
    return tile.bm * tile.bn // tile.threads


def split_tile(tiles: list, path: str, parse: Any) -> Any | None:
    """The tile the split-K variants are compiled with: SPLIT_TILES[path] with the default
    tiles; a forced tile (the only one compiled) when it holds no more accumulators than
    that, else None (no split-K variants: deep contractions run the direct kernel)."""
    small = parse(SPLIT_TILES[path], path)
    if len(tiles) > 1:
        return small
    return tiles[0] if accumulators(tiles[0]) <= accumulators(small) else None


def forced_slices(schedule: Mapping[str, Any], index: int | None) -> int | None:
    """The slice count the schedule forces for launch `index`, if any."""
    value = schedule.get(f"{index}.splitk", schedule.get("splitk"))
    return None if value is None else int(value)


def split_slices(z: int, m: int, n: int, k: int, tile: Any, multiprocessors: int,
                 forced: int | None = None) -> int:
    """How many slices of the depth the split-K variant takes for a Z x M x N x K contraction
    with `tile`: 0 for the direct kernel (shallow depth), else S >= 1, every slice
    non-empty."""
    steps = -(-k // tile.bk)
    if forced is not None:
        return _no_empty_slice(steps, forced) if forced > 0 else 0
    if k < SPLIT_DEPTH:
        return 0
    return depth_split(z * -(-m // tile.bm) * -(-n // tile.bn), steps, multiprocessors)


def _no_empty_slice(steps: int, slices: int) -> int:
    """The slice count the kernel's ceil(steps / S) steps per slice gives: no slice empty."""
    if steps <= 1:
        return 1
    per = -(-steps // min(slices, steps))
    return -(-steps // per)


def scratch_shape(slices: int, elements: int) -> tuple[int, ...]:
    """The partial buffer: S tiles of C; one element when the kernel takes no partials."""
    return (slices * elements,) if slices > 1 else (1,)
