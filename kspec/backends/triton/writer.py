"""Writes one launch of the plan as a @triton.jit function plus its host-side lines: the shared
machinery (arguments, decomposition of flat offsets, reductions, stores) and the patterns that
need no tensor cores (pointwise, rows, loop nest, split). tensorcore.py adds the others."""
from __future__ import annotations

import re

from ... import ir
from ...dtypes import DType
from ...lowering import Launch
from ...ops import ARG_REDUCTIONS
from ...shapes import Shape
from .common import IDENTITY, SAMPLES, TRITON_SIG, JitKernel, product, tuple_code
from .expressions import TL_DTYPE, Emitter, Scope, compute_dtype, shape_code


def outside_reduces(e: ir.Expr):
    """The nodes of e outside its reductions."""
    if isinstance(e, ir.Reduce):
        return
    yield e
    for c in ir.children(e):
        yield from outside_reduces(c)


class LaunchWriterBase:
    """Writes one @triton.jit function and its host-side launch lines."""

    def __init__(self, ctx, n: int | str, launch: Launch, kind: str | None = None):
        self.ctx, self.n, self.launch = ctx, n, launch
        self.kernel = ctx.plan.kernel
        self.program = ctx.plan.program
        # the kernel written for the launch: its pattern, or another rendering of it (a
        # contraction's matvec and splitk_sum kernels, splitk.py)
        self.kind = kind or launch.pattern
        self.name = f"{self.kernel.name}_{n}_{self.kind}"
        self.part: str | None = None            # host name of a split-K partial buffer
        self.em = Emitter(self.name)
        self.em.scalars = {p.name for p in self.kernel.scalar_params}
        self.em.count_uses([s.value for s in launch.statements])
        self.lines: list[str] = []
        self.constexprs: list[str] = []
        self.program_ids: dict[str, int] = {}   # variable -> grid axis, set by the prologue
        self.spaces: list[str] = []             # flattened index spaces the kernel walks
        self.split_default: str | None = None   # host code of a rows fallback's SPLIT
        self.divisors: dict[str, str] = {}      # extent code -> constexpr (flattened indices)
        # id(r) -> (kind, s): a reduction whose loop also computes s (rows.fused_pairs)
        self.fused: dict[int, tuple[str, ir.Reduce]] = {}

    # --- buffers and arguments -------------------------------------------------------------
    def buffers(self) -> list[tuple[str, int]]:
        """Buffers the kernel touches in memory: what it loads (minus per-row values it keeps in
        registers) and what it stores."""
        names: dict[str, int] = {}
        in_registers = {s.target for s in self.launch.statements} - set(self.launch.stores)
        # a split-K sum reads the partials, not the contraction's operands
        walk = outside_reduces if self.kind == "splitk_sum" else ir.walk
        for s in self.launch.statements:
            for node in walk(s.value):
                if isinstance(node, ir.Load) and node.tensor not in in_registers:
                    names.setdefault(node.tensor, len(node.index))
                elif isinstance(node, ir.ScalarRef) and node.name not in self.em.scalars \
                        and node.name not in in_registers:
                    names.setdefault(node.name, 0)
        for t in self.launch.stores:
            names.setdefault(t, len(self.program.buffers[t].dims))
        if self.launch.pattern == "attention":  # scores and row statistics stay on chip
            att = self.launch.attention
            for t in (att.scores_stmt.target, att.m_name, att.l_name):
                names.pop(t, None)
        return list(names.items())

    def buffer_params(self, bufs: list[tuple[str, int]]
                      ) -> tuple[list[str], list[str], dict[str, str]]:
        """Kernel parameters, host arguments and signature types for buffers (pointer, strides)."""
        params, args, signature = [], [], {}
        for name, rank in bufs:
            params += [f"{name}_ptr"] + [f"{name}_s{d}" for d in range(rank)]
            args += [name] + [f"{name}.stride({d})" for d in range(rank)]
            decl = self.program.buffers.get(name) or self.kernel.decl(name)
            signature[f"{name}_ptr"] = "*" + TRITON_SIG[decl.dtype]
            signature.update({f"{name}_s{d}": "i32" for d in range(rank)})
        return params, args, signature

    def scalar_and_symbol_params(self) -> tuple[list[str], list[str], dict[str, str]]:
        scalars = [p.name for p in self.kernel.scalar_params
                   if any(isinstance(x, ir.ScalarRef) and x.name == p.name
                          for s in self.launch.statements for x in ir.walk(s.value))]
        names = scalars + list(self.kernel.symbols)
        signature = {n: TRITON_SIG[self.kernel.decl(n).dtype] for n in scalars}
        signature.update({s: "i32" for s in self.kernel.symbols})
        return names, list(names), signature

    def write(self) -> None:
        if self.launch.pattern == "split":
            return self.write_split()   # two kernels: rows.py
        params, args, signature = self.buffer_params(self.buffers())
        if self.part is not None:   # the f32 partials of a split-K contraction (splitk.py)
            params.append("part_ptr")
            args.append(self.part)
            signature["part_ptr"] = "*" + TRITON_SIG[self.partial_dtype()]
        tail, tail_args, tail_sig = self.scalar_and_symbol_params()
        params += tail
        args += tail_args
        signature.update(tail_sig)
        self.host_args = args
        getattr(self, f"body_{self.kind}")()
        self.lines = self.index_prologue(signature) + self.lines
        self.constexprs += list(self.divisors.values()) + ["INDEX64"]
        signature.update({c: "constexpr" for c in self.constexprs})
        params += [f"{c}: tl.constexpr" for c in self.constexprs]
        targets = ", ".join(s.target for s in self.launch.statements)
        self.ctx.kernels.append(JitKernel(self.name, params, self.lines,
                                          f"{self.kind} -> {targets}", signature,
                                          {k: v for k, v in SAMPLES[self.kind].items()
                                           if k in self.constexprs}
                                          | {d: 7 for d in self.divisors.values()}))

    def emit_launch(self, schedule: dict[str, str], grid: str, constexprs: dict[str, str],
                    warps: str, prelude: tuple[str, ...] = (), setup: tuple[str, ...] = ()
                    ) -> None:
        """Host lines: the schedule's values (each overridable by the caller's schedule dict,
        defaults computed by `prelude` lines where they need several steps), `setup` lines
        that need them (buffers sized by the schedule), then the launch."""
        host = self.ctx.host
        host.append(f"# launch {self.n}: {self.kind} -> "
                    f"{', '.join(s.target for s in self.launch.statements)}")
        host += prelude
        if "WARPS" not in schedule:  # every launch's warp count is part of its schedule
            schedule = {**schedule, "WARPS": warps}
            warps = "WARPS"
        schedule = {**schedule, "INDEX64": self.index64_code()}
        for k, v in schedule.items():
            host.append(f"{k} = schedule.get('{self.n}.{k}', {v})")
        constexprs = {**constexprs, **{d: code for code, d in self.divisors.items()},
                      "INDEX64": "INDEX64"}
        self.note_schedule(prelude, schedule, constexprs, grid)
        host += setup
        kw = ", ".join(f"{k}={v}" for k, v in constexprs.items())
        host.append(f"{self.name}[({grid},)]({', '.join(self.host_args)}, {kw}, "
                    f"num_warps={warps})")

    def note_schedule(self, prelude: tuple[str, ...] | list[str], schedule: dict[str, str],
                      constexprs: dict[str, str], grid: str) -> None:
        """The launch's entry in the printed plan: its values (a constexpr that is not simply
        a schedule value is a launch-time branch, e.g. SINGLE) and its grid."""
        targets = ", ".join(s.target for s in self.launch.statements)
        lines = [f"launch {self.n}: {self.kind} -> {targets}", *prelude]
        lines += [f"{k} = {v}" for k, v in schedule.items()]
        lines += [f"{k} = {v}" for k, v in constexprs.items() if v != k]
        self.ctx.schedule += [lines[0]] + ["    " + x for x in lines[1:]] + \
            [f"    grid = ({grid},)"]

    # --- index width -----------------------------------------------------------------------
    def program_id(self, var: str, axis: int = 0) -> None:
        """`var` holds the program id on `axis`; the prologue defines it (widened when INDEX64)."""
        self.program_ids[var] = axis

    def space(self, code: str) -> str:
        """Record a flattened index space the kernel walks (its size decides INDEX64 too)."""
        if code not in self.spaces:
            self.spaces.append(code)
        return code

    def index_prologue(self, signature: dict[str, str]) -> list[str]:
        """Program ids; with INDEX64 (chosen at launch when an offset can reach 2^31) they, the
        strides and the sizes become int64 before any index arithmetic, so every product and
        sum after them is 64-bit. Without it nothing changes: unit strides stay compile-time
        constants (Triton specialises an argument equal to 1), which vector accesses need."""
        lines = [f"{v} = tl.program_id({axis})" for v, axis in self.program_ids.items()]
        body = "\n".join(self.lines)
        ints = [n for n, t in signature.items() if t == "i32" and n not in self.em.scalars
                and re.search(rf"\b{n}\b", body)]
        widen = [f"    {v} = {v}.to(tl.int64)" for v in self.program_ids] + \
                [f"    {n} = tl.cast({n}, tl.int64)" for n in ints]
        if widen:
            lines.append("if INDEX64:  # an offset can reach 2^31: index arithmetic in 64 bits")
            lines += widen
        return lines

    def index64_code(self) -> str:
        """Host code deciding INDEX64 from the furthest element offset of each tensor the
        launch touches and the sizes of the flattened index spaces it walks."""
        tensors = [n for n, _ in self.buffers()]
        return f"_index64({tuple_code(tensors)}, {tuple_code(self.spaces)})"

    # --- shared pieces ---------------------------------------------------------------------
    def decompose(self, offs: str, vars_: list[ir.IndexVar], codes: list[str],
                  extent=shape_code) -> list[str]:
        """Row-major decomposition of a flat offset into one code per variable (`extent`
        gives each divisor's code)."""
        out = []
        rest = offs
        for k in range(len(vars_) - 1, -1, -1):
            if k == 0:
                out.append(rest)
            else:
                ext = extent(vars_[k].extent)
                name = codes[k]
                self.lines.append(f"{name} = {rest} % {ext}")
                rest_name = f"{name}_q"
                self.lines.append(f"{rest_name} = {rest} // {ext}")
                rest = rest_name
                out.append(name)
        out.reverse()
        return out

    def store(self, target: str, index_codes: list[str], value: str, mask: str,
              indent: str = "") -> None:
        decl = self.program.buffers[target]
        addr = f"{target}_ptr" + "".join(f" + ({c}) * {target}_s{d}"
                                         for d, c in enumerate(index_codes))
        if not index_codes:  # a scalar: a block pointer so the tile-shaped value can store
            addr += " + offs_p * 0"
        dt = TL_DTYPE[decl.dtype]
        self.lines.append(f"{indent}tl.store({addr}, ({value}).to({dt}), mask={mask})")

    def outer_setup(self, outer: list[ir.IndexVar], block: str) -> list[str]:
        total = product([v.extent for v in outer])
        self.program_id("pid")
        self.lines.append(f"offs_p = pid * {block} + tl.arange(0, {block})[:, None]")
        self.lines.append(f"pmask = offs_p < {self.space(shape_code(total))}")
        if not outer:
            return []
        return self.decompose("offs_p", outer, [f"p{k}" for k in range(len(outer))])

    @staticmethod
    def accumulator(r: ir.Reduce) -> DType:
        body_dt = compute_dtype(r.body.dtype)
        if r.op in ("max", "min"):
            return body_dt if r.body.dtype != DType.bool else DType.i32
        if r.body.dtype.is_float or r.op == "mean":
            return DType.f64 if body_dt == DType.f64 else DType.f32
        return DType.i64

    def reduce_into(self, r: ir.Reduce, scope: Scope, mask: str, offs: str,
                    loop_ext: Shape, single: bool, span: tuple[str, str] | None = None,
                    partial: bool = False) -> str:
        """Emit a reduction over r.vars; returns the [BLOCK_P, 1] register holding it.
        `span` = (start, end) restricts the loop to part of the flattened range (split);
        `partial`: a split's first phase, which stores the lanes' state: a mean is not divided
        and a fused partner's value is not computed (the second phase computes both)."""
        if r.op in ARG_REDUCTIONS:
            return self.arg_reduce_into(r, scope, loop_ext)   # ordered.py
        acc = self.em.fresh("red")
        acc_dt = self.accumulator(r)
        # Each lane of a looped f32 sum adds extent / BLOCK_R terms (2.5M-element groups: 20k);
        # Kahan compensation keeps its error at a few ulp of the sum (the C++ loops do the same)
        compensated = not single and r.op in ("sum", "mean") and acc_dt == DType.f32
        partner = self.fused.get(id(r)) if not single else None
        ident = self.identity(r.op, acc_dt)
        tl_acc = TL_DTYPE[acc_dt]
        indent = scope.indent
        if single:
            inner = scope
        else:
            self.lines.append(f"{indent}{acc} = tl.full([BLOCK_P, BLOCK_R], {ident}, {tl_acc})")
            if compensated:
                self.lines.append(f"{indent}{acc}_lost = tl.full([BLOCK_P, BLOCK_R], 0.0, {tl_acc})")
            start, end = span or ("0", self.space(shape_code(loop_ext)))
            loop_at = len(self.lines)
            self.lines.append(f"{indent}for r0 in range({start}, {end}, BLOCK_R):")
            inner = Scope(self.lines, indent + "    ")
            self.lines.append(f"{inner.indent}offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]")
            self.lines.append(f"{inner.indent}rmask = offs_r < {end}")
            mask = "pmask & rmask"
        self.bind_reduce_vars(r, inner, offs if single else "offs_r")
        body = self.em.expr(r.body, inner, mask)
        body = f"{body}.to({tl_acc})" if compute_dtype(r.body.dtype) != acc_dt and \
            not body.replace(".", "").isdigit() else body
        val = f"tl.where({mask}, {body}, {ident})"
        if partner is not None:
            make = {"centred": self.welford, "exp_sum": self.online_exp_sum}[partner[0]]
            init, update, merge, value = make(acc, tl_acc, body, mask, partner[1], loop_ext,
                                              start)
            self.lines[loop_at:loop_at] = [indent + x for x in init]
            self.lines += [inner.indent + x for x in update]
        combine = {"sum": "{a} + {v}", "mean": "{a} + {v}", "prod": "{a} * {v}",
                   "max": "_max({a}, {v})", "min": "_min({a}, {v})"}[r.op]
        # tl.reduce with the module's own combiners, not tl.sum/tl.max: those are @triton.jit
        # library functions, decorated once at import, which the interpreter cannot call.
        combiner = {"sum": "_add", "mean": "_add", "prod": "_mul", "max": "_max",
                    "min": "_min"}[r.op]
        final = f"tl.reduce({{a}}, 1, {combiner}, keep_dims=True)"
        if single:
            self.lines.append(f"{indent}{acc} = {final.format(a=val)}")
        elif compensated:
            self.lines.append(f"{inner.indent}{acc}, {acc}_lost = "
                              f"_kahan_add({acc}, {acc}_lost, {val})")
            # the lanes are added with compensation too: a plain tree over 4096 lanes of a
            # row of 8193 ascending values was 69 off where the tolerance was 31
            self.lines.append(f"{indent}{acc}, {acc}_lost = tl.reduce(({acc}, {acc}_lost), 1, "
                              f"_kahan_combine, keep_dims=True)")
            self.lines.append(f"{indent}{acc} = {acc} - {acc}_lost")
        else:
            self.lines.append(f"{inner.indent}{acc} = {combine.format(a=acc, v=val)}")
            self.lines.append(f"{indent}{acc} = {final.format(a=acc)}")
        if partner is not None:
            self.lines.append(indent + merge)
            if not partial:
                self.lines.append(f"{indent}{value[0]} = {value[1]}")
                self.em.replace[id(partner[1])] = value[0]
        if r.op == "mean" and not partial:
            self.lines.append(f"{indent}{acc} = {acc} / {shape_code(loop_ext)}")
        if r.body.dtype == DType.bool and r.op in ("max", "min"):
            self.lines.append(f"{indent}{acc} = {acc} != 0")
        return acc

    def welford(self, acc: str, tl_acc: str, body: str, mask: str, centred: ir.Reduce,
                ext: Shape, start: str) -> tuple[list[str], list[str], str, tuple[str, str]]:
        """In a mean's loop, also the centred sum of squares of the same terms (Welford per
        lane, lanes merged by Chan's formula): a variance `mean((x - mu) ** 2)` after
        `mu = mean(x)` then needs no second pass over the row. Inf and NaN give NaN, as the
        two passes do. Lines before the loop and in it, the line merging the lanes after it
        (unindented), and the partner's (name, value). A lane is
        masked only from some iteration on, so every lane still counting has the loop's
        iteration count: one scalar division per iteration, not one per element."""
        n, m, q = f"{acc}_n", f"{acc}_m", f"{acc}_q"
        init = [f"{v} = tl.full([BLOCK_P, BLOCK_R], 0.0, {tl_acc})" for v in (n, m, q)]
        update = [f"{n} = {n} + tl.where({mask}, 1.0, 0.0)",
                  f"{acc}_d = tl.where({mask}, {body} - {m}, 0.0)",
                  f"{m} = {m} + {acc}_d * (1.0 / ((r0 - {start}) // BLOCK_R + 1))",
                  f"{q} = {q} + {acc}_d * tl.where({mask}, {body} - {m}, 0.0)"]
        total = f"{q} / {shape_code(ext)}" if centred.op == "mean" else q
        merge = f"{n}, {m}, {q} = tl.reduce(({n}, {m}, {q}), 1, _welford, keep_dims=True)"
        return init, update, merge, (f"{acc}_centred", total)

    def online_exp_sum(self, acc: str, tl_acc: str, body: str, mask: str, exp_sum: ir.Reduce,
                       ext: Shape, start: str
                       ) -> tuple[list[str], list[str], str, tuple[str, str]]:
        """In a max's loop, also sum(exp(x - max)) of the same terms (online softmax: each
        lane's sum rescaled when its running max grows, Kahan-compensated; lanes merged the
        same way): softmax's looped pass then reads the row twice, not three times. Running
        maxima of -inf add nothing; a row whose max is -inf gives NaN, as exp(-inf + inf)
        does in the two passes, and +inf or NaN propagate as there."""
        m, s, lost, new = f"{acc}_m", f"{acc}_s", f"{acc}_s_lost", f"{acc}_new"
        init = [f"{m} = tl.full([BLOCK_P, BLOCK_R], float('-inf'), {tl_acc})",
                f"{s} = tl.full([BLOCK_P, BLOCK_R], 0.0, {tl_acc})",
                f"{lost} = tl.full([BLOCK_P, BLOCK_R], 0.0, {tl_acc})"]
        update = [f"{new} = tl.where({mask}, _max({m}, {body}), {m})",
                  f"{acc}_scale = tl.where({new} == float('-inf'), 1.0, tl.exp({m} - {new}))",
                  f"{acc}_term = tl.where(({mask}) & ({new} != float('-inf')), "
                  f"tl.exp({body} - {new}), 0.0)",
                  f"{s}, {lost} = _kahan_add({s} * {acc}_scale, {lost} * {acc}_scale, "
                  f"{acc}_term)",
                  f"{m} = {new}"]
        merge = f"{m}, {s} = tl.reduce(({m}, {s} - {lost}), 1, _exp_sum, keep_dims=True)"
        return init, update, merge, (f"{acc}_exp_sum",
                                     f"tl.where({m} == float('-inf'), float('nan'), {s})")

    def bind_reduce_vars(self, r: ir.Reduce, scope: Scope, offs: str) -> None:
        self.bind_vars(r.vars, scope, offs)

    def divisor(self, extent: Shape) -> str:
        """A symbolic extent that divides every element's flat offset, as a compile-time
        constant (one compile per distinct value): division by a runtime 32-bit value costs
        some 20 instructions, by a constant 2-4, which keeps BatchNorm's n, h, w
        decomposition under the memory time."""
        code = shape_code(extent)
        if extent.is_const:
            return code
        return self.divisors.setdefault(code, f"DIV{len(self.divisors)}")

    def bind_vars(self, vars_: tuple[ir.IndexVar, ...], scope: Scope, offs: str) -> None:
        """Codes for indices walked as one flattened offset: the offset itself for one index,
        else its row-major decomposition, emitted once per scope and offset (a row vector
        after a reduction over the same indices reuses the reduction's codes and loads)."""
        if len(vars_) == 1:
            self.em.var_code[vars_[0]] = offs
            return
        key = ("decomposition", offs, tuple(v.extent for v in vars_))
        if key not in scope.values:
            codes = [self.em.fresh("r") for _ in vars_]
            saved, self.lines = self.lines, []
            parts = self.decompose(offs, list(vars_), codes, self.divisor)
            saved += [scope.indent + line for line in self.lines]
            self.lines = saved
            scope.lines = saved
            scope.values[key] = parts
        for v, c in zip(vars_, scope.values[key]):
            self.em.var_code[v] = c

    @staticmethod
    def identity(op: str, dt: DType) -> str:
        if op in IDENTITY:
            return IDENTITY[op] + (".0" if dt.is_float else "")
        big = "float('inf')" if dt.is_float else str(2 ** (dt.bits - 1) - 1)
        small = "float('-inf')" if dt.is_float else str(-(2 ** (dt.bits - 1)))
        return small if op == "max" else big

    def statement_value(self, stmt: ir.Assign, scope: Scope, mask: str, offs: str,
                        loop_ext: Shape | None, single: bool) -> str:
        for node in ir.walk(stmt.value):
            if isinstance(node, ir.Reduce) and id(node) not in self.em.replace:  # not fused
                ext = loop_ext if loop_ext is not None else product([v.extent for v in node.vars])
                self.em.replace[id(node)] = self.reduce_into(node, scope, mask, offs, ext, single)
        # outside its reductions a per-row value reads only per-row operands: with the row
        # mask they keep the [BLOCK_P, 1] shape its store needs
        return self.em.expr(stmt.value, scope, "pmask")

    # --- patterns --------------------------------------------------------------------------
    def body_loop_nest(self) -> None:
        (stmt,) = self.launch.statements
        codes = self.outer_setup(list(stmt.index), "BLOCK_P")
        for v, c in zip(stmt.index, codes):
            self.em.var_code[v] = c
        scope = Scope(self.lines, "")
        value = self.statement_value(stmt, scope, "pmask", "offs_r", None, single=False)
        self.store(stmt.target, codes, value, "pmask")
        self.constexprs = ["BLOCK_P", "BLOCK_R"]
        total = product([v.extent for v in stmt.index])
        self.emit_launch({"BLOCK_P": "1" if not stmt.index else "32", "BLOCK_R": "128"},
                         f"triton.cdiv({shape_code(total)}, BLOCK_P)",
                         {"BLOCK_P": "BLOCK_P", "BLOCK_R": "BLOCK_R"}, "4")

    def body_pointwise(self) -> None:
        (stmt,) = self.launch.statements
        outer, inner = list(stmt.index[:-1]), stmt.index[-1]
        n_inner = shape_code(inner.extent)
        total_p = shape_code(product([v.extent for v in outer]))
        self.program_id("pid")
        self.space(total_p)
        self.space(n_inner)
        self.lines.append(f"blocks_i = ({n_inner} + BLOCK_I - 1) // BLOCK_I")
        self.lines.append("offs_p = (pid // blocks_i) * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]")
        self.lines.append("offs_i = (pid % blocks_i) * BLOCK_I + tl.arange(0, BLOCK_I)[None, :]")
        self.lines.append(f"mask = (offs_p < {total_p}) & (offs_i < {n_inner})")
        if not outer:  # give addresses the tile's full shape even when no index spans rows
            self.lines.append("offs_i = offs_i + offs_p * 0")
        codes = self.decompose("offs_p", outer, [f"p{k}" for k in range(len(outer))]) \
            if outer else []
        for v, c in zip(outer, codes):
            self.em.var_code[v] = c
        self.em.var_code[inner] = "offs_i"
        scope = Scope(self.lines, "")
        value = self.em.expr(stmt.value, scope, "mask")
        self.store(stmt.target, codes + ["offs_i"], value, "mask")
        self.constexprs = ["BLOCK_P", "BLOCK_I"]
        self.emit_launch(
            {"BLOCK_I": f"min(triton.next_power_of_2({n_inner}), 1024)",
             "BLOCK_P": f"min(triton.next_power_of_2({total_p}), max(1, 1024 // BLOCK_I))"},
            f"triton.cdiv({total_p}, BLOCK_P) * triton.cdiv({n_inner}, BLOCK_I)",
            {"BLOCK_P": "BLOCK_P", "BLOCK_I": "BLOCK_I"}, "4")
