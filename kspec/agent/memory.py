"""The kernel store as the tuner's memory: what was accepted for other specs helps the next.

- `similar(store, ...)`: the closest accepted kernels of other specs for one target and arch,
  by the patterns of their launches (the same patterns first, then overlapping ones) and by
  shape class (sizes of the same magnitude first); the LLM prompt shows them as worked
  examples.
- `seed_schedules(entries, spaces, target)`: the schedules that won on similar launches,
  rewritten to this kernel's launch prefixes and kept where they fit this kernel's space; the
  autotuner tries them first, whatever the cost model thinks of them.

An entry's launches are recorded when it is stored (`launch_patterns`: launch -> pattern, e.g.
{"0": "rows"}, or {"0": "rows", "": "launch"} with the C++ launch-time keys).
"""
from __future__ import annotations

import math
from typing import Any

from .proposals import check_schedule
from .space import LaunchSpace, Target
from .store import Entry, KernelStore


def launch_patterns(kernel, spaces: list[LaunchSpace]) -> dict[str, str]:
    """Launch -> pattern: the plan's launches (what the spec is), with the prefixes of the
    tuned spaces (what its schedules name: the C++ contractions' units, "" for the C++
    launch-time keys)."""
    from ..lowering import plan_kernel

    k = getattr(kernel, "ir", kernel)
    out = {str(i): launch.pattern for i, launch in enumerate(plan_kernel(k).launches)}
    return {**out, **{sp.prefix: sp.pattern for sp in spaces}}


def _sizes(shape_class: str) -> list[float]:
    out = []
    for part in filter(None, shape_class.split(",")):
        _, _, v = part.partition("=")
        try:
            out.append(math.log2(max(int(v), 1)))
        except ValueError:
            continue
    return sorted(out)


def shape_distance(a: str, b: str) -> float:
    """How far apart two shape classes are: the log2 sizes compared largest first, an absent
    size counting as 1 (symbols differ between specs; magnitudes are what compare)."""
    x, y = _sizes(a)[::-1], _sizes(b)[::-1]
    n = max(len(x), len(y))
    x, y = x + [0.0] * (n - len(x)), y + [0.0] * (n - len(y))
    return sum(abs(p - q) for p, q in zip(x, y))


def pattern_distance(ours: dict[str, str], theirs: dict[str, str]) -> int:
    """0: the same multiset of launch patterns; 1: some in common; 2: none."""
    a, b = sorted(ours.values()), sorted(theirs.values())
    if a == b:
        return 0
    return 1 if set(a) & set(b) else 2


def similar(store: KernelStore, spec_hash: str, target: str, arch: str,
            launches: dict[str, str], shape_class: str, limit: int = 2) -> list[Entry]:
    """The closest accepted kernels of other specs (same target and arch; only those sharing a
    launch pattern), closest first: pattern, then shape class, then speed-up, then newest."""
    found = []
    for e in store.entries(target=target, arch=arch):
        if e.spec_hash == spec_hash or not e.launches:
            continue
        p = pattern_distance(launches, e.launches)
        if p < 2:
            found.append((p, shape_distance(shape_class, e.shape_class),
                          -(e.speedup or 0.0), -e.created, e))
    found.sort(key=lambda t: t[:4])
    picked: list[Entry] = []
    for *_, e in found:                  # one kernel per spec: its best entry
        if all(x.spec_hash != e.spec_hash for x in picked):
            picked.append(e)
    return picked[:limit]


def seed_schedules(entries: list[Entry], spaces: list[LaunchSpace],
                   target: Target) -> list[tuple[dict[str, Any], Entry]]:
    """Each entry's schedule on this kernel's launches: a launch of theirs and one of ours with
    the same pattern (first with the same prefix, else in order) exchange their keys; values
    must be among ours and the whole must fit our target. Deduplicated, in entries' order."""
    out: list[tuple[dict[str, Any], Entry]] = []
    seen: set[str] = set()
    for e in entries:
        schedule: dict[str, Any] = {}
        for sp in spaces:
            theirs = _matching_prefix(sp, e.launches)
            if theirs is None:
                continue
            valid = sp.values(target)
            for key in sp.keys:
                full = f"{theirs}.{key}" if theirs else key
                if full in e.schedule and e.schedule[full] in valid.get(key, ()):
                    schedule[sp.full(key)] = e.schedule[full]
        if not schedule or check_schedule(schedule, spaces, target) is not None:
            continue
        key = repr(sorted(schedule.items()))
        if key not in seen:
            seen.add(key)
            out.append((schedule, e))
    return out


def _matching_prefix(space: LaunchSpace, theirs: dict[str, str]) -> str | None:
    if theirs.get(space.prefix) == space.pattern:
        return space.prefix
    return next((p for p, pattern in theirs.items() if pattern == space.pattern), None)
