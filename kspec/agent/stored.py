"""Running the kernel store's kernels: `stored_launcher` is what `Kernel.build(...,
use_store=True)` returns. Per call it finds the device's arch and the arguments' shape class, and
runs the best stored kernel for them, or the deterministic lowering when the store has none.
It is a module of its own, above store.py, because rebuilding a C++ entry takes the tuner's
targets.py, which itself reads the store."""
from __future__ import annotations

from typing import Any, Callable

from ..binding import bind
from .store import Entry, KernelStore, device_arch, shape_class, spec_hash
from .targets import cxx_launcher


def rebuild(kernel, backend: str, entry: Entry, **options: Any) -> Callable:
    """A launcher of a stored entry's source (Triton: the module; cuda / hip: the C++ text and
    the schedule after it, compiled for the entry's arch or run on the CPU emulation)."""
    if backend == "triton":
        from ..backends.triton.launcher import build as triton_build
        return triton_build(kernel.ir, entry.source, **options)
    # a GPU entry's arch is the device's (store.device_arch); compile for it as its backend does
    return cxx_launcher(kernel.ir, backend, entry.source, "cpu" if entry.arch == "cpu" else None)


def stored_launcher(kernel, backend: str = "triton", store: KernelStore | None = None,
                    **options: Any) -> Callable:
    """A launcher that runs the best stored kernel for each call's (arch, shape class), else
    the deterministic lowering (`kernel.build(backend, **options)`). For cuda / hip on a
    machine where that lowering cannot run (no GPU), stored kernels of arch "cpu" (the CPU
    emulation) still run; calls with nothing stored raise the backend's reason."""
    import torch

    from ..errors import BackendUnavailable

    unavailable: BackendUnavailable | None = None
    try:
        default = kernel.build(backend, use_store=False, **options)   # not this again
    except BackendUnavailable as e:
        if backend not in ("cuda", "hip"):
            raise
        default, unavailable = None, e
    if backend not in ("triton", "cuda", "hip"):
        return default
    store = store or KernelStore()
    digest = spec_hash(kernel)
    chosen: dict[tuple, Callable] = {}
    by_entry: dict[str, Callable] = {}

    def launcher(*args: Any, **kwargs: Any):
        key = tuple((a.shape, a.dtype, a.device) if isinstance(a, torch.Tensor) else type(a)
                    for a in args) + tuple(sorted(kwargs))
        fn = chosen.get(key)
        if fn is None:
            b = bind(kernel.ir, args, kwargs)
            devices = [t.device for t in b.tensors.values()]
            arch = device_arch(devices[0] if devices else None)
            entry = store.best(digest, kernel.name, backend, arch, shape_class(b.env))
            fn = default
            if entry is not None:
                fn = by_entry.get(entry.source_hash)
                if fn is None:
                    fn = by_entry[entry.source_hash] = rebuild(kernel, backend, entry, **options)
            launcher.entry = entry  # type: ignore[attr-defined]  # the last lookup's
            if fn is None:        # C++ without a GPU and nothing stored for this call
                raise unavailable  # type: ignore[misc]
            chosen[key] = fn
        return fn(*args, **kwargs)

    launcher.source = getattr(default, "source", None)  # type: ignore[attr-defined]
    launcher.store = store            # type: ignore[attr-defined]
    launcher.entry = None             # type: ignore[attr-defined]
    return launcher
