"""The optimisation loop (issue 6): the kernel store, the autotuner over the schedule space of
the Triton, CUDA and HIP backends (targets.py: what differs per target), the LLM proposer
(Triton), candidate evaluation in a process pool or on Ray, and `tune`."""
from .loop import Candidate, TuneReport, Tuner, tune
from .store import Entry, KernelStore, shape_class, spec_hash
from .stored import stored_launcher

__all__ = ["tune", "Tuner", "TuneReport", "Candidate", "KernelStore", "Entry", "spec_hash",
           "shape_class", "stored_launcher"]
