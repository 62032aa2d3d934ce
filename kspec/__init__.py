"""kspec: declare a tensor kernel once in a .kspec file; get CUDA C++, ROCm HIP and Triton.

    import kspec
    mod = kspec.load("specs/softmax.kspec")
    y = mod.softmax.reference(x)          # the float64 truth
    y = mod.softmax.build("triton")(x)    # a generated kernel
"""
from .api import Bound, Kernel, Module, load, loads
from .errors import (BackendUnavailable, KspecError, KspecLaunchError, KspecSemanticError,
                     KspecSyntaxError, SourcePos, ToolchainError)

__version__ = "0.1.0"

__all__ = ["load", "loads", "Module", "Kernel", "Bound", "KspecError", "KspecSyntaxError",
           "KspecSemanticError", "KspecLaunchError", "BackendUnavailable", "ToolchainError",
           "SourcePos"]
