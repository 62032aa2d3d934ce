"""The parent's side of the gate's process boundary: one worker process per candidate
(`worker.py`), started with a clean interpreter, reused across the candidate's examples and
restarted after a timeout or a crash. Inputs go to it as shared-memory (CPU) or IPC (CUDA)
tensors, so the canaries around them stay the parent's to check; outputs come back the same way
with the worker's record of the launches (`Launched`).

    candidate = IsolatedCandidate(kernel, "triton", source, device="cpu", launch_timeout=60)
    candidate.load()                  # raises CandidateError("compile_error", ...) on failure
    launched = candidate(*args)       # Launched(outputs, meta, launches); raises on a timeout
"""
from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .. import ir
from ..binding import bind

# glibc fills each fresh allocation of the worker with (this ^ 0xFF) = 0x7F bytes
MALLOC_PERTURB = "128"
STARTUP_SECONDS = 120.0      # importing torch and triton in a fresh interpreter


class CandidateError(Exception):
    """A launch that did not return: status is compile_error, wrong or timeout."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class Launched:
    """What one launch in the worker returned."""

    outputs: tuple
    meta: list[dict[str, Any]]
    launches: list[dict[str, Any]] = field(default_factory=list)
    records: bool = False       # the worker records this target's launches (Triton)


class Worker:
    """A `python3 -m kspec.verify.worker` process on one end of a socket pair."""

    def __init__(self) -> None:
        import torch.multiprocessing  # noqa: F401 - tensors cross the socket as shared memory

        ours, theirs = socket.socketpair()
        env = dict(os.environ, MALLOC_PERTURB_=MALLOC_PERTURB,
                   PYTHONPATH=os.pathsep.join(filter(None, (
                       str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")))))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kspec.verify.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send_bytes(bytes(multiprocessing.current_process().authkey))

    def request(self, message: tuple, timeout: float) -> tuple:
        """Send one request; the reply, or CandidateError when none comes within `timeout`
        seconds (the worker is then killed) or the worker died."""
        try:
            self.conn.send(message)
            if not self.conn.poll(timeout):
                self.close()
                raise CandidateError("timeout", f"no reply within {timeout:g} s (the worker "
                                     f"was killed)")
            return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self.proc.poll()
            self.close()
            raise CandidateError("wrong", f"the candidate's process died (exit status {code})") \
                from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.conn.close()


class IsolatedCandidate:
    """A candidate source launched in its own worker process; callable like a launcher."""

    isolated = True

    def __init__(self, kernel, target: str, source: str, *, device: str = "cpu",
                 launch_timeout: float = 60.0, arch: str | None = None,
                 schedule: dict | None = None, _shared: dict | None = None):
        self.kernel, self.target, self.source = kernel, target, source
        self.device, self.launch_timeout, self.arch = device, launch_timeout, arch
        self.schedule = schedule
        self.shared = _shared if _shared is not None else {"worker": None}

    def with_schedule(self, schedule: dict) -> "IsolatedCandidate":
        """The same candidate (and worker) launched with a launch-time branch forced."""
        return IsolatedCandidate(self.kernel, self.target, self.source, device=self.device,
                                 launch_timeout=self.launch_timeout, arch=self.arch,
                                 schedule=schedule, _shared=self.shared)

    def _job(self) -> dict[str, Any]:
        job = {"target": self.target, "source": self.source,
               "interpret": self.device == "cpu", "arch": self.arch}
        if self.target != "triton":
            # C++: the schedule is the launcher's (built with it in the worker), not a call's
            job.update(self.spec(), schedule=self.schedule)
        return job

    def spec(self) -> dict[str, Any]:
        module = self.kernel.module
        return {"target": self.target, "spec_text": module.source, "file": str(module.file),
                "kernel": self.kernel.name}

    def load(self) -> None:
        """Start the worker and import (or compile) the candidate in it."""
        if self.shared["worker"] is not None:
            return
        worker = Worker()
        try:
            reply = worker.request(("load", self._job()), STARTUP_SECONDS + self.launch_timeout)
        except CandidateError as e:
            raise CandidateError("compile_error" if e.status == "wrong" else e.status,
                                 f"while loading: {e.detail}") from None
        if reply[0] != "loaded":
            worker.close()
            raise CandidateError("compile_error", reply[1])
        self.shared["worker"] = worker

    def __call__(self, *args: Any) -> Launched:
        self.load()
        if self.target == "triton":
            b = bind(self.kernel.ir, args, {})
            call = [b.tensors[p.name] if isinstance(p, ir.TensorDecl) else b.scalars[p.name]
                    for p in self.kernel.ir.params] + [b.env[s] for s in self.kernel.ir.symbols]
        else:
            call = list(args)
        try:
            schedule = self.schedule if self.target == "triton" else None
            reply = self.shared["worker"].request(("run", call, schedule), self.launch_timeout)
        except CandidateError:
            self.shared["worker"] = None       # a fresh worker for whatever runs next
            raise
        if reply[0] == "raised":
            raise CandidateError("compile_error" if reply[1] else "wrong",
                                 f"{'does not compile' if reply[1] else 'raised'}: {reply[2]}")
        return Launched(tuple(reply[2]), reply[1], reply[3], self.target == "triton")

    def time(self, env: dict[str, int], timeout: float, **options: Any) -> dict[str, Any]:
        """evaluate.time_launch of this candidate at `env`, run in its worker."""
        self.load()
        reply = self.shared["worker"].request(("time", self.spec(), env,
                                               {"device": self.device, **options}), timeout)
        if reply[0] == "raised":
            raise CandidateError("compile_error" if reply[1] else "wrong", reply[2])
        return reply[1]

    def close(self) -> None:
        if self.shared["worker"] is not None:
            self.shared["worker"].close()
            self.shared["worker"] = None
