"""Running generated C++ on the CPU, for tests on machines without a GPU.

The generic plan is rendered in a third dialect whose device environment is plain C++
(templates/cpu_emulation.h.j2), compiled by the host C++ compiler into a shared library, and
each statement kernel is called once with grid = block = 1: its grid-stride loop then covers the
whole index space. The launch path (argument binding, strides, temporaries, parameter order) is
the GPU backends' own `PlanLauncher`; only the device differs. This checks the lowering and the
expression table against the reference; it does not model GPU math libraries, warps or timing.
"""
from __future__ import annotations

import ctypes
import shutil
from dataclasses import replace
from pathlib import Path

import jinja2

from ... import ir
from ...errors import BackendUnavailable
from . import cache
from .dialect import CUDA, Dialect
from .launch import PlanLauncher
from .render import TEMPLATES, plan_for, render_plan
from .tools import cached_compile, run, tool_version, which

CPU = replace(
    CUDA, name="cpu", title="C++ (CPU emulation for tests)", file_ext="cpp",
    includes=("kspec_cpu_emulation.h",), warp_size=1,
    half_type="kspec_half", bf16_type="kspec_bf16",
    half_to_float="kspec_half_to_float({x})", float_to_half="kspec_float_to_half({x})",
    bf16_to_float="kspec_bf16_to_float({x})", float_to_bf16="kspec_float_to_bf16({x})",
    shfl_xor="{x}", launch_bounds="", launch_bounds_min="", kernel_decl='extern "C" void', device_fn="static inline",
    thread_id="0", block_id="0", block_dim="1", grid_dim="1", shared="static",
    sync_threads="(void)0",
    fast_math={"exp": "kspec_fast_expf"}, fast_div="kspec_fast_div({a}, {b})")


def emulation_header() -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             keep_trailing_newline=True)
    return env.get_template("cpu_emulation.h.j2").render()


def compiler() -> str | None:
    return which("g++") or which("clang++")


def source(kernel: ir.Kernel, dialect: Dialect = CPU, lowering: str = "plan") -> str:
    return render_plan(plan_for(kernel, dialect, lowering=lowering))


class CpuRuntime:
    def __init__(self, library: Path):
        self.lib = ctypes.CDLL(str(library))

    def launch(self, function: str, grid: int, block: int, params: list, device,
               shared: int = 0) -> None:
        getattr(self.lib, function)(*params)


def build(kernel: ir.Kernel, lowering: str = "plan", schedule: dict | None = None,
          source: str | None = None, label: str = "cpu-emulation") -> PlanLauncher:
    """A launcher running the kernel's generated C++ on CPU tensors. `schedule` forces choices
    of the plan lowering: {"rows": "loop"} (no register cache), {"vector": False}, an f32
    contraction's {"precision": "ieee"} (the loop nest) or "tf32", tiles and split-K.
    `source` replaces the generated text (an outside candidate with the same entry points)."""
    cxx = compiler()
    if cxx is None:
        raise BackendUnavailable("no host C++ compiler (g++ or clang++) for the CPU emulation")
    plan = plan_for(kernel, CPU, lowering=lowering, schedule=schedule)
    text = render_plan(plan) if source is None else source
    header = emulation_header()
    flags = ["-O1", "-std=c++17", "-shared", "-fPIC", "-fno-fast-math", "-ffp-contract=off", "-I."]
    key = cache.cache_key("emulate", tool_version(cxx), text, header, " ".join(flags))

    def produce() -> dict[str, bytes]:
        work = cache.scratch_dir("emulate")
        (work / "kernel.cpp").write_text(text)
        (work / "kspec_cpu_emulation.h").write_text(header)
        run([cxx, *flags, "-o", "kernel.so", "kernel.cpp"], work, what=Path(cxx).name,
            source_name="kernel.cpp")
        files = {"kernel.so": (work / "kernel.so").read_bytes()}
        shutil.rmtree(work, ignore_errors=True)
        return files

    cached_compile("emulate", key, ["kernel.so"], produce)
    library = cache.entry_dir("emulate", key) / "kernel.so"
    return PlanLauncher(plan, CpuRuntime(library), "cpu", label, schedule)
