"""Independent PyTorch implementations of the KernelBench translations, for
tests/test_kernelbench_translations.py: each module of this package (level1_001_030,
level1_031_100, level2) has a dict TORCH from a problem's file stem to a function that takes
the kernel's inputs as keyword arguments (by kernel input name) and returns the kernel's
output (a tuple in output order when it has several), written from the problem's PyTorch
code with torch ops."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable


def implementations() -> dict[str, tuple[str, Callable]]:
    """level<L>/<stem> -> (the module that defines it, the function). The level comes from
    the module's name (level1_..., level2): stems of two levels may coincide."""
    found: dict[str, tuple[str, Callable]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        level = info.name.split("_", 1)[0]
        for stem, fn in getattr(module, "TORCH", {}).items():
            key = f"{level}/{stem}"
            if key in found:
                raise ValueError(f"{key} is in both {found[key][0]} and {info.name}")
            found[key] = (info.name, fn)
    return found
