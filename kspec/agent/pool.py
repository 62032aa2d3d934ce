"""Where candidates are evaluated: in this process, in a process pool on this host (one worker
per GPU, each pinned with CUDA_VISIBLE_DEVICES; or CPU interpreter workers), or on a Ray cluster
(`pip install 'kspec[cluster]'`; ray is imported only when asked for).

A job is the kspec.Kernel, the candidate source and the options of `evaluate.evaluate`; it
travels to another process or host as it is (a Kernel pickles as its spec's text, file and name,
compiled again once per worker).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .evaluate import Outcome, evaluate


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one job; returns Outcome.as_dict() (never raises)."""
    try:
        return evaluate(job["kernel"], job["source"], **job["options"]).as_dict()
    except Exception as e:  # noqa: BLE001
        return Outcome("compile_error", f"{type(e).__name__}: {e}").as_dict()


def _outcome(d: dict[str, Any]) -> Outcome:
    return Outcome(**d)


class LocalEvaluator:
    """Sequentially, in this process."""

    workers = 1

    def map(self, jobs: list[dict[str, Any]]) -> list[Outcome]:
        return [_outcome(run_job(j)) for j in jobs]

    def close(self) -> None:
        pass


_SLOTS: Any = None


def _init_worker(slots, device: str) -> None:
    slot = slots.get()
    if device == "cuda":
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


class PoolEvaluator:
    """A process pool on this host: one worker per GPU (device 'cuda'), or `workers` CPU
    interpreter workers. Jobs run in parallel; results come back in order."""

    def __init__(self, device: str = "cpu", workers: int | None = None):
        ctx = multiprocessing.get_context("spawn")
        if device == "cuda":
            import torch
            n = torch.cuda.device_count()
            workers = min(workers or n, n)
        else:
            workers = workers or max(1, (os.cpu_count() or 2) // 2)
        self.workers = workers
        slots = ctx.Queue()
        for i in range(workers):
            slots.put(i)
        self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(slots, device))

    def map(self, jobs: list[dict[str, Any]]) -> list[Outcome]:
        return [_outcome(d) for d in self._pool.map(run_job, jobs)]

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class RayEvaluator:
    """Jobs as Ray tasks (one GPU each when the device is 'cuda'), across a cluster's hosts.
    address=None starts (or joins) a local Ray instance."""

    def __init__(self, device: str = "cpu", address: str | None = None,
                 workers: int | None = None):
        try:
            import ray
        except ImportError:
            from ..errors import KspecError
            raise KspecError("Ray is not installed: pip install 'kspec[cluster]'") from None
        self._ray = ray
        if not ray.is_initialized():
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
            ray.init(ignore_reinit_error=True, log_to_driver=False, **kw)
        gpus = 1 if device == "cuda" else 0
        self._task = ray.remote(num_gpus=gpus, num_cpus=1)(run_job)
        self.workers = workers or int(ray.cluster_resources().get("GPU" if gpus else "CPU", 1))

    def map(self, jobs: list[dict[str, Any]]) -> list[Outcome]:
        return [_outcome(d) for d in self._ray.get([self._task.remote(j) for j in jobs])]

    def close(self) -> None:
        pass


def evaluator(kind: str = "local", device: str = "cpu", workers: int | None = None,
              address: str | None = None):
    if kind == "ray":
        return RayEvaluator(device, address, workers)
    if kind == "pool" or (workers or 1) > 1:
        return PoolEvaluator(device, workers)
    return LocalEvaluator()
