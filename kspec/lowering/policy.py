"""How many programs share one reduction: the split policy of the rows and split patterns and
of a contraction's depth (split-K), one place for every backend (issue 12: the backends'
thresholds had forked).

A "program" is a Triton program or a C++ block. A row (or a reduction to a scalar) longer than
SINGLE_PASS is cut into slices of at least SLICE elements, each folded by its own program,
when the rows alone would leave the device short of PROGRAMS_PER_SM programs per
multiprocessor; a second pass combines the partials in order (deterministic, unlike atomics).
Few long rows (LayerNorm over 4M-element rows, BatchNorm's 64 channels) split; many rows
(InstanceNorm's 7168) do not.
"""
from __future__ import annotations

SINGLE_PASS = 8192      # a row up to this long: one program, no second pass
SLICE = 16384           # the least elements per slice of a split row
MAX_SPLIT = 1024        # the most slices per row
PROGRAMS_PER_SM = 4     # programs per multiprocessor the split aims for
NARROW_GEMM = 4         # a contraction with at most this many rows or columns runs as rows

# split-K: a contraction whose output tiles leave multiprocessors idle cuts its depth into
# slices, one program per (tile, slice), and a second pass sums the slices' f32 partial tiles
# in slice order (deterministic). The C++ split-K variants (cxx/splitk.py) and the Triton
# contraction (its _split_k helper) take their slice counts from depth_split.
MAX_SLICES = 256          # the finishing pass reads this many partials per element at most
MIN_SLICE_STEPS = 32      # depth steps per slice at least: the pipeline's fill, the tile write
BLOCKS_PER_SM = 2         # (tile, slice) programs per multiprocessor the split aims for


def row_split(rows: int, length: int, kept: int, multiprocessors: int) -> int:
    """Slices per row for `rows` rows of `length` elements when a program holds `kept` rows
    (1: no split). The Triton template's _row_split is this function."""
    if length <= SINGLE_PASS:
        return 1
    programs = -(-rows // max(1, kept))
    return max(1, min(MAX_SPLIT, length // SLICE, PROGRAMS_PER_SM * multiprocessors // programs))


def scalar_split(length: int, multiprocessors: int) -> int:
    """Programs folding partials of one reduction to a scalar (phase 1 of a split): slices
    of at least SLICE elements, at most MAX_SPLIT and PROGRAMS_PER_SM x 4 per multiprocessor
    (a scalar's programs are all the device has to do)."""
    return max(1, min(MAX_SPLIT, 4 * PROGRAMS_PER_SM * multiprocessors, length // SLICE))


def depth_split(tiles: int, steps: int, multiprocessors: int) -> int:
    """Slices of the depth for a contraction of `tiles` output tiles and `steps` depth steps
    (one tile's BLOCK_K each): 1 when the tiles fill the multiprocessors, else enough for
    BLOCKS_PER_SM programs per multiprocessor, at most MAX_SLICES and at least MIN_SLICE_STEPS
    steps each; rounded so that ceil(steps / S) steps per slice leaves no slice empty."""
    if tiles >= multiprocessors or steps <= 1:
        return 1
    want = -(-BLOCKS_PER_SM * multiprocessors // max(1, tiles))
    slices = max(1, min(want, MAX_SLICES, steps // MIN_SLICE_STEPS))
    per = -(-steps // slices)
    return -(-steps // per)
