"""Guards against kernels that only look right.

- Every buffer a launch allocates with `torch.empty` / `empty_like` / `empty_strided` (outputs
  and temporaries, in kspec's launchers and in a candidate module alike) is poisoned: floats
  with NaN, integers with a sentinel, bools with True. An element the kernel never writes keeps
  the poison and fails the comparison (with NaN, as a non-finite output where the reference is
  finite), instead of passing on whatever a recycled allocation held (often the previous
  launch's correct result).
- Each allocation and each input sits inside a larger buffer with canaries on both sides
  (PAD elements, or as many as the tensor holds up to 65536): an input's canaries are NaN, so
  reading a neighbouring element past its end poisons the result; an allocation's canaries
  hold a finite sentinel, so a write past its end (even of a NaN) is seen when the canaries are
  checked after the launch. Large pads also keep such writes off the heap.
- Inputs are snapshotted bit for bit and compared after the launch.
- Outputs may not share memory with inputs, nor with an earlier launch's outputs (a cache).
"""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

PAD = 64          # canary elements on each side of every guarded buffer
_LOCK = threading.RLock()

_INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def poison_value(dtype: torch.dtype) -> Any:
    if dtype.is_floating_point or dtype.is_complex:
        return float("nan")
    if dtype == torch.bool:
        return True
    info = torch.iinfo(dtype)
    return info.min + 1 if info.min < 0 else info.max - 1


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits of a tensor as integers (NaN payloads and signed zeros compare exactly)."""
    t = t.contiguous()
    if t.dtype == torch.bool:
        return t
    if t.dtype.is_floating_point:
        return t.view(_INT_VIEW[t.element_size()])
    return t


def perturbed(dtype: torch.dtype) -> int:
    """The bits of one element of a buffer the worker's allocator filled with 0x7F bytes."""
    size = torch.empty((), dtype=dtype).element_size()
    value = int.from_bytes(b"\x7f" * size, "little")
    return value - (1 << (8 * size)) if value >= 1 << (8 * size - 1) else value


def sentinel_value(dtype: torch.dtype) -> Any:
    """The canary of launch allocations: finite, unlikely to be computed."""
    if dtype.is_floating_point:
        return -1.2345e-3
    if dtype == torch.bool:
        return False
    info = torch.iinfo(dtype)
    return info.min + 2 if info.min < 0 else info.max - 2


def is_poison(t: torch.Tensor) -> torch.Tensor:
    """Elementwise: still holds the poison value."""
    if t.dtype.is_floating_point:
        return torch.isnan(t)
    return t == poison_value(t.dtype)


@dataclass
class Guarded:
    """A buffer with canaries: `view_flat` is what the kernel sees; `whole` includes `pad`
    canary elements on each side, whose bits are kept in `canary`."""

    whole: torch.Tensor
    n: int
    pad: int
    canary: tuple[torch.Tensor, torch.Tensor]
    name: str = ""
    gaps: torch.Tensor | None = None       # interior elements outside the view (strided)
    gap_bits: torch.Tensor | None = None

    @property
    def view_flat(self) -> torch.Tensor:
        return self.whole[self.pad:self.pad + self.n]

    def canaries_intact(self) -> bool:
        head, tail = self.whole[:self.pad], self.whole[self.pad + self.n:]
        return bool(torch.equal(bits(head), self.canary[0]) and
                    torch.equal(bits(tail), self.canary[1]) and
                    (self.gaps is None or torch.equal(bits(self.view_flat)[self.gaps],
                                                      self.gap_bits)))

    def keep_canaries(self) -> None:
        """Record the canaries' current bits as the ones to find after the launch."""
        self.canary = (bits(self.whole[:self.pad]).clone(),
                       bits(self.whole[self.pad + self.n:]).clone())


def guarded_empty(shape: tuple[int, ...], dtype: torch.dtype, device: Any, name: str = "",
                  canary: Any = None) -> tuple[torch.Tensor, Guarded]:
    """A poisoned buffer of `shape` inside canaries (the sentinel unless `canary` is given)."""
    n = math.prod(shape)
    pad = max(PAD, min(n, 65536))
    whole = _ORIGINAL["empty"]((n + 2 * pad,), dtype=dtype, device=device)
    whole.fill_(sentinel_value(dtype) if canary is None else canary)
    g = Guarded(whole, n, pad, (), name)
    g.keep_canaries()
    g.view_flat.fill_(poison_value(dtype))
    return g.view_flat.view(shape), g


