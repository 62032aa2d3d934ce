"""Derived metrics, targets, and the JSON / markdown / stdout reports of bench/run.py.

Ratios are speedups: vs_eager = eager time / this time (above 1: faster than eager); likewise
vs_compile (torch.compile) and vs_cuda (the cuda backend). frac is the achieved GB/s over the
measured copy bandwidth (memory-bound workloads) or TFLOP/s over torch's matmul TFLOP/s of the
workload's dtype (compute-bound).
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def add_metrics(result: dict[str, Any], ceilings: dict[str, Any],
                targets: dict[str, list[tuple[str, float]]]) -> None:
    """Fill gbps, tflops, frac, vs_eager, vs_compile, vs_cuda and targets (pass {} outside the
    issue's sizes) into every timed row."""
    rows: list[Row] = result["rows"]
    by_impl = {r["impl"]: r for r in rows}

    def ms_of(impl: str) -> float | None:
        r = by_impl.get(impl)
        return r["ms"] if r and r.get("ms") else None

    eager, compiled, cuda = ms_of("eager"), ms_of("compile"), ms_of("kspec-cuda")
    copy = ceilings["copy"]["gbps"]
    mm = ceilings.get(f"matmul_{result['dtype']}", {}).get("tflops")
    for r in rows:
        ms = r.get("ms")
        if not ms:
            continue
        r["gbps"] = result["bytes"] / ms / 1e6
        r["tflops"] = result["flops"] / ms / 1e9 if result["flops"] else None
        if result["bound"] == "memory":
            r["frac"] = r["gbps"] / copy
        else:
            r["frac"] = r["tflops"] / mm if mm and r["tflops"] else None
        r["vs_eager"] = eager / ms if eager else None
        r["vs_compile"] = compiled / ms if compiled else None
        if r.get("backend") == "hip" and cuda:
            r["vs_cuda"] = cuda / ms
        if r.get("backend") in targets:
            r["targets"] = [_target(r, metric, low) for metric, low in targets[r["backend"]]]


def _target(row: Row, metric: str, low: float) -> dict[str, Any]:
    value = row.get(metric)
    return {"metric": metric, "min": low, "value": value,
            "met": None if value is None else value >= low}


def card_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def _fmt(v: float | None, spec: str = ".3f", suffix: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{suffix}"


def _targets_text(row: Row) -> str:
    parts = []
    for t in row.get("targets", []):
        if t["met"] is None:
            parts.append(f"{t['metric']} n/a")
        else:
            mark = "met" if t["met"] else "MISSED"
            parts.append(f"{t['metric']} {t['value']:.2f}>={t['min']:.2f} {mark}")
    return "; ".join(parts)


def _status(row: Row) -> str:
    s = row["status"]
    detail = (row.get("detail") or "").replace("|", "/").replace("\n", " ")
    return f"{s}: {detail[:90]}" if detail else s


def markdown(report: dict[str, Any]) -> str:
    info, c = report["device"], report["ceilings"]
    clock = "host-clock timings (CPU dry run)" if report["mode"] == "dry" else "CUDA-event timings"
    lines = [f"# kspec benchmarks on {info['name']}", "",
             f"{report['date']} · mode `{report['mode']}` · torch {info['torch']} · "
             f"triton {info.get('triton')} · CUDA {info.get('cuda')} · seed {report['seed']} · "
             f"backends {', '.join(report['backends'])}", "",
             f"Ceilings (torch, same run): device copy **{c['copy']['gbps']:.0f} GB/s** "
             f"(read + write); matmul {c['matmul_f16']['size']}^3 f16 "
             f"**{c['matmul_f16']['tflops']:.0f} TFLOP/s**, bf16 "
             f"**{c['matmul_bf16']['tflops']:.0f} TFLOP/s**, f32 (IEEE, no TF32) "
             f"**{c['matmul_f32']['tflops']:.1f} TFLOP/s**.", "",
             f"Times are medians of per-call {clock} after warm-up, inputs rotated over "
             "`sets` copies. x eager / x compile = baseline time / this time (above 1 is "
             "faster). frac = GB/s over copy bandwidth (memory-bound) or TFLOP/s over torch "
             "matmul of the same dtype (compute-bound). err = ‖out − ref‖/‖ref‖ at the check "
             "shape (float64 reference) / vs eager at the benchmark shape.", "",
             "| workload | impl | status | ms | GB/s | TFLOP/s | frac | x eager | x compile "
             "| err check / bench | targets |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for w in report["workloads"]:
        label = f"{w['name']} ({w['size']})"
        if w.get("error"):
            lines.append(f"| {label} | - | ERROR: {w['error'][:120]} | | | | | | | | |")
        for r in w["rows"]:
            err = f"{_fmt(r.get('err_check'), '.1e')} / {_fmt(r.get('err_bench'), '.1e')}"
            lines.append(
                f"| {label} | {r['impl']} | {_status(r)} | {_fmt(r.get('ms'), '.4f')} | "
                f"{_fmt(r.get('gbps'), '.0f')} | {_fmt(r.get('tflops'), '.1f')} | "
                f"{_fmt(r.get('frac'), '.2f')} | {_fmt(r.get('vs_eager'), '.2f')} | "
                f"{_fmt(r.get('vs_compile'), '.2f')} | {err} | {_targets_text(r)} |")
    lines += ["", "Specs used (and per workload: wall time, peak GPU memory):", ""]
    lines += [f"- {w['name']}: `{w.get('spec_file') or 'none'}` kernel `{w.get('kernel')}`, "
              f"{w.get('wall_s', '-')} s, {w.get('peak_mem_gb', '-')} GB"
              + (f" ({w['spec_note']})" if w.get("spec_note") else "")
              for w in report["workloads"]]
    lines.append(f"\nTotal wall time {report['wall_s']} s.")
    return "\n".join(lines) + "\n"


def short_table(report: dict[str, Any]) -> str:
    """One line per workload: eager, compile, then each backend as ms/frac/x-compile."""
    backends = report["backends"]
    head = f"{'workload':18s} {'eager ms':>9s} {'compile':>9s}  " + "  ".join(
        f"{b + ' ms frac xEag xCmp':28s}" for b in backends)
    c = report["ceilings"]
    out = [f"== {report['device']['name']} · copy {c['copy']['gbps']:.0f} GB/s · "
           f"f16 mm {c['matmul_f16']['tflops']:.0f} / bf16 mm "
           f"{c['matmul_bf16']['tflops']:.0f} / f32 mm {c['matmul_f32']['tflops']:.0f} TFLOP/s · "
           f"mode {report['mode']} ==", head]
    for w in report["workloads"]:
        rows = {r["impl"]: r for r in w["rows"]}
        cells = [f"{w['name'][:18]:18s}",
                 f"{_fmt(rows.get('eager', {}).get('ms'), '.4f'):>9s}",
                 f"{_fmt(rows.get('compile', {}).get('ms'), '.4f'):>9s} "]
        for b in backends:
            r = rows.get(f"kspec-{b}")
            if r is None:
                cell = w.get("error", "-")[:28]
            elif r.get("ms"):
                cell = (f"{r['ms']:.4f} {_fmt(r.get('frac'), '.2f')} "
                        f"{_fmt(r.get('vs_eager'), '.2f')} {_fmt(r.get('vs_compile'), '.2f')}")
                if any(t["met"] is False for t in r.get("targets", [])):
                    cell += " !"
            else:
                cell = r["status"]
            cells.append(f"{cell:28s}")
        out.append(" ".join(cells).rstrip())
    out.append("(! = a target of issue 3/4 missed; full table and details in the .md/.json)")
    return "\n".join(out)


def result_paths(card: str, date: str, out_dir: Path) -> list[Path]:
    """<out_dir>/<card-slug>-<date>.json and .md, suffixed -2, -3 ... rather than overwrite."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{card_slug(card)}-{date}"
    n = 1
    while (out_dir / f"{stem}.json").exists() or (out_dir / f"{stem}.md").exists():
        n += 1
        stem = f"{card_slug(card)}-{date}-{n}"
    return [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]


def write(report: dict[str, Any], paths: list[Path], extra_dir: str | None) -> None:
    """Write the JSON and markdown (again after every workload), and copy them to extra_dir."""
    paths[0].write_text(json.dumps(report, indent=1, default=str) + "\n")
    paths[1].write_text(markdown(report))
    if extra_dir and Path(extra_dir).resolve() != paths[0].parent.resolve():
        Path(extra_dir).mkdir(parents=True, exist_ok=True)
        for p in paths:
            shutil.copy(p, Path(extra_dir) / p.name)


def today() -> str:
    return time.strftime("%Y-%m-%d")
