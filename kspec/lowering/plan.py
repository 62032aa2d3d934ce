"""The lowering plan: a kernel's normalized statements grouped into GPU launches, each with a
pattern and a schedule. Backend-neutral data; every backend renders the same plan.

Patterns:
- pointwise:   one statement without reductions; a 2-D tile over (other indices, last index).
- rows:        statements sharing outer indices P, whose reductions run over one inner index
               of one extent (softmax, layernorm, rmsnorm chains). One program handles BLOCK_P
               rows; per-row results stay in registers for the statements after them; the whole
               row is read once when it fits in one tile (single pass), else in chunks.
- split:       a reduction to a scalar (a loss, a norm): partial results from many programs,
               then one program combines them and evaluates the statement.
- loop_nest:   the always-correct fallback: one statement; each reduction loops over its
               flattened reduction space in chunks.
- contraction: `sum(A * B for k)` with A over (batch, i, k), B over (batch, k, j): tiled on the
               tensor cores, with the rest of the statement fused as an epilogue.
- attention:   contraction -> row max and row sum of exp(s - m) -> contraction with exp(s - m):
               one kernel in the online-softmax form (the score matrix never reaches memory).
               The three unfused launches stay in the plan as its fallback (head dims > 256).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import ir
from ..shapes import Shape
from .normalize import Program, has_reduce, normalize


@dataclass
class Launch:
    pattern: str
    statements: list[ir.Assign]
    outer: tuple[ir.IndexVar, ...] = ()        # indices spread over programs (flattened)
    inner: ir.IndexVar | None = None           # rows/pointwise: the index along a tile row
    contraction: "Contraction | None" = None
    attention: "Attention | None" = None
    fallback: list["Launch"] = field(default_factory=list)
    schedule: dict = field(default_factory=dict)
    stores: tuple[str, ...] = ()               # buffers this launch writes to memory

    def __str__(self) -> str:
        targets = ", ".join(s.target for s in self.statements)
        outer = ", ".join(f"{v.name}<{v.extent}" for v in self.outer)
        inner = f" inner {self.inner.name}<{self.inner.extent}" if self.inner else ""
        sched = " ".join(f"{k}={v}" for k, v in self.schedule.items())
        return (f"{self.pattern:11s} -> {targets}  [outer {outer or '-'}{inner}]  "
                f"stores {', '.join(self.stores)}  {sched}".rstrip())


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


def reduces_of(e: ir.Expr) -> list[ir.Reduce]:
    return [n for n in ir.walk(e) if isinstance(n, ir.Reduce)]


def plan_kernel(kernel: ir.Kernel) -> Plan:
    program = normalize(kernel)
    launches: list[Launch] = []
    pending: list[ir.Assign] = list(program.body)
    while pending:
        stmt = pending[0]
        contraction = match_contraction(stmt)
        if contraction is not None:
            launches.append(Launch("contraction", [stmt], contraction=contraction))
            pending.pop(0)
            continue
        group = take_row_group(pending)
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
def _row_shape(stmt: ir.Assign) -> tuple[tuple[Shape, ...], Shape, bool] | None:
    """(outer extents, inner extent, is_reduction) when stmt fits a row group, else None."""
    reds = reduces_of(stmt.value)
    if reds:
        if any(len(r.vars) != 1 for r in reds):
            return None
        inner = {r.vars[0].extent for r in reds}
        if len(inner) != 1:
            return None
        return tuple(v.extent for v in stmt.index), inner.pop(), True
    if not stmt.index:
        return None
    return tuple(v.extent for v in stmt.index[:-1]), stmt.index[-1].extent, False


def take_row_group(pending: list[ir.Assign]) -> Launch | None:
    first = _row_shape(pending[0])
    if first is None or not first[2] or not pending[0].index:
        return None
    outer_ext, inner_ext, _ = first
    group: list[ir.Assign] = []
    produced_rows: set[str] = set()     # per-row values made by the group, readable as [outer]
    produced_vecs: set[str] = set()     # row vectors made by the group: not readable in it
    for stmt in pending:
        shape = _row_shape(stmt)
        if shape is None or shape[0] != outer_ext or shape[1] != inner_ext:
            break
        if not _reads_rows_ok(stmt, produced_rows, produced_vecs, len(outer_ext)):
            break
        if match_contraction(stmt) is not None:
            break
        group.append(stmt)
        (produced_rows if shape[2] else produced_vecs).add(stmt.target)
    first_stmt = group[0]
    outer = first_stmt.index
    inner = reduces_of(first_stmt.value)[0].vars[0]
    return Launch("rows", group, outer=outer, inner=inner)


def _reads_rows_ok(stmt: ir.Assign, rows: set[str], vecs: set[str], n_outer: int) -> bool:
    outer = stmt.index[:n_outer]
    for node in ir.walk(stmt.value):
        if isinstance(node, ir.Load) and node.tensor in vecs:
            return False
        if isinstance(node, ir.Load) and node.tensor in rows:
            if tuple(a.bare for a in node.index) != tuple(outer):
                return False
        if isinstance(node, ir.ScalarRef) and node.name in vecs:
            return False
    return True


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
