"""The lowering plan: a kernel's normalized statements grouped into GPU launches, each with a
pattern and a schedule. Backend-neutral data; every backend renders the same plan.

Patterns:
- pointwise:   one statement without reductions; a 2-D tile over (other indices, last index).
- rows:        statements sharing outer indices P, whose reductions run over one inner index
               of one extent (softmax, layernorm, rmsnorm chains). One program handles BLOCK_P
               rows; per-row results stay in registers for the statements after them; the whole
               row is read once when it fits in one tile (single pass), else in chunks. With
               `rows_any_axes` (Triton) the reductions may run over several indices (flattened:
               batchnorm's n, h, w) and a row vector may put its inner index anywhere
               (rmsnorm over channels: y[n, c, h, w] beside r[n, h, w]). Its `fallback` is the
               same group split for rows too long for one program: each reduction a split
               launch over its outer indices, each row vector a pointwise launch.
- split:       a reduction to a scalar (a loss, a norm), or per row of `outer` (a rows
               fallback): partial results from several programs per row, then a second pass
               combines them and evaluates the statement.
- contraction: (see below) its `fallback` is the same statement as a rows launch, for
               products with too few rows or columns for a tensor-core tile (matvec; the
               C++ backends run it, Triton has a matvec kernel of its own).
- scan:        one statement whose value is a prefix reduction along its index `inner`
               (lowering/scans.py): a program per row of `outer`, carrying the running value
               across blocks. Its `fallback` is the masked full reduction as a loop nest.
- loop_nest:   the always-correct fallback: one statement; each reduction loops over its
               flattened reduction space in chunks.
- contraction: `sum(A * B for k)` with A over (batch, i, k), B over (batch, k, j): tiled on the
               tensor cores, with the rest of the statement fused as an epilogue.
- attention:   contraction -> row max and row sum of exp(s - m) -> contraction with exp(s - m):
               one kernel in the online-softmax form (the score matrix never reaches memory).
               The three unfused launches stay in the plan as its fallback (head dims > 256).
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from .. import ir
from ..ops import ARG_REDUCTIONS
from ..shapes import Shape
from .normalize import Program, has_reduce, normalize
from .pairs import fused_pairs
from .scans import scan_as_reduce


@dataclass
class Launch:
    pattern: str
    statements: list[ir.Assign]
    outer: tuple[ir.IndexVar, ...] = ()        # indices spread over programs (flattened)
    inner: ir.IndexVar | None = None           # rows/pointwise: the index along a tile row
    reduced: tuple[ir.IndexVar, ...] = ()      # rows/split: the reduced indices (flattened)
    contraction: "Contraction | None" = None
    attention: "Attention | None" = None
    fallback: list["Launch"] = field(default_factory=list)
    schedule: dict = field(default_factory=dict)
    stores: tuple[str, ...] = ()               # buffers this launch writes to memory

    def __str__(self) -> str:
        targets = ", ".join(s.target for s in self.statements)
        outer = ", ".join(f"{v.name}<{v.extent}" for v in self.outer)
        inner_vars = self.reduced if len(self.reduced) > 1 else (self.inner,) * bool(self.inner)
        inner = " inner " + ", ".join(f"{v.name}<{v.extent}" for v in inner_vars) \
            if inner_vars else ""
        window = self.contraction.window_split()[0] if self.contraction is not None else ()
        if window:
            inner += " window " + ", ".join(f"{v.name}<{v.extent}" for v in window)
        sched = " ".join(f"{k}={v}" for k, v in self.schedule.items())
        return (f"{self.pattern:11s} -> {targets}  [outer {outer or '-'}{inner}]  "
                f"stores {', '.join(self.stores)}  {sched}".rstrip())


def window_min_channels(depth_step: int) -> int:
    """The fewest channels from which a convolution's window is walked one offset per depth
    step of `depth_step` channels (Contraction.window_split): half a step. Fewer leave most of
    each step's channel tile empty; the flattened depth is then faster (H200, KernelBench
    level-2 shapes: Triton's 16-deep steps from 8 channels, session 10; C++'s 32-deep steps at
    8 channels 1.4x slower than flattened, at 16 even, session 11)."""
    return max(1, depth_step // 2)


@dataclass(frozen=True)
class Contraction:
    """acc[batch.., I.., J..] = sum(a * b for K..): a GEMM whose rows are the indices of `a`
    alone (I), columns those of `b` alone (J), depth the reduced ones (K), each flattened; the
    statement's value with the Reduce replaced by the accumulator is the epilogue. A
    convolution is one: rows (n, p, q), columns o, depth (c, r, s), `a` read at p + r."""

    reduce: ir.Reduce
    a: ir.Expr
    b: ir.Expr
    batch: tuple[ir.IndexVar, ...]
    iv: tuple[ir.IndexVar, ...]
    jv: tuple[ir.IndexVar, ...]
    kv: tuple[ir.IndexVar, ...]

    # single-index views, for patterns (attention) that need exactly one of each
    @property
    def i(self) -> ir.IndexVar:
        return self.iv[0]

    @property
    def j(self) -> ir.IndexVar:
        return self.jv[0]

    @property
    def k(self) -> ir.IndexVar:
        return self.kv[0]

    @property
    def simple(self) -> bool:
        return len(self.iv) == len(self.jv) == len(self.kv) == 1

    def window_split(self) -> tuple[tuple[ir.IndexVar, ...], tuple[ir.IndexVar, ...]]:
        """(window, channels): the depth indices an operand reads offset by another index (a
        convolution's r and s in x[n, c, p + r, q + s]) and the other depth indices, when
        there are both; else ((), ()). A backend may walk the window one offset per depth
        step and the channels in tiles (no per-element index division), which pays from
        window_min_channels channels; any split
        covers the depth, so this decides speed, never the result."""
        window = {v for f in (self.a, self.b) for x in ir.walk(f) if isinstance(x, ir.Load)
                  for a in x.index if a.bare is None for v, _ in a.terms if v in self.kv}
        channels = tuple(v for v in self.kv if v not in window)
        if not window or not channels:
            return (), ()
        return tuple(v for v in self.kv if v in window), channels


@dataclass(frozen=True)
class Attention:
    """scores = epilogue(sum(q * k for d)); m = max(scores for j); l = sum(exp(scores - m) for j);
    out = epilogue(sum(exp(scores - m) * v for j), l)."""

    scores: Contraction          # i: query index, j: key index, k: head dim
    scores_stmt: ir.Assign
    out: Contraction             # i: query index, k: key index, j: value dim
    out_stmt: ir.Assign
    m_name: str
    l_name: str


@dataclass
class Plan:
    program: Program
    launches: list[Launch]

    @property
    def kernel(self) -> ir.Kernel:
        return self.program.kernel

    def __str__(self) -> str:
        p = self.program
        lines = [f"kernel {self.kernel.name}: {len(self.launches)} launch(es)"]
        if p.temporaries:
            temps = ", ".join(f"{n}: {p.buffers[n].dtype}[{', '.join(map(str, p.buffers[n].dims))}]"
                              for n in p.temporaries)
            lines.append(f"  temporaries: {temps}")
        lines += [f"  {i}. {launch}" for i, launch in enumerate(self.launches)]
        return "\n".join(lines) + "\n"


def has_gather(e: ir.Expr) -> bool:
    return any(isinstance(n, ir.Load) and ir.gathers(n) for n in ir.walk(e))


def reduces_of(e: ir.Expr) -> list[ir.Reduce]:
    return [n for n in ir.walk(e) if isinstance(n, ir.Reduce)]


def plan_kernel(kernel: ir.Kernel, rows_any_axes: bool = False) -> Plan:
    """The launches of a kernel. `rows_any_axes` lets row groups reduce over several indices
    and hold row vectors with the inner index anywhere (the Triton writer renders both; the C++
    rows pattern takes one reduced index, the last of every row vector)."""
    program = normalize(kernel)
    launches: list[Launch] = []
    pending: list[ir.Assign] = list(program.body)
    while pending:
        stmt = pending[0]
        if isinstance(stmt.value, ir.Scan) and has_gather(stmt.value):
            pending.pop(0)   # a gathering scan: the loop nest alone loads its index first
            launches.append(Launch("loop_nest", [dataclasses.replace(
                stmt, value=scan_as_reduce(stmt.value))], outer=stmt.index))
            continue
        if isinstance(stmt.value, ir.Scan):   # normalize leaves each scan a statement
            launches.append(Launch("scan", [pending.pop(0)], outer=tuple(
                v for v in stmt.index if v != stmt.value.bound), inner=stmt.value.bound))
            continue
        if has_gather(stmt.value):
            # x[i, t[i]]: addresses known only once t is loaded; the elementwise patterns and
            # the loop nest load the index first, the tiled patterns assume affine addresses
            pending.pop(0)
            pointwise = stmt.index and not has_reduce(stmt.value)
            launches.append(Launch("pointwise", [stmt], outer=stmt.index[:-1],
                                   inner=stmt.index[-1]) if pointwise else
                            Launch("loop_nest", [stmt], outer=stmt.index))
            continue
        if any(r.op in ARG_REDUCTIONS for r in reduces_of(stmt.value)):
            # argmax/argmin: (value, index) pairs, which only the loop nest carries so far
            launches.append(Launch("loop_nest", [pending.pop(0)], outer=stmt.index))
            continue
        contraction = match_contraction(stmt)
        if contraction is not None:
            launches.append(Launch("contraction", [stmt], contraction=contraction))
            pending.pop(0)
            continue
        group = take_row_group(pending, rows_any_axes)
        if group is not None:
            launches.append(group)
            del pending[:len(group.statements)]
            continue
        if not stmt.index and has_reduce(stmt.value):
            launches.append(Launch("split", [stmt]))
            pending.pop(0)
            continue
        pending.pop(0)
        if not has_reduce(stmt.value) and stmt.index:
            launches.append(Launch("pointwise", [stmt], outer=stmt.index[:-1],
                                   inner=stmt.index[-1]))
        else:
            launches.append(Launch("loop_nest", [stmt], outer=stmt.index))
    _assign_stores(program, launches)
    for launch in launches:
        if launch.pattern == "rows":
            launch.fallback = split_rows(launch)
        elif launch.pattern == "contraction":
            launch.fallback = [contraction_as_rows(launch)]
        elif launch.pattern == "scan":
            (stmt,) = launch.statements
            launch.fallback = [Launch("loop_nest", [dataclasses.replace(
                stmt, value=scan_as_reduce(stmt.value))], outer=stmt.index,
                stores=launch.stores)]
    launches = fuse_attention(program, launches)
    return Plan(program, launches)


def _assign_stores(program: Program, launches: list[Launch]) -> None:
    """A launch stores what is an output or is read by a later launch; per-row values used
    only inside their own launch stay in registers."""
    outputs = {o.name for o in program.kernel.outputs}
    for n, launch in enumerate(launches):
        later = set()
        for other in launches[n + 1:]:
            for s in other.statements:
                later |= _reads(s.value)
        launch.stores = tuple(s.target for s in launch.statements
                              if s.target in outputs or s.target in later)


def _reads(e: ir.Expr) -> set[str]:
    return {n.tensor if isinstance(n, ir.Load) else n.name for n in ir.walk(e)
            if isinstance(n, ir.Load) or isinstance(n, ir.ScalarRef)}


# --- rows ---------------------------------------------------------------------------------------
def _reduced_extents(stmt: ir.Assign, any_axes: bool) -> tuple[Shape, ...] | None:
    """The extents of the indices every reduction of stmt runs over, when they agree."""
    reds = reduces_of(stmt.value)
    if not any_axes and any(len(r.vars) != 1 for r in reds):
        return None
    if any(r.op in ARG_REDUCTIONS for r in reds):
        return None
    shapes = {tuple(v.extent for v in r.vars) for r in reds}
    return shapes.pop() if len(shapes) == 1 else None


def vector_axes(stmt: ir.Assign, outer: tuple[Shape, ...], inner: tuple[Shape, ...],
                any_axes: bool = True
                ) -> tuple[tuple[ir.IndexVar, ...], tuple[ir.IndexVar, ...]] | None:
    """(outer vars, inner vars) of a row vector: stmt's indices split into a subsequence with
    the group's outer extents and the rest with its inner ones, the inner indices last when
    that fits (`y[i, j]`), else anywhere with `any_axes` (`y[n, c, h, w]` over r[n, h, w])."""
    index = stmt.index
    if len(index) != len(outer) + len(inner):
        return None
    positions = list(itertools.combinations(range(len(index)), len(inner)))
    if not any_axes:
        positions = positions[-1:]
    for picked in reversed(positions):   # the trailing positions first
        ins = tuple(index[k] for k in picked)
        outs = tuple(v for k, v in enumerate(index) if k not in picked)
        if tuple(v.extent for v in ins) == inner and tuple(v.extent for v in outs) == outer:
            return outs, ins
    return None


def take_row_group(pending: list[ir.Assign], any_axes: bool = False) -> Launch | None:
    first = pending[0]
    inner_ext = _reduced_extents(first, any_axes) if has_reduce(first.value) else None
    if inner_ext is None or not first.index:
        return None
    outer_ext = tuple(v.extent for v in first.index)
    group: list[ir.Assign] = []
    produced_rows: set[str] = set()     # per-row values made by the group, readable as [outer]
    produced_vecs: set[str] = set()     # row vectors made by the group: not readable in it
    for stmt in pending:
        if has_reduce(stmt.value):
            if _reduced_extents(stmt, any_axes) != inner_ext or \
                    tuple(v.extent for v in stmt.index) != outer_ext:
                break
            outer_vars = stmt.index
        else:
            axes = vector_axes(stmt, outer_ext, inner_ext, any_axes)
            if axes is None:
                break
            outer_vars = axes[0]
        if not _reads_rows_ok(stmt, produced_rows, produced_vecs, outer_vars):
            break
        if match_contraction(stmt) is not None or has_gather(stmt.value):
            break
        group.append(stmt)
        (produced_rows if has_reduce(stmt.value) else produced_vecs).add(stmt.target)
    reduced = reduces_of(group[0].value)[0].vars
    return Launch("rows", group, outer=group[0].index, inner=reduced[0], reduced=reduced)


def _reads_rows_ok(stmt: ir.Assign, rows: set[str], vecs: set[str],
                   outer: tuple[ir.IndexVar, ...]) -> bool:
    for node in ir.walk(stmt.value):
        if isinstance(node, ir.Load) and node.tensor in vecs:
            return False
        if isinstance(node, ir.Load) and node.tensor in rows:
            if tuple(a.bare for a in node.index) != tuple(outer):
                return False
        if isinstance(node, ir.ScalarRef) and node.name in vecs:
            return False
    return True


def contraction_as_rows(launch: Launch) -> Launch:
    """A contraction as a rows launch (one reduction per output element, over the depth): what
    a matrix-vector product needs, where a tensor-core tile would idle all but one column."""
    (stmt,) = launch.statements
    kv = launch.contraction.kv
    rows = Launch("rows", [stmt], outer=stmt.index, inner=kv[0], reduced=kv,
                  stores=launch.stores)
    rows.fallback = split_rows(rows)
    return rows


def split_rows(launch: Launch) -> list[Launch]:
    """The rows launch as separate launches for rows too long for one program each: every
    reduction a split over its outer indices (several programs per row, then a combining
    pass), every row vector a pointwise launch reading the per-row values from memory. A
    statement whose one reduction rides in the previous statement's loop (pairs.py: a
    variance after its mean, a sum of exponentials after its max) joins that split."""
    parts: list[Launch] = []
    pairs = fused_pairs(launch.statements)
    for stmt in launch.statements:
        reds = reduces_of(stmt.value)
        before = parts[-1].statements[-1].value if parts else None
        if len(reds) == 1 and id(before) in pairs and pairs[id(before)][1] is reds[0]:
            parts[-1].statements.append(stmt)
        elif reds:
            parts.append(Launch("split", [stmt], outer=stmt.index, inner=reds[0].vars[0],
                                reduced=reds[0].vars))
        else:
            parts.append(Launch("pointwise", [stmt], outer=stmt.index[:-1],
                                inner=stmt.index[-1]))
    for n, part in enumerate(parts):
        later = set().union(*(_reads(s.value) for p in parts[n + 1:] for s in p.statements))
        part.stores = tuple(s.target for s in part.statements
                            if s.target in launch.stores or s.target in later)
    return parts


# --- contractions -----------------------------------------------------------------------------
def match_contraction(stmt: ir.Assign) -> Contraction | None:
    """One sum of a product of two factors, where each factor has output indices of its own:
    the first factor's become GEMM rows, the second's columns, shared ones the batch. The
    factor whose own indices come first in the statement is `a`."""
    reds = reduces_of(stmt.value)
    if len(reds) != 1 or len(stmt.index) < 2:
        return None
    r = reds[0]
    if r.op != "sum" or not isinstance(r.body, ir.Op) or r.body.op != "mul":
        return None
    if not r.body.dtype.is_float or ir.free_vars(r) != set(stmt.index):
        return None
    kv = set(r.vars)
    fa, fb = r.body.args
    va, vb = ir.free_vars(fa) - kv, ir.free_vars(fb) - kv
    batch = va & vb
    ia, jb = va - batch, vb - batch
    if not ia or not jb or has_reduce(fa) or has_reduce(fb):
        return None
    if not kv <= ir.free_vars(fa) | ir.free_vars(fb):
        return None
    order = list(stmt.index)
    if min(order.index(v) for v in jb) < min(order.index(v) for v in ia):
        fa, fb, ia, jb = fb, fa, jb, ia
    by_position = lambda vs: tuple(v for v in order if v in vs)  # noqa: E731
    return Contraction(r, fa, fb, by_position(batch), by_position(ia), by_position(jb),
                       tuple(r.vars))


# --- attention --------------------------------------------------------------------------------
def fuse_attention(program: Program, launches: list[Launch]) -> list[Launch]:
    out: list[Launch] = []
    n = 0
    while n < len(launches):
        match = _match_attention(program, launches, n) if n + 2 < len(launches) else None
        if match is None:
            out.append(launches[n])
            n += 1
            continue
        a, b, c = launches[n:n + 3]
        out.append(Launch("attention", a.statements + b.statements + c.statements,
                          attention=match, fallback=[a, b, c], stores=c.stores))
        n += 3
    return out


def _exp_of_diff(e: ir.Expr, s_name: str, m_name: str) -> bool:
    """e is exp(S[.., i, j] - m[.., i]) with bare indices."""
    if not (isinstance(e, ir.Op) and e.op == "exp"):
        return False
    d = e.args[0]
    return (isinstance(d, ir.Op) and d.op == "sub" and isinstance(d.args[0], ir.Load)
            and d.args[0].tensor == s_name and isinstance(d.args[1], ir.Load)
            and d.args[1].tensor == m_name)


def _match_attention(program: Program, launches: list[Launch], n: int) -> Attention | None:
    a, b, c = launches[n:n + 3]
    if (a.pattern, b.pattern, c.pattern) != ("contraction", "rows", "contraction"):
        return None
    s_stmt, o_stmt = a.statements[0], c.statements[0]
    s_name = s_stmt.target
    outputs = {o.name for o in program.kernel.outputs}
    if len(b.statements) != 2 or s_name in outputs:
        return None
    m_stmt, l_stmt = b.statements
    if m_stmt.target in outputs or l_stmt.target in outputs:
        return None
    # m = max(S[.., i, j] for j)
    m_val = m_stmt.value
    if not (isinstance(m_val, ir.Reduce) and m_val.op == "max" and isinstance(m_val.body, ir.Load)
            and m_val.body.tensor == s_name):
        return None
    # l = sum(exp(S - m) for j)
    l_val = l_stmt.value
    if not (isinstance(l_val, ir.Reduce) and l_val.op == "sum"
            and _exp_of_diff(l_val.body, s_name, m_stmt.target)):
        return None
    sc, oc = a.contraction, c.contraction
    if not (sc.simple and oc.simple):
        return None
    if not _exp_of_diff(oc.a, s_name, m_stmt.target) or s_name in _reads(oc.b):
        return None
    # S, m, l are read nowhere else
    later = [st for launch in launches[n + 3:] for st in launch.statements]
    if any({s_name, m_stmt.target, l_stmt.target} & _reads(st.value) for st in later):
        return None
    if len(sc.batch) != len(oc.batch):
        return None
    return Attention(sc, s_stmt, oc, o_stmt, m_stmt.target, l_stmt.target)
