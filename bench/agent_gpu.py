"""`kcompile tune --llm` end to end on a GPU (issue 18), against the tests' scripted
OpenAI-compatible server on loopback (the GPU machine reaches no real endpoint): each round's
reply is a scripted proposal (schedules as JSON, one that does not fit, one C++ source that does
not compile) and the loop compiles, verifies on the GPU and times each against the heuristic's
schedule. The report JSON, the transcript and a table of candidates go to --out.

    python3 bench/agent_gpu.py --out $OUT/agent      # cuda f32 GEMM 4096^3, triton softmax
    python3 bench/agent_gpu.py --small --device cpu  # tiny shapes: a check of the script
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kspec.cli import main as kcompile  # noqa: E402
from llm_server import Script, serve  # noqa: E402


def _schedule(s: dict) -> str:
    return f"Try this schedule.\n```json\n{json.dumps({'schedule': s})}\n```\n"


# (kernel, target, shape, scripted replies): tiles of the f32 tensor-core path for C++ (the
# session 5 note: Triton's best f32 tile was 128x128x64, the C++ default is smaller), rows
# blocks for Triton's softmax
RUNS = [
    ("matmul_f32", "cuda", "M=4096,N=4096,K=4096",
     [_schedule({"0.tile": "128x64x32w8s5"}), _schedule({"0.tile": "64x64x32w4s4"}),
      _schedule({"0.tile": "512x512x512w4s1"}),
      "A source.\n```cuda\n#error this candidate does not compile\n```\n",
      _schedule({"0.tile": "128x64x32w8s3"})]),
    ("softmax", "triton", "M=16384,N=4096",
     [_schedule({"0.BLOCK_R": 4096, "0.BLOCK_P": 1, "0.WARPS": 8}),
      _schedule({"0.BLOCK_R": 4096, "0.BLOCK_P": 2, "0.WARPS": 16}),
      _schedule({"0.BLOCK_R": 1024, "0.BLOCK_P": 1, "0.WARPS": 4})]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "agent"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="tiny shapes (a CPU check of the script)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for spec, target, shape, replies in RUNS:
        if args.small:
            shape = {"matmul_f32": "M=33,N=40,K=24", "softmax": "M=8,N=300"}[spec]
        script = Script(replies)
        server = serve(script)
        os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
        os.environ["OPENAI_API_KEY"] = "scripted"
        report = out / f"{spec}-{target}.json"
        path = ROOT / "bench" / "specs" / "f32_gemm.kspec" if spec == "matmul_f32" else \
            ROOT / "specs" / f"{spec}.kspec"
        rc = kcompile(["tune", str(path), "--kernel", spec, "--target", target,
                       "--shape", shape, "--device", args.device, "--llm", "scripted-model",
                       "--rounds", str(len(replies)), "--memory", "0",
                       "--store", str(out / "store"), "--json", str(report)])
        server.shutdown()
        (out / f"{spec}-{target}.prompts.json").write_text(json.dumps(script.requests, indent=1))
        data = json.loads(report.read_text()) if report.exists() else {}
        run = f"{spec} {target} {shape}"
        table.append((run, "heuristic", json.dumps(data.get("baseline_schedule")), "baseline",
                      data.get("baseline_ms"), "1", f"exit {rc}"))
        for c in data.get("candidates", []):
            table.append((run, c["id"], json.dumps(c["schedule"]) if c["schedule"] else "source",
                          c["status"], c["ms"], c["speedup"], c["detail"][:90]))
    print("\n| run | candidate | schedule | status | ms | speed-up over the heuristic | detail |")
    print("|---|---|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
