"""Jinja2 rendering of the C++ family: a plan plus a dialect -> one translation unit."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from ... import ir
from ...errors import KspecError
from ...printer import format_kernel
from ..target import source_name
from .dialect import Dialect
from .generic import GenericPlan, plan_generic

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined, autoescape=False)


LOWERINGS = ("plan", "generic", "normalized")
DEFAULT_LOWERING = "plan"


def plan_for(kernel: ir.Kernel, dialect: Dialect, arch: str | None = None,
             lowering: str = DEFAULT_LOWERING, schedule: dict | None = None) -> GenericPlan:
    """The lowering plan a backend renders; the one place a lowering is chosen.

    lowering="plan" (default): kspec.lowering.plan's launches, each rendered by its pattern
    (patterns.py: pointwise, rows, split, loop_nest; attention as its unfused launches).
    lowering="generic": one kernel per source statement.
    lowering="normalized": one kernel per statement of kspec.lowering.normalize's rewrite
    (reduction-free intermediates inlined, invariant reductions hoisted into temporaries):
    fewer launches and temporaries, the same generic kernels.
    `schedule`: compile-time choices of the plan lowering: a contraction's tile
    ({"<launch>.tile": ...}) and tensor-core path ({"tensor_cores": "mma_sync" | "none" | ...})."""
    if lowering not in LOWERINGS:
        raise KspecError(f"lowering must be one of {', '.join(LOWERINGS)}, not {lowering!r}")
    d = dialect.for_arch(arch)
    if schedule and "tensor_cores" in schedule:
        d = d.with_tensor_cores(schedule["tensor_cores"])
    if lowering == "plan":
        from .planner import plan_patterns
        return plan_patterns(kernel, d, schedule)
    if lowering == "generic":
        return plan_generic(kernel, d)
    from ...lowering.normalize import normalize

    program = normalize(kernel)
    temps = [program.buffers[n] for n in program.temporaries]
    plan = plan_generic(kernel, d, program.body, temps)
    plan.pattern = "generic, over kspec.lowering.normalize's statements"
    return plan


# Helpers whose text calls other helpers (templates/helpers.j2): those are defined first (a
# template's non-dependent calls are looked up where it is defined).
PREREQUISITES = {"kspec_combine": ("kspec_max", "kspec_min")}


def helper_order(names: set[str]) -> list[str]:
    """The helpers in the order the file defines them: by name, each after its prerequisites."""
    out: list[str] = []

    def add(name: str) -> None:
        if name not in out:
            for first in PREREQUISITES.get(name, ()):
                add(first)
            out.append(name)

    for name in sorted(names):
        add(name)
    return out


def render_plan(plan: GenericPlan, arch: str | None = None) -> str:
    kernel = plan.kernel
    text = environment().get_template("module.j2").render(
        d=plan.dialect, plan=plan, kernel=kernel, file=source_name(kernel), arch=arch,
        helpers=helper_order(plan.helpers),
        signature=format_kernel(kernel).rstrip("\n").splitlines())
    return text


def render_source(kernel: ir.Kernel, dialect: Dialect, arch: str | None = None) -> str:
    return render_plan(plan_for(kernel, dialect, arch), arch)


def render_helpers(dialect: Dialect, names: list[str]) -> str:
    """Helper definitions alone (for pattern templates and for tests)."""
    h = environment().get_template("helpers.j2").module
    return "\n".join(str(getattr(h, n)(dialect)) for n in names)
