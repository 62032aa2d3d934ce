"""Lowering plan -> one Triton module per kernel: @triton.jit functions and a host `launch`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ... import ir
from ...dtypes import DType
from ...lowering import Launch, Plan, plan_kernel
from ...shapes import Shape
from .expressions import TL_DTYPE, Emitter, Scope, compute_dtype, shape_code

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


@dataclass
class JitKernel:
    name: str
    params: list[str]
    body: list[str]
    comment: str
    signature: dict[str, str] = field(default_factory=dict)   # for ahead-of-time compiles
    samples: dict[str, object] = field(default_factory=dict)  # constexpr values to compile with


@dataclass
class _Ctx:
    plan: Plan
    kernels: list[JitKernel] = field(default_factory=list)
    host: list[str] = field(default_factory=list)


def _write_launches(ctx: _Ctx) -> None:
    for n, launch in enumerate(ctx.plan.launches):
        if launch.pattern != "attention":
            _LaunchWriter(ctx, n, launch).write()
            continue
        # The fused kernel when the head dims fit one tile, else the three unfused launches.
        att = launch.attention
        dims = [shape_code(att.scores.k.extent), shape_code(att.out.j.extent)]
        ctx.host.append(f"if schedule.get('{n}.fuse', True) and max({', '.join(dims)}) <= 256:")
        start = len(ctx.host)
        _LaunchWriter(ctx, n, launch).write()
        ctx.host[start:] = ["    " + line for line in ctx.host[start:]]
        ctx.host.append("else:")
        start = len(ctx.host)
        for m, part in enumerate(launch.fallback):
            for target in part.stores:
                if target not in launch.stores:
                    ctx.host.append(_alloc(target, ctx.plan.program.buffers[target]))
            _LaunchWriter(ctx, f"{n}{'abc'[m]}", part).write()
        ctx.host[start:] = ["    " + line for line in ctx.host[start:]]


def _alloc(name: str, decl: ir.TensorDecl) -> str:
    shape = ", ".join(shape_code(d) for d in decl.dims)
    return (f"{name} = torch.empty(({shape}{',' if len(decl.dims) == 1 else ''}), "
            f"dtype={_torch_dtype(decl.dtype)}, device=device)")


def jit_kernels(kernel: ir.Kernel) -> list[JitKernel]:
    """The @triton.jit functions of a kernel's module, with their argument types."""
    ctx = _Ctx(plan_kernel(kernel))
    _write_launches(ctx)
    return ctx.kernels


def render(kernel: ir.Kernel, file: str = "<string>") -> str:
    plan = plan_kernel(kernel)
    ctx = _Ctx(plan)
    _write_launches(ctx)
    outputs = [o.name for o in kernel.outputs]
    host_params = [p.name for p in kernel.params] + list(kernel.symbols)
    allocs = []
    in_memory = {t for launch in plan.launches for t in launch.stores}
    for name, decl in plan.program.buffers.items():
        if name in in_memory:
            allocs.append(_alloc(name, decl))
    first_tensor = next((p.name for p in kernel.tensor_params), None)
    return _ENV.get_template("module.py.j2").render(
        file=file, kernel=kernel.name, plan_lines=str(plan).splitlines(),
        kernels=ctx.kernels, host_params=host_params,
        first_input=first_tensor or "torch.empty(0)",
        host_body=allocs + ctx.host,
        returns=outputs[0] if len(outputs) == 1 else "(" + ", ".join(outputs) + ")")


def _torch_dtype(d: DType) -> str:
    return "torch." + str(d.torch).split(".")[1]


def _product(shapes: list[Shape]) -> Shape:
    out = Shape.const(1)
    for s in shapes:
        out = out * s
    return out


def _extent_code(vars_) -> str:
    """The flattened size of several indices, as a product of their extents (not expanded)."""
    codes = [shape_code(v.extent) for v in vars_]
    return codes[0] if len(codes) == 1 else "(" + " * ".join(codes) + ")"


_IDENTITY = {"sum": "0", "mean": "0", "prod": "1"}

_TRITON_SIG = {DType.bool: "i1", DType.u8: "u8", DType.i8: "i8", DType.i16: "i16",
               DType.i32: "i32", DType.i64: "i64", DType.f16: "fp16", DType.bf16: "bf16",
               DType.f32: "fp32", DType.f64: "fp64"}

