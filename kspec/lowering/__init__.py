"""Lowering: normalize a kernel's statements (normalize.py), then group them into launches with
patterns and schedules (plan.py). Every backend renders the same plan."""
from .normalize import Program, normalize
from .plan import Attention, Contraction, Launch, Plan, plan_kernel

__all__ = ["normalize", "Program", "plan_kernel", "Plan", "Launch", "Contraction", "Attention"]
