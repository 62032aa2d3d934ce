"""The candidate's side of the gate: a fresh interpreter (`python3 -m kspec.verify.worker`,
started by `isolation.Worker`) that imports one candidate, runs it on the inputs the parent
sends and sends back its outputs with a record of the kernel launches it made.

Nothing of the checker lives here: the reference, the comparison and the input canaries stay in
the parent, which never imports candidate code. No torch function is replaced. What the worker
adds is below torch and beside the candidate:
- glibc's MALLOC_PERTURB_ (set by the parent for this process) fills every fresh allocation
  with 0x7F bytes, whichever API made it (torch.empty, new_empty, empty_like ...): an element
  a kernel never writes holds 3.4e38 (f32, bf16, f64) or NaN (f16), not a stale right answer;
- every Triton kernel launch (compiled or interpreted) is recorded: its kernel, the stream it
  ran on, its integer and boolean launch arguments (the branch constexprs), and the storages it
  was given; each tensor argument runs on a copy of its whole storage inside 0xFF fences, copied
  back after the launch, so a write past the end of any buffer (the candidate's own included)
  breaks a fence. Removing the recorder makes a candidate record no launch: it fails closed.
"""
from __future__ import annotations

import os
import socket
import sys
import warnings
from multiprocessing.connection import Connection
from typing import Any

FENCE_BYTES = 4096      # bytes of fence on each side of every shadowed storage
FENCE = 0xFF


class Shadows:
    """Fenced copies of the storages of one launch's tensor arguments."""

    def __init__(self, empty):
        self.empty = empty                       # torch.empty as it was before any candidate
        self.by_storage: dict[int, tuple[Any, Any]] = {}
        self.ranges: list[tuple[int, int]] = []  # [start, end) of each tensor argument's view

    def of(self, t):
        import torch

        st = t.untyped_storage()
        key = st.data_ptr()
        if key not in self.by_storage:
            n = st.nbytes()
            whole = self.empty((n + 2 * FENCE_BYTES,), dtype=torch.uint8, device=t.device)
            whole.fill_(FENCE)
            whole[FENCE_BYTES:FENCE_BYTES + n].copy_(_bytes_of(st, t.device, self.empty))
            self.by_storage[key] = (st, whole)
        _, whole = self.by_storage[key]
        view = self.empty((0,), dtype=t.dtype, device=t.device)
        view.set_(whole.untyped_storage(), FENCE_BYTES // t.element_size() + t.storage_offset(),
                  t.size(), t.stride())
        if view.numel():
            extent = 1 + sum((n - 1) * abs(st) for n, st in zip(view.shape, view.stride()))
            self.ranges.append((view.data_ptr(), view.data_ptr() + extent * view.element_size()))
        return view

    def finish(self) -> int:
        """Copy every shadow back; return how many had a fence written."""
        broken = 0
        for st, whole in self.by_storage.values():
            n = st.nbytes()
            head, tail = whole[:FENCE_BYTES], whole[FENCE_BYTES + n:]
            if not (bool((head == FENCE).all()) and bool((tail == FENCE).all())):
                broken += 1
            _bytes_of(st, whole.device, self.empty).copy_(whole[FENCE_BYTES:FENCE_BYTES + n])
        return broken


def _bytes_of(storage, device, empty):
    import torch

    view = empty((0,), dtype=torch.uint8, device=device)
    view.set_(storage)
    return view


def install_recorder(launches: list[dict[str, Any]]) -> None:
    """Record every launch of a Triton kernel (JITFunction.run, InterpretedFunction.run) and
    run it on fenced shadows of its tensor arguments."""
    import torch
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    empty = torch.empty
    for cls in (JITFunction, InterpretedFunction):
        def run(self, *args, grid, warmup, _original=cls.run, **kwargs):
            if warmup or not RECORDING["on"]:
                return _original(self, *args, grid=grid, warmup=warmup, **kwargs)
            fn = getattr(self, "fn", None)
            record: dict[str, Any] = {
                "kernel": getattr(fn, "__name__", type(self).__name__),
                "constexprs": {k: v for k, v in kwargs.items()
                               if isinstance(v, (bool, int)) and not k.startswith("num_")},
                "storages": [], "side_stream": False}
            shadows = Shadows(empty)

            def swap(a):
                if isinstance(a, torch.Tensor):
                    record["storages"].append(a.untyped_storage().data_ptr())
                    if a.is_cuda and torch.cuda.current_stream(a.device) != CALLER_STREAM.get(
                            a.device.index):
                        record["side_stream"] = True
                    return shadows.of(a)
                return a

            args = tuple(swap(a) for a in args)
            kwargs = {k: swap(v) for k, v in kwargs.items()}
            BOUNDS.update(ranges=shadows.ranges, outside=[])
            try:
                return _original(self, *args, grid=grid, warmup=warmup, **kwargs)
            finally:
                record["fences_broken"] = shadows.finish()
                record["outside"] = BOUNDS["outside"]
                BOUNDS.update(ranges=None, outside=[])
                launches.append(record)
        cls.run = run
    _check_interpreted_accesses()


