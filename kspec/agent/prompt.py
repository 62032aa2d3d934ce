"""What an LLM round's prompt holds (templates/system.j2, round.j2 render it): the spec and its
semantics, the target's constraints (Triton: the device; CUDA / HIP: the arch, warp or wavefront
size, shared memory, the tensor-core path and the extern "C" functions the launcher calls), the
current best source, the schedule space with the current schedule's model cost and time, the
memory's worked examples (accepted kernels of other specs) and the feedback of earlier rounds."""
from __future__ import annotations

from typing import Any

from .proposals import space_lines
from .space import Target
from .store import Entry

EXAMPLE_CHARS = 12000        # a worked example's source is cut here (the prompt's size)


def target_context(adapter, tgt: Target) -> dict[str, Any]:
    """The template's `target` and the names that differ per target."""
    base = {"arch": tgt.arch, "smem": tgt.smem, "sms": tgt.sms, "max_warps": tgt.max_warps,
            "interpreter": tgt.interpreter}
    if adapter.name == "triton":
        text = "CPU (Triton interpreter; no GPU)" if tgt.interpreter else \
            f"an NVIDIA GPU, {tgt.arch}"
        return {"target_name": "Triton", "language": "python", "fence": "python",
                "target": {**base, "arch_text": text}}
    plan = adapter.plan()
    d = plan.dialect
    vendor = "an AMD GPU" if adapter.arch.startswith("gfx") else "an NVIDIA GPU"
    lanes = "wavefronts" if d.warp_size == 64 else "warps"
    name = {"cuda": "CUDA", "hip": "HIP"}[adapter.name]
    emulated = adapter.device == "cpu"
    return {"target_name": name, "language": "cpp", "fence": "cpp" if emulated else adapter.name,
            "target": {**base, "arch_text": f"{vendor}, {adapter.arch}", "interpreter": False,
                       "warp_size": d.warp_size, "lanes": lanes,
                       "tensor_cores": d.tensor_cores or "none (contractions as loop nests)",
                       "emulated": emulated,
                       "functions": [f for u in plan.units for f in u.functions()]}}


def example_context(e: Entry) -> dict[str, Any]:
    source = e.source if len(e.source) <= EXAMPLE_CHARS else \
        e.source[:EXAMPLE_CHARS] + "\n... (cut)\n"
    return {"kernel": e.kernel, "spec": e.spec.strip(), "shape_class": e.shape_class,
            "patterns": ", ".join(sorted(set(e.launches.values()))),
            "schedule": e.schedule, "proposer": e.proposer,
            "gain": f"{e.speedup:.2f}x the fixed schedule" if e.speedup else
            "verified (untimed: the CPU)", "source": source.strip()}


def schedule_context(tuner) -> dict[str, Any]:
    """The schedule space and where the current best stands in it."""
    r = tuner.report
    best = r.best
    current = best.schedule if best is not None and best.schedule is not None else \
        (None if best is not None else r.baseline_schedule)
    cost = best.cost if best is not None else r.baseline_cost
    return {"space": space_lines(tuner.spaces, tuner.tgt), "current": current,
            "cost": cost, "ms": r.best_ms}
