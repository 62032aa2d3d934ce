"""Reverse-mode derivatives of kspec kernels, derived from the index notation (vjp.py): the
vector-Jacobian product of a kernel is another kernel, printed as kspec source, checked by the
same front end and compiled by the same backends."""
from __future__ import annotations

from .. import ir
from ..dsl import compile_source
from ..printer import format_kernel
from .vjp import derive


def vjp_source(kernel: ir.Kernel) -> str:
    """The derived `<name>_vjp` kernel as kspec source (`kcompile --emit grad`)."""
    return format_kernel(derive(kernel))


def vjp_kernel(kernel: ir.Kernel) -> ir.Kernel:
    """The derived `<name>_vjp` kernel, checked: its printout parsed back."""
    return compile_source(vjp_source(kernel), f"<{kernel.name}_vjp>").kernels[0]


__all__ = ["derive", "vjp_source", "vjp_kernel"]
