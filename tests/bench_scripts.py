"""Importing bench/ scripts from tests: they are scripts, not a package, so each loads from its
file once (registered in sys.modules, which dataclasses need) with bench/ on sys.path for the
imports between them."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load(name: str, folder: str = ""):
    """The module bench/<name>.py, or bench/<folder>/<name>.py (registered as
    <folder>_<name>: bench/run.py and bench/kernelbench/run.py are two modules)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    key = f"{folder}_{name}" if folder else name
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, BENCH / folder / f"{name}.py")
        sys.modules[key] = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(sys.modules[key])
        except BaseException:
            del sys.modules[key]
            raise
    return sys.modules[key]
