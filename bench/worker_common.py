"""What bench/large_worker.py and bench/kernelbench_worker.py share: how an exception is told
in one line, whether it left the CUDA context unusable, and a device synchronize."""
from __future__ import annotations

import torch

# sticky CUDA errors, as torch and the kspec launchers (cuda-python's error names) word them
FATAL = ("illegal memory access", "illegal address", "illegal instruction",
         "unspecified launch failure", "misaligned address", "device-side assert",
         "ILLEGAL_ADDRESS", "ILLEGAL_INSTRUCTION", "LAUNCH_FAILED", "MISALIGNED_ADDRESS",
         "ERROR_ASSERT", "hipErrorIllegalAddress")


def short(e: BaseException) -> str:
    lines = str(e).strip().splitlines() or [""]
    return f"{type(e).__name__}: {lines[0][:300]}"


def is_fatal(e: BaseException) -> bool:
    """The process's CUDA context is gone after e: the worker must exit."""
    return any(s in str(e) for s in FATAL) or type(e).__name__ == "AcceleratorError"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
