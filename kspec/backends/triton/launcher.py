"""Load a generated Triton module (interpreted for CPU tensors, compiled for CUDA tensors) and
wrap its `launch` with kspec's argument binding and launch-time checks."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import torch

from ... import ir
from ...binding import bind, empty_result, gathers_of
from ...errors import BackendUnavailable, KspecLaunchError
from . import interpret as interpret_reductions

_LOCK = threading.Lock()


def cache_dir() -> Path:
    root = Path(os.environ.get("KSPEC_CACHE", Path.home() / ".cache" / "kspec"))
    path = root / "triton"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_module(source: str, interpret: bool, prefix: str = "kspec_gen") -> ModuleType:
    """Import generated (or candidate) source from a file named by its hash. Triton decides at
    decoration time whether @triton.jit interprets, so each mode gets its own module object; a
    module that fails to import is not left in sys.modules."""
    import triton  # noqa: F401 - first imported outside TRITON_INTERPRET
    try:  # Triton imports gluon lazily at the first launch; it must see the normal mode too
        import triton.experimental.gluon  # noqa: F401
    except Exception:  # noqa: BLE001 - absent in older Triton releases
        pass
    if interpret:
        interpret_reductions.install()
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"{prefix}_{digest}_{'interp' if interpret else 'gpu'}"
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        path = cache_dir() / f"{name}.py"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(source)
            tmp.replace(path)
        old = os.environ.get("TRITON_INTERPRET")
        os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            if old is None:
                os.environ.pop("TRITON_INTERPRET", None)
            else:
                os.environ["TRITON_INTERPRET"] = old
    return module


def build(kernel: ir.Kernel, source: str, **options: Any) -> Callable:
    try:
        import triton  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable(f"triton is not installed ({e})") from None
    schedule = dict(options.get("schedule", {}))
    if options.get("allow_tf32"):
        schedule["allow_tf32"] = True

    # Binding and the launch checks depend only on shapes, dtypes and devices: a launch with
    # the same signature as an earlier one skips them (host overhead matters for kernels that
    # run in tens of microseconds). Only plain calls are remembered: tensors for tensor
    # parameters, Python numbers for scalars (anything else needs bind's conversion, and the
    # remembered path passes the arguments through as they are), no input requiring grad.
    seen: dict[tuple, tuple[ModuleType, list[int]]] = {}
    n_params = len(kernel.params)
    is_tensor = [isinstance(p, ir.TensorDecl) for p in kernel.params]
    gathers = bool(gathers_of(kernel))

    def signature(args: tuple) -> tuple | None:
        key = []
        for a, tensor in zip(args, is_tensor):
            if tensor and isinstance(a, torch.Tensor):
                key.append((a.shape, a.dtype, a.device, a.requires_grad))
            elif not tensor and isinstance(a, (bool, int, float)):
                key.append((type(a), a))
            else:
                return None
        return tuple(key)

    def launcher(*args: Any, **kwargs: Any):
        # a gathering kernel binds every call: its index tensors' values are checked each time
        key = signature(args) if not kwargs and len(args) == n_params and not gathers else None
        if key is not None:
            hit = seen.get(key)
            if hit is not None:
                module, symbols = hit
                return module.launch(*args, *symbols, schedule=schedule)
        b = bind(kernel, args, kwargs)
        if b.is_empty(kernel):
            return empty_result(kernel, b)
        device = next((t.device.type for t in b.tensors.values()), "cpu")
        if device not in ("cpu", "cuda"):
            raise KspecLaunchError(f"{kernel.name}: the triton backend runs CPU tensors "
                                   f"(interpreter) or CUDA tensors, not {device}")
        module = load_module(source, interpret=device == "cpu")
        call = [b.tensors[p.name] if isinstance(p, ir.TensorDecl) else b.scalars[p.name]
                for p in kernel.params]
        symbols = [b.env[s] for s in kernel.symbols]
        if key is not None and not any(t.requires_grad for t in b.tensors.values()):
            seen[key] = (module, symbols)
        return module.launch(*call, *symbols, schedule=schedule)

    launcher.source = source  # type: ignore[attr-defined]
    return launcher
