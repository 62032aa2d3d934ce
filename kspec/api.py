"""The Python API of KSPEC.md: kspec.load / kspec.loads, Module, Kernel."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from . import ir
from .binding import Bound, bind
from .dsl import compile_source
from .errors import BackendUnavailable, KspecError

BACKENDS = ("triton", "cuda", "hip")


class Kernel:
    """One kernel of a module: its IR, the reference, and its backends."""

    def __init__(self, kernel_ir: ir.Kernel, module: "Module"):
        self.ir = kernel_ir
        self.module = module
        self._builds: dict[tuple, Callable] = {}

    @property
    def name(self) -> str:
        return self.ir.name

    def bind(self, *args: Any, strict_dtypes: bool = True, **kwargs: Any) -> Bound:
        return bind(self.ir, args, kwargs, strict_dtypes)

    def reference(self, *args: Any, **kwargs: Any):
        """The float64 reference result: one tensor, or a tuple in declared output order."""
        from .verify.reference import evaluate

        b = bind(self.ir, args, kwargs, strict_dtypes=False, check_grad=False)   # float64 copies
        out = evaluate(self.ir, b.tensors, b.scalars, b.env)
        results = tuple(out[o.name] for o in self.ir.outputs)
        return results[0] if len(results) == 1 else results

    def build(self, backend: str = "triton", **options: Any) -> Callable:
        """A launcher taking torch tensors (in signature order) and returning the output(s).

        use_store=True (or KSPEC_USE_STORE=1): run the best kernel of the kernel store
        (kspec/agent/stored.py) for each call's device and shape class, when it has one."""
        from .backends import get_backend

        use_store = options.pop("use_store", None)
        if use_store or (use_store is None and os.environ.get("KSPEC_USE_STORE") == "1"):
            from .agent.stored import stored_launcher
            return stored_launcher(self, backend, **options)
        key = (backend, repr(sorted(options.items())))
        if key not in self._builds:
            self._builds[key] = get_backend(backend).build(self.ir, **options)
        return self._builds[key]

    def op(self, target: str = "triton", **options: Any):
        """This kernel as a PyTorch custom op, `kspec::<name>_<hash>` (kspec/torch_ops.py):
        it composes with torch.compile(fullgraph=True) and passes torch.library.opcheck.
        Registering the same kernel (same IR, target and options) again returns the same op."""
        from .torch_ops import register

        return register(self, target, **options)

    def source(self, backend: str = "triton", **options: Any) -> str:
        """The generated source text for a backend."""
        from .backends import get_backend

        return get_backend(backend).source(self.ir, **options)

    def __repr__(self) -> str:
        return f"<kspec kernel {self.name} from {self.module.file}>"

    def __reduce__(self) -> tuple:
        # a Kernel travels to another process (the tuner's process pool, Ray) as its source
        # text, file and name; the receiver compiles that source once per process
        return (_kernel_from_source, (self.module.source, self.module.file, self.name))


class Module:
    """The kernels of one .kspec file, by name: `mod["softmax"]` or `mod.softmax`."""

    def __init__(self, module_ir: ir.Module, source: str, file: str):
        self.ir = module_ir
        self.source = source
        self.file = file
        self.kernels = {k.name: Kernel(k, self) for k in module_ir.kernels}

    def __getitem__(self, name: str) -> Kernel:
        try:
            return self.kernels[name]
        except KeyError:
            raise KeyError(f"{self.file} has no kernel '{name}'; it has "
                           f"{', '.join(self.kernels) or 'none'}") from None

    def __getattr__(self, name: str) -> Kernel:
        kernels = self.__dict__.get("kernels", {})
        if name in kernels:
            return kernels[name]
        raise AttributeError(f"{self.__dict__.get('file')} has no kernel '{name}'")

    def __iter__(self) -> Iterator[Kernel]:
        return iter(self.kernels.values())

    def __len__(self) -> int:
        return len(self.kernels)

    def __repr__(self) -> str:
        return f"<kspec module {self.file}: {', '.join(self.kernels)}>"


def loads(source: str, file: str = "<string>") -> Module:
    """Compile kspec source text. Raises a KspecError (with file:line:col) on bad input."""
    return Module(compile_source(source, file), source, file)


@functools.lru_cache(maxsize=32)
def _module_from_source(source: str, file: str) -> Module:
    return loads(source, file)


def _kernel_from_source(source: str, file: str, name: str) -> Kernel:
    """A pickled Kernel, unpickled: its kernels built in this process are kept with it."""
    return _module_from_source(source, file)[name]


def load(path: str | Path) -> Module:
    """Compile a .kspec file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as e:
        raise KspecError(f"cannot read {path}: {e.strerror}") from None
    return loads(text, str(path))


__all__ = ["load", "loads", "Module", "Kernel", "Bound", "BackendUnavailable", "BACKENDS"]
