"""The summary of a KernelBench run and its results page (RESULTS.md and PNG plots).

Speed-ups are eager_ms / kspec_ms and compile_ms / kspec_ms of correct rows; fast_p counts
the problems that are correct and more than p times faster (KernelBench's fast_p); the
geomean is over the correct rows that were timed.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

STATUSES = ("correct", "wrong", "compile error", "error", "timeout", "unsupported",
            "untranslated")


def speedups(row: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    """x eager and x compile of a correct, timed row."""
    out: dict[str, float] = {}
    ms = row.get("kspec_ms")
    if row.get("status") != "correct" or not ms:
        return out
    for ref in ("eager", "compile"):
        if base.get(f"{ref}_ms"):
            out[f"x_{ref}"] = base[f"{ref}_ms"] / ms
    return out


def _geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(problems: list[dict[str, Any]], backends: list[str]) -> dict[str, Any]:
    """Per backend: counts of each status, correct, fast_1 / fast_1.5 and the geomean over
    eager and over compile."""
    summary: dict[str, Any] = {
        "total": len(problems),
        "translated": sum(1 for p in problems if p["translated"]),
        "backends": {}}
    for backend in backends:
        rows = [p["backends"].get(backend, {}) for p in problems]
        s: dict[str, Any] = {"status": {st: sum(1 for r in rows if r.get("status") == st)
                                        for st in STATUSES}}
        s["correct"] = s["status"]["correct"]
        for ref in ("eager", "compile"):
            ups = [r[f"x_{ref}"] for r in rows if f"x_{ref}" in r]
            s[f"timed_{ref}"] = len(ups)
            s[f"fast1_{ref}"] = sum(1 for u in ups if u > 1.0)
            s[f"fast1.5_{ref}"] = sum(1 for u in ups if u > 1.5)
            s[f"geomean_{ref}"] = _geomean(ups)
        summary["backends"][backend] = s
    return summary


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def summary_line(summary: dict[str, Any]) -> str:
    """`SUMMARY translated=T total=N` and, per backend, ` correct[B]=C fast1_eager[B]=F
    geomean_eager[B]=G` (G is '-' when no correct row was timed)."""
    parts = [f"SUMMARY translated={summary['translated']} total={summary['total']}"]
    for b, s in summary["backends"].items():
        g = s["geomean_eager"]
        parts.append(f"correct[{b}]={s['correct']} fast1_eager[{b}]={s['fast1_eager']} "
                     f"geomean_eager[{b}]={'-' if g is None else f'{g:.3f}'}")
    return " ".join(parts)


def progress_line(entry: dict[str, Any]) -> str:
    """One line per problem: its times and each backend's status, time and speed-up."""
    if not entry["translated"]:
        row = next(iter(entry["backends"].values()), {})
        return f"{entry['key']:<58} {row.get('status')} ({row.get('detail')})"
    base = entry.get("base", {})
    parts = []
    if base.get("eager_ms"):
        parts.append(f"eager {_num(base['eager_ms'])} ms compile {_num(base.get('compile_ms'))} ms")
    for backend, row in entry["backends"].items():
        text = f"{backend} {row['status']}"
        if row.get("kspec_ms"):
            text += f" {_num(row['kspec_ms'])} ms"
        if row.get("x_eager"):
            text += f" {row['x_eager']:.2f}x"
        if row["status"] == "wrong" and "max_abs_err" in row:
            text += f" (err {_num(row['max_abs_err'])} at {row.get('where')})"
        elif row.get("detail"):
            text += f" ({row['detail'].splitlines()[0][:100]})"
        parts.append(text)
    return f"{entry['key']:<58} " + " | ".join(parts)


def _summary_table(summary: dict[str, Any]) -> list[str]:
    out = ["| backend | correct | fast_1 eager | fast_1.5 eager | geomean x eager | "
           "fast_1 compile | fast_1.5 compile | geomean x compile | wrong | compile error | "
           "error | timeout |", "|" + "---|" * 12]
    for b, s in summary["backends"].items():
        st = s["status"]
        out.append(f"| {b} | {s['correct']}/{summary['translated']} | {s['fast1_eager']} | "
                   f"{s['fast1.5_eager']} | {_num(s['geomean_eager'])} | {s['fast1_compile']} | "
                   f"{s['fast1.5_compile']} | {_num(s['geomean_compile'])} | {st['wrong']} | "
                   f"{st['compile error']} | {st['error']} | {st['timeout']} |")
    return out