def input_canary(dtype: torch.dtype, n: int, device: Any) -> torch.Tensor:
    """Canaries around an input, from the element next to it outwards: +BIG, -BIG, NaN, ...
    (floats; BIG = the dtype's max / 16) so that a neighbouring element read into a max, a min
    or a sum shows; the poison value for integers and bools."""
    if not dtype.is_floating_point:
        return torch.full((n,), poison_value(dtype), dtype=dtype, device=device)
    big = torch.finfo(dtype).max / 16
    pattern = torch.tensor([big, -big, float("nan")], dtype=torch.float64)
    return pattern.repeat(n // 3 + 1)[:n].to(dtype).to(device)


def guarded_copy(t: torch.Tensor, name: str = "", layout: str = "contiguous"
                 ) -> tuple[torch.Tensor, Guarded]:
    """A copy of input `t` inside canaries (`input_canary`, mirrored before it), laid out as
    `layout`: contiguous; transposed (the last two dims swapped in memory); strided (every
    other element of a buffer twice as long in the last dim, the gaps holding canaries, so a
    kernel that ignores strides reads them)."""
    shape = tuple(t.shape)
    if layout == "transposed" and t.dim() >= 2:
        inner, g = guarded_empty((*shape[:-2], shape[-1], shape[-2]), t.dtype, t.device, name)
        view = inner.transpose(-1, -2)
    elif layout == "strided" and t.dim() >= 1 and t.numel():
        inner, g = guarded_empty((*shape[:-1], 2 * shape[-1]), t.dtype, t.device, name)
        view = inner[..., ::2]
    else:
        view, g = guarded_empty(shape, t.dtype, t.device, name)
    c = input_canary(t.dtype, max(g.pad, g.n), t.device)
    g.whole[:g.pad] = c[:g.pad].flip(0)
    g.whole[g.pad + g.n:] = c[:g.pad]
    g.keep_canaries()
    if view.numel() != g.n:             # strided: the gaps are canaries too
        g.view_flat.copy_(c[:g.n])
        marks = torch.ones(g.n, dtype=torch.bool, device=t.device)
        marks.view(inner.shape)[..., ::2] = False
        g.gaps, g.gap_bits = marks, bits(g.view_flat)[marks].clone()
    view.copy_(t)
    return view, g


_ORIGINAL = {"empty": torch.empty, "empty_like": torch.empty_like,
             "empty_strided": torch.empty_strided}


@dataclass
class Allocations:
    buffers: list[Guarded] = field(default_factory=list)

    def broken(self) -> list[Guarded]:
        return [g for g in self.buffers if not g.canaries_intact()]


def _size_args(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


@contextlib.contextmanager
def poisoned_allocations() -> Iterator[Allocations]:
    """Within the block, torch.empty & co. return poisoned buffers with canaries."""
    allocs = Allocations()

    def empty(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False,
              pin_memory=False, memory_format=None, **kw):
        if (out is not None or kw or layout not in (None, torch.strided) or requires_grad
                or memory_format not in (None, torch.contiguous_format)):
            return _ORIGINAL["empty"](*size, out=out, dtype=dtype, device=device,
                                      requires_grad=requires_grad, **kw)
        t, g = guarded_empty(_size_args(size), dtype or torch.get_default_dtype(), device)
        allocs.buffers.append(g)
        return t

    def empty_like(t, *, dtype=None, layout=None, device=None, requires_grad=False,
                   memory_format=None, **kw):
        if kw or requires_grad or layout not in (None, torch.strided):
            return _ORIGINAL["empty_like"](t, dtype=dtype, device=device, **kw)
        out, g = guarded_empty(tuple(t.shape), dtype or t.dtype, device or t.device)
        allocs.buffers.append(g)
        return out

    def empty_strided(size, stride, *, dtype=None, device=None, **kw):
        t = _ORIGINAL["empty_strided"](size, stride, dtype=dtype, device=device, **kw)
        t.fill_(poison_value(t.dtype))
        return t

    with _LOCK:
        torch.empty, torch.empty_like, torch.empty_strided = empty, empty_like, empty_strided
        try:
            yield allocs
        finally:
            torch.empty = _ORIGINAL["empty"]
            torch.empty_like = _ORIGINAL["empty_like"]
            torch.empty_strided = _ORIGINAL["empty_strided"]


def storage_span(t: torch.Tensor) -> tuple[int, int]:
    """[start, end) byte addresses a tensor's elements may occupy."""
    if t.numel() == 0:
        return (t.data_ptr(), t.data_ptr())
    extent = 1 + sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride()))
    return (t.data_ptr(), t.data_ptr() + extent * t.element_size())


def overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.device != b.device:
        return False
    (a0, a1), (b0, b1) = storage_span(a), storage_span(b)
    return a0 < b1 and b0 < a1
