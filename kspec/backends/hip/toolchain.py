"""HIP toolchains: hipcc for AMD GPUs, and nvcc for the same HIP source on NVIDIA GPUs.

AMD: `hipcc` with HIP_PLATFORM=amd (else it picks NVIDIA when nvcc is on PATH) and always an
explicit --offload-arch (else it probes for a GPU and crashes without one). Debian's hipcc 5.2
(clang 15) compiles gfx90a, gfx908, gfx940, gfx1030; not gfx942 (refused before compiling:
MIN_CLANG) or gfx1100.

NVIDIA: nvcc -x cu -D__HIP_PLATFORM_NVIDIA__ with a force-included prelude
(templates/nvidia_prelude.h.j2). With HIP's headers installed they are used (minus the host-API
wrappers CUDA 13 breaks); without them, empty stand-in headers plus the prelude's mappings.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path

import jinja2

from ...errors import BackendUnavailable, ToolchainError
from ..cxx import cache
from ..cxx.tools import Compiled, cached_compile, run, tool_version, which
from ..cuda.toolchain import compile_nvcc

AMD_ARCH_RE = re.compile(r"^gfx[0-9a-f]{3,4}(:[a-z+-]+)*$")
DEFAULT_ARCH = "gfx90a"
# The first clang release that knows an architecture, for those an older clang in use today
# does not: Debian's hipcc is clang 15, and without this table it fails inside clang's
# driver, once per kernel, with nothing saying why.
MIN_CLANG = {"gfx941": 17, "gfx942": 17, "gfx1200": 18, "gfx1201": 18}
_CLANG_VERSION = re.compile(r"clang version (\d+)\.")
FLAGS = ["-O3", "-std=c++17"]
TEMPLATES = Path(__file__).parent / "templates"


def hipcc_path() -> str | None:
    return which("hipcc", "ROCM_PATH", ("/opt/rocm/bin",))


def check_arch(arch: str) -> str:
    if not AMD_ARCH_RE.match(arch):
        raise ToolchainError(f"'{arch}' is not an AMD GPU architecture; expected gfx90a, "
                             f"gfx942, gfx1100, ...")
    return arch


def compile_hipcc(source: str, arch: str, *, asm: bool = False) -> Compiled:
    """Compile HIP source for one AMD architecture: a code object (hsaco) to load with
    hipModuleLoadData, the AMDGCN assembly when asked, and the per-kernel resource usage."""
    check_arch(arch)   # a wrong arch is the user's error whether or not hipcc is here
    hipcc = hipcc_path()
    if hipcc is None:
        raise BackendUnavailable("hipcc is not on PATH (nor in $ROCM_PATH/bin or /opt/rocm/bin); "
                                 "install ROCm or Debian's `hipcc` package")
    version = tool_version(hipcc)
    check_clang_knows(arch, version, hipcc)
    flags = [*FLAGS, f"--offload-arch={arch}"]
    key = cache.cache_key("hipcc", version, source, " ".join(flags), str(asm))
    outputs = ["kernel.hsaco", "hipcc.log"] + (["kernel.s"] if asm else [])
    env = {"HIP_PLATFORM": "amd"}
    remarks = ["-Rpass-analysis=kernel-resource-usage"]

    def produce() -> dict[str, bytes]:
        work = cache.scratch_dir("hip")
        (work / "kernel.hip").write_text(source)
        log = run([hipcc, *flags, "--genco", *remarks, "-o", "kernel.hsaco", "kernel.hip"],
                  work, env, what="hipcc", source_name="kernel.hip")
        files = {"kernel.hsaco": (work / "kernel.hsaco").read_bytes(),
                 "hipcc.log": _quiet(log).encode()}
        if asm:
            run([hipcc, *flags, "--offload-device-only", "-S", "-o", "kernel.s", "kernel.hip"],
                work, env, what="hipcc -S", source_name="kernel.hip")
            files["kernel.s"] = (work / "kernel.s").read_bytes()
        shutil.rmtree(work, ignore_errors=True)
        return files

    files, hit = cached_compile("hip", key, outputs, produce)
    log = files["hipcc.log"].decode()
    return Compiled(arch=arch, binary=files["kernel.hsaco"],
                    asm=files["kernel.s"].decode() if asm else "", log=log,
                    resources=parse_resource_usage(log), command="hipcc", cached=hit)


def check_clang_knows(arch: str, version_text: str, hipcc: str) -> None:
    """Refuse an architecture the hipcc's clang is too old for, before compiling anything."""
    need = MIN_CLANG.get(arch.split(":")[0])
    m = _CLANG_VERSION.search(version_text)
    if need is None or m is None or int(m.group(1)) >= need:
        return
    raise BackendUnavailable(
        f"{hipcc} is clang {m.group(1)}, which cannot compile {arch} (clang {need} added it); "
        f"install ROCm 6 or later (its hipcc and device libraries), or compile for gfx90a")


