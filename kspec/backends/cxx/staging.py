"""How one operand of a tensor-core contraction reaches shared memory: the lines that
templates/contraction.j2 places in its copy setup and in each depth step's load.

A block's threads stage each depth step of A (rows x depth) and B (columns x depth) in chunks
of 16 bytes along the operand's staging direction (contraction.py). Three ways, picked per
operand:

- copies: a plain load contiguous along that direction whose address moves by a fixed step per
  depth step is copied chunk by chunk with 16-byte cp.async (the `async` variants), each
  chunk's address computed once, before the depth loop;
- element copies: an f32 operand that is a plain load (padded with zero or not) of an f32
  tensor, on the f32 paths, is copied element by element with 4-byte cp.async, zero-filled
  outside the matrix or the padding, so that a convolution's gathered rows are in flight while
  the tensor cores multiply the previous step (as the chunk copies are);
- elements: any other operand (a prologue expression, a conversion, a nonzero pad) is
  computed and stored by the threads, zero outside the matrix.

The row (or column) index of an element decomposes into the operand's own index variables
(a convolution's n, p, q) by divisions; where there are several, each thread computes those
of the rows it stages once, before the depth loop (`hoisted`), instead of at every depth
step. A convolution's depth (Contraction.window_split) is staged two ways, the launch picking
one: flattened, each element's depth index split into (c, r, s); or the window's offsets one
per depth step, (r, s) computed once per step, the channels BK at a time (`window_elements`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ... import ir
from ...dtypes import DType
from ...shapes import Shape
from .code import MUL, Code, binary
from .patterns import LaunchContext


def contiguous_load(e: ir.Expr, var: ir.IndexVar) -> ir.Load | None:
    """e itself is a load whose last index is exactly `var`, used nowhere else in the index."""
    if (isinstance(e, ir.Load) and e.pad is None and e.index and e.index[-1].bare == var
            and all(var not in a.vars() for a in e.index[:-1])):
        return e
    return None


def split_offset(ctx: LaunchContext, e: ir.Expr, own: tuple) -> tuple[str, str] | None:
    """A plain load's element offset as (the part of the indices `own` and the constant
    offsets, the rest), or None (a padded, divided or gathered read)."""
    if not isinstance(e, ir.Load) or e.pad is not None or any(
            a.div is not None or a.gather is not None for a in e.index):
        return None
    r, mine = ctx.r, set(own)
    strides = ctx.strides[e.tensor]

    def offset(keep) -> str:
        terms = []
        for dim, a in enumerate(e.index):
            part = replace(a, terms=tuple(t for t in a.terms if keep(t[0])),
                           offset=a.offset if keep(None) else Shape.const(0))
            if part.terms or part.offset != 0:
                terms.append(binary(r.affine(part), "*", Code(strides[dim], "int64_t"), MUL,
                                    "int64_t"))
        return " + ".join(t.text for t in terms)

    # the constant offsets go with the row (None stands for them)
    return offset(lambda v: v is None or v in mine), offset(lambda v: v is not None
                                                                  and v not in mine)


def _kmajor(e: ir.Expr, k: ir.IndexVar) -> bool:
    """Stage along the depth when some load of the operand is contiguous along it."""
    return any(isinstance(n, ir.Load) and n.index and n.index[-1].bare == k for n in ir.walk(e))


@dataclass(frozen=True)
class OperandStaging:
    """The template data of one operand (templates/contraction.j2 reads it)."""

    side: str                       # "A" or "B"
    kmajor: bool                    # staged along the depth (else along rows or columns)
    copies: dict | None             # the 16-byte chunk copies, or None
    elements: list[str]             # one chunk's element loop, the depth flattened
    window_elements: list[str] | None   # ... the window one offset per step (convolutions)
    # the row setup, or None: `lines` decompose the row into the index variables, whose `stored`
    # (the variables, or a plain load's row offset) go into `arrays`; `reads` read them back
    hoisted: dict | None
    # the step's chunks unrolled: copies and plain element loads in flight together; element
    # copies are asynchronous anyway, and one chunk at a time keeps the registers the
    # accumulators need (arrays indexed by the chunk must be unrolled)
    unroll_chunks: bool


def stage_operand(ctx: LaunchContext, expr: ir.Expr, side: str, own: tuple, kv: tuple,
                  batch: tuple, elem: DType, element_copies: bool, window: tuple,
                  channels: tuple) -> OperandStaging:
    """The staging of operand `side` (own: its row or column indices; kv: the depth's; batch:
    the batch indices, fixed in a block and named by the caller), of
    tensor-core element type `elem`; `element_copies`: the path has 4-byte cp.async for f32
    elements; (window, channels): the contraction's window split, or ((), ())."""
    r = ctx.r
    kmajor = _kmajor(expr, kv[-1])
    chunk = 4 if elem == DType.f32 else 8
    limit = "M" if side == "A" else "N"
    # element e of a chunk: row + e (staged along rows) or depth index kq + e (along the depth)
    erow, ek = ("row", "kq + e") if kmajor else ("row + e", "kq")
    names = ctx.name_vars(list(own))
    ctx.name_vars(list(kv))     # (the names the rendered loads use)
    copy = None
    if (element_copies and elem == DType.f32 and isinstance(expr, ir.Load)
            and ctx.elements[expr.tensor] == DType.f32
            and (expr.pad is None or expr.pad.value == 0)):
        element, inside = r.load_parts(expr)
        copy = (f"&{element}", None if inside is None else inside.text, ctx.pointers[expr.tensor])
    hoisted = None
    if len(own) > 1:   # a single index is the row itself: nothing to divide
        slot = "[it]" if kmajor else f"[it % {side}_RIT][e]"
        parts = split_offset(ctx, expr, own + batch) if copy is not None else None
        if parts is not None:
            # a plain load: the row's part of the element's offset, one value a row
            row_part, depth_part = parts
            pointer = copy[2]
            copy = (f"{pointer} + {side}_ro{slot}" + (f" + {depth_part}" if depth_part else ""),
                    None, pointer)
            hoisted = dict(arrays=[f"{side}_ro"], stored=[row_part], reads=[])
        else:   # the row's index variables
            hoisted = dict(arrays=[f"{side}_rv{j}" for j in range(len(own))], stored=names,
                           reads=[f"const int64_t {n} = {side}_rv{j}{slot};"
                                  for j, n in enumerate(names)])
        hoisted["lines"] = ctx.decompose(erow, list(own))
    zero = {DType.f16: ctx.d.float_to_half.format(x="0.0f"), DType.f32: "0.0f",
            DType.bf16: ctx.d.float_to_bf16.format(x="0.0f")}[elem]

    def element_loop(depth: tuple, bound: str) -> list[str]:
        rows = hoisted["reads"] if hoisted else ctx.decompose(erow, list(own))
        depths = ctx.decompose(ek, list(depth))
        # the index variables the chunk's elements share (its depth index, or its row) are
        # computed once, before its loop
        chunk_lines, index = (rows, depths) if kmajor else (depths, rows)
        inside = f"{erow} < {limit} && {ek} < {bound}"
        # arrays of hoisted rows stay in registers only when the loop is unrolled; else one
        # element at a time: the spelled-out index math of eight elements in flight would not
        # fit the registers the accumulators leave
        head = [*chunk_lines, "#pragma unroll" if hoisted and not kmajor else "#pragma unroll 1",
                f"for (int e = 0; e < {chunk}; ++e) {{"]
        if copy is not None:
            element, padded, pointer = copy
            ok = inside if padded is None else f"{inside} && {padded}"
            body = [*index, f"const bool ok = {ok};",
                    f"kspec_copy4(dst + e, ok ? {element} : {pointer}, ok);"]
            return [*head, *[f"    {line}" for line in body], "}"]
        value = r.render(expr)
        body = [*index, f"dst[e] = {r.to_storage(value, expr.dtype, elem)};"]
        return [*head, f"    if ({inside}) {{", *[f"        {line}" for line in body],
                "    } else {", f"        dst[e] = {zero};", "    }", "}"]

    along = kv if kmajor else own
    # copied when a plain contiguous load whose address moves by a fixed step per depth index
    # (one depth variable)
    load = contiguous_load(expr, along[-1]) if len(along) == 1 and len(kv) == 1 else None
    copies = None
    if load is not None:
        # the chunk's address at depth step 0 (from `row` and `kq`), and its step per depth
        # index: the depth variable's coefficients times the strides it meets
        k = kv[0]
        inner = [*ctx.decompose("row", list(own)), *ctx.decompose("kq", list(kv))]
        addr = r.element(load.tensor, [r.affine(a) for a in load.index])
        steps = [(coef, ctx.strides[load.tensor][dim])
                 for dim, a in enumerate(load.index) for v, coef in a.terms if v == k]
        copies = dict(pointer=ctx.pointers[load.tensor], limit=limit, tensor=load.tensor,
                      address=[*inner, f"src = &{addr};"],
                      step=" + ".join(s_ if c_ == 1 else f"{c_} * {s_}" for c_, s_ in steps))
    unroll = copies is not None or copy is None or (hoisted is not None and kmajor)
    return OperandStaging(side, kmajor, copies, element_loop(kv, "K"),
                          element_loop(channels, "KC") if window else None, hoisted, unroll)


__all__ = ["OperandStaging", "contiguous_load", "stage_operand"]
