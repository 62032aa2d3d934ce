"""The front end: parse (parser.py) and check (semantics.py) kspec source into the typed IR.

The checks: semantics.py (declarations, statements), expressions.py (expression typing),
ranges.py (index ranges and bounds), indices.py (gathers, padding), scans.py, context.py
(what they share)."""
from __future__ import annotations

from .. import ir
from .parser import parse
from .semantics import check_file


def compile_source(source: str, file: str = "<string>") -> ir.Module:
    """Source text -> checked, typed IR module. Raises KspecError subclasses on bad input."""
    return check_file(parse(source, file))


__all__ = ["compile_source", "parse", "check_file"]
