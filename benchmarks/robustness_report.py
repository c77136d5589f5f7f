"""Markdown output of the robustness benchmark: the per-file table and the report around it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TABLE_HEADER = [
    "File",
    "Precision",
    "Clean top-1",
    "Webcam top-1",
    "Webcam + auto-crop",
    "Gap",
    "AUROC",
    "Known accepted",
    "Unknown accepted",
    "Acc. of accepted",
    "Webcam accepted",
    "Webcam acc. of accepted",
]


def pct(value: float | None) -> str:
    """A share as a percentage with two decimals; a dash when missing."""
    return "—" if value is None or not np.isfinite(value) else f"{100 * value:.2f}%"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table: one row per file."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "|".join("---" for _ in TABLE_HEADER) + "|"]
    for r in rows:
        if r["error"]:
            cells = [r["file"], "—", f"error: {r['error']}"] + ["—"] * (len(TABLE_HEADER) - 3)
        else:
            o = r["open_set"]
            gap = "—" if not np.isfinite(r["gap"]) else f"{100 * r['gap']:.2f} pts"
            auroc = "—" if not np.isfinite(o["auroc"]) else f"{o['auroc']:.4f}"
            cells = [r["file"], f"{r['format']} {r['precision']}", pct(r["clean"]["top1"]), pct(r["webcam"]["top1"]),
                     pct(r["webcam_autocrop"]["top1"]), gap, auroc, pct(o["known_accepted"]), pct(o["unknown_accepted"]),
                     pct(o["accepted_known_accuracy"]), pct(r["webcam"]["accepted"]),
                     pct(r["webcam"]["accepted_accuracy"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    """Markdown: what was measured, the table, and the unknown types most often auto-accepted."""
    s = result["sets"]
    out = [
        f"# Robustness of {result['model_dir']}",
        "",
        f"`{result['command']}` — {result['timestamp']}",
        "",
        f"Clean: {s['n_clean']} known-class test items. Webcam-like: {s['n_webcam']} copies of them "
        f"(`{s['webcam_set']}`). Unknown: {s['n_unknown']} catalogue items of {len(s['unknown_types'])} article "
        f"types never taught (excluded: {', '.join(s['excluded_types']) or 'none'}).",
        "Accepted = the runtime's `needs_review` is False (confidence ≥ the model's review threshold and the "
        "top class is not the unknown class). Webcam + auto-crop: the same webcam-like images through "
        "`runtime.preprocess.autocrop_foreground` first. AUROC: max calibrated probability over the known classes, "
        "known (positive) vs unknown items. Gap = clean − webcam top-1.",
        "",
        table(result["rows"]),
        "",
    ]
    ok = [r for r in result["rows"] if not r["error"]]
    if ok:
        worst = list(ok[0]["open_set"]["unknown_accepted_by_type"].items())[:8]
        out += [
            f"Unknown types most often auto-accepted ({ok[0]['file']}): "
            + ", ".join(f"{t} {100 * v:.0f}%" for t, v in worst),
            "",
        ]
    return "\n".join(out)
