"""Triton's interpreter with reductions done as a tree of whole-array combines.

The interpreter reduces with a combine function of the kernel's own (every kspec reduction:
`_add`, `_max`, the Kahan and Welford merges) by calling it once per element from Python:
a 64 x 4096 row sum took 260k calls, and one interpreted transposed convolution took minutes,
most of them there. The tree below combines adjacent pairs of whole slices instead (log2(n)
calls on numpy arrays), in the order the GPU's own tree is free to use: only associativity is
assumed, as Triton's reduce assumes it. It replaces just that fallback; reductions that Triton
itself maps to numpy (`tl.sum`'s combiner, argmin/argmax) are untouched. Where a Triton release
lacks the hook this module expects, nothing is replaced and the interpreter is only slower.
"""
from __future__ import annotations

from typing import Any

_INSTALLED = False


def _tree_reduce(self: Any, inputs: tuple) -> Any:
    """ReduceOps.generic_reduce's contract: reduce `inputs` (a tuple of interpreter tensors
    of one shape) along self.axis (None: all of it) with self.combine_fn, honouring
    self.keep_dims; a list of the results, one per input."""
    import numpy as np
    import triton.language as tl

    dtypes = [t.dtype for t in inputs]
    shape = inputs[0].handle.data.shape
    axis = 0 if self.axis is None else self.axis
    arrays = [t.handle.data.reshape(-1) if self.axis is None
              else np.moveaxis(t.handle.data, axis, -1) for t in inputs]

    def tensors(parts: list) -> list:
        return [self.to_tensor(np.ascontiguousarray(p), d) for p, d in zip(parts, dtypes)]

    while arrays[0].shape[-1] > 1:
        n = arrays[0].shape[-1]
        pairs = 2 * (n // 2)
        left = tensors([a[..., 0:pairs:2] for a in arrays])
        right = tensors([a[..., 1:pairs:2] for a in arrays])
        out = self.combine_fn.fn(*left, *right)
        out = out if isinstance(out, tuple) else (out,)
        merged = [np.broadcast_to(o.handle.data if isinstance(o, tl.core.tensor) else o,
                                  left[0].handle.data.shape).astype(a.dtype)
                  for o, a in zip(out, arrays)]
        if n % 2:
            merged = [np.concatenate([m, a[..., pairs:]], axis=-1) for m, a in zip(merged, arrays)]
        arrays = merged
    results = []
    for a, d in zip(arrays, dtypes):
        data = a[..., 0]
        if self.keep_dims:
            data = (np.expand_dims(data, axis) if self.axis is not None
                    else data.reshape((1,) * len(shape)))
        elif self.axis is None:
            data = data.item()
        results.append(self.to_tensor(data, d))
    return results


def install() -> None:
    """Make the interpreter's fallback reduction the tree above (once per process)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    try:
        from triton.runtime.interpreter import ReduceOps
    except ImportError:  # pragma: no cover - a Triton without the interpreter's ReduceOps
        return
    if hasattr(ReduceOps, "generic_reduce") and hasattr(ReduceOps, "to_tensor"):
        ReduceOps.generic_reduce = _tree_reduce