def _quiet(log: str) -> str:
    """hipcc's driver warns about every host link flag it passes to a device-only compile."""
    keep = [ln for ln in log.splitlines()
            if "argument unused during compilation" not in ln
            and "linker' input unused" not in ln]
    return "\n".join(keep)


_REMARK = re.compile(r"remark: (?:.*?: )?\s*([A-Za-z][A-Za-z /\[\]]*?): (\S+) \[-Rpass-analysis")


def parse_resource_usage(log: str) -> dict[str, dict[str, int]]:
    """clang's -Rpass-analysis=kernel-resource-usage remarks per kernel: SGPRs, VGPRs, AGPRs,
    scratch bytes per lane, occupancy (waves per SIMD), spills, LDS bytes per block."""
    names = {"SGPRs": "sgprs", "VGPRs": "vgprs", "AGPRs": "agprs",
             "ScratchSize [bytes/lane]": "scratch", "Occupancy [waves/SIMD]": "occupancy",
             "SGPRs Spill": "sgpr_spill", "VGPRs Spill": "vgpr_spill",
             "LDS Size [bytes/block]": "lds"}
    out: dict[str, dict[str, int]] = {}
    current: str | None = None
    for line in log.splitlines():
        m = _REMARK.search(line)
        if not m:
            continue
        field, value = m.group(1).strip(), m.group(2)
        if field == "Function Name":
            current = value
            out[current] = {}
        elif current is not None and field in names and value.lstrip("-").isdigit():
            out[current][names[field]] = int(value)
    return out


def resource_report(c: Compiled, title: str) -> str:
    cols = ["vgprs", "agprs", "sgprs", "lds", "scratch", "occupancy", "vgpr_spill", "sgpr_spill"]
    lines = [f"# {title}, {c.arch}", "# " + f"{'kernel':<40}" + "".join(f"{x:>11}" for x in cols)]
    for name, r in c.resources.items():
        lines.append(f"  {name:<40}" + "".join(f"{r.get(x, 0):>11}" for x in cols))
    lines += ["", "# compiler messages:", *("  " + ln for ln in c.log.strip().splitlines())]
    return "\n".join(lines) + "\n"


# --- HIP on NVIDIA ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def hip_include_dir() -> str | None:
    """A directory holding hip/hip_runtime.h, or None."""
    cands = [os.environ.get("HIP_PATH", ""), os.environ.get("ROCM_PATH", ""), "/opt/rocm"]
    dirs = [str(Path(c) / "include") for c in cands if c] + ["/usr/include"]
    for d in dirs:
        if (Path(d) / "hip" / "hip_runtime.h").exists() and \
                (Path(d) / "hip" / "nvidia_detail").is_dir():
            return d
    return None


def nvidia_prelude(warp_size: int = 32, system_headers: bool = True) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("nvidia_prelude.h.j2").render(
        warp_size=warp_size, system_headers=system_headers, cuda_major=13)


_STAND_INS = ("hip_runtime.h", "hip_fp16.h", "hip_bfloat16.h")


def compile_hip_nvidia(source: str, arch: str, *, ptx: bool = False,
                       headers: str = "auto") -> Compiled:
    """The HIP source compiled by nvcc for an NVIDIA GPU (a cubin the CUDA launcher loads).
    headers: "system" (HIP's own), "stand-in" (kspec's empty stand-ins), or "auto"."""
    inc = hip_include_dir()
    if headers == "system" and inc is None:
        raise BackendUnavailable("HIP's headers (hip/hip_runtime.h with nvidia_detail/) were "
                                 "not found in $HIP_PATH, $ROCM_PATH, /opt/rocm or /usr")
    use_system = inc is not None and headers != "stand-in"
    files = {"kspec_hip_nvidia_prelude.h": nvidia_prelude(32, use_system)}
    flags = ["-x", "cu", "-D__HIP_PLATFORM_NVIDIA__", "-include", "kspec_hip_nvidia_prelude.h"]
    if use_system:
        flags += [f"-I{inc}", "-diag-suppress", "20012"]   # hip_bfloat16's defaulted ctor
    else:
        for name in _STAND_INS:
            files[f"hip/{name}"] = f"// kspec stand-in for <hip/{name}>: see the prelude\n"
        flags += ["-I."]
    try:
        return compile_nvcc(source, arch, ptx=ptx, ext="hip", extra_flags=tuple(flags),
                            extra_files=files, kind="hip-nvidia")
    except ToolchainError as e:
        which_headers = f"HIP headers in {inc}" if use_system else "kspec's stand-in headers"
        raise ToolchainError(f"HIP on NVIDIA ({which_headers}): {e.message}") from None

