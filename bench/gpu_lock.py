"""Several bench workers sharing one GPU without disturbing each other's timings.

Compiling (torch.compile's first call, Triton's JIT, nvcc) is CPU work that takes most of a
KernelBench problem's time, so workers run it side by side; but a timed loop must have the GPU
to itself. Every GPU section of a worker takes the lock shared; a timed loop takes it
exclusively, so it starts only once the other workers' sections in flight have ended, and none
starts while it runs. A second lock file is the turnstile that keeps a waiting timer from being
starved by a stream of shared sections (readers pass through it; a timer holds it).

The lock files are named by $KSPEC_GPU_LOCK (the runner sets it when workers share a GPU);
unset, every section is a no-op.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from typing import IO, Iterator

ENV = "KSPEC_GPU_LOCK"


class GpuLock:
    def __init__(self, path: str | None = None):
        path = path if path is not None else os.environ.get(ENV)
        self.main: IO | None = open(path, "a") if path else None
        self.turnstile: IO | None = open(path + ".turnstile", "a") if path else None
        self.depth = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """GPU work that may overlap other workers' (not their timed loops)."""
        if self.main is None or self.depth:
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
            return
        fcntl.flock(self.turnstile, fcntl.LOCK_SH)
        fcntl.flock(self.main, fcntl.LOCK_SH)
        fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        self.depth = 1
        try:
            yield
        finally:
            self.depth = 0
            fcntl.flock(self.main, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """A timed loop: the GPU to itself. Not inside a shared section of this worker."""
        if self.main is None:
            yield
            return
        if self.depth:
            raise RuntimeError("GpuLock.exclusive inside a shared section")
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)
        fcntl.flock(self.main, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.main, fcntl.LOCK_UN)
            fcntl.flock(self.turnstile, fcntl.LOCK_UN)
