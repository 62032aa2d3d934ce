"""NVIDIA toolchain: nvcc (cubin, PTX, ptxas's resource report) and, optionally, NVRTC.

nvcc needs no GPU and no driver, so every compile works on a CPU machine. Results are cached on
disk by a hash of source, flags and compiler version (see kspec/backends/cxx/cache.py).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from ...errors import BackendUnavailable, ToolchainError
from ..cxx import cache
from ..cxx.tools import Compiled, cached_compile, run, tool_version, which

ARCH_RE = re.compile(r"^sm_(\d{2,3})([af]?)$")
DEFAULT_ARCH = "sm_90"
FLAGS = ["-O3", "-std=c++17"]


def nvcc_path() -> str | None:
    return which("nvcc", "CUDA_HOME", ("/usr/local/cuda/bin",))


def check_arch(arch: str) -> str:
    if not ARCH_RE.match(arch):
        raise ToolchainError(f"'{arch}' is not an NVIDIA architecture; expected sm_80, sm_90, "
                             f"sm_90a, ...")
    return arch


def compile_nvcc(source: str, arch: str, *, ptx: bool = False, ext: str = "cu",
                 extra_flags: tuple[str, ...] = (), extra_files: dict[str, str] | None = None,
                 kind: str = "cuda") -> Compiled:
    """Compile `source` to a cubin for `arch` (and to PTX when asked), with ptxas's register,
    shared-memory and spill report. `extra_files` are written beside the source (a prelude)."""
    nvcc = nvcc_path()
    if nvcc is None:
        raise BackendUnavailable("nvcc is not on PATH (nor in $CUDA_HOME/bin or "
                                 "/usr/local/cuda/bin); install the CUDA toolkit")
    check_arch(arch)
    extra_files = extra_files or {}
    flags = [*FLAGS, f"-arch={arch}", *extra_flags]
    key = cache.cache_key("nvcc", tool_version(nvcc), source, " ".join(flags), ext, str(ptx),
                          *(f"{n}\0{t}" for n, t in sorted(extra_files.items())))
    outputs = ["kernel.cubin", "ptxas.log"] + (["kernel.ptx"] if ptx else [])
    command: list[str] = []

    def produce() -> dict[str, bytes]:
        work = cache.scratch_dir(kind)
        src = work / f"kernel.{ext}"
        src.write_text(source)
        for name, text in extra_files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        command[:] = [nvcc, *flags, "-cubin", "-Xptxas", "-v", "-o", "kernel.cubin", src.name]
        log = run(command, work, what="nvcc", source_name=src.name)
        files = {"kernel.cubin": (work / "kernel.cubin").read_bytes(), "ptxas.log": log.encode()}
        if ptx:
            run([nvcc, *flags, "-ptx", "-o", "kernel.ptx", src.name], work, what="nvcc -ptx",
                source_name=src.name)
            files["kernel.ptx"] = (work / "kernel.ptx").read_bytes()
        shutil.rmtree(work, ignore_errors=True)   # kept only when the compiler failed
        return files

    files, hit = cached_compile(kind, key, outputs, produce)
    log = files["ptxas.log"].decode()
    return Compiled(arch=arch, binary=files["kernel.cubin"],
                    asm=files["kernel.ptx"].decode() if ptx else "", log=log,
                    resources=parse_ptxas(log), command=" ".join(command) or "(cached)",
                    cached=hit)


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '([^']+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_BARRIERS = re.compile(r"used (\d+) barriers")


def parse_ptxas(log: str) -> dict[str, dict[str, int]]:
    """ptxas -v's report per kernel: registers, shared memory (bytes), stack frame and spill
    stores/loads (bytes), barriers."""
    out: dict[str, dict[str, int]] = {}
    current: str | None = None
    for line in log.splitlines():
        m = _ENTRY.search(line) or _PROPS.search(line)
        if m:
            current = m.group(1)
            out.setdefault(current, {"registers": 0, "smem": 0, "stack": 0,
                                     "spill_stores": 0, "spill_loads": 0, "barriers": 0})
            continue
        if current is None:
            continue
        r = out[current]
        if (m := _FRAME.search(line)):
            r["stack"], r["spill_stores"], r["spill_loads"] = map(int, m.groups())
        if (m := _USED.search(line)):
            r["registers"] = int(m.group(1))
            if (s := _SMEM.search(line)):
                r["smem"] = int(s.group(1))
            if (b := _BARRIERS.search(line)):
                r["barriers"] = int(b.group(1))
    return out


def resource_report(c: Compiled, title: str) -> str:
    """A table of the per-kernel resources, for `kcompile --emit asm`."""
    lines = [f"# {title}, {c.arch}", f"# {'kernel':<40} {'regs':>5} {'smem':>7} {'stack':>6} "
             f"{'spill st':>8} {'spill ld':>8}"]
    for name, r in c.resources.items():
        lines.append(f"  {name:<40} {r.get('registers', 0):>5} {r.get('smem', 0):>7} "
                     f"{r.get('stack', 0):>6} {r.get('spill_stores', 0):>8} "
                     f"{r.get('spill_loads', 0):>8}")
    lines += ["", "# compiler messages:", *("  " + ln for ln in c.log.strip().splitlines())]
    return "\n".join(lines) + "\n"


# --- NVRTC (optional) ------------------------------------------------------------------------
def nvrtc_available() -> bool:
    try:
        from cuda.bindings import nvrtc  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_include_dirs() -> list[str]:
    """Where cuda_fp16.h lives, for NVRTC (which has no default include path for it)."""
    dirs = []
    nvcc = nvcc_path()
    if nvcc:
        dirs.append(str(Path(nvcc).resolve().parent.parent / "include"))
    dirs += ["/usr/local/cuda/include"]
    return [d for d in dict.fromkeys(dirs) if Path(d, "cuda_fp16.h").exists()]


NVRTC_STDINT = """typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
#define INT64_MIN (-9223372036854775807LL - 1)
#define INT64_MAX 9223372036854775807LL
#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fffffff)"""


