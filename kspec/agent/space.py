"""The autotuner's search space: per pattern, the schedule keys a backend reads, the values to
try, pruning by the target's resource limits before anything is compiled, and a deterministic
cost model (the search order on a GPU; the pick itself on CPU, where no time means anything).

Triton: the keys of the generated module ("<launch>.<NAME>", read by its host
`launch(..., schedule=...)`); `schedule_source` bakes a schedule into the module.
CUDA / HIP (`cxx_launch_spaces`): "<launch>.tile" of a tensor-core contraction, compiled into
the source (TileSpace), and the launch-time keys "rows" and "vector" (LaunchKeys);
`cxx_schedule_source` appends the schedule to the C++ text as a comment the launcher reads back.
Either way a candidate is one self-contained source: verified, stored and rebuilt as it is.
"""
from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from .. import ir
from ..lowering import plan_kernel
from ..lowering.policy import NARROW_GEMM


@dataclass(frozen=True)
class Target:
    """Resource limits of one device (per program / thread block)."""

    arch: str
    smem: int          # shared memory bytes a program may use
    sms: int           # multiprocessors (parallel programs at one per SM)
    max_warps: int = 32
    regs_per_thread: int = 255
    interpreter: bool = False

    @staticmethod
    def for_arch(arch: str, sms: int | None = None) -> "Target":
        if arch == "cpu":
            return Target("cpu", 1 << 30, sms or 4, interpreter=True)
        table = {"sm_80": (166912, 108), "sm_86": (101376, 84), "sm_89": (101376, 128),
                 "sm_90": (232448, 132), "sm_90a": (232448, 132), "sm_100": (232448, 148),
                 "gfx90a": (65536, 104), "gfx942": (65536, 304)}
        smem, n = table.get(arch, (101376, 80))
        return Target(arch, smem, sms or n, max_warps=16 if arch.startswith("gfx") else 32)

    @staticmethod
    def of_device(device: Any) -> "Target":
        import torch

        from .store import device_arch
        arch = device_arch(device)
        if arch == "cpu":
            return Target.for_arch("cpu")
        props = torch.cuda.get_device_properties(device)
        smem = getattr(props, "shared_memory_per_block_optin", 0) or None
        t = Target.for_arch(arch, props.multi_processor_count)
        return Target(t.arch, smem or t.smem, t.sms, t.max_warps)


def _p2(lo: int, hi: int) -> list[int]:
    return [1 << e for e in range(int(math.log2(lo)), int(math.log2(hi)) + 1)]


