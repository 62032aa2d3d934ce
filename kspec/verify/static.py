"""Static checks of a candidate's source before it runs, in the spirit of KernelBench's: the
work must be done by the candidate's kernels, on the caller's stream, and failures must show.

Triton (a Python module): outside the @triton.jit functions, torch may allocate and reshape
(empty, zeros, views, strides ...) but not compute (torch.softmax, F.layer_norm, x.matmul,
torch.nn ...); no stream is created or switched; no try/except that swallows what it catches;
none of the modules a candidate would need to reach into the gate or the process (kspec,
sys, gc, inspect, ctypes, importlib, subprocess, os). C++: no stream creation, no device-wide
synchronize. A finding makes the verdict `cheat` with the line it is on.
"""
from __future__ import annotations

import ast
import re

# torch functions and tensor methods host code may call: allocation, views, metadata, dtype
# and device moves. Everything else torch offers computes, and is refused.
ALLOCATION = {
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
    "full_like", "new_empty", "new_zeros", "new_ones", "new_full", "new_empty_strided",
    "tensor", "as_tensor", "as_strided", "arange",
}
VIEWS = {
    "view", "reshape", "flatten", "unsqueeze", "squeeze", "expand", "expand_as", "permute",
    "transpose", "t", "contiguous", "narrow", "select", "unflatten", "view_as", "reshape_as",
    "movedim", "split", "chunk", "unbind",
}
METADATA = {
    "stride", "size", "numel", "dim", "data_ptr", "element_size", "is_contiguous", "shape",
    "dtype", "device", "item", "storage_offset", "is_cuda", "nelement", "ndimension",
    "get_device", "to", "cuda", "cpu", "float", "half", "bfloat16", "int", "long", "bool",
    "double", "type_as", "zero_", "fill_", "copy_", "device_count", "current_device",
    "is_available", "get_device_properties", "get_device_capability", "set_device",
    "device_of", "get_device_name",
    "is_floating_point", "finfo", "iinfo", "Size", "cdiv", "next_power_of_2", "__init__",
}
HOST_OK = ALLOCATION | VIEWS | METADATA
TORCH_ROOTS = {"torch", "F", "nn"}
FORBIDDEN_MODULES = {"kspec", "sys", "gc", "inspect", "ctypes", "importlib", "subprocess",
                     "os", "builtins", "multiprocessing", "threading", "signal"}
STREAM_NAMES = {"Stream", "stream", "set_stream", "ExternalStream", "StreamContext",
                "synchronize"}
# tensor methods that compute, whatever the receiver's name
COMPUTE_METHODS = {
    "matmul", "mm", "bmm", "softmax", "log_softmax", "sum", "mean", "var", "std", "exp", "log",
    "max", "min", "amax", "amin", "norm", "layer_norm", "relu", "sigmoid", "tanh", "add",
    "sub", "mul", "div", "pow", "sqrt", "rsqrt", "einsum", "addmm", "baddbmm", "conv1d",
    "conv2d", "cumsum", "prod", "logsumexp", "argmax", "argmin", "clamp", "where", "abs",
    "neg", "gelu", "silu", "add_", "mul_", "div_", "sub_", "masked_fill", "scatter", "gather",
    "index_select", "sort", "topk", "erf", "dot", "outer", "linear", "cross_entropy",
}


def triton_problems(source: str) -> str | None:
    """The first static finding in a Triton candidate's source, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None                     # the import reports it as a compile error
    jit_bodies = {id(n) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
                  and any(_is_jit(d) for d in fn.decorator_list) for n in ast.walk(fn)}
    for node in ast.walk(tree):
        if id(node) in jit_bodies:
            continue
        found = (_import_problem(node) or _try_problem(node) or _call_problem(node))
        if found:
            return f"line {getattr(node, 'lineno', '?')}: {found}"
    return None


def _is_jit(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return _dotted(target).split(".")[-1] in ("jit", "autotune", "heuristics")


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _import_problem(node: ast.AST) -> str | None:
    names = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module]
    for n in names:
        if n.split(".")[0] in FORBIDDEN_MODULES:
            return f"imports {n} (a candidate needs only torch, triton and math)"
        if n.startswith("torch.nn") or n.startswith("torch.cuda.stream"):
            return f"imports {n} (host code may not compute with torch)"
    if isinstance(node, ast.Name) and node.id in ("__import__", "__builtins__", "eval",
                                                  "exec", "globals", "setattr"):
        return f"uses {node.id}"
    return None


def _try_problem(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Try):
        return None
    for h in node.handlers:
        caught = _dotted(h.type) if h.type is not None else ""
        if caught in ("", "Exception", "BaseException"):
            return (f"try/except {caught or '(bare)'} around host code: a failing kernel "
                    f"must fail, not fall back")
    return None


def _call_problem(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    name = _dotted(node.func)
    parts = name.split(".")
    if not parts or not parts[-1]:
        return None
    last = parts[-1]
    if last in STREAM_NAMES and ("cuda" in parts or last != "synchronize"):
        return f"calls {name} (kernels run on the caller's stream)"
    if parts[0] in TORCH_ROOTS and len(parts) > 1 and last not in HOST_OK:
        return f"calls {name} (host code may allocate and reshape, not compute, with torch)"
    if "nn" in parts[:-1] or "functional" in parts[:-1]:
        return f"calls {name} (host code may not compute with torch)"
    if len(parts) > 1 and parts[0] not in ("triton", "tl", "math") and last in COMPUTE_METHODS:
        return f"calls .{last}() (host code may not compute with torch)"
    return None


CXX_FORBIDDEN = re.compile(r"\b(cudaStreamCreate\w*|hipStreamCreate\w*|cudaDeviceSynchronize|"
                           r"hipDeviceSynchronize)\b")


def cxx_problems(source: str) -> str | None:
    m = CXX_FORBIDDEN.search(source)
    if m:
        line = source.count("\n", 0, m.start()) + 1
        return f"line {line}: calls {m.group(1)} (kernels run on the caller's stream)"
    return None


def problems(target: str, source: str) -> str | None:
    return triton_problems(source) if target == "triton" else cxx_problems(source)