def compile_nvrtc(source: str, arch: str) -> Compiled:
    """Compile with NVRTC (cuda.bindings.nvrtc) to a cubin. NVRTC has no system headers, so
    <stdint.h> and <math.h>'s few names the generated code uses are defined in place."""
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        raise BackendUnavailable("NVRTC needs cuda-python (cuda.bindings) and "
                                 "nvidia-cuda-nvrtc") from None
    check_arch(arch)
    key = cache.cache_key("nvrtc", source, arch, *cuda_include_dirs())
    hit = cache.lookup("cuda-nvrtc", key, ["kernel.cubin", "nvrtc.log"])
    if hit is not None:
        return Compiled(arch=arch, binary=hit["kernel.cubin"], log=hit["nvrtc.log"].decode(),
                        command="(cached nvrtc)", cached=True)
    text = source.replace("#include <stdint.h>", NVRTC_STDINT)
    err, prog = nvrtc.nvrtcCreateProgram(text.encode(), b"kernel.cu", 0, [], [])
    _nvrtc_check(nvrtc, err, "nvrtcCreateProgram")
    opts = [f"--gpu-architecture={arch}".encode(), b"-std=c++17"]
    opts += [f"--include-path={d}".encode() for d in cuda_include_dirs()]
    (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    err_log, size = nvrtc.nvrtcGetProgramLogSize(prog)
    log_buf = b" " * size
    nvrtc.nvrtcGetProgramLog(prog, log_buf)
    log = log_buf.decode(errors="replace").rstrip("\x00 ")
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise ToolchainError(f"NVRTC failed for {arch}:\n{log}")
    err, size = nvrtc.nvrtcGetCUBINSize(prog)
    _nvrtc_check(nvrtc, err, "nvrtcGetCUBINSize")
    cubin = b" " * size
    (err,) = nvrtc.nvrtcGetCUBIN(prog, cubin)
    _nvrtc_check(nvrtc, err, "nvrtcGetCUBIN")
    nvrtc.nvrtcDestroyProgram(prog)
    cache.store("cuda-nvrtc", key, {"kernel.cubin": cubin, "nvrtc.log": log.encode()})
    return Compiled(arch=arch, binary=cubin, log=log, command="nvrtc")


def _nvrtc_check(nvrtc, err, what: str) -> None:
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise ToolchainError(f"{what} failed: {err}")
