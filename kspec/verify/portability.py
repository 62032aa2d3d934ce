"""The cross-vendor portability report of `kcompile check FILE`.

Per kernel, one row per backend: every backend this machine can run is run on the checked
cases (Triton's interpreter and the C++ CPU emulation on a CPU; Triton, CUDA and HIP-on-NVIDIA
on an NVIDIA GPU) and compared with the float64 reference under every guard; the others are
compiled only (Triton for sm_90 / gfx90a / gfx942, nvcc for sm_90, hipcc for gfx90a / gfx942).

    backend                 compiled  ran  examples  worst (x tol)
    triton (interpreter)    yes       yes  14/14     0.0298
    cuda sm_90 (nvcc)       yes       no   -         -

The report is ok when every backend that ran agreed with the reference.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import BackendUnavailable
from .runner import Failure, search, search_branches
from .strategies import schedule_block_sizes

COMPILE_ONLY = (("triton", "sm_90"), ("triton", "gfx90a"), ("triton", "gfx942"),
                ("cuda", "sm_90"), ("hip", "gfx90a"), ("hip", "gfx942"))


@dataclass
class Row:
    backend: str
    compiled: str            # "yes", "no", "n/a" (toolchain missing here)
    ran: bool = False
    examples: int = 0
    passed: int = 0
    worst: float | None = None
    status: str = ""         # for rows that ran: "ok", "wrong", "cheat", "compile_error"
    detail: str = ""
    seconds: float = 0.0
    failure: Failure | None = None

    @property
    def agreed(self) -> bool:
        return not self.ran or self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        d = {"backend": self.backend, "compiled": self.compiled, "ran": self.ran,
             "examples": self.examples, "passed": self.passed, "worst": self.worst,
             "status": self.status, "detail": self.detail, "seconds": round(self.seconds, 3)}
        if self.failure:
            d["failure"] = {"case": str(self.failure.case), "replay": self.failure.case.replay(),
                            "hypothesis": self.failure.reproduce}
        return d


@dataclass
class KernelReport:
    kernel: str
    file: str
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.agreed for r in self.rows) and any(r.ran for r in self.rows)

    def text(self) -> str:
        head = f"{'backend':28s} {'compiled':8s} {'ran':4s} {'examples':>9s}  {'worst (x tol)':>13s}"
        lines = [f"{self.kernel} ({self.file}): {'ok' if self.ok else 'FAILED'}", "  " + head]
        for r in self.rows:
            ex = f"{r.passed}/{r.examples}" if r.ran else "-"
            worst = ("inf" if r.worst == float("inf") else f"{r.worst:.3g}") \
                if r.ran and r.worst is not None else "-"
            lines.append(f"  {r.backend:28s} {r.compiled:8s} {'yes' if r.ran else 'no':4s} "
                         f"{ex:>9s}  {worst:>13s}" + (f"  {r.detail}" if r.detail and
                                                       not r.failure else ""))
        for r in self.rows:
            if r.failure:
                lines.append(f"  {r.backend}: " + r.failure.text().replace("\n", "\n  "))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "file": self.file, "ok": self.ok,
                "rows": [r.as_dict() for r in self.rows]}


def _gpu() -> str | None:
    try:
        import torch
        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return f"sm_{major}{minor}"
    except Exception:  # noqa: BLE001
        pass
    return None


def _runners(kernel) -> list[tuple[str, Callable[[], Callable], str]]:
    """(label, build, device) for every backend this machine can run."""
    gpu = _gpu()
    out: list[tuple[str, Callable[[], Callable], str]] = []
    if gpu:
        out.append((f"triton {gpu}", lambda: kernel.build("triton"), "cuda"))
        out.append((f"cuda {gpu} (nvcc)", lambda: kernel.build("cuda"), "cuda"))
        out.append((f"hip-on-nvidia {gpu}", lambda: kernel.build("hip"), "cuda"))
    else:
        out.append(("triton (interpreter)", lambda: kernel.build("triton"), "cpu"))
    from ..backends.cxx import emulate
    if emulate.compiler() is not None:
        out.append(("c++ cpu-emulation (g++)", lambda: emulate.build(kernel.ir), "cpu"))
    return out


def _compile_only(kernel, backend: str, arch: str) -> Row:
    from ..backends import get_backend

    label = {"triton": f"triton {arch} (cross)", "cuda": f"cuda {arch} (nvcc)",
             "hip": f"hip {arch} (hipcc)"}[backend]
    t0 = time.perf_counter()
    try:
        b = get_backend(backend)
        if backend == "triton":
            b.compile_asm(kernel.ir, arch=arch)
        else:
            b.compile(kernel.ir, arch)
        return Row(label, "yes", seconds=time.perf_counter() - t0)
    except BackendUnavailable as e:
        return Row(label, "n/a", detail=e.message.splitlines()[0][:100],
                   seconds=time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - a toolchain's failure is the row's finding
        text = str(e).strip().splitlines()
        errors = [ln.strip() for ln in text[1:] if "error" in ln.lower()]
        detail = (errors[0] if errors else text[0] if text else type(e).__name__)
        return Row(label, "no", detail=detail[:160], seconds=time.perf_counter() - t0)


def _row(label: str, res, seconds: float) -> Row:
    return Row(label, "yes", True, res.examples, res.passed, res.worst,
               "ok" if res.ok else res.failure.status, "" if res.ok else res.failure.detail,
               seconds, res.failure)


def _branch_rows(kernel, label: str, device: str, examples: int, seed: int, max_elements: int,
                 blocks, max_seconds: float | None) -> list[Row]:
    """The generated Triton module's launch-time branches that small shapes never take
    (64-bit indices, compensated contractions, looped rows), each forced by the schedule and
    checked on a few cases of its own: the report then names every branch that ran."""
    return [_row(f"{label.split(' (')[0]} [{branch}]", res, res.seconds)
            for branch, res in search_branches(
                kernel, kernel.source("triton"),
                lambda schedule: kernel.build("triton", schedule=schedule),
                examples=examples, seed=seed, device=device, max_elements=max_elements,
                block_sizes=blocks, max_seconds=max_seconds)]


def portability(kernel, *, examples: int = 10, seed: int = 0, max_elements: int = 4096,
                max_seconds: float | None = None, compile_only: bool = True,
                backends: tuple[str, ...] | None = None) -> KernelReport:
    """Run every backend this machine can run on checked cases; compile the rest."""
    report = KernelReport(kernel.name, kernel.module.file)
    blocks = schedule_block_sizes(kernel.source("triton"))
    for label, build, device in _runners(kernel):
        if backends and not any(label.startswith(b) for b in backends):
            continue
        t0 = time.perf_counter()
        try:
            launch = build()
        except BackendUnavailable as e:
            report.rows.append(Row(label, "n/a", detail=e.message.splitlines()[0][:100]))
            continue
        except Exception as e:  # noqa: BLE001
            text = str(e).strip().splitlines()
            report.rows.append(Row(label, "no", ran=True, status="compile_error",
                                   detail=(text[0] if text else type(e).__name__)[:160],
                                   seconds=time.perf_counter() - t0))
            continue
        res = search(kernel, launch, examples=examples, seed=seed, device=device,
                     max_elements=max_elements, block_sizes=blocks, max_seconds=max_seconds)
        report.rows.append(_row(label, res, time.perf_counter() - t0))
        if label.startswith("triton"):
            report.rows += _branch_rows(kernel, label, device, examples, seed, max_elements,
                                        blocks, max_seconds)
    if compile_only:
        gpu = _gpu()
        for backend, arch in COMPILE_ONLY:
            if backends and backend not in backends:
                continue
            if gpu == arch and backend in ("triton", "cuda"):
                continue            # it ran above
            report.rows.append(_compile_only(kernel, backend, arch))
    return report
