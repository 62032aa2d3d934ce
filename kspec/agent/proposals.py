"""Structured proposals: a schedule (the tuner's schedule keys, as JSON) instead of a whole
source. The prompt shows the space (`space_lines`); a proposed schedule is checked against it
(`check_schedule`) before the tuner bakes it into the generated kernel, so a proposal that
passes is always compilable: every value is one the space lists, every launch's choice fits the
target's limits."""
from __future__ import annotations

import json
from typing import Any

from .space import LaunchSpace, Target, enumerate_space


def _value(v: Any) -> str:
    return json.dumps(v)


def space_lines(spaces: list[LaunchSpace], target: Target) -> list[str]:
    """One line per launch: its pattern, problem sizes and each key with the values to pick."""
    out = []
    for sp in spaces:
        dims = ", ".join(f"{k}={v}" for k, v in sp.dims.items())
        head = f"launch {sp.prefix}" if sp.prefix else "launch-time choices of every launch"
        vals = sp.values(target)
        keys = "; ".join(f'"{sp.full(k)}" in [{", ".join(_value(v) for v in vals[k])}]'
                         for k in sp.keys if k in vals)
        out.append(f"{head} ({sp.pattern}{': ' + dims if dims else ''}): {keys}")
    return out


def check_schedule(schedule: dict[str, Any], spaces: list[LaunchSpace],
                   target: Target) -> str | None:
    """None when `schedule` (full keys, some of them) is within the space and fits the target;
    else why not, naming the key."""
    known: dict[str, tuple[LaunchSpace, str]] = {sp.full(k): (sp, k) for sp in spaces
                                                 for k in sp.keys}
    for full, v in schedule.items():
        if full not in known:
            names = ", ".join(f'"{k}"' for k in known) or "none"
            return f'unknown key "{full}" (this kernel\'s schedule keys: {names})'
        sp, k = known[full]
        allowed = sp.values(target).get(k, [])
        if v not in allowed or isinstance(v, bool) != any(isinstance(a, bool) and a == v
                                                          for a in allowed):
            return (f'"{full}": {_value(v)} is not one of '
                    f'[{", ".join(_value(a) for a in allowed)}]')
    for sp in spaces:
        defaults = getattr(sp, "DEFAULTS", {})       # left out of the space's choices
        own = {sp.full(k): v for k, v in sp.own(schedule).items()
               if k not in defaults or defaults[k] != v}
        if not own:
            continue
        choices = enumerate_space(sp, target)
        if any(c.pruned is None and own.items() <= c.schedule.items() for c in choices):
            continue
        why = next((c.pruned for c in choices if c.pruned and own.items() <= c.schedule.items()),
                   None)
        return f"launch {sp.prefix or '(all)'}: {why or 'no fitting choice has these values'}"
    return None
