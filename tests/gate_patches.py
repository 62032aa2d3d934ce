"""The gate's purpose-built bad candidates (tests/test_gate_candidates.py), each made at test time
from kspec's generated Triton source for its spec plus a small named textual patch: a list of
(old, new) replacements, each `old` occurring exactly once in the generated source, so that a
candidate follows the code generator and a patch gone stale fails loudly instead of testing an
old copy.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import kspec

ROOT = Path(__file__).resolve().parent.parent

# the rows launch of the generated softmax, and pieces of its single and looped row passes
ROWS_CALL = "        softmax_0_rows[("
SINGLE_MASK = "        offs_r = tl.arange(0, BLOCK_R)[None, :]\n        rmask = offs_r < (N)\n"
SINGLE_LOAD = ("        rmask = offs_r < (N)\n        x_2 = tl.load(x_ptr + (offs_p) * x_s0 + "
               "(offs_r) * x_s1, mask=pmask & rmask, other=0.0)\n")
SINGLE_STORE = ("        tl.store(y_ptr + (offs_p) * y_s0 + (offs_r) * y_s1, ((tl.exp((x_2 - m_row)) "
                "/ y_r0_row)).to(tl.float32), mask=pmask & rmask)\n")
LOOPED_STORE = ("        tl.store(y_ptr + (offs_p) * y_s0 + (offs_r) * y_s1, ((tl.exp((x_6 - m_row)) "
                "/ y_r0_row)).to(tl.float32), mask=pmask & rmask)\n")
ENTRY = "    schedule = schedule or {}\n"
RETURN = "    return y\n"
TORCH_SOFTMAX = "getattr(torch, 'soft' + 'max')(x, -1)"


@dataclass(frozen=True)
class Patch:
    spec: str
    what: str                                  # what the candidate does wrong
    edits: tuple[tuple[str, str], ...]         # (old, new), each old exactly once


PATCHES: dict[str, Patch] = {
    "patch_checker": Patch("softmax", "patches kspec.verify.runner.compare at import and "
                           "computes half the softmax", (
        ("import triton.language as tl\n", "import triton.language as tl\n\n"
         "import kspec.verify.runner as _runner\n"
         "from kspec.verify.tolerance import Comparison as _Comparison\n\n"
         "# every comparison passes from now on, in whatever process imported this module\n"
         "_runner.compare = lambda got, want, dtype, mag=None: _Comparison(True, 0.0, '')\n"),
        (SINGLE_STORE, SINGLE_STORE.replace("/ y_r0_row)", "/ (y_r0_row * 2))")),
        (LOOPED_STORE, LOOPED_STORE.replace("/ y_r0_row)", "/ (y_r0_row * 2))")))),
    "detect_gate": Patch("softmax", "computes the softmax of all but the last column unless "
                         "torch.empty is swapped (the old gate's tell)", (
        (ENTRY, ENTRY + "    # kspec's old gate swapped torch.empty for a Python function\n"
                        "    gated = type(torch.empty).__name__ == 'function'\n"),
        ("y.stride(0), y.stride(1), M, N, BLOCK_P=BLOCK_P, BLOCK_R=BLOCK_R, SINGLE",
         "y.stride(0), y.stride(1), M, N if gated else max(N - 1, 1), BLOCK_P=BLOCK_P, "
         "BLOCK_R=BLOCK_R, SINGLE"))),
    "ignores_strides": Patch("softmax", "indexes x as if it were contiguous", (
        (ROWS_CALL + "triton.cdiv((M), BLOCK_P),)](x, x.stride(0), x.stride(1), y,",
         ROWS_CALL + "triton.cdiv((M), BLOCK_P),)](x, N, 1, y,"),)),
    "one_pass_variance": Patch("layernorm", "the one-pass variance E[x^2] - E[x]^2", (
        ("        red3 = tl.reduce(tl.where(pmask & rmask, (t4 * t4), 0.0), 1, _add, "
         "keep_dims=True)\n        red3 = red3 / (N)\n",
         "        red3 = tl.reduce(tl.where(pmask & rmask, x_2 * x_2, 0.0), 1, _add, "
         "keep_dims=True)\n        red3 = red3 / (N) - mu_row * mu_row\n"),)),
    "bf16_via_f16": Patch("layernorm", "a bf16 layernorm whose input is converted to f16", (
        ("    device = x.device\n", "    device = x.device\n    x = x.to(torch.float16)   "
                                   "# bf16 routed through f16: overflows past 65504\n"),)),
    "first_element_cache": Patch("softmax", "returns the cached output when the shape and the "
                                 "first element repeat", (
        ("\ndef launch(", "\n_CACHE = {}\n\n\ndef launch("),
        (ENTRY, ENTRY + "    key = (M, N, x[0, 0].item()) if x.numel() else None\n"
                        "    if key in _CACHE:\n        return _CACHE[key]\n"),
        (RETURN, "    _CACHE[key] = y\n" + RETURN))),
    "torch_softmax": Patch("softmax", "launches its kernel but returns torch.softmax", (
        (RETURN, "    return torch.softmax(x, dim=-1)\n"),)),
    "hidden_fallback": Patch("softmax", "returns torch's softmax through getattr, launching "
                             "nothing", (
        (ENTRY, ENTRY + f"    return {TORCH_SOFTMAX}\n"),)),
    "decoy_kernel": Patch("softmax", "launches its kernel on a decoy buffer and returns torch's "
                          "softmax (through getattr)", (
        (RETURN, f"    return {TORCH_SOFTMAX}   # y was a decoy\n"),)),
    "side_stream": Patch("softmax", "launches its kernel on a stream of its own", (
        (ROWS_CALL, "        with torch.cuda.stream(torch.cuda.Stream()):\n    " + ROWS_CALL),)),
    "side_stream_hidden": Patch("softmax", "launches on its own stream, names hidden from the "
                                "static check (GPU only)", (
        (ROWS_CALL, "        side = getattr(torch.cuda, 'Str' + 'eam')()\n"
                    "        getattr(side, 'wait_' + 'stream')(getattr(torch.cuda, 'current_' + "
                    "'stream')())\n"
                    "        with getattr(torch.cuda, 'str' + 'eam')(side):\n    " + ROWS_CALL),)),
    "new_empty_overflow": Patch("softmax", "allocates y with new_empty and writes one element "
                                "past each row", (
        (SINGLE_STORE, SINGLE_STORE.replace("mask=pmask & rmask)",
                                            "mask=pmask & (offs_r < (N) + 1))")),
        ("    y = torch.empty(((M), (N)), dtype=torch.float32, device=device)\n",
         "    y = x.new_empty((M, N))\n"))),
    "swallow": Patch("softmax", "falls back to torch when its kernel raises", (
        (ROWS_CALL, "        try:\n    " + ROWS_CALL),
        ("num_warps=WARPS)\n    else:\n", "num_warps=WARPS)\n        except Exception:\n"
         f"            y.copy_({TORCH_SOFTMAX})\n    else:\n"))),
    "masked_later_read": Patch("softmax", "loads its row block unmasked (out of bounds past the "
                               "row's end) and masks the values later", (
        (SINGLE_LOAD, SINGLE_LOAD.replace(", mask=pmask & rmask, other=0.0)",
                                          ")   # masked later, by tl.where")),)),
    "wrong_past_1024_rows": Patch("softmax", "rows past 1024 are never written", (
        ("    offs_p = pid * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]\n    pmask = offs_p < (M)\n"
         "    if SINGLE:\n",
         "    offs_p = (pid * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]) % 1024\n"
         "    pmask = offs_p < (M)\n    if SINGLE:\n"),)),
    "wrong_past_4096_columns": Patch("softmax", "the single-block path ignores columns past "
                                     "4096", (
        (SINGLE_MASK, SINGLE_MASK.replace("offs_r < (N)", "offs_r < tl.minimum(N, 4096)")),)),
    "wrong_odd_wide_rows": Patch("softmax", "drops the last column of rows wider than 64 that "
                                 "are not a multiple of 16", (
        (SINGLE_MASK, SINGLE_MASK.replace(
            "offs_r < (N)", "offs_r < N - (N % 16 != 0) * (N > 64)  # no .to(): N may be a "
                            "constexpr")),)),
    "wrong_looped_rows": Patch("softmax", "the looped path (rows past 8192) never writes the "
                               "last element of a row", (
        ("            rmask = offs_r < (N)\n            x_6 = tl.load(",
         "            rmask = offs_r < (N) - 1\n            x_6 = tl.load("),)),
    "sleeper": Patch("softmax", "sleeps in launch", (
        ("import triton.language as tl\n", "import triton.language as tl\nimport time\n"),
        (ENTRY, ENTRY + "    time.sleep(3600)\n"))),
}


@lru_cache(maxsize=None)
def generated(spec: str) -> str:
    return kspec.load(ROOT / "specs" / f"{spec}.kspec")[spec].source("triton")


def apply(source: str, edits: tuple[tuple[str, str], ...], name: str = "") -> str:
    """`source` with each (old, new) applied; an `old` that does not occur exactly once is an
    error naming the patch (the generated code changed under it)."""
    for old, new in edits:
        n = source.count(old)
        if n != 1:
            raise AssertionError(f"gate candidate {name!r}: its patch expects {old!r} exactly "
                                 f"once in the generated source, found {n} times; update the "
                                 f"patch in tests/gate_patches.py")
        source = source.replace(old, new)
    return source


def candidate(name: str) -> str:
    """The candidate's source: the spec's generated Triton module, patched."""
    p = PATCHES[name]
    header = f"# Gate candidate: {p.what} (tests/gate_patches.py)\n"
    return header + apply(generated(p.spec), p.edits, name)
