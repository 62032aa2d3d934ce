"""Padded reads (`pad(x, v)[...]`) for the backends: which bounds each dim must test.

A padded read takes its pad value where an index is outside the tensor or a division is
inexact. Tests that the index ranges already rule out are left out of the generated code, so
`pad(x, 0)[n, c, p + r - 1, q + s - 1]` tests only the two shifted dims.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from ..shapes import Shape


@dataclass(frozen=True)
class DimTest:
    dim: int
    low: bool      # test index >= 0
    high: bool     # test index < size
    size: Shape    # the tensor's size in this dim


def dim_tests(load: ir.Load) -> list[DimTest]:
    """The tests of a padded read, one entry for each dim that needs any. A divided dim is
    always tested on both sides (besides its divisibility)."""
    assert load.pad is not None
    out = []
    for d, (a, size) in enumerate(zip(load.index, load.pad.dims)):
        if a.div is not None:
            out.append(DimTest(d, True, True, size))
            continue
        hi = a.offset + sum(((v.extent - 1) * c for v, c in a.terms if c > 0), Shape.const(0))
        lo = a.offset + sum(((v.extent - 1) * c for v, c in a.terms if c < 0), Shape.const(0))
        low, high = not lo.provably_nonneg(), not (size - 1 - hi).provably_nonneg()
        if low or high:
            out.append(DimTest(d, low, high, size))
    return out
