"""`kcompile check`: run a kernel on random valid inputs through the reference and every backend
this machine can run, and compare."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from ..errors import BackendUnavailable, KspecError
from .inputs import choose_sizes, random_arguments
from .tolerance import compare, magnitude


@dataclass
class BackendResult:
    backend: str
    status: str          # "passed", "failed", "unavailable", "error"
    detail: str = ""
    worst: float = 0.0   # worst error in units of the tolerance


@dataclass
class Report:
    kernel: str
    sizes: list[dict[str, int]]
    results: list[BackendResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status in ("passed", "unavailable") for r in self.results)

    def text(self) -> str:
        lines = [f"{self.kernel}: reference ran on {len(self.sizes)} size sets "
                 f"({'; '.join(', '.join(f'{k}={v}' for k, v in s.items()) for s in self.sizes)})"]
        for r in self.results:
            worst = f"  worst {r.worst:.3g} x tol" if r.status in ("passed", "failed") else ""
            lines.append(f"  {r.backend:8s} {r.status:12s}{worst}  {r.detail}".rstrip())
        return "\n".join(lines)


def check_kernel(kernel, seed: int = 0, examples: int = 3,
                 backends: tuple[str, ...] = ("triton",)) -> Report:
    """Reference on `examples` random size sets; each backend in `backends` that builds here is
    compared with it."""
    rng = random.Random(seed)
    cases = []
    for n in range(examples):
        env = choose_sizes(kernel.ir, rng)
        args = random_arguments(kernel.ir, env, seed * 1000 + n)
        expected = kernel.reference(*args)
        cases.append((env, args, expected if isinstance(expected, tuple) else (expected,),
                      magnitude(kernel, args)))
    report = Report(kernel.name, [env for env, *_ in cases])
    for backend in backends:
        report.results.append(_run_backend(kernel, backend, cases))
    return report


def _run_backend(kernel, backend: str, cases) -> BackendResult:
    try:
        fn = kernel.build(backend)
    except BackendUnavailable as e:
        return BackendResult(backend, "unavailable", e.message)
    worst = 0.0
    for env, args, expected, mags in cases:
        try:
            got = fn(*args)
        except KspecError as e:
            return BackendResult(backend, "error", str(e).splitlines()[0])
        got = got if isinstance(got, tuple) else (got,)
        for decl, g, want, mag in zip(kernel.ir.outputs, got, expected, mags):
            result = compare(g.cpu(), want, decl.dtype, mag)
            worst = max(worst, result.worst)
            if not result.ok:
                sizes = ", ".join(f"{k}={v}" for k, v in env.items())
                return BackendResult(backend, "failed", f"{decl.name} at {sizes}: "
                                     f"{result.detail}", worst)
    return BackendResult(backend, "passed", "", worst)
