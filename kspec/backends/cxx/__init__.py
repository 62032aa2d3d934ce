"""The C++ family shared by the CUDA and HIP backends.

    dialect.py   per-vendor spellings (headers, half types, shuffles, lane count, launch bounds)
    ctype.py     kspec dtype -> C++ storage and compute types
    code.py      C++ expression text with precedence and exact literals
    exprs.py     the expression table: every op of kspec.ops.OPS -> C++
    names.py     C++ identifiers for kspec names (keywords and clashes renamed)
    loops.py     one statement's expression -> C++ with reductions as (hoisted) for-loops
    generic.py   the generic loop-nest lowering: one kernel per statement
    render.py    Jinja2 templates (templates/*.j2) -> one translation unit; plan_for()
    launch.py    binding, allocation and parameter lists for a launch, shared by all runtimes
    tools.py     running compilers; cache.py: the on-disk compilation cache
    emulate.py   the generated C++ run on the CPU, for tests without a GPU
"""
from .dialect import CUDA, DIALECTS, HIP, Dialect, lane_count
from .generic import GenericPlan, plan_generic
from .render import LOWERINGS, plan_for, render_plan, render_source

__all__ = ["CUDA", "HIP", "DIALECTS", "Dialect", "lane_count", "GenericPlan", "plan_generic",
           "LOWERINGS", "plan_for", "render_plan", "render_source"]