# the interpreter's loads and stores are checked against the launch's buffers: a read past
# the end that a later tl.where discards is still a read out of bounds (a fault on a GPU)
BOUNDS: dict[str, Any] = {"ranges": None, "outside": []}


def _check_interpreted_accesses() -> None:
    import numpy as np
    from triton.runtime.interpreter import InterpreterBuilder

    def outside(ptrs, mask) -> bool:
        ranges = BOUNDS["ranges"]
        if ranges is None:
            return False
        addrs = ptrs.data[mask.data] if mask is not None else ptrs.data.ravel()
        if not addrs.size:
            return False
        size = _element_bytes(ptrs)
        ok = np.zeros(addrs.shape, dtype=bool)
        for lo, hi in ranges:
            ok |= (addrs >= lo) & (addrs + size <= hi)
        return not bool(ok.all())

    load, store = InterpreterBuilder.create_masked_load, InterpreterBuilder.create_masked_store

    # the cache and eviction arguments after these differ between Triton releases (3.8 added
    # eviction_policy to loads): passed on as they come
    def masked_load(self, ptrs, mask, other, *policies):
        if outside(ptrs, mask):
            BOUNDS["outside"].append("read")
        return load(self, ptrs, mask, other, *policies)

    def masked_store(self, ptrs, value, mask, *policies):
        if outside(ptrs, mask):
            BOUNDS["outside"].append("write")
        return store(self, ptrs, value, mask, *policies)
    InterpreterBuilder.create_masked_load = masked_load
    InterpreterBuilder.create_masked_store = masked_store


def _element_bytes(ptrs) -> int:
    ty = ptrs.get_element_ty()
    return max(1, getattr(ty, "primitive_bitwidth", 8) // 8)


CALLER_STREAM: dict[int | None, Any] = {}   # device index -> the stream the gate launches on
RECORDING = {"on": True}                     # off while the tuner times the candidate


def _is_compile_error(e: BaseException) -> bool:
    mod = type(e).__module__ or ""
    return mod.startswith("triton.compiler") or type(e).__name__ in (
        "CompilationError", "CompileTimeAssertionFailure")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


def _first_error_line(e: BaseException) -> str:
    """' | ' and the compiler's first error line after the message's first, if there is one."""
    err = next((ln.strip() for ln in str(e).strip().splitlines()[1:] if "error" in ln.lower()),
               None)
    return f" | {err[:300]}" if err else ""


class Session:
    """One candidate: loaded once, launched once per request."""

    def __init__(self) -> None:
        self.launch = None
        self.launches: list[dict[str, Any]] = []
        self.previous: list[Any] = []        # the last launch's outputs, kept alive

    def load(self, job: dict[str, Any]) -> tuple:
        try:
            if job["target"] == "triton":
                install_recorder(self.launches)
                from kspec.backends.triton.launcher import load_module
                module = load_module(job["source"], job["interpret"], prefix="kspec_candidate")
                if not callable(getattr(module, "launch", None)):
                    return ("compile_error", "the module defines no launch(...) function")
                self.launch = module.launch
            else:
                self.launch = _cxx_launch(job, self.launches)
        except SyntaxError as e:
            return ("compile_error", f"SyntaxError: {e.msg} (line {e.lineno})")
        except Exception as e:  # noqa: BLE001 - an import's or a compiler's failure
            return ("compile_error", _first_line(e) + _first_error_line(e))
        return ("loaded",)

    def run(self, call: list, schedule: dict | None) -> tuple:
        import torch

        del self.launches[:]
        devices = {a.device for a in call if isinstance(a, torch.Tensor) and a.is_cuda}
        for d in devices:
            CALLER_STREAM[d.index] = torch.cuda.current_stream(d)
            prime_device_pool(d, sum(a.untyped_storage().nbytes() for a in call
                                     if isinstance(a, torch.Tensor)))
        try:
            got = self.launch(*call, schedule=schedule) if schedule else self.launch(*call)
            for d in devices:        # the caller's stream, not a device-wide synchronize
                torch.cuda.current_stream(d).synchronize()
        except Exception as e:  # noqa: BLE001 - any crash of the candidate is a finding
            return ("raised", _is_compile_error(e), _first_line(e))
        got = got if isinstance(got, tuple) else (got,)
        inputs = [a for a in call if isinstance(a, torch.Tensor)]
        meta, outs = [], []
        launched = {p for r in self.launches for p in r["storages"]}
        for t in got:
            if not isinstance(t, torch.Tensor):
                meta.append({"type": type(t).__name__})
                outs.append(None)
                continue
            st = t.untyped_storage()
            meta.append({"device": t.device.type, "launched": st.data_ptr() in launched,
                         "aliases_input": any(_overlaps(t, a) for a in inputs),
                         "previous": any(st._cdata == p.untyped_storage()._cdata
                                         for p in self.previous)})
            outs.append(t.detach().cpu() if t.is_cuda else t.detach())
        self.previous = [t for t in got if isinstance(t, torch.Tensor)]
        return ("ok", meta, outs, list(self.launches))

    def time(self, spec: dict[str, Any], env: dict[str, int], options: dict[str, Any]) -> tuple:
        """The tuner's timing of this (verified) candidate at `env`, here rather than in the
        tuner's process, which never imports candidate code; unrecorded, unshadowed launches."""
        from kspec import loads
        from kspec.agent.workload import time_launch
        from kspec.binding import bind

        kernel = loads(spec["spec_text"], spec["file"])[spec["kernel"]]

        def launch(*args):
            if spec["target"] != "triton":
                return self.launch(*args)
            b = bind(kernel.ir, args, {})
            return self.launch(*[b.tensors[p] if p in b.tensors else b.scalars[p]
                                 for p in (q.name for q in kernel.ir.params)],
                               *[b.env[s] for s in kernel.ir.symbols])
        RECORDING["on"] = False
        try:
            return ("timed", time_launch(launch, kernel, env, options.pop("device"), **options))
        except Exception as e:  # noqa: BLE001 - a launch that fails at the timing size
            return ("raised", _is_compile_error(e) or "OutOfResources" in type(e).__name__,
                    _first_line(e))
        finally:
            RECORDING["on"] = True


def prime_device_pool(device, nbytes: int) -> None:
    """Leave 0x7F-filled free blocks in torch's CUDA caching allocator (one in its small pool,
    one in its large pool, several times the inputs' size), so that the candidate's next
    allocations, whichever API makes them, start poisoned as they do on the CPU. Best effort:
    an allocation served from another cached block is not poisoned."""
    import torch

    blocks = [torch.empty((1 << 20,), dtype=torch.uint8, device=device),
              torch.empty((4 * nbytes + (4 << 20),), dtype=torch.uint8, device=device)]
    for b in blocks:
        b.fill_(0x7F)
    del blocks


def _overlaps(a, b) -> bool:
    if a.device != b.device or not a.numel() or not b.numel():
        return False

    def span(t):
        extent = 1 + sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride()))
        return t.data_ptr(), t.data_ptr() + extent * t.element_size()
    (a0, a1), (b0, b1) = span(a), span(b)
    return a0 < b1 and b0 < a1


