"""The C++ family shared by the CUDA and HIP backends.

    dialect.py   per-vendor spellings (headers, half types, shuffles, lane count, launch bounds)
    ctype.py     kspec dtype -> C++ storage and compute types
    code.py      C++ expression text with precedence and exact literals
    exprs.py     the expression table: every op of kspec.ops.OPS -> C++
    loops.py     one statement's expression -> C++ with reductions as (hoisted) for-loops
    generic.py   the generic loop-nest lowering: one kernel per statement
    render.py    Jinja2 templates (templates/*.j2) -> one translation unit
    launch.py    argument lists and temporaries for a launch, shared by all launchers
    cache.py     the on-disk compilation cache
"""
from .dialect import CUDA, DIALECTS, HIP, Dialect, lane_count
from .generic import GenericPlan, plan_generic
from .render import plan_for, render_plan, render_source

__all__ = ["CUDA", "HIP", "DIALECTS", "Dialect", "lane_count", "GenericPlan", "plan_generic",
           "plan_for", "render_plan", "render_source"]
