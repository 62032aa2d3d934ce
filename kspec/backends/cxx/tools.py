"""Running the vendor compilers: one place for subprocess handling, errors and caching."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...errors import ToolchainError
from . import cache


@dataclass
class Compiled:
    """What one compile produced."""

    arch: str
    binary: bytes = b""             # cubin or AMD code object ("" for asm-only runs)
    asm: str = ""                   # PTX or AMDGCN
    log: str = ""                   # the compiler's messages (the resource report is in there)
    resources: dict[str, dict[str, int]] = field(default_factory=dict)  # per kernel
    command: str = ""
    cached: bool = False


@functools.lru_cache(maxsize=None)
def tool_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        return ""


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, what: str = "",
        source_name: str = "") -> str:
    """Run a compiler; its stdout+stderr on success, a ToolchainError with them otherwise."""
    full_env = dict(os.environ, **(env or {}))
    try:
        p = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                           timeout=600)
    except FileNotFoundError:
        raise ToolchainError(f"{cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what or cmd[0]} took more than 600 s") from None
    log = p.stdout + p.stderr
    if p.returncode != 0:
        kept = cwd / source_name if source_name else cwd
        raise ToolchainError(f"{what or cmd[0]} failed (exit {p.returncode}) on the generated "
                             f"source {kept}:\n{log.strip()}\ncommand: {' '.join(cmd)}")
    return log


def which(name: str, env_var: str | None = None, extra: tuple[str, ...] = ()) -> str | None:
    if env_var and os.environ.get(env_var):
        p = Path(os.environ[env_var]) / "bin" / name
        if p.exists():
            return str(p)
    found = shutil.which(name)
    if found:
        return found
    for d in extra:
        p = Path(d) / name
        if p.exists():
            return str(p)
    return None


def cached_compile(kind: str, key: str, outputs: list[str],
                   produce: Callable[[], dict[str, bytes]]) -> tuple[dict[str, bytes], bool]:
    """Cached files of `key`, or the files `produce()` makes (then stored)."""
    hit = cache.lookup(kind, key, outputs)
    if hit is not None:
        return hit, True
    files = produce()
    cache.store(kind, key, files)
    return files, False