def np2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass
class LaunchSpace:
    """The tunable keys of one launch and what the problem looks like to it."""

    prefix: str                      # "0", "1", ...
    pattern: str
    keys: tuple[str, ...]            # schedule names the module reads for this launch
    dims: dict[str, int] = field(default_factory=dict)   # problem sizes (rows, cols, m, n, k..)
    elem_bytes: int = 4

    def full(self, name: str) -> str:
        """The schedule key of one of this launch's names ("0.BLOCK_R"; global keys as they are)."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def own(self, schedule: dict[str, Any]) -> dict[str, Any]:
        """This launch's part of a full schedule, by short name."""
        return {k: schedule[self.full(k)] for k in self.keys if self.full(k) in schedule}

    def values(self, t: Target) -> dict[str, list[Any]]:
        d, cpu = self.dims, t.interpreter
        if self.pattern == "rows":
            r = np2(d.get("inner", 1024))
            return {"BLOCK_R": sorted({min(r, v) for v in (_p2(64, 512) if cpu else
                                                          _p2(256, 8192))}),
                    "BLOCK_P": [v for v in ([1, 2, 4] if cpu else [1, 2, 4, 8])
                                if v <= np2(d.get("outer", 8))] or [1],
                    "WARPS": [4] if cpu else [1, 2, 4, 8, 16, 32]}
        if self.pattern == "pointwise":
            i = np2(d.get("inner", 1024))
            return {"BLOCK_I": sorted({min(i, v) for v in (_p2(32, 256) if cpu else
                                                          _p2(128, 4096))}),
                    "BLOCK_P": [v for v in ([1, 2, 4] if cpu else [1, 2, 4, 8, 16])
                                if v <= np2(d.get("outer", 8))] or [1],
                    "WARPS": [4] if cpu else [2, 4, 8, 16]}
        if self.pattern == "contraction":
            tiles = [16, 32] if cpu else [64, 128, 256]
            out = {"BLOCK_M": tiles, "BLOCK_N": tiles,
                   "BLOCK_K": [16, 32] if cpu else [32, 64, 128],
                   "STAGES": [1] if cpu else [2, 3, 4, 5], "WARPS": [4] if cpu else [4, 8]}
            if "channels" in d:   # a convolution: its depth order, and 16-deep window steps
                out["WINDOW"] = [True, False]
                if not cpu:
                    out["BLOCK_K"] = [16, 32, 64]
            # split-K only where it can pay: a depth of 64 steps or more whose output leaves
            # multiprocessors idle even at the smallest tile (else the host code's own choice)
            few = math.ceil(d.get("m", 1 << 20) / tiles[0]) * math.ceil(
                d.get("n", 1 << 20) / tiles[0]) * d.get("batch", 1) < t.sms
            if few and d.get("k", 0) >= 64 * tiles[-1]:
                out["SPLIT_K"] = [1, 2, 4] if cpu else [1, 2, 4, 8, 16, 32, 64, 128]
            return out
        if self.pattern == "matvec":
            return {"BLOCK_K": [16, 64] if cpu else [16, 64, 256, 512, 1024],
                    "SPLIT_K": [1, 2, 4] if cpu else [1, 2, 4, 8, 16],
                    "WARPS": [4] if cpu else [4, 8]}
        if self.pattern == "attention":
            return {"BLOCK_M": [16, 32] if cpu else [64, 128, 256],
                    "BLOCK_N": [16, 32] if cpu else [32, 64, 128],
                    "STAGES": [1] if cpu else [1, 2, 3, 4], "WARPS": [4] if cpu else [4, 8]}
        if self.pattern == "split":
            return {"SPLIT": [4, 16, 64] if cpu else [64, 128, 256, 512, 1024],
                    "BLOCK_R": [64, 256] if cpu else [256, 512, 1024, 2048, 4096]}
        # loop_nest
        return {"BLOCK_P": [1] if d.get("outer", 1) == 0 else ([8, 32] if cpu else [1, 8, 32, 128]),
                "BLOCK_R": [32, 128] if cpu else [32, 64, 128, 256, 512],
                "WARPS": [4] if cpu else [2, 4, 8]}

    def fits(self, s: dict[str, Any], t: Target) -> str | None:
        """None when the schedule fits the target, else why not (pruned before compiling)."""
        threads = 32 * s.get("WARPS", 4)
        if s.get("WARPS", 4) > t.max_warps:
            return f"{s['WARPS']} warps > {t.max_warps}"
        d, b = self.dims, self.elem_bytes
        if self.pattern in ("rows", "pointwise", "loop_nest"):
            tile = s.get("BLOCK_P", 1) * s.get("BLOCK_R", s.get("BLOCK_I", 1))
            if not t.interpreter:
                if tile // threads > 64:
                    return f"{tile} elements over {threads} threads: > 64 registers each"
                if tile < threads:
                    return f"{tile} elements < {threads} threads"
            if self.pattern == "rows" and s.get("BLOCK_P", 1) > 1 and \
                    s.get("BLOCK_R", 0) < d.get("inner", 0):
                return "several rows per program only when a row fits one block"
        if self.pattern == "contraction":
            bm, bn, bk, st = s["BLOCK_M"], s["BLOCK_N"], s["BLOCK_K"], s.get("STAGES", 1)
            smem = max(st - 1, 1) * (bm * bk + bk * bn) * b
            if smem > t.smem:
                return f"shared memory {smem} B > {t.smem} B"
            return _tile_fits(bm, bn, bk, threads, d, t)
        if self.pattern == "attention":
            bm, bn, st = s["BLOCK_M"], s["BLOCK_N"], s.get("STAGES", 1)
            dk, dv = np2(max(16, d.get("d", 64))), np2(max(16, d.get("dv", 64)))
            smem = (bm * dk + max(st - 1, 1) * bn * (dk + dv)) * b
            if smem > t.smem:
                return f"shared memory {smem} B > {t.smem} B"
            if not t.interpreter and (bm * dv + bm * bn) // threads > 192:
                return f"tiles {bm}x{dv}+{bm}x{bn} over {threads} threads: > 192 registers"
            if "q" in d and bm > max(16, np2(d["q"])) or "kv" in d and bn > max(16, np2(d["kv"])):
                return "tile larger than the sequence"
        return None

    def cost(self, s: dict[str, Any], t: Target) -> float:
        """A unitless estimate (lower is better): padding waste x idle SMs x register pressure.
        Deterministic; orders the GPU search and decides on CPU."""
        d = self.dims
        def waste(n: int, blk: int) -> float:
            return math.ceil(max(n, 1) / blk) * blk / max(n, 1)
        def idle(programs: int) -> float:
            return max(1.0, 2 * t.sms / max(programs, 1)) ** 0.5
        threads = 32 * s.get("WARPS", 4)
        if self.pattern in ("rows", "pointwise", "loop_nest"):
            bp = s.get("BLOCK_P", 1)
            br = s.get("BLOCK_R", s.get("BLOCK_I", 1))
            outer, inner = d.get("outer", 1), d.get("inner", 1)
            programs = math.ceil(outer / bp) * (math.ceil(inner / br)
                                                if self.pattern == "pointwise" else 1)
            per_thread = bp * br / threads
            passes = 1.0 if self.pattern != "rows" or br >= inner else 1.6
            return (waste(outer, bp) * waste(inner, br) * idle(programs) * passes
                    * (1 + abs(math.log2(max(per_thread, 1) / 16)) / 8))
        if self.pattern == "contraction":
            tile = _tile_cost(s["BLOCK_M"], s["BLOCK_N"], s["BLOCK_K"], s.get("STAGES", 3),
                              threads, d, t, s.get("SPLIT_K", 1))
            if "WINDOW" not in s:
                return tile
            # the window pads the channels to whole steps, but padded lanes are masked loads
            # (no traffic) into cheap tensor-core steps; the flat depth pays divisions per
            # element and index. Fitted to bench/sweeps/session10_conv.py on an H200 (8 to 64
            # channels): flat 1.4x slower at no padding, window at 8 channels of 16 1.45x
            # faster than flat in 32-deep steps
            bk, k = s["BLOCK_K"], d.get("k", s["BLOCK_K"])
            flat = waste(k, bk)
            return tile / flat * (waste(d["channels"], bk) ** 0.4 if s["WINDOW"]
                                  else 1.4 * flat)
        if self.pattern == "matvec":
            # memory-bound: programs to keep every multiprocessor streaming, no padded depth
            # steps, few slices to add up (the rows are what BLOCK_K leaves of 4096 elements)
            split, bk = s.get("SPLIT_K", 1), s["BLOCK_K"]
            wide = max(d.get("m", 1), d.get("n", 1))
            programs = math.ceil(wide / max(1, 4096 // bk)) * d.get("batch", 1) * split
            return (max(1.0, 4 * t.sms / max(programs, 1)) ** 0.5
                    * waste(math.ceil(d.get("k", bk) / split), bk) * (1 + split / 64)
                    * (1 + abs(math.log2(4096 / threads / 32)) / 16))
        if self.pattern == "attention":
            bm, bn = s["BLOCK_M"], s["BLOCK_N"]
            q, kv = d.get("q", bm), d.get("kv", bn)
            programs = math.ceil(q / bm) * d.get("batch", 1)
            return (waste(q, bm) * waste(kv, bn) * idle(programs) * (1 + 64 / bm + 16 / bn)
                    * (1 + 0.1 * abs(s.get("STAGES", 2) - 2)))
        if self.pattern == "split":
            n = d.get("inner", 1 << 20)
            chunk = math.ceil(n / s["SPLIT"])
            return idle(s["SPLIT"]) * waste(chunk, s["BLOCK_R"]) * (1 + s["SPLIT"] / 4096)
        return 1.0


def _tile_fits(bm: int, bn: int, bk: int, threads: int, d: dict[str, int],
               t: Target) -> str | None:
    """What a contraction tile must satisfy besides shared memory (Triton's and C++'s alike)."""
    if not t.interpreter and bm * bn // threads > 128:
        return f"accumulator {bm}x{bn} over {threads} threads: > 128 registers each"
    for name, v, n in (("BLOCK_M", bm, "m"), ("BLOCK_N", bn, "n"), ("BLOCK_K", bk, "k")):
        if n in d and v > max(16, np2(d[n])):
            return f"{name}={v} > {n}={d[n]}"
    return None


def _tile_cost(bm: int, bn: int, bk: int, stages: int, threads: int, d: dict[str, int],
               t: Target, split: int = 1) -> float:
    """Padding waste x partial waves x operand traffic x stage and per-thread penalties; with
    split-K (`split` slices of the depth), a slice's pipeline fill and partial tile write per
    32 steps it multiplies."""
    def waste(n: int, blk: int) -> float:
        return math.ceil(max(n, 1) / blk) * blk / max(n, 1)
    m, n, k = d.get("m", bm), d.get("n", bn), d.get("k", bk)
    tiles = math.ceil(m / bm) * math.ceil(n / bn) * d.get("batch", 1) * split
    waves = math.ceil(tiles / t.sms)
    traffic = (1 / bm + 1 / bn) * 64          # operand loads per flop, relative
    steps = math.ceil(math.ceil(k / split) / bk)
    fill = 1 + (split > 1) * 32 / max(steps, 1)
    return (waste(m, bm) * waste(n, bn) * waste(math.ceil(k / split), bk) * waves * t.sms
            / max(tiles, 1) * (1 + traffic) * (1 + 0.1 * abs(stages - 3))
            * (1 + abs(math.log2(bm * bn / threads / 64)) / 8) * fill)


# --- CUDA / HIP ------------------------------------------------------------------------------
def tile_choices(path: str) -> tuple[str, ...]:
    """The valid tiles of a tensor-core path (contraction.Tile.valid): the backend's listed
    choices first, then a grid of BM, BN in 64..256, BK 32..128, 4..16 warps, 2..5 stages."""
    from ..backends.cxx import contraction

    listed = contraction.TILE_CHOICES
    listed = listed.get(path, ()) if isinstance(listed, dict) else listed
    grid = [f"{bm}x{bn}x{bk}w{w}s{st}" for bm in (64, 128, 256) for bn in (64, 128, 256)
            for bk in (32, 64, 128) for w in (4, 8, 16) for st in (2, 3, 4, 5)]
    out = []
    for key in dict.fromkeys([*listed, *grid]):
        try:
            if _parse_tile(key, path).valid():
                out.append(key)
        except ValueError:
            continue
    return tuple(out)


def _parse_tile(key: str, path: str):
    from ..backends.cxx.contraction import parse_tile
    return parse_tile(key, path)


@dataclass
class TileSpace(LaunchSpace):
    """A tensor-core contraction launch of the C++ backends: the key "tile"
    (BMxBNxBKwWARPSsSTAGES, kspec/backends/cxx/contraction.py), one compiled kernel each, of the
    target's tensor-core `path` (mma_sync, wgmma). `a_kmajor` / `b_kmajor`: how the operands
    are staged (None: unknown, the worst case is assumed)."""

    a_kmajor: bool | None = None
    b_kmajor: bool | None = None
    path: str = "mma_sync"
    REGISTER_FILE: ClassVar[int] = 65536     # 32-bit registers per block (NVIDIA sm_80+)

    def values(self, t: Target) -> dict[str, list[Any]]:
        return {"tile": list(tile_choices(self.path))}

    def shared_bytes(self, tile) -> int:
        a_layouts = (self.a_kmajor,) if self.a_kmajor is not None else (True, False)
        b_layouts = (self.b_kmajor,) if self.b_kmajor is not None else (True, False)
        return max(tile.shared_bytes(a, b) for a in a_layouts for b in b_layouts)

    def fits(self, s: dict[str, Any], t: Target) -> str | None:
        try:
            tile = _parse_tile(s["tile"], self.path)
        except ValueError as e:
            return str(e)
        if not tile.valid():
            return f"tile {s['tile']} is not valid for the {self.path} tensor-core path"
        if tile.threads // 32 > t.max_warps:
            return f"{tile.threads // 32} warps > {t.max_warps}"
        smem = self.shared_bytes(tile)
        if smem > t.smem:
            return f"shared memory {smem} B > {t.smem} B"
        # a block's threads share the register file: f32 accumulators + ~64 for the rest
        avail = min(t.regs_per_thread, self.REGISTER_FILE // tile.threads)
        acc = tile.bm * tile.bn // tile.threads
        if acc + 64 > avail:
            return (f"accumulator {tile.bm}x{tile.bn} over {tile.threads} threads: {acc} + 64 "
                    f"registers each > {avail}")
        return _tile_fits(tile.bm, tile.bn, tile.bk, tile.threads, self.dims, t)

    def cost(self, s: dict[str, Any], t: Target) -> float:
        tile = _parse_tile(s["tile"], self.path)
        return _tile_cost(tile.bm, tile.bn, tile.bk, tile.stages, tile.threads, self.dims, t)


@dataclass
class LaunchKeys(LaunchSpace):
    """The C++ plan's launch-time choices, global to the kernel (prefix ""): "rows" (None: the
    backend's heuristic, "block": a block per row, "loop": looped rows without a register
    cache) and "vector" (False: no 16-byte packs). Defaults are left out of a schedule.
    The cost model never prefers forcing a choice over the heuristic: only timing can."""

    DEFAULTS: ClassVar[dict[str, Any]] = {"rows": None, "vector": True}

    def values(self, t: Target) -> dict[str, list[Any]]:
        return {"rows": [None, "block", "loop"], "vector": [True, False]}

    def fits(self, s: dict[str, Any], t: Target) -> str | None:
        return None

    def cost(self, s: dict[str, Any], t: Target) -> float:
        f = 1.25 if s.get("vector", True) is False else 1.0     # scalar loads and stores
        rows = s.get("rows")
        return f * (1.6 if rows == "loop" else 1.1 if rows == "block" else 1.0)


def cxx_launch_spaces(plan, env: dict[str, int] | None = None) -> list[LaunchSpace]:
    """The C++ plan's tunable keys: a TileSpace per tensor-core contraction unit of `plan`
    (kspec.backends.cxx.plan_for(kernel, dialect, arch)), then the launch-time keys its units
    read (LaunchKeys), with the problem sizes at `env`. A contraction's prefix and sizes are
    its unit's own (`unit.index`, `unit.launch`): the C++ plan numbers its launches its own
    way (a fused attention and its standby launches 0, 1..3; Triton's 0a..0c)."""
    env = env or {}
    spaces: list[LaunchSpace] = []
    keys: list[str] = []
    for unit in plan.units:
        pattern = getattr(unit, "pattern", "")
        if pattern == "contraction":
            spaces.append(TileSpace(str(unit.index), "contraction", ("tile",),
                                    _dims(unit.launch, env), 2,
                                    unit.data.get("a_kmajor"), unit.data.get("b_kmajor"),
                                    unit.data.get("kind") or plan.dialect.tensor_cores
                                    or "mma_sync"))
            if any(v.endswith("_async") for v in unit.variants):
                keys.append("vector")
        elif pattern == "rows":
            keys += ["rows", "vector"]
        elif pattern == "pointwise" and len(unit.variants) > 1:
            keys.append("vector")
    if keys:
        spaces.append(LaunchKeys("", "launch", tuple(k for k in ("rows", "vector") if k in keys)))
    return spaces


# Names a generated Triton module reads from its schedule that are not searched: the precision
# is the user's, and fusion, index width and compensation are correctness choices the module
# makes from the sizes (tests force them, the tuner leaves them alone)
SIZE_CHOICES = ("INDEX64", "COMPENSATED")
LAUNCH_CHOICES = ("PRECISION", "fuse") + SIZE_CHOICES


def launch_spaces(kernel: ir.Kernel, source: str, env: dict[str, int] | None = None
                  ) -> list[LaunchSpace]:
    """One LaunchSpace per launch of the plan (attention: the fused kernel only), with the keys
    the generated `source` actually reads and the problem sizes at `env`."""
    env = env or {}
    keys: dict[str, list[str]] = {}
    for full in re.findall(r"schedule\.get\('(\w+)\.(\w+)'", source):
        prefix, name = full
        if name not in LAUNCH_CHOICES and \
                name not in keys.setdefault(prefix, []):
            keys[prefix].append(name)
    elem = max((p.dtype.torch.itemsize for p in kernel.tensor_params), default=4)
    out = []
    for n, launch in enumerate(plan_kernel(kernel).launches):
        prefix, pattern, dims = str(n), launch.pattern, _dims(launch, env)
        if pattern == "contraction" and min(dims.get("m", 0), dims.get("n", 0)) in \
                range(1, NARROW_GEMM + 1):
            prefix, pattern = f"{n}m", "matvec"   # the launch runs its matvec kernel there
        if prefix not in keys:
            continue
        out.append(LaunchSpace(prefix, pattern, tuple(keys[prefix]), dims, elem))
    return out


def _size(vars_, env) -> int:
    try:
        return math.prod(v.extent.evaluate(env) for v in vars_) if env else 0
    except (KeyError, ValueError, ZeroDivisionError):
        return 0


def _dims(launch, env: dict[str, int]) -> dict[str, int]:
    if not env:
        return {}
    d: dict[str, int] = {}
    if launch.pattern in ("rows", "pointwise"):
        stmt = launch.statements[0]
        inner = launch.inner or (stmt.index[-1] if stmt.index else None)
        outer = launch.outer or tuple(stmt.index[:-1])
        d["inner"] = _size([inner], env) if inner is not None else 1
        d["outer"] = _size(outer, env) if outer else 1
    elif launch.pattern == "contraction":
        c = launch.contraction
        d.update(m=_size(c.iv, env), n=_size(c.jv, env), k=_size(c.kv, env),
                 batch=_size(c.batch, env) if c.batch else 1)
        window, channels = c.window_split()
        if window:
            d["channels"] = _size(channels, env)
    elif launch.pattern == "attention":
        a = launch.attention
        d.update(q=_size([a.scores.i], env), kv=_size([a.scores.j], env),
                 d=_size([a.scores.k], env), dv=_size([a.out.j], env),
                 batch=_size(a.scores.batch, env) if a.scores.batch else 1)
    elif launch.pattern == "split":
        reds = [x for x in ir.walk(launch.statements[0].value) if isinstance(x, ir.Reduce)]
        d["inner"] = max((_size(r.vars, env) for r in reds), default=1)
    else:
        stmt = launch.statements[0]
        d["outer"] = _size(stmt.index, env) if stmt.index else 0
    return {k: v for k, v in d.items() if v}


@dataclass
class Choice:
    schedule: dict[str, Any]          # full keys: {"0.BLOCK_R": 1024, ...}
    cost: float
    pruned: str | None = None


def enumerate_space(space: LaunchSpace, target: Target) -> list[Choice]:
    """Every combination of the launch's values, each with its cost or the reason it was pruned;
    fitting ones first, cheapest first (ties: the declared order)."""
    vals = {k: v for k, v in space.values(target).items() if k in space.keys}
    names = list(vals)
    defaults = getattr(space, "DEFAULTS", {})
    out = []
    for combo in itertools.product(*(vals[k] for k in names)):
        s = dict(zip(names, combo))
        why = space.fits(s, target)
        out.append(Choice({space.full(k): v for k, v in s.items()
                           if k not in defaults or defaults[k] != v},
                          math.inf if why else space.cost(s, target), why))
    return sorted(out, key=lambda c: (c.pruned is not None, c.cost))


def choose(spaces: list[LaunchSpace], target: Target, limit: int = 32,
           same: Callable[[dict[str, Any]], str | None] | None = None
           ) -> tuple[list[Choice], list[Choice]]:
    """(the `limit` cheapest fitting schedules over all launches, the pruned ones). Launches are
    searched one at a time (the others at their defaults). `same(schedule)`: why a fitting
    schedule would run the same kernels as one already there (the fixed schedule, an earlier
    choice), or None; such schedules are left out before the limit applies."""
    keep, pruned = [], []
    per = max(1, limit // max(1, len(spaces)))
    for sp in spaces:
        choices = enumerate_space(sp, target)
        fit: list[Choice] = []
        for c in choices:
            if c.pruned is not None or len(fit) >= per:
                continue
            c.pruned = same(c.schedule) if same is not None else None
            if c.pruned is None:
                fit.append(c)
        keep += fit
        pruned += [c for c in choices if c.pruned is not None]
    return keep, pruned


def candidates(kernel: ir.Kernel, source: str, env: dict[str, int], target: Target,
               limit: int = 32) -> tuple[list[Choice], list[Choice]]:
    """Triton: `choose` over the launch spaces of the generated module `source`."""
    return choose(launch_spaces(kernel, source, env), target, limit)


_TRAILER = '''

# --- kspec autotuner: this module's schedule (kspec/agent/space.py) ---
KSPEC_SCHEDULE = {schedule!r}
_kspec_untuned_launch = launch


def launch(*args, schedule=None):
    return _kspec_untuned_launch(*args, schedule={{**KSPEC_SCHEDULE, **(schedule or {{}})}})
'''


def schedule_source(source: str, schedule: dict[str, Any]) -> str:
    """The generated module with `schedule` as its defaults: a self-contained candidate."""
    return source.rstrip("\n") + "\n" + _TRAILER.format(schedule=dict(sorted(schedule.items())))


_CXX_BANNER = ("// --- kspec autotuner: the schedule this source was generated and is launched "
               "with (kspec/agent/space.py) ---")
_CXX_MARK = re.compile(r"^// KSPEC_SCHEDULE (.*)$", re.M)


def cxx_schedule_source(source: str, schedule: dict[str, Any]) -> str:
    """C++ text with `schedule` as a trailing comment (the compile-time tiles the text was
    generated with and the launch-time choices): a self-contained candidate."""
    text = source.rstrip("\n") + "\n"
    if not schedule:
        return text
    line = json.dumps(dict(sorted(schedule.items())))
    return f"{text}\n{_CXX_BANNER}\n// KSPEC_SCHEDULE {line}\n"


def cxx_schedule(source: str) -> tuple[str, dict[str, Any]]:
    """(the C++ text without the schedule comment, the schedule; {} when there is none)."""
    found = list(_CXX_MARK.finditer(source))
    if not found:
        return source, {}
    m = found[-1]
    head = source[:m.start()].rstrip("\n").removesuffix(_CXX_BANNER)
    return head.rstrip("\n") + "\n", json.loads(m.group(1))


def compile_time(schedule: dict[str, Any]) -> dict[str, Any]:
    """The keys that change the C++ text (tiles); the rest are read at launch."""
    return {k: v for k, v in schedule.items() if k == "tile" or k.endswith(".tile")}
