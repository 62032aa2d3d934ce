"""The Triton backend on CPU: every spec under the interpreter agrees with the reference; every
spec cross-compiles to sm_90 PTX and gfx942 AMDGCN; generated source is pinned for a few; the
generated module of every spec and KernelBench translation is clean under pyflakes."""
from __future__ import annotations

import ast
import os
import random
from pathlib import Path

import pytest
from pyflakes.checker import Checker

import kspec
from kspec.backends import get_backend
from kspec.lowering import plan_kernel
from kspec.verify.inputs import choose_sizes, random_arguments
from kspec.verify.tolerance import compare, magnitude

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.kspec"))
GOLDEN = Path(__file__).parent / "golden" / "triton"
GOLDEN_SPECS = ["softmax", "layernorm", "matmul_bias_gelu", "conv2d"]


def kernels():
    for path in SPECS:
        for k in kspec.load(path):
            yield pytest.param(k, id=k.name)


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("kernel", kernels())
def test_interpreter_agrees_with_reference(kernel) -> None:
    fn = kernel.build("triton")
    rng = random.Random(kernel.name)
    # the first size set has every symbol at 1; the others draw small odd-friendly sizes
    envs = [None, choose_sizes(kernel.ir, rng, high=7), choose_sizes(kernel.ir, rng, high=7)]
    for n, env in enumerate(envs):
        if env is None:
            env = {s: 1 for s in kernel.ir.symbols}
            if not all(c.holds(env) for c in kernel.ir.checks):
                continue
        args = random_arguments(kernel.ir, env, seed=n)
        want, got = _as_tuple(kernel.reference(*args)), _as_tuple(fn(*args))
        for decl, g, w, mag in zip(kernel.ir.outputs, got, want, magnitude(kernel, args)):
            assert g.dtype == decl.dtype.torch
            result = compare(g, w, decl.dtype, mag)
            assert result.ok, f"{decl.name} at {env}: {result.detail}"


@pytest.mark.parametrize("arch", ["sm_90", "gfx942"])
@pytest.mark.parametrize("kernel", kernels())
def test_cross_compiles(kernel, arch: str) -> None:
    files = get_backend("triton").compile_asm(kernel.ir, arch=arch)
    ext = "ptx" if arch.startswith("sm") else "amdgcn"
    asm = [text for name, text in files.items() if name.endswith(ext)]
    assert asm and all(len(a) > 100 for a in asm)
    if ext == "ptx":
        assert all(".entry" in a for a in asm)
    else:
        assert all("s_endpgm" in a for a in asm)


def test_matmul_uses_tensor_cores_on_sm90_and_gfx942() -> None:
    k = kspec.load(ROOT / "specs" / "matmul.kspec")["matmul"]
    backend = get_backend("triton")
    ptx = "".join(t for n, t in backend.compile_asm(k.ir, arch="sm_90").items() if n.endswith("ptx"))
    gcn = "".join(t for n, t in backend.compile_asm(k.ir, arch="gfx942").items()
                  if n.endswith("amdgcn"))
    assert "wgmma" in ptx
    assert "mfma" in gcn


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_generated_source_is_stable(name: str) -> None:
    k = kspec.load(ROOT / "specs" / f"{name}.kspec")[name]
    text = k.source("triton")
    golden = GOLDEN / f"{name}.py"
    if os.environ.get("KSPEC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"missing golden {golden}; run with KSPEC_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def test_generated_modules_have_no_unused_names() -> None:
    """No variable assigned and never read, no unused import, nothing else pyflakes reports
    (a split's first phase once computed the fused partner's value it never reads)."""
    paths = SPECS + sorted((ROOT / "bench" / "kernelbench").glob("level*/*.kspec"))
    reports = [f"{k.name}: {m.message % m.message_args}" for path in paths
               for k in kspec.load(path)
               for m in Checker(ast.parse(k.source("triton")), filename=k.name).messages]
    assert reports == []


@pytest.mark.parametrize("fuse", [True, False])
def test_attention_fused_and_unfused_agree(fuse: bool) -> None:
    """The online-softmax kernel and its three-launch fallback both match the reference."""
    k = kspec.load(ROOT / "specs" / "causal_attention.kspec")["causal_attention"]
    assert [launch.pattern for launch in plan_kernel(k.ir).launches] == ["attention"]
    fn = k.build("triton", schedule={"0.fuse": fuse})
    env = {"B": 1, "H": 2, "S": 19, "D": 8}
    args = random_arguments(k.ir, env, seed=3)
    want, got = k.reference(*args), fn(*args)
    result = compare(got, want, k.ir.outputs[0].dtype, magnitude(k, args)[0])
    assert result.ok, result.detail