# Representative schedules for compiling without a launch (kcompile --emit asm).
_SAMPLES: dict[str, dict[str, object]] = {
    "pointwise": {"BLOCK_P": 2, "BLOCK_I": 1024},
    "rows": {"BLOCK_P": 1, "BLOCK_R": 4096, "SINGLE": True},
    "loop_nest": {"BLOCK_P": 32, "BLOCK_R": 128},
    "contraction": {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8,
                    "PRECISION": "ieee", "INTERPRETED": False},
    "attention": {"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_D": 64, "BLOCK_DV": 64,
                  "PRECISION": "ieee", "INTERPRETED": False, "EVEN_N": False},
}


class _LaunchWriter:
    """Writes one @triton.jit function and its host-side launch lines."""

    def __init__(self, ctx: _Ctx, n: int | str, launch: Launch):
        self.ctx, self.n, self.launch = ctx, n, launch
        self.kernel = ctx.plan.kernel
        self.program = ctx.plan.program
        self.name = f"{self.kernel.name}_{n}_{launch.pattern}"
        self.em = Emitter(self.name)
        self.em.scalars = {p.name for p in self.kernel.scalar_params}
        self.lines: list[str] = []
        self.constexprs: list[str] = []

    # --- buffers and arguments -------------------------------------------------------------
    def buffers(self) -> list[tuple[str, int]]:
        """Buffers the kernel touches in memory: what it loads (minus per-row values it keeps in
        registers) and what it stores."""
        names: dict[str, int] = {}
        in_registers = {s.target for s in self.launch.statements} - set(self.launch.stores)
        for s in self.launch.statements:
            for node in ir.walk(s.value):
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
            signature[f"{name}_ptr"] = "*" + _TRITON_SIG[decl.dtype]
            signature.update({f"{name}_s{d}": "i32" for d in range(rank)})
        return params, args, signature

    def scalar_and_symbol_params(self) -> tuple[list[str], list[str], dict[str, str]]:
        scalars = [p.name for p in self.kernel.scalar_params
                   if any(isinstance(x, ir.ScalarRef) and x.name == p.name
                          for s in self.launch.statements for x in ir.walk(s.value))]
        names = scalars + list(self.kernel.symbols)
        signature = {n: _TRITON_SIG[self.kernel.decl(n).dtype] for n in scalars}
        signature.update({s: "i32" for s in self.kernel.symbols})
        return names, list(names), signature

    def write(self) -> None:
        if self.launch.pattern == "split":
            return self.write_split()
        params, args, signature = self.buffer_params(self.buffers())
        tail, tail_args, tail_sig = self.scalar_and_symbol_params()
        params += tail
        args += tail_args
        signature.update(tail_sig)
        self.host_args = args
        getattr(self, f"body_{self.launch.pattern}")()
        signature.update({c: "constexpr" for c in self.constexprs})
        params += [f"{c}: tl.constexpr" for c in self.constexprs]
        targets = ", ".join(s.target for s in self.launch.statements)
        self.ctx.kernels.append(JitKernel(self.name, params, self.lines,
                                          f"{self.launch.pattern} -> {targets}", signature,
                                          _SAMPLES[self.launch.pattern]))

    def emit_launch(self, schedule: dict[str, str], grid: str, constexprs: dict[str, str],
                    warps: str) -> None:
        host = self.ctx.host
        host.append(f"# launch {self.n}: {self.launch.pattern} -> "
                    f"{', '.join(s.target for s in self.launch.statements)}")
        if "WARPS" not in schedule:  # every launch's warp count is part of its schedule
            schedule = {**schedule, "WARPS": warps}
            warps = "WARPS"
        for k, v in schedule.items():
            host.append(f"{k} = schedule.get('{self.n}.{k}', {v})")
        kw = ", ".join(f"{k}={v}" for k, v in constexprs.items())
        host.append(f"{self.name}[({grid},)]({', '.join(self.host_args)}, {kw}, "
                    f"num_warps={warps})")

    # --- shared pieces ---------------------------------------------------------------------
    def decompose(self, offs: str, vars_: list[ir.IndexVar], codes: list[str]) -> list[str]:
        """Row-major decomposition of a flat offset into one code per variable."""
        out = []
        rest = offs
        for k in range(len(vars_) - 1, -1, -1):
            if k == 0:
                out.append(rest)
            else:
                ext = shape_code(vars_[k].extent)
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
        total = _product([v.extent for v in outer])
        self.lines.append("pid = tl.program_id(0)")
        self.lines.append(f"offs_p = pid * {block} + tl.arange(0, {block})[:, None]")
        self.lines.append(f"pmask = offs_p < {shape_code(total)}")
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
                    finish_mean: bool = True) -> str:
        """Emit a reduction over r.vars; returns the [BLOCK_P, 1] register holding it.
        `span` = (start, end) restricts the loop to part of the flattened range (split)."""
        acc = self.em.fresh("red")
        acc_dt = self.accumulator(r)
        ident = self.identity(r.op, acc_dt)
        tl_acc = TL_DTYPE[acc_dt]
        indent = scope.indent
        if single:
            inner = scope
        else:
            self.lines.append(f"{indent}{acc} = tl.full([BLOCK_P, BLOCK_R], {ident}, {tl_acc})")
            start, end = span or ("0", shape_code(loop_ext))
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
        combine = {"sum": "{a} + {v}", "mean": "{a} + {v}", "prod": "{a} * {v}",
                   "max": "tl.maximum({a}, {v})", "min": "tl.minimum({a}, {v})"}[r.op]
        # tl.reduce with the module's own combiners, not tl.sum/tl.max: those are @triton.jit
        # library functions, decorated once at import, which the interpreter cannot call.
        combiner = {"sum": "_add", "mean": "_add", "prod": "_mul", "max": "_max",
                    "min": "_min"}[r.op]
        final = f"tl.reduce({{a}}, 1, {combiner}, keep_dims=True)"
        if single:
            self.lines.append(f"{indent}{acc} = {final.format(a=val)}")
        else:
            self.lines.append(f"{inner.indent}{acc} = {combine.format(a=acc, v=val)}")
            self.lines.append(f"{indent}{acc} = {final.format(a=acc)}")
        if r.op == "mean" and finish_mean:
            self.lines.append(f"{indent}{acc} = {acc} / {shape_code(loop_ext)}")
        if r.body.dtype == DType.bool and r.op in ("max", "min"):
            self.lines.append(f"{indent}{acc} = {acc} != 0")
        return acc

    def bind_reduce_vars(self, r: ir.Reduce, scope: Scope, offs: str) -> None:
        if len(r.vars) == 1:
            self.em.var_code[r.vars[0]] = offs
            return
        codes = [self.em.fresh("r") for _ in r.vars]
        saved, self.lines = self.lines, []
        parts = self.decompose(offs, list(r.vars), codes)
        saved += [scope.indent + line for line in self.lines]
        self.lines = saved
        scope.lines = saved
        for v, c in zip(r.vars, parts):
            self.em.var_code[v] = c

    @staticmethod
    def identity(op: str, dt: DType) -> str:
        if op in _IDENTITY:
            return _IDENTITY[op] + (".0" if dt.is_float else "")
        big = "float('inf')" if dt.is_float else str(2 ** (dt.bits - 1) - 1)
        small = "float('-inf')" if dt.is_float else str(-(2 ** (dt.bits - 1)))
        return small if op == "max" else big

    def statement_value(self, stmt: ir.Assign, scope: Scope, mask: str, offs: str,
                        loop_ext: Shape | None, single: bool) -> str:
        for node in ir.walk(stmt.value):
            if isinstance(node, ir.Reduce):
                ext = loop_ext if loop_ext is not None else _product([v.extent for v in node.vars])
                self.em.replace[id(node)] = self.reduce_into(node, scope, mask, offs, ext, single)
        return self.em.expr(stmt.value, scope, mask if single else "pmask")

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
        total = _product([v.extent for v in stmt.index])
        self.emit_launch({"BLOCK_P": "1" if not stmt.index else "32", "BLOCK_R": "128"},
                         f"triton.cdiv({shape_code(total)}, BLOCK_P)",
                         {"BLOCK_P": "BLOCK_P", "BLOCK_R": "BLOCK_R"}, "4")

    def body_pointwise(self) -> None:
        (stmt,) = self.launch.statements
        outer, inner = list(stmt.index[:-1]), stmt.index[-1]
        n_inner = shape_code(inner.extent)
        total_p = shape_code(_product([v.extent for v in outer]))
        self.lines.append("pid = tl.program_id(0)")
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

    def body_rows(self) -> None:
        launch = self.launch
        n_outer = len(launch.outer)
        codes = self.outer_setup(list(launch.outer), "BLOCK_P")
        ext = launch.inner.extent
        self.lines.append("if SINGLE:")
        self.lines.append("    offs_r = tl.arange(0, BLOCK_R)[None, :]")
        self.lines.append(f"    rmask = offs_r < {shape_code(ext)}")
        self.rows_pass(codes, n_outer, single=True)
        self.lines.append("else:")
        self.rows_pass(codes, n_outer, single=False)
        self.constexprs = ["BLOCK_P", "BLOCK_R", "SINGLE"]
        total = shape_code(_product([v.extent for v in launch.outer]))
        n = shape_code(ext)
        self.emit_launch(
            {"BLOCK_R": f"min(triton.next_power_of_2({n}), 8192)",
             "BLOCK_P": f"min(triton.next_power_of_2({total}), max(1, 2048 // BLOCK_R))",
             # H200 (bench/NOTES.md): 4096-wide f32 rows ran best with 16 warps (softmax,
             # rmsnorm, row_sum), 4096-wide bf16 rows with 8 (layernorm); so by bytes per tile
             "WARPS": f"4 if BLOCK_R * BLOCK_P <= 2048 else "
                      f"(8 if BLOCK_R * BLOCK_P * {self.widest_load()} < 16384 else 16)"},
            f"triton.cdiv({total}, BLOCK_P)",
            {"BLOCK_P": "BLOCK_P", "BLOCK_R": "BLOCK_R", "SINGLE": f"{n} <= BLOCK_R"}, "WARPS")

    def widest_load(self) -> int:
        """Bytes per element of the widest input tensor the launch reads."""
        inputs = {p.name for p in self.kernel.tensor_params}
        sizes = [n.dtype.bits // 8 for s in self.launch.statements for n in ir.walk(s.value)
                 if isinstance(n, ir.Load) and n.tensor in inputs]
        return max(sizes, default=4)

    def rows_pass(self, outer_codes: list[str], n_outer: int, single: bool) -> None:
        scope = Scope(self.lines, "    ")
        mask = "pmask & rmask"
        self.em.registers = {}
        for stmt in self.launch.statements:
            for v, c in zip(stmt.index[:n_outer], outer_codes):
                self.em.var_code[v] = c
            is_vector = len(stmt.index) > n_outer
            if not is_vector:
                value = self.statement_value(stmt, scope, mask, "offs_r", self.launch.inner.extent,
                                             single)
                reg = f"{stmt.target}_row"
                self.lines.append(f"{scope.indent}{reg} = {value}")
                self.em.registers[stmt.target] = reg
                if stmt.target in self.launch.stores:
                    self.store(stmt.target, outer_codes, reg, "pmask", scope.indent)
                continue
            if single:
                self.em.var_code[stmt.index[-1]] = "offs_r"
                value = self.em.expr(stmt.value, scope, mask)
                self.store(stmt.target, outer_codes + ["offs_r"], value, mask, scope.indent)
            else:
                ext = shape_code(self.launch.inner.extent)
                self.lines.append(f"{scope.indent}for r0 in range(0, {ext}, BLOCK_R):")
                inner = Scope(self.lines, scope.indent + "    ")
                self.lines.append(f"{inner.indent}offs_r = r0 + tl.arange(0, BLOCK_R)[None, :]")
                self.lines.append(f"{inner.indent}rmask = offs_r < {ext}")
                self.em.var_code[stmt.index[-1]] = "offs_r"
                value = self.em.expr(stmt.value, inner, mask)
                self.store(stmt.target, outer_codes + ["offs_r"], value, mask, inner.indent)

    def body_contraction(self) -> None:
        c = self.launch.contraction
        stmt = self.launch.statements[0]
        em = self.em
        batch = list(c.batch)
        self.lines.append("pid = tl.program_id(0)")
        m, n, k = (_extent_code(vs) for vs in (c.iv, c.jv, c.kv))
        batch_total = shape_code(_product([v.extent for v in batch]))
        self.lines.append(f"blocks_m = ({m} + BLOCK_M - 1) // BLOCK_M")
        self.lines.append(f"blocks_n = ({n} + BLOCK_N - 1) // BLOCK_N")
        # grouped ordering: programs sharing a band of rows of A run together (L2 reuse)
        self.lines.append("group = pid // (GROUP_M * blocks_n)")
        self.lines.append("first_m = group * GROUP_M")
        self.lines.append("size_m = tl.minimum(blocks_m - first_m, GROUP_M)")
        self.lines.append("pid_m = first_m + (pid % (GROUP_M * blocks_n)) % size_m")
        self.lines.append("pid_n = (pid % (GROUP_M * blocks_n)) // size_m")
        self.lines.append("offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]")
        self.lines.append("offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]")
        # several row (column, depth) indices are one flattened GEMM dim, split back here
        rows = self.split_flat("offs_m", c.iv, "")
        cols = self.split_flat("offs_n", c.jv, "")
        if batch:
            self.lines.append("offs_b = tl.program_id(1)")
            codes = self.decompose("offs_b", batch, [f"b{q}" for q in range(len(batch))])
            for v, code in zip(batch, codes):
                em.var_code[v] = code
        scope = Scope(self.lines, "")
        self.lines.append(f"acc = tl.full([BLOCK_M, BLOCK_N], 0.0, {self.acc_dtype(c)})")
        self.lines.append(f"for k0 in range(0, {k}, BLOCK_K):")
        loop = Scope(self.lines, "    ")
        self.lines.append("    offs_ka = k0 + tl.arange(0, BLOCK_K)[None, :]")
        self.lines.append("    offs_kb = k0 + tl.arange(0, BLOCK_K)[:, None]")
        operand = self.operand_dtype(c)
        em.raw_loads = operand is not None
        em.var_code.update(rows)
        em.var_code.update(self.split_flat("offs_ka", c.kv, "    "))
        a = em.expr(c.a, loop, f"(offs_m < {m}) & (offs_ka < {k})")
        em.var_code.update(self.split_flat("offs_kb", c.kv, "    "))
        em.var_code.update(cols)
        b = em.expr(c.b, loop, f"(offs_kb < {k}) & (offs_n < {n})")
        em.raw_loads = False
        precision = "" if operand is not None and operand != "tl.float32" else \
            ", input_precision=PRECISION"
        a, b = self.dot_operands(a, b, operand, "    ")
        self.lines.append(f"    acc = tl.dot({a}, {b}, acc{precision})")
        em.replace[id(c.reduce)] = "acc"
        em.var_code.update(rows)
        em.var_code.update(cols)
        mask = f"(offs_m < {m}) & (offs_n < {n})"
        value = em.expr(stmt.value, scope, mask)
        codes = [em.var_code[v] for v in stmt.index]
        self.store(stmt.target, codes, value, mask)
        self.constexprs = ["BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "PRECISION", "INTERPRETED"]
        self.emit_launch(
            # 128x256 tiles reached 0.96 of cuBLAS at 8192^3 f16 on an H200, and were the best
            # at 1024x8192x8192 too (bench/NOTES.md); grids smaller than one wave of 128x256
            # tiles keep 128x128
            {"BLOCK_M": "128 if device.type == 'cuda' else 32",
             "BLOCK_N": f"(256 if triton.cdiv({m}, 128) * triton.cdiv({n}, 256) * {batch_total} "
                        f">= _multiprocessors(device) else 128) if device.type == 'cuda' "
                        f"else 32",
             "BLOCK_K": "64 if device.type == 'cuda' else 32",
             "STAGES": "3 if device.type == 'cuda' else 1",
             "WARPS": "8 if device.type == 'cuda' else 4",
             "PRECISION": "'tf32' if schedule.get('allow_tf32') else 'ieee'"},
            f"triton.cdiv({m}, BLOCK_M) * triton.cdiv({n}, BLOCK_N), {batch_total}",
            {"BLOCK_M": "BLOCK_M", "BLOCK_N": "BLOCK_N", "BLOCK_K": "BLOCK_K", "GROUP_M": "8",
             "PRECISION": "PRECISION", "INTERPRETED": "device.type != 'cuda'",
             "num_stages": "STAGES"}, "WARPS")

    def split_flat(self, offs: str, vars_: tuple[ir.IndexVar, ...], indent: str
                   ) -> dict[ir.IndexVar, str]:
        """Codes for the variables of a flattened (row-major) tile dimension."""
        if len(vars_) == 1:
            return {vars_[0]: offs}
        saved, self.lines = self.lines, []
        codes = self.decompose(offs, list(vars_), [f"{offs}_{v.name}" for v in vars_])
        saved += [indent + line for line in self.lines]
        self.lines = saved
        return dict(zip(vars_, codes))

    def operand_dtype(self, c) -> str | None:
        """The dtype tl.dot gets: both operands' storage dtype when they agree on a tensor-core
        type (f16, bf16, f32); None means convert both to f32."""
        dts = {n.dtype for f in (c.a, c.b) for n in ir.walk(f) if isinstance(n, ir.Load)}
        plain = all(isinstance(f, ir.Load) for f in (c.a, c.b))
        if plain and len(dts) == 1 and next(iter(dts)) in (DType.f16, DType.bf16, DType.f32):
            return TL_DTYPE[next(iter(dts))]
        return None

    def acc_dtype(self, c) -> str:
        return "tl.float64" if c.reduce.dtype == DType.f64 else "tl.float32"

    # --- attention -------------------------------------------------------------------------
    def dot_operands(self, a: str, b: str, operand: str | None, indent: str) -> tuple[str, str]:
        """Operands for tl.dot: storage dtype on the tensor cores, f32 otherwise; bf16 is
        computed in f32 under the interpreter, whose bf16 arithmetic is wrong (Triton 3.9)."""
        if operand is None:
            return f"({a}).to(tl.float32)", f"({b}).to(tl.float32)"
        if operand == "tl.bfloat16":
            ta, tb = self.em.fresh("opa"), self.em.fresh("opb")
            self.lines += [f"{indent}{ta} = {a}", f"{indent}{tb} = {b}",
                           f"{indent}if INTERPRETED:", f"{indent}    {ta} = {ta}.to(tl.float32)",
                           f"{indent}    {tb} = {tb}.to(tl.float32)"]
            return ta, tb
        return a, b

    def body_attention(self) -> None:
        att = self.launch.attention
        sc, oc = att.scores, att.out
        em = self.em
        qlen, klen = shape_code(sc.i.extent), shape_code(sc.j.extent)
        dk, dv = shape_code(sc.k.extent), shape_code(oc.j.extent)
        self.lines.append("pid_m = tl.program_id(0)")
        self.lines.append("offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]")
        self.lines.append("offs_dk = tl.arange(0, BLOCK_D)[None, :]")
        self.lines.append("offs_dk_row = tl.arange(0, BLOCK_D)[:, None]")
        self.lines.append("offs_dv = tl.arange(0, BLOCK_DV)[None, :]")
        if sc.batch:
            self.lines.append("offs_b = tl.program_id(1)")
            codes = self.decompose("offs_b", list(sc.batch), [f"b{q}" for q in range(len(sc.batch))])
            for v, code in zip(sc.batch, codes):
                em.var_code[v] = code
            for v, code in zip(oc.batch, codes):
                em.var_code[v] = code
            for v, code in zip(att.out_stmt.index[:-2], codes):
                em.var_code[v] = code
        top = Scope(self.lines, "")
        operand = self.operand_dtype(sc)
        em.raw_loads = operand is not None
        em.var_code[sc.i], em.var_code[sc.k] = "offs_m", "offs_dk"
        q = em.expr(sc.a, top, f"(offs_m < {qlen}) & (offs_dk < {dk})")
        em.raw_loads = False
        self.lines.append("m_i = tl.full([BLOCK_M, 1], float('-inf'), tl.float32)")
        self.lines.append("l_i = tl.full([BLOCK_M, 1], 0.0, tl.float32)")
        self.lines.append("acc = tl.full([BLOCK_M, BLOCK_DV], 0.0, tl.float32)")
        self.lines.append(f"for j0 in range(0, {klen}, BLOCK_N):")
        loop = Scope(self.lines, "    ")
        self.lines.append("    offs_n = j0 + tl.arange(0, BLOCK_N)[None, :]")
        self.lines.append("    offs_n_row = j0 + tl.arange(0, BLOCK_N)[:, None]")
        em.raw_loads = operand is not None
        em.var_code[sc.k], em.var_code[sc.j] = "offs_dk_row", "offs_n"
        kt = em.expr(sc.b, loop, f"(offs_dk_row < {dk}) & (offs_n < {klen})")
        em.raw_loads = False
        qa, kb = self.dot_operands(q, kt, operand, "    ")
        precision = ", input_precision=PRECISION" if operand in (None, "tl.float32") else ""
        self.lines.append(f"    qk = tl.dot({qa}, {kb}{precision})")
        # the score statement's epilogue (scale, masks) on the tile, the sum replaced by qk
        em.replace[id(sc.reduce)] = "qk"
        em.var_code[sc.i], em.var_code[sc.j] = "offs_m", "offs_n"
        score = em.expr(att.scores_stmt.value, loop, f"(offs_m < {qlen}) & (offs_n < {klen})")
        # scores in base 2 (exp(x) = exp2(x * log2 e)): the row statistics never leave the
        # kernel, so only p and the rescaling factor see the change of base
        self.lines.append(f"    s_blk = ({score}) * 1.4426950408889634")
        self.lines.append("    if not EVEN_N:")
        self.lines.append(f"        s_blk = tl.where(offs_n < {klen}, s_blk, float('-inf'))")
        self.lines.append("    m_new = tl.maximum(m_i, tl.reduce(s_blk, 1, _max, keep_dims=True))")
        # rows with no finite score yet subtract 0, not -inf (exp(-inf - -inf) would be NaN)
        self.lines.append("    m_safe = tl.where(m_new == float('-inf'), 0.0, m_new)")
        self.lines.append("    alpha = tl.exp2(m_i - m_safe)")
        self.lines.append("    p = tl.exp2(s_blk - m_safe)")
        self.lines.append("    l_i = l_i * alpha + tl.reduce(p, 1, _add, keep_dims=True)")
        # p is computed in f32 and joins v on the tensor cores in v's storage dtype
        operand_v = TL_DTYPE[oc.b.dtype] if isinstance(oc.b, ir.Load) and oc.b.dtype in (
            DType.f16, DType.bf16, DType.f32) else None
        em.raw_loads = operand_v is not None
        em.var_code[oc.k], em.var_code[oc.j] = "offs_n_row", "offs_dv"
        v = em.expr(oc.b, loop, f"(offs_n_row < {klen}) & (offs_dv < {dv})")
        em.raw_loads = False
        p_code = "p" if operand_v is None else f"p.to({operand_v})"
        pa, vb = self.dot_operands(p_code, v, operand_v, "    ")
        precision = ", input_precision=PRECISION" if operand_v in (None, "tl.float32") else ""
        self.lines.append(f"    acc = acc * alpha + tl.dot({pa}, {vb}{precision})")
        self.lines.append("    m_i = m_new")
        em.replace[id(oc.reduce)] = "acc"
        em.registers[att.l_name] = "l_i"
        em.registers[att.m_name] = "m_i"
        em.var_code[oc.i], em.var_code[oc.j] = "offs_m", "offs_dv"
        out_index = att.out_stmt.index
        em.var_code[out_index[-2]], em.var_code[out_index[-1]] = "offs_m", "offs_dv"
        mask = f"(offs_m < {qlen}) & (offs_dv < {dv})"
        value = em.expr(att.out_stmt.value, top, mask)
        self.store(att.out_stmt.target, [em.var_code[x] for x in out_index], value, mask)
        self.constexprs = ["BLOCK_M", "BLOCK_N", "BLOCK_D", "BLOCK_DV", "PRECISION", "INTERPRETED",
                           "EVEN_N"]
        batch_total = shape_code(_product([x.extent for x in sc.batch]))
        cuda = "device.type == 'cuda'"
        self.emit_launch(
            # the best of a sweep on an H200 at 16x16x2048 f16, head dims 64 and 128
            # (bench/NOTES.md): 128x64 tiles, 8 warps, 3 stages
            {"BLOCK_D": f"max(16, triton.next_power_of_2({dk}))",
             "BLOCK_DV": f"max(16, triton.next_power_of_2({dv}))",
             "BLOCK_M": f"128 if {cuda} else 16",
             "BLOCK_N": f"64 if {cuda} else 16",
             "STAGES": f"3 if {cuda} else 1",
             "WARPS": f"8 if {cuda} else 4",
             "PRECISION": "'tf32' if schedule.get('allow_tf32') else 'ieee'"},
            f"triton.cdiv({qlen}, BLOCK_M), {batch_total}",
            {"BLOCK_M": "BLOCK_M", "BLOCK_N": "BLOCK_N", "BLOCK_D": "BLOCK_D",
             "BLOCK_DV": "BLOCK_DV", "PRECISION": "PRECISION",
             "INTERPRETED": "device.type != 'cuda'", "EVEN_N": f"{klen} % BLOCK_N == 0",
             "num_stages": "STAGES"}, "WARPS")

    # --- split reduction to a scalar ---------------------------------------------------------
    def write_split(self) -> None:
        """A reduction to a scalar in two kernels. Phase 1: program `pid` reduces its chunk of
        every reduction's range into part_k[pid]; many programs keep the GPU busy, and short
        per-lane chains keep f32 sums accurate over 10^8 terms. Phase 2: one program combines
        the partials and evaluates the statement."""
        (stmt,) = self.launch.statements
        reds = [n for n in ir.walk(stmt.value) if isinstance(n, ir.Reduce)]
        exts = [shape_code(_product([v.extent for v in r.vars])) for r in reds]
        combiner = {"sum": "_add", "mean": "_add", "prod": "_mul", "max": "_max", "min": "_min"}
        kernel_name = self.name
        # phase 1
        bufs = [(n, rank) for n, rank in self.buffers() if n != stmt.target]
        params, args, signature = self.buffer_params(bufs)
        for k, r in enumerate(reds):
            params.append(f"part{k}_ptr")
            args.append(f"part{k}_{self.n}")
            signature[f"part{k}_ptr"] = "*" + _TRITON_SIG[self.accumulator(r)]
        tail, tail_args, tail_sig = self.scalar_and_symbol_params()
        self.lines = ["pid = tl.program_id(0)", "offs_p = tl.arange(0, 1)[:, None]",
                      "pmask = offs_p < 1"]
        scope = Scope(self.lines, "")
        for k, (r, ext) in enumerate(zip(reds, exts)):
            self.lines.append(f"chunk{k} = (({ext} + SPLIT - 1) // SPLIT + BLOCK_R - 1) "
                              f"// BLOCK_R * BLOCK_R")
            self.lines.append(f"end{k} = tl.minimum(pid * chunk{k} + chunk{k}, {ext})")
            part = self.reduce_into(r, scope, "pmask", "offs_r", Shape.const(0), single=False,
                                    span=(f"pid * chunk{k}", f"end{k}"), finish_mean=False)
            self.lines.append(f"tl.store(part{k}_ptr + pid + offs_p * 0, {part}, mask=pmask)")
        consts = ["BLOCK_P", "BLOCK_R", "SPLIT"]
        self.ctx.kernels.append(JitKernel(
            f"{kernel_name}_partial", params + tail + [f"{c}: tl.constexpr" for c in consts],
            self.lines, f"split reduction, phase 1 -> partials of {stmt.target}",
            {**signature, **tail_sig, **{c: "constexpr" for c in consts}},
            {"BLOCK_P": 1, "BLOCK_R": 1024, "SPLIT": 512}))
        # phase 2
        self.lines = ["offs_p = tl.arange(0, 1)[:, None]", "pmask = offs_p < 1",
                      "offs_s = tl.arange(0, SPLIT_BLOCK)[None, :]"]
        scope = Scope(self.lines, "")
        for k, (r, ext) in enumerate(zip(reds, exts)):
            ident = self.identity(r.op, self.accumulator(r))
            self.lines.append(f"vals{k} = tl.load(part{k}_ptr + offs_s + offs_p * 0, "
                              f"mask=offs_s < SPLIT, other={ident})")
            red = f"tl.reduce(vals{k}, 1, {combiner[r.op]}, keep_dims=True)"
            if r.op == "mean":
                red = f"{red} / {ext}"
            elif r.body.dtype == DType.bool and r.op in ("max", "min"):
                red = f"({red} != 0)"
            self.lines.append(f"red{k} = {red}")
            self.em.replace[id(r)] = f"red{k}"
        value = self.em.expr(stmt.value, scope, "pmask")
        self.store(stmt.target, [], value, "pmask")
        loads = [(n, rank) for n, rank in self.buffers()
                 if n != stmt.target and any(isinstance(x, ir.Load) and x.tensor == n or
                                             isinstance(x, ir.ScalarRef) and x.name == n
                                             for x in self.outside_reduces(stmt.value))]
        params2, args2, sig2 = self.buffer_params(loads + [(stmt.target, 0)])
        for k, r in enumerate(reds):
            params2.append(f"part{k}_ptr")
            args2.append(f"part{k}_{self.n}")
            sig2[f"part{k}_ptr"] = "*" + _TRITON_SIG[self.accumulator(r)]
        consts = ["SPLIT", "SPLIT_BLOCK"]
        self.ctx.kernels.append(JitKernel(
            f"{kernel_name}_finish", params2 + tail + [f"{c}: tl.constexpr" for c in consts],
            self.lines, f"split reduction, phase 2 -> {stmt.target}",
            {**sig2, **tail_sig, **{c: "constexpr" for c in consts}},
            {"SPLIT": 512, "SPLIT_BLOCK": 512}))
        # host
        host = self.ctx.host
        host.append(f"# launch {self.n}: split reduction -> {stmt.target}")
        biggest = " , ".join(exts)
        host.append(f"SPLIT = schedule.get('{self.n}.SPLIT', max(1, min(1024, "
                    f"max({biggest}, 1) // 16384)))")
        host.append(f"BLOCK_R = schedule.get('{self.n}.BLOCK_R', 1024 if SPLIT > 1 else "
                    f"min(1024, triton.next_power_of_2(max({biggest}, 1))))")
        for k, r in enumerate(reds):
            host.append(f"part{k}_{self.n} = torch.empty((SPLIT,), dtype="
                        f"{_torch_dtype(self.accumulator(r))}, device=device)")
        host.append(f"{kernel_name}_partial[(SPLIT,)]({', '.join(args + tail_args)}, "
                    f"BLOCK_P=1, BLOCK_R=BLOCK_R, SPLIT=SPLIT, num_warps=4)")
        host.append(f"{kernel_name}_finish[(1,)]({', '.join(args2 + tail_args)}, SPLIT=SPLIT, "
                    f"SPLIT_BLOCK=triton.next_power_of_2(SPLIT), num_warps=4)")

    @staticmethod
    def outside_reduces(e: ir.Expr):
        if isinstance(e, ir.Reduce):
            return
        yield e
        for c in ir.children(e):
            yield from _LaunchWriter.outside_reduces(c)
