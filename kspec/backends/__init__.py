"""Backends: each turns a kernel's IR into source text and a launcher. One folder per backend."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

from .. import ir
from ..errors import BackendUnavailable

KNOWN = ("triton", "cuda", "hip")


class Backend(Protocol):
    name: str

    def source(self, kernel: ir.Kernel, **options: Any) -> str: ...

    def build(self, kernel: ir.Kernel, **options: Any) -> Callable: ...


def get_backend(name: str) -> Backend:
    if name not in KNOWN:
        raise BackendUnavailable(f"unknown backend '{name}'; expected one of {', '.join(KNOWN)}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(f"{__name__}.{name}"):
            raise BackendUnavailable(f"the {name} backend is not available in this version of "
                                     f"kspec") from None
        raise
    return module.BACKEND
