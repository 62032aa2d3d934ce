"""The driver side of a bench worker process (bench/kernelbench_sizes.py, bench/kernelbench/run.py):
start the worker in its own session, read its result lines, and tell a crash (the process
ended early: an illegal address poisons its CUDA context) from a hang (silent past the
timeout, then killed with everything it started)."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

STDERR_TAIL = 2000            # characters of a dead worker's stderr kept in its row
LIVE: set[subprocess.Popen] = set()   # the workers running now (stop_all ends them)


@dataclass
class WorkerExit:
    rows: list[dict]          # the result lines it printed, in order
    dead: str | None          # "crash", "timeout", or None when it answered every row
    returncode: int | None
    stderr_tail: str          # the end of its stderr (always read: a fatal row wants it too)


def _reader(stream: Any, lines: queue.Queue) -> None:
    """Forward the worker's stdout lines; None marks its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def _kill(proc: subprocess.Popen) -> None:
    """End the worker and anything it started (its own session, see run_worker)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(path: Path) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-STDERR_TAIL:]


def _collect(lines: queue.Queue, expected: int, timeout: float, mark: str,
             on_row: Callable[[dict], None]) -> tuple[list[dict], str | None]:
    """Read result lines until the worker has answered `expected` rows or stopped after a
    fatal one, ended early ("crash"), or was silent for `timeout` s ("timeout")."""
    rows: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(rows) < expected:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return rows, "timeout"
        if line is None:
            return rows, "crash"
        if line.startswith(mark):
            rows.append(json.loads(line[len(mark):]))
            on_row(rows[-1])
            if rows[-1].get("fatal"):
                return rows, None
            deadline = time.monotonic() + timeout
    return rows, None


def run_worker(cmd: list[str], expected: int, timeout: float, mark: str,
               on_row: Callable[[dict], None] = lambda row: None,
               env: dict[str, str] | None = None) -> WorkerExit:
    """Run `cmd` until it has printed `expected` lines starting with `mark` (JSON after it),
    died, or stayed silent for `timeout` seconds between two lines."""
    with tempfile.TemporaryDirectory() as tmp:
        err_path = Path(tmp) / "stderr"
        with open(err_path, "w") as err:
            # own session: a kill reaches compilers and helpers the worker started
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                    start_new_session=True, env=env)
            LIVE.add(proc)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
            rows, dead = _collect(lines, expected, timeout, mark, on_row)
            if dead == "timeout":
                _kill(proc)
            else:
                proc.wait()
            LIVE.discard(proc)
        return WorkerExit(rows, dead, proc.returncode, _tail(err_path))


def stop_all() -> None:
    """Kill every running worker and what it started: they run in their own sessions, so a
    signal that ends the driver does not reach them (and they would go on using a GPU)."""
    for proc in list(LIVE):
        _kill(proc)
