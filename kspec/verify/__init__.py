"""Numeric verification: the float64 reference, tolerances, property-based checks, guards,
outside candidates and the portability report (docs/VERIFY.md)."""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Case": "strategies", "cases": "strategies", "run_case": "runner", "replay": "runner",
    "search": "runner", "verify_candidate": "candidates", "Verdict": "candidates",
    "portability": "portability", "check_spec": "pytest_plugin",
}


def __getattr__(name: str) -> Any:   # lazy: importing kspec.verify stays cheap
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(name)


__all__ = list(_EXPORTS)