class _NotedRuntime:
    """A C++ launcher's runtime noting each launched function, for the branch report. kspec's
    own launcher makes every launch, on the caller's stream: no tensors are shadowed or
    fenced here (the guards around the call check the buffers)."""

    def __init__(self, runtime, launches: list[dict[str, Any]]):
        self.runtime, self.launches = runtime, launches

    def launch(self, function: str, *args, **kwargs):
        self.launches.append({"kernel": function, "constexprs": {}, "storages": [],
                              "side_stream": False, "fences_broken": 0, "outside": []})
        return self.runtime.launch(function, *args, **kwargs)


def _cxx_launch(job: dict[str, Any], launches: list[dict[str, Any]]):
    """A C++ candidate runs through kspec's own launcher, which makes every launch itself."""
    from kspec import loads
    from kspec.verify.launchers import cxx_launcher

    kernel = loads(job["spec_text"], job["file"])[job["kernel"]]
    launch, _ = cxx_launcher(kernel.ir, job["target"], job["source"], job.get("arch"), [],
                             job.get("schedule"))
    if launch is None:
        raise RuntimeError(f"no device here runs {job['target']} kernels")
    launch.runtime = _NotedRuntime(launch.runtime, launches)
    return launch


def serve(conn: Connection) -> None:
    session = Session()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "load":
            conn.send(session.load(request[1]))
        elif request[0] == "run":
            conn.send(session.run(request[1], request[2]))
        elif request[0] == "time":
            conn.send(session.time(*request[1:]))
        else:
            return


def main() -> None:
    import multiprocessing

    import torch.multiprocessing  # noqa: F401 - tensors cross the socket as shared memory

    os.environ.pop("MALLOC_PERTURB_", None)   # read by glibc at start; not left to be seen
    # numpy's overflow and NaN warnings from the interpreter are expected on these inputs
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    sock = socket.socket(fileno=int(sys.argv[1]))
    conn = Connection(sock.detach())
    # the parent's key: torch shares storages through multiprocessing's authenticated sharer
    multiprocessing.current_process().authkey = conn.recv_bytes()
    serve(conn)


if __name__ == "__main__":
    main()
