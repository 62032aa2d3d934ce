"""What the backends know of a target GPU without having one, and the sizes `kcompile --shape`
names: a representative device per architecture, whose figures steer the host's launch
choices (multiprocessors) and bound the launches checked ahead of time (shared memory,
threads, grid), for the Triton and the C++ backends alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import ir
from ..errors import KspecError, ToolchainError

# arch -> (GPUTarget backend, GPUTarget arch, warp size, multiprocessors, shared memory per
# program in bytes: the opt-in maximum of dynamic shared memory): a representative device of
# each (A100, H100/H200, B200, MI250X, MI300X, RX 7900 XTX); the sizes only steer the host's
# choices, they are not measured here
ARCHS: dict[str, tuple[str, Any, int, int, int]] = {
    "sm_80": ("cuda", 80, 32, 108, 166912), "sm_86": ("cuda", 86, 32, 84, 101376),
    "sm_89": ("cuda", 89, 32, 128, 101376), "sm_90": ("cuda", 90, 32, 132, 232448),
    "sm_90a": ("cuda", 90, 32, 132, 232448), "sm_100": ("cuda", 100, 32, 148, 232448),
    "gfx90a": ("hip", "gfx90a", 64, 110, 65536), "gfx942": ("hip", "gfx942", 64, 304, 65536),
    "gfx1100": ("hip", "gfx1100", 32, 96, 65536),
}

MAX_THREADS = 1024                          # per block (program, workgroup) on every target
MAX_GRID = (2 ** 31 - 1, 65535, 65535)      # blocks along x, y, z


def arch_info(arch: str, backend: str = "triton") -> tuple[str, Any, int, int, int]:
    """The ARCHS row of `arch`, with a clear error naming `backend` for one not listed."""
    if arch not in ARCHS:
        raise KspecError(f"unknown arch '{arch}' for the {backend} backend; expected one of "
                         f"{', '.join(ARCHS)}")
    return ARCHS[arch]


def parse_shape(text: str) -> dict[str, int]:
    """`M=4096,N=8192` -> {"M": 4096, "N": 8192}, with a clear error for anything else."""
    env: dict[str, int] = {}
    for part in filter(None, (t.strip() for t in text.split(","))):
        name, eq, value = (x.strip() for x in part.partition("="))
        if not eq or not name.isidentifier() or not value.isdigit():
            raise KspecError(f"--shape: expected SYMBOL=INTEGER[,SYMBOL=INTEGER...], got '{part}'")
        if int(value) < 1:
            raise KspecError(f"--shape: {name} must be at least 1")
        env[name] = int(value)
    if not env:
        raise KspecError(f"--shape: expected SYMBOL=INTEGER[,SYMBOL=INTEGER...], got '{text}'")
    return env


def check_shape(kernel: ir.Kernel, env: dict[str, int]) -> None:
    """`env` names every shape symbol of `kernel` and no other, each a positive integer, and
    passes the kernel's launch checks."""
    for name, value in env.items():   # a dict given directly skipped parse_shape's checks
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise KspecError(f"--shape: {name} must be an integer of at least 1, not {value!r}")
    problems = kernel.size_errors(env)
    if problems:
        raise KspecError(f"--shape {env_text(env)}: {problems[0]}")


def check_limits(where: str, threads: int, grid: tuple[int, ...], shared: int,
                 shared_limit: int, shared_kind: str = "shared memory", detail: str = "") -> None:
    """Threads per block, blocks per grid axis and shared memory within the target's limits;
    a ToolchainError naming the resource and both numbers otherwise."""
    if threads > MAX_THREADS:
        raise ToolchainError(f"{where}: {threads} threads per block exceed the limit "
                             f"{MAX_THREADS}")
    for axis, (blocks, limit) in enumerate(zip(grid, MAX_GRID)):
        if blocks > limit:
            raise ToolchainError(f"{where}: grid axis {'xyz'[axis]} of {blocks} blocks exceeds "
                                 f"the limit {limit}")
    if shared > shared_limit:
        raise ToolchainError(f"{where}: {shared_kind} {shared} bytes exceeds the target's "
                             f"{shared_limit}" + (f" ({detail})" if detail else ""))


def env_text(env: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in env.items())


def source_name(kernel: ir.Kernel) -> str:
    """What a generated module's header says it was generated from: the spec file's name, or,
    for text given to kspec.loads without a file name ("<string>"), that, not a made-up path."""
    file = kernel.pos.file if kernel.pos else ""
    if not file or (file.startswith("<") and file.endswith(">")):
        return "a kspec.loads() string"
    return Path(file).name