def _level_table(data: dict[str, Any]) -> list[str]:
    """correct / fast_1 over eager / geomean over eager per level and backend."""
    backends = data["meta"]["backends"]
    out = ["| level | translated | " + " | ".join(
               f"{b} correct | {b} fast_1 eager | {b} geomean x eager" for b in backends) + " |",
           "|" + "---|" * (2 + 3 * len(backends))]
    for level in sorted({p["level"] for p in data["problems"]}):
        summary = summarize([p for p in data["problems"] if p["level"] == level], backends)
        cells = [f"level{level}", f"{summary['translated']}/{summary['total']}"]
        for b in backends:
            s = summary["backends"][b]
            cells += [str(s["correct"]), str(s["fast1_eager"]), _num(s["geomean_eager"])]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _problem_table(data: dict[str, Any]) -> list[str]:
    backends = data["meta"]["backends"]
    head = ["problem", "eager ms", "compile ms"]
    for b in backends:
        head += [f"{b}", f"{b} ms", f"{b} x eager", f"{b} x compile"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in data["problems"]:
        if not p["translated"]:
            continue
        base = p.get("base", {})
        cells = [p["key"], _num(base.get("eager_ms")), _num(base.get("compile_ms"))]
        for b in backends:
            r = p["backends"].get(b, {})
            cells += [r.get("status", "-"), _num(r.get("kspec_ms")), _num(r.get("x_eager")),
                      _num(r.get("x_compile"))]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _failures(data: dict[str, Any]) -> list[str]:
    out = []
    for p in data["problems"]:
        for b, r in p["backends"].items():
            if r.get("status") in ("wrong", "compile error", "error", "timeout"):
                detail = r.get("detail") or (f"max abs err {_num(r.get('max_abs_err'))} at "
                                             f"{r.get('where')} (trial {r.get('trial')})"
                                             + _float64_note(r))
                out.append(f"- {p['key']} / {b}: {r['status']}: "
                           f"`{detail.splitlines()[0][:240]}`")
    return out


def _float64_note(row: dict[str, Any]) -> str:
    """A wrong verdict's distances from the float64 model (kb_worker.float64_errors)."""
    if "f64_err_kspec" not in row:
        return ""
    return (f"; from float64: kspec {_num(row['f64_err_kspec'])}, eager "
            f"{_num(row['f64_err_eager'])} ({row['nearer_f64']} nearer)")


def plots(data: dict[str, Any], folder: Path, stem: str) -> list[Path] | str:
    """Speed-up over eager and over compile per problem, sorted, one line per backend
    (log scale); the PNGs' paths, or why there are none."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plots: matplotlib is not installed (pip install matplotlib, then --report)"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ref in ("eager", "compile"):
        fig, ax = plt.subplots(figsize=(9, 4.5))
        drawn = False
        for b in data["meta"]["backends"]:
            ups = sorted(r[f"x_{ref}"] for p in data["problems"]
                         for bb, r in p["backends"].items() if bb == b and f"x_{ref}" in r)
            if ups:
                ax.plot(range(1, len(ups) + 1), ups, marker=".", label=f"{b} ({len(ups)})")
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("correct problems, sorted by speed-up")
        ax.set_ylabel(f"speed-up over {'eager' if ref == 'eager' else 'torch.compile'}")
        ax.set_title(f"kspec on KernelBench, x {ref} ({data['meta']['device_name']})")
        ax.legend()
        path = folder / f"{stem}-x-{ref}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def markdown(data: dict[str, Any], plot_paths: list[Path] | str, page: Path) -> str:
    meta, summary = data["meta"], data["summary"]
    runs = meta.get("merged_from")
    dates = sorted({r["date"][:10] for r in runs}) if runs else [meta["date"][:10]]
    out = [f"# kspec on KernelBench ({meta['device_name']}, {', '.join(dates)})", "",
           f"Levels {meta['levels']}, {'--small sizes' if meta['small'] else 'KernelBench sizes'}"
           f", device {meta['device']}, {meta['trials']} trials, TF32 "
           f"{'on' if meta['allow_tf32'] else 'off'}; torch {meta.get('torch')}, "
           f"triton {meta.get('triton')}."
           + ("" if runs else f" Command: `{meta['command']}`."), ""]
    if runs:
        out += [f"Merged from {len(runs)} runs, a later run's entry replacing an earlier's; "
                "each row's eager, compile and kspec times come from one run:", ""]
        out += [f"- {r['file']} ({r['date'][:10]}, levels {r['levels']}, backends "
                f"{','.join(r['backends'])}): `{r['command']}`" for r in runs]
        out.append("")
    out += ["correct: every trial's output passes torch.allclose(atol = rtol = 1e-4) with no "
            "NaN (KernelBench's fp32 check); times are medians of CUDA-event-timed calls after "
            "a warm-up, with a cold L2; x eager = eager ms / kspec ms; fast_p counts correct "
            "problems more than p times faster; geomeans are over the correct, timed ones.", "",
            f"Translated {summary['translated']} of {summary['total']} problems "
            f"({len(data.get('unsupported', {}))} listed in UNSUPPORTED.md).", ""]
    out += _summary_table(summary) + ["", "```", summary_line(summary), "```", ""]
    out += _level_table(data) + [""]
    if isinstance(plot_paths, str):
        out += [plot_paths, ""]
    elif not plot_paths:
        out += ["No plots: no correct problem was timed (a CPU run times nothing unless "
                "--time).", ""]
    else:
        out += [f"![{p.stem}]({p.relative_to(page.parent).as_posix()})" for p in plot_paths]
        out += [""]
    out += ["## Per problem", ""] + _problem_table(data)
    failures = _failures(data)
    if failures:
        out += ["", "## Failures", ""] + failures
    return "\n".join(out) + "\n"


def write_page(data: dict[str, Any], page: Path, json_path: Path) -> Path:
    """RESULTS.md (and its plots, in results/ beside it, named after the JSON)."""
    page.parent.mkdir(parents=True, exist_ok=True)
    drawn = plots(data, page.parent / "results", json_path.stem)
    page.write_text(markdown(data, drawn, page))
    return page
