"""Two corrections to Triton's interpreter, which runs every Triton kernel on the CPU.

**Reductions as a tree of whole-array combines.** The interpreter reduces with a combine function of the kernel's own (every kspec reduction:
`_add`, `_max`, the Kahan and Welford merges) by calling it once per element from Python:
a 64 x 4096 row sum took 260k calls, and one interpreted transposed convolution took minutes,
most of them there. The tree below combines adjacent pairs of whole slices instead (log2(n)
calls on numpy arrays), in the order the GPU's own tree is free to use: only associativity is
assumed, as Triton's reduce assumes it. It replaces just that fallback; reductions that Triton
itself maps to numpy (`tl.sum`'s combiner, argmin/argmax) are untouched. Where a Triton release
lacks the hook this module expects, nothing is replaced and the interpreter is only slower.

**float -> bfloat16 rounded to nearest even**, as the GPU's conversion is: the interpreter
(Triton 3.9) truncates, which biased a causal attention's bf16 probabilities one way and put
its output 6x past the tolerance that the GPU meets.
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


def bfloat16_bits(x: Any) -> Any:
    """Float values as bfloat16 bit patterns (uint16), rounded to nearest even through float32;
    NaN stays NaN (quiet), overflow gives infinity."""
    import numpy as np

    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    return np.where(np.isnan(x), (bits >> 16) | 0x0040, rounded).astype(np.uint16)


def _rounding_cast(original: Any) -> Any:
    """InterpreterBuilder.cast_impl with conversions to bfloat16 rounded to nearest even."""
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    def cast_impl(self: Any, src: Any, dst_type: Any) -> Any:
        source = src.dtype.scalar
        if dst_type.scalar == tl.bfloat16 and source.is_floating() and source != tl.bfloat16:
            return TensorHandle(bfloat16_bits(src.data), dst_type.scalar)
        return original(self, src, dst_type)

    return cast_impl


def install() -> None:
    """Put both corrections into the interpreter (once per process)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    try:
        from triton.runtime.interpreter import InterpreterBuilder, ReduceOps, TensorHandle  # noqa
    except ImportError:  # pragma: no cover - a Triton without these interpreter classes
        return
    if hasattr(ReduceOps, "generic_reduce") and hasattr(ReduceOps, "to_tensor"):
        ReduceOps.generic_reduce = _tree_reduce
    if hasattr(InterpreterBuilder, "cast_impl"):
        InterpreterBuilder.cast_impl = _rounding_cast(InterpreterBuilder.cast_impl)
