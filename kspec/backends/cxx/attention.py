"""The attention pattern on NVIDIA tensor cores: scores, online softmax and the weighted sum of
values in one kernel (templates/tensor_cores/mma_sync_attention.j2), never writing the score matrix.

A block of 4 warps owns 64 queries of one batch element, each warp 16 of them; it walks the
keys 64 at a time (K and V tiles double-buffered in shared memory, cp.async). A warp computes
its 16 x 64 scores with mma.sync from Q fragments held in registers, applies the score
statement's epilogue (scale, masks) and the running max / sum per row, and multiplies the
probabilities, repacked in registers as f16/bf16 operands, by V. The head dimensions are
template parameters (D = 64 or 128, zero-padded); larger heads, and targets without mma.sync,
run the plan's three unfused launches, which are compiled alongside and launched instead
(with their temporaries allocated only then).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ... import ir
from ...dtypes import DType
from ...lowering.plan import Attention
from .code import Code
from .contraction import CHUNK, PAD, async_copy_ok, contiguous_load
from .ctype import compute_ctype, storage_ctype
from .generic import Temporary, extent_product
from .patterns import LaunchContext, PatternUnit, statement_text

HEADS = (64, 128)          # compiled head-dimension paddings
BM, BN, THREADS = 64, 64, 128
LOCALS = ("M_q", "N_k", "DK", "DV", "tid", "lane", "warp", "zb", "q0", "jb", "NB", "Qs", "Ks",
          "Vs", "qf", "sacc", "oacc", "m_i", "l_i", "alpha", "ch", "row", "dcol", "ok", "src",
          "dst", "e", "ri", "di", "sv", "ov", "lv", "mv", "nt", "kk", "t", "h", "i_", "j_",
          "tiles_m", "COLS", "D", "ASYNC", "kb", "vb", "pa", "mx", "mnew", "msafe", "it",
          "stage", "load_q", "load_kv", "pv", "D_PAD", "dt", "ps")


def eligible(launch, d) -> bool:
    """Fused when the target has NVIDIA's mma.sync, q, k and v are plain f16/bf16 loads that
    are contiguous along the head dimension, and every index is single."""
    if launch.pattern != "attention" or d.tensor_cores not in ("mma_sync", "wgmma"):
        return False
    att: Attention = launch.attention
    sc, oc = att.scores, att.out
    dt = sc.a.dtype
    return (dt in (DType.f16, DType.bf16) and sc.b.dtype == dt and oc.b.dtype == dt
            and contiguous_load(sc.a, sc.k) is not None
            and contiguous_load(sc.b, sc.k) is not None
            and contiguous_load(oc.b, oc.j) is not None
            and sc.a.index[-2].bare == sc.i and sc.b.index[-2].bare == sc.j
            and oc.b.index[-2].bare == oc.k)


@dataclass
class AttentionUnit:
    """The fused kernel, and the unfused launches it stands in for (compiled, launched only
    for heads wider than 128, with their temporaries as scratch)."""

    fused: PatternUnit
    fallback: list
    temporaries: list[Temporary]
    heads: list = field(default_factory=list)     # the head-dimension shapes (dk, dv)
    standby: bool = False

    def __getattr__(self, attr: str):
        # the rest (name, statement, template, args, param_lines, data, variants) is the
        # fused kernel's, which is what the module renders
        if attr == "fused":
            raise AttributeError(attr)
        return getattr(self.fused, attr)

    def fits(self, env: dict[str, int]) -> bool:
        return all(h.evaluate(env) <= max(HEADS) for h in self.heads)

    def functions(self) -> list[str]:
        return list(self.fused.variants)     # the fallback units list their own

    def scratch(self, env: dict[str, int], info=None) -> dict:
        if self.fits(env):
            return {}
        out = {t.name: (tuple(x.evaluate(env) for x in t.dims), compute_ctype(t.dtype))
               for t in self.temporaries}
        for u in self.fallback:
            out.update(u.scratch(env, info))
        return out

    def launches(self, env: dict[str, int], buffers: dict, info) -> list:
        if self.fits(env):
            return self.fused.pick(env, buffers, info)
        out = []
        for u in self.fallback:     # each launch names the unit whose parameters it takes
            for f, grid, block, extra, *rest in u.launches(env, buffers, info):
                out.append((f, grid, block, extra, rest[0] if rest else 0,
                            rest[1] if len(rest) > 1 else u))
        return out


def lower_attention(ctx: LaunchContext, name: str) -> PatternUnit:
    launch = ctx.launch
    att: Attention = launch.attention
    sc, oc, out_stmt = att.scores, att.out, att.out_stmt
    d, r = ctx.d, ctx.r
    elem = sc.a.dtype
    ectype = storage_ctype(elem, d)
    # one C name per role, for every statement's own index variables
    batch = [ctx.namer.fresh(v.name) for v in sc.batch]
    for vs in (sc.batch, oc.batch, out_stmt.index[:-2]):
        ctx.name_vars(list(vs), batch)
    ctx.name_vars([sc.i, oc.i, out_stmt.index[-2]], ["i_"] * 3)
    ctx.name_vars([sc.j, oc.k], ["j_"] * 2)
    ctx.name_vars([sc.k], ["di"])
    ctx.name_vars([oc.j, out_stmt.index[-1]], ["di"] * 2)
    batch_lines = ctx.decompose("zb", list(sc.batch))

    def address(load: ir.Load) -> str:
        return "&" + r.element(load.tensor, [r.affine(a) for a in load.index])

    def element(load: ir.Load) -> str:
        return r.to_storage(r.render(load), load.dtype, elem)

    # q rows are i_, k and v rows j_, columns di
    operands = {"q": (sc.a, "i_", "M_q", "DK"), "k": (sc.b, "j_", "N_k", "DK"),
                "v": (oc.b, "j_", "N_k", "DV")}
    loads = {key: dict(pointer=ctx.pointers[ld.tensor], row=row, rows=rows, cols=cols,
                       address=address(ld), element=element(ld))
             for key, (ld, row, rows, cols) in operands.items()}
    # the score statement's value with the sum replaced by the accumulator
    r.seed(sc.reduce, r.finish(sc.reduce, Code("sv", "float")))
    score = r.render(att.scores_stmt.value).text
    # the output statement: the weighted sum from its accumulator, l and m from registers
    r.seed(oc.reduce, r.finish(oc.reduce, Code("ov", "float")))

    def hook(e):
        name_ = e.tensor if isinstance(e, ir.Load) else getattr(e, "name", None)
        if name_ == att.l_name:
            return Code("lv", "float")
        if name_ == att.m_name:
            return Code("mv", "float")
        return None

    r.load_hook = hook
    value = r.render(out_stmt.value)
    r.load_hook = None
    store = ctx.store(out_stmt.target, list(out_stmt.index), value, out_stmt.value.dtype)
    totals = {"M_q": r.shape(sc.i.extent).text, "N_k": r.shape(sc.j.extent).text,
              "DK": r.shape(sc.k.extent).text, "DV": r.shape(oc.j.extent).text,
              "Z": ctx.total([v.extent for v in sc.batch])}
    r.helpers |= {"tc_copies", "tc_mma_sync", "kspec_max"}
    text = "\n".join([*batch_lines, score, store, *totals.values(),
                      *(x for ld in loads.values() for x in (ld["address"], ld["element"]))])
    args, params = ctx.finish_args(text)
    variants, configs = [], []
    for head in HEADS:
        for asynchronous in (True, False):
            fn = f"{name}_d{head}_{'async' if asynchronous else 'safe'}"
            variants.append(fn)
            configs.append(dict(fn=fn, head=head, asynchronous=asynchronous))
    pack = "kspec_pack_f16x2" if elem == DType.f16 else "kspec_pack_bf16x2"
    data = dict(batch_lines=batch_lines, loads=loads, score=score, store=store, totals=totals,
                ectype=ectype, configs=configs, dtype=elem.name, chunk=CHUNK, pad=PAD, bm=BM,
                bn=BN,
                threads=THREADS, to_half=(d.float_to_half if elem == DType.f16
                                          else d.float_to_bf16), pack=pack)
    shapes = {"Z": [v.extent for v in sc.batch], "M": [sc.i.extent], "N": [sc.j.extent],
              "DK": [sc.k.extent], "DV": [oc.j.extent]}
    tensors = {key: ld.tensor for key, (ld, *_) in operands.items()}

    def pick(env: dict[str, int], buffers: dict, info: Any) -> list:
        size = {k: extent_product(v, env) for k, v in shapes.items()}
        if size["Z"] == 0 or size["M"] == 0:
            return []
        head = next(h for h in HEADS if h >= max(size["DK"], size["DV"]))
        fast = info.schedule.get("vector", True) and all(
            async_copy_ok(buffers[t], size["DK" if key != "v" else "DV"]) for key, t in tensors.items())
        fn = f"{name}_d{head}_{'async' if fast else 'safe'}"
        grid = size["Z"] * -(-size["M"] // BM)
        shared = 2 * (BM + 4 * BN) * (head + PAD)
        return [(fn, grid, THREADS, {}, shared)]

    return PatternUnit(name, "attention", "; ".join(statement_text(s) for s in launch.statements),
                       "tensor_cores/mma_sync_attention.j2", args, params, data, variants, pick)
