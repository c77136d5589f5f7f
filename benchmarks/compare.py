"""``fashion-bench A --compare B``: several model folders side by side in one table.

Each folder is benchmarked in the same run with the same settings (its own test ids and input size);
the table shows each folder's int8 and float files with catalogue top-1, real-photo figures
(``benchmarks.realphotos`` on ``../shared/data/real-dev/eval`` when present) and batch-1 latency as a
ratio to the first ``--compare`` folder's int8 ONNX file, measured in the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fashion_edge.benchmarks.table import fmt, md_table, size_text
from fashion_edge.export.formats import by_filename

REF_FILE = "model_int8.onnx"  # the latency reference file of the first --compare folder
REAL_FILES = ("model_int8.onnx", "model_int8.tflite")  # the int8 files the real-photo columns are measured on


def real_photos(model_dir: Path) -> dict[str, Any] | None:
    """Real-photo figures of the folder's int8 files by file name, or None without the real-dev data."""
    from fashion_edge.benchmarks.realphotos import DEFAULT_FOLDER, evaluate, folder_items

    if not DEFAULT_FOLDER.is_dir():
        return None
    items = folder_items(DEFAULT_FOLDER)
    return {name: evaluate(model_dir / name, items) for name in REAL_FILES if (model_dir / name).is_file()}


def summary(result: dict[str, Any], real: dict[str, Any] | None) -> dict[str, Any]:
    """What the side-by-side table needs from one folder's fashion-bench result."""
    rows = [
        {"file": r["file"], "size": r.get("size_bytes"), "top1": (r.get("accuracy") or {}).get("top1"),
         "p50": (r.get("headline") or {}).get("p50_ms"), "format": r["format"], "precision": r["precision"]}
        for r in result["rows"] if not r.get("error") and r["format"] in ("onnx", "tflite")
    ]  # fmt: skip
    return {"model_dir": result["model_dir"], "rows": rows, "real": real}


def compare_table(entries: list[dict[str, Any]]) -> str:
    """One row per int8/float32 model file of every folder; latency ratio to the reference file."""
    ref_dir = entries[1]["model_dir"] if len(entries) > 1 else entries[0]["model_dir"]
    ref = next((r["p50"] for e in entries if e["model_dir"] == ref_dir for r in e["rows"] if r["file"] == REF_FILE),
               None)  # fmt: skip
    header = ["model folder", "file", "size", "catalogue top-1", "p50 ms (batch 1, 1 thread)",
              f"× {Path(ref_dir).name}/{REF_FILE}", "real photos top-1", "real auto-accepted (right)",
              "other items accepted"]  # fmt: skip
    rows = []
    for e in entries:
        for r in e["rows"]:
            fmt_row = by_filename(r["file"])
            if r["precision"] not in ("int8", "float32") or (fmt_row is not None and fmt_row.io != "float32"):
                continue  # the integer-I/O file is a deployment variant of int8, not a row of its own
            real = (e["real"] or {}).get(r["file"])
            rows.append([
                Path(e["model_dir"]).name, r["file"], size_text(r["size"]), fmt(r["top1"], ".2f", "%", 100),
                fmt(r["p50"], ".3f"), fmt(r["p50"] / ref if r["p50"] and ref else None, ".2f", "×"),
                fmt(real["top1"], ".1f", "%", 100) if real else "–",
                f"{fmt(real['accepted'], '.1f', '%', 100)} ({fmt(real['accepted_right'], '.1f', '%', 100)})"
                if real else "–",
                fmt(real["other_accepted"], ".1f", "%", 100) if real else "–",
            ])  # fmt: skip
    return md_table(header, rows)
