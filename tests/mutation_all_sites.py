"""The gate's mutation test over every site of the generated kernel bodies (test_mutation.py
runs up to three sites per operator in CI): each operator of test_mutation.OPERATORS applied at
each of its matches inside the @triton.jit kernels, one mutant each, through verify_candidate
with the gate's defaults. Prints a row per mutant and the kill rate over the mutants that are
not known equivalent; slow (minutes per spec under the interpreter).

    python3 tests/mutation_all_sites.py softmax layernorm [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_mutation import EQUIVALENT, _kernel, mutants  # noqa: E402

from kspec.verify.candidates import verify_candidate  # noqa: E402


def run(spec: str, examples: int) -> list[dict]:
    k = _kernel(spec)
    rows = []
    for label, text in mutants(spec, k.source("triton"), max_sites=None):
        t0 = time.perf_counter()
        v = verify_candidate(k, "triton", text, examples=examples, seed=0)
        rows.append({"spec": spec, "mutation": label, "status": v.status,
                     "equivalent": (spec, label) in EQUIVALENT,
                     "seconds": round(time.perf_counter() - t0, 1), "detail": v.detail[:100]})
        r = rows[-1]
        print(f"{spec:10s} {label:28s} {r['status']:10s} {r['seconds']:6.1f} s"
              f"{'  (equivalent)' if r['equivalent'] else ''}  {r['detail']}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*", default=["softmax", "layernorm"])
    ap.add_argument("--examples", type=int, default=10)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    rows = [r for spec in args.specs for r in run(spec, args.examples)]
    counted = [r for r in rows if not r["equivalent"]]
    killed = [r for r in counted if r["status"] != "accepted"]
    survivors = [f"{r['spec']}: {r['mutation']}" for r in counted if r["status"] == "accepted"]
    print(f"\nkill rate: {len(killed)}/{len(counted)} non-equivalent mutants over every site "
          f"({len(rows) - len(counted)} known-equivalent ones run, not counted)")
    for s in survivors:
        print(f"  survived: {s}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main())
