"""Markdown rendering of a benchmark result: the one decision table, and the full report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

COLUMNS = [
    "Format",
    "Precision",
    "Size",
    "Top-1",
    "Macro-F1",
    "Agreement",
    "p50 ms",
    "p99 ms",
    "img/s",
    "RSS",
]


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt(value: Any, spec: str = ".2f", suffix: str = "", scale: float = 1.0) -> str:
    """A number formatted, or an em dash where there is none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{(value * scale if scale != 1 else value):{spec}}{suffix}"


def size_text(n: int | None) -> str:
    """Bytes as MB (kB below 0.1 MB, so tiny test models do not read 0.00 MB)."""
    if n is None:
        return "—"
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def main_table(result: dict[str, Any]) -> str:
    """Format | Precision | Size | Top-1 | Macro-F1 | Agreement | p50 ms | p99 ms | img/s | RSS."""
    webcam = any(r.get("webcam_top1") is not None for r in result["rows"])
    header = COLUMNS + (["Webcam top-1"] if webcam else [])
    rows = []
    for r in result["rows"]:
        acc, head = r.get("accuracy") or {}, r.get("headline") or {}
        size = size_text(r.get("size_bytes"))
        if r.get("size_ratio") is not None and r["precision"] != "float32":
            size += f" ({r['size_ratio']:.2f}×)"
        cells = [
            r["format_label"],
            r.get("precision_label", r["precision"]),
            size,
            fmt(acc.get("top1"), ".2f", "%", 100),
            fmt(acc.get("macro_f1"), ".4f"),
            fmt(acc.get("agreement"), ".2f", "%", 100),
            fmt(head.get("p50_ms"), ".3f"),
            fmt(head.get("p99_ms"), ".3f"),
            fmt(r.get("best_img_s"), ",.0f"),
            fmt(r.get("rss_mb"), ".0f", " MB"),
        ]
        if webcam:
            cells.append(fmt(r.get("webcam_top1"), ".2f", "%", 100))
        if r.get("error"):
            cells = (
                [r["format_label"], r.get("precision_label", r["precision"]), size]
                + ["error"]
                + ["—"] * (len(header) - 4)
            )
        rows.append(cells)
    return md_table(header, rows)


def table_notes(result: dict[str, Any]) -> str:
    """What the columns of the main table mean, with this run's settings."""
    s = result["settings"]
    ref = result.get("reference") or "none"
    return (
        f"Top-1 / Macro-F1 on {s['n_test']} test images of the model's split; Agreement = same argmax as "
        f"the float reference ({ref}). p50/p99: batch {s['headline_batch']}, {s['headline_threads']} "
        f"thread(s): median of up to {s['runs']} timed runs after warm-up, best of {s.get('rounds', 1)} "
        f"round(s) run in alternating order. img/s: best throughput over batches "
        f"{s['batches']} × threads {s['threads']}. RSS: peak resident memory of a process that loaded "
        "only this model and ran it (no TensorFlow except for the Keras row)."
    )


def speedup_table(result: dict[str, Any]) -> str:
    """int8 vs float32 p50 of the same format, per batch and thread count, from the same run."""
    rows = [
        [
            s["format_label"],
            str(s["batch"]),
            str(s["threads"]),
            fmt(s["float_p50_ms"], ".3f"),
            fmt(s["int8_p50_ms"], ".3f"),
            fmt(s["speedup"], ".2f", "×"),
        ]
        for s in result["speedups"]
    ]
    return md_table(["Runtime", "Batch", "Threads", "float32 p50 ms", "int8 p50 ms", "int8 speed-up"], rows)


def latency_table(result: dict[str, Any]) -> str:
    """Every latency configuration of every model."""
    rows = []
    for r in result["rows"]:
        for c in (r.get("latency") or {}).get("configs", []):
            rows.append(
                [
                    r["name"],
                    str(c["batch"]),
                    str(c["threads"]),
                    fmt(c["p50_ms"], ".3f"),
                    fmt(c["p90_ms"], ".3f"),
                    fmt(c["p99_ms"], ".3f"),
                    fmt(c["img_s"], ",.0f"),
                    str(c["runs"]),
                ]
            )
    return md_table(["Model", "Batch", "Threads", "p50 ms", "p90 ms", "p99 ms", "img/s", "runs"], rows)


def loading_table(result: dict[str, Any]) -> str:
    """Load time and memory of each model."""
    rows = [
        [
            r["name"],
            r["file"],
            fmt(r.get("size_bytes"), ",d"),
            fmt((r.get("latency") or {}).get("load_s"), ".1f", " ms", 1000),
            fmt((r.get("latency") or {}).get("rss_before_load_mb"), ".0f", " MB"),
            fmt(r.get("rss_mb"), ".0f", " MB"),
        ]
        for r in result["rows"]
    ]
    return md_table(["Model", "File", "Bytes", "Load", "RSS before load", "Peak RSS"], rows)


def recall_lines(result: dict[str, Any]) -> list[str]:
    """The classes whose recall moves most against the reference, per model."""
    lines = []
    for r in result["rows"]:
        changes = (r.get("accuracy") or {}).get("recall_changes")
        if changes:
            parts = ", ".join(f"{c['class']} {c['delta'] * 100:+.1f} pts" for c in changes)
            lines.append(f"- {r['name']}: {parts}")
        elif changes is not None and r["file"] != result.get("reference_file"):
            lines.append(f"- {r['name']}: no class recall changed")
    return lines


def cpu_line(env: dict[str, Any], threads: Sequence[int]) -> str:
    """The CPU, its int8-relevant flags and kernel path, and the thread counts measured: one line."""
    cpu = env["cpu"]
    flags = ", ".join(f for f, on in cpu["flags"].items() if on) or "none of " + ", ".join(cpu["flags"])
    path = f"; int8 path: {cpu['int8_path']}" if cpu.get("int8_path") else ""
    return (f"CPU: {cpu['model']} ({env['cores']} logical cores; int8 flags: {flags}{path}); "
            f"threads: {', '.join(map(str, threads))}")  # fmt: skip


def int8_not_faster(result: dict[str, Any]) -> str | None:
    """One line naming the runtimes/settings where int8 was no faster than float32 in this run."""
    slow = [s for s in result["speedups"] if s["speedup"] <= 1.0]
    if not slow:
        return None
    where = "; ".join(f"{s['format_label']} {s['speedup']:.2f}× (batch {s['batch']}, {s['threads']} thread(s))"
                      for s in slow)  # fmt: skip
    cpu = result["environment"]["cpu"]
    return f"int8 is not faster than float32 on this CPU ({cpu['model']}, {cpu.get('int8_path', 'int8 path unknown')}): {where}."


def environment_lines(env: dict[str, Any], threads: Sequence[int] = ()) -> list[str]:
    pkgs = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    return [
        f"- {cpu_line(env, threads)}",
        f"- Load average at start: {env.get('load_average')}",
        f"- Python {env['python']} on {env['platform']}",
        f"- Packages: {pkgs}",
        f"- Commit: {env.get('commit') or 'unknown'}",
    ]


def goals_table(result: dict[str, Any]) -> str:
    rows = [[g["goal"], g["subject"], g["value"], g["target"], "met" if g["met"] else "**not met**"]
            for g in result["goals"]]  # fmt: skip
    return md_table(["Goal", "Subject", "Measured", "Target", ""], rows)


def labeling_line(lab: dict[str, Any] | None) -> str:
    if not lab:
        return "Not measured."
    if lab.get("error"):
        return f"Failed: {lab['error']}"
    return (
        f"{lab['images']} images labelled in {lab['seconds']:.2f} s = **{lab['img_s']:,.0f} images/s** "
        f"end to end (decode + infer + write CSV) with {lab['model']}, {lab['threads']} thread(s), "
        f"{lab['workers']} decode workers, batch {lab['batch_size']}."
    )


def _compare(entries: list[dict[str, Any]]) -> str:
    from fashion_edge.benchmarks.compare import compare_table  # compare imports this module

    return compare_table(entries)


def report(result: dict[str, Any], plot_name: str | None = None) -> str:
    """The full markdown report (what RESULTS.md holds)."""
    out = [
        f"# fashion-bench: {result['model_name']}",
        "",
        f"Generated {result['timestamp']} by:",
        "",
        "```",
        result["command"],
        "```",
        "",
        main_table(result),
        "",
        table_notes(result),
        *(
            ["", "## Models side by side (same run)", "", _compare(result["compare"])]
            if result.get("compare")
            else []
        ),
        "",
        "## int8 speed-up over float32 (same runtime, same run)",
        "",
        speedup_table(result) if result["speedups"] else "No float32/int8 pair of the same format.",
        *(["", line] if (line := int8_not_faster(result)) else []),
        "",
        "## Goals (issue #7)",
        "",
        goals_table(result) if result["goals"] else "Nothing to compare.",
        "",
        "## Folder labeling end to end",
        "",
        labeling_line(result.get("labeling")),
        "",
        "## Latency, every setting",
        "",
        latency_table(result),
        "",
        "## Load time and memory",
        "",
        loading_table(result),
        "",
        "## Largest per-class recall changes against the reference",
        "",
        *(recall_lines(result) or ["No reference model."]),
        "",
        "## Environment",
        "",
        *environment_lines(result["environment"], result["settings"]["threads"]),
        "",
    ]
    if plot_name:
        out += [f"![accuracy vs latency]({plot_name})", ""]
    if result.get("floors"):
        out += ["## Floors", ""]
        out += [
            f"- {f['metric']} {'≥' if f['kind'] == 'floor' else '≤'} {f['bound']:g}: {f['subject']} = "
            f"{fmt(f['value'], '.4g')} {'ok' if f['ok'] else '**FAILED**'}"
            for f in result["floors"]
        ]
        out.append("")
    return "\n".join(out)
