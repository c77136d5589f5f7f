"""Rows of the ``fashion-bench`` report: per-file row, names, float reference, int8 speed-ups, goals."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FORMAT_LABELS = {"keras": "Keras", "tflite": "TFLite", "onnx": "ONNX"}
# Targets from issue #7 (reported as goals, not enforced; use --floor/--ceiling to enforce)
GOAL_INT8_TOP1_DROP = 0.003
GOAL_INT8_SIZE_RATIO = 0.27
GOAL_INT8_SPEEDUP = 2.5
GOAL_INT8_P50_MS = 0.5
GOAL_LABEL_IMG_S = 1000.0


def guess_kind(path: Path) -> dict[str, str]:
    """Format and precision from the file name (used only when the model could not be loaded)."""
    fmt = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}.get(path.suffix, path.suffix)
    precision = next((p for p in ("int8", "float16", "float32") if p in path.stem), "float32")
    return {"format": fmt, "precision": precision}


def model_row(
    path: Path, lat: dict[str, Any] | None, error: str | None, a: argparse.Namespace
) -> dict[str, Any]:
    """One file's row: kind, size, error, latency and the headline setting's figures."""
    kind = {"format": lat["format"], "precision": lat["precision"]} if lat else guess_kind(path)
    row: dict[str, Any] = {
        **kind,
        "file": path.name,
        "path": str(path),
        "format_label": FORMAT_LABELS.get(kind["format"], kind["format"]),
        "size_bytes": path.stat().st_size,
        "size_mb": path.stat().st_size / 1e6,
        "error": error,
        "latency": lat,
    }
    if lat:
        head = next(
            c for c in lat["configs"] if (c["batch"], c["threads"]) == (a.batches_list[0], a.threads_list[0])
        )
        row["headline"] = {k: head[k] for k in ("batch", "threads", "p50_ms", "p90_ms", "p99_ms", "img_s")}
        row["best_img_s"] = max(c["img_s"] for c in lat["configs"])
        row["rss_mb"] = lat["rss_peak_mb"][str(a.threads_list[0])]
    return row


def name_rows(rows: list[dict[str, Any]]) -> None:
    """ "ONNX int8"-style names; variants (uint8 I/O, extra files) get a qualifier in the precision."""
    from fashion_edge.export.formats import by_filename

    for r in rows:
        fmt = by_filename(r["file"])
        if fmt is not None and fmt.io != "float32":
            r["precision_label"] = f"{r['precision']}, {fmt.io} I/O"
        else:
            r["precision_label"] = r["precision"]
    seen: dict[str, int] = {}
    for r in rows:
        key = f"{r['format_label']} {r['precision_label']}"
        seen[key] = seen.get(key, 0) + 1
    for r in rows:
        key = f"{r['format_label']} {r['precision_label']}"
        if seen[key] > 1 and Path(r["file"]).stem != f"model_{r['precision']}":
            r["precision_label"] += f" ({Path(r['file']).stem})"
        r["name"] = f"{r['format_label']} {r['precision_label']}"


def pick_reference(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Keras if measured, else ONNX float32, else TFLite float32."""
    ok = [r for r in rows if not r["error"] and r.get("logits") is not None]
    for fmt, file in (("keras", None), ("onnx", "model_float32.onnx"), ("tflite", "model_float32.tflite")):
        for r in ok:
            if r["format"] == fmt and (file is None or r["file"] == file):
                return r
    return next((r for r in ok if r["precision"] == "float32"), None)


def speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """int8 over float32 p50 for each format and setting measured in this run."""
    out = []
    for fmt in ("tflite", "onnx"):
        pair = {p: next((r for r in rows if r["format"] == fmt and r["precision"] == p and r.get("latency")
                         and Path(r["file"]).stem == f"model_{p}"), None) for p in ("float32", "int8")}  # fmt: skip
        if not all(pair.values()):
            continue
        floats = {(c["batch"], c["threads"]): c for c in pair["float32"]["latency"]["configs"]}
        for c in pair["int8"]["latency"]["configs"]:
            f = floats.get((c["batch"], c["threads"]))
            if f:
                out.append(
                    {
                        "format": fmt,
                        "format_label": FORMAT_LABELS[fmt],
                        "batch": c["batch"],
                        "threads": c["threads"],
                        "float_p50_ms": f["p50_ms"],
                        "int8_p50_ms": c["p50_ms"],
                        "speedup": f["p50_ms"] / c["p50_ms"],
                    }
                )
    return out


def goals(
    rows: list[dict[str, Any]],
    ups: list[dict[str, Any]],
    lab: dict[str, Any] | None,
    photo: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The issue's targets, measured: int8 accuracy, size, speed-up, p50; labeling throughput."""
    out = []
    by = {(r["format"], r["file"]): r for r in rows if not r["error"]}
    for fmt, label in (("tflite", "TFLite"), ("onnx", "ONNX")):
        f, q = by.get((fmt, f"model_float32.{fmt}")), by.get((fmt, f"model_int8.{fmt}"))
        if not (f and q):
            continue
        drop = (f["accuracy"]["top1"] - q["accuracy"]["top1"]) * 100
        out.append({"goal": "int8 top-1 within 0.3 pts of float", "subject": label, "value": f"{-drop:+.2f} pts",
                    "target": "≥ -0.30 pts", "met": drop <= GOAL_INT8_TOP1_DROP * 100 + 1e-9})  # fmt: skip
        ratio = q["size_bytes"] / f["size_bytes"]
        out.append({"goal": "int8 file size vs float", "subject": label, "value": f"{ratio:.3f}×",
                    "target": f"≤ {GOAL_INT8_SIZE_RATIO}×", "met": ratio <= GOAL_INT8_SIZE_RATIO})  # fmt: skip
        head = q.get("headline")
        if head and head["batch"] == 1 and head["threads"] == 1:
            out.append({"goal": "int8 p50, batch 1, 1 thread", "subject": label, "value": f"{head['p50_ms']:.3f} ms",
                        "target": f"≤ {GOAL_INT8_P50_MS} ms", "met": head["p50_ms"] <= GOAL_INT8_P50_MS})  # fmt: skip
    for s in ups:
        if s["batch"] == 1 and s["threads"] == 1:
            out.append({"goal": "int8 speed-up, batch 1, 1 thread", "subject": s["format_label"],
                        "value": f"{s['speedup']:.2f}×", "target": f"≥ {GOAL_INT8_SPEEDUP}×",
                        "met": s["speedup"] >= GOAL_INT8_SPEEDUP})  # fmt: skip
    if lab and not lab.get("error"):
        out.append({"goal": "folder labeling end to end", "subject": f"{lab['model']}, {lab['threads']} threads",
                    "value": f"{lab['img_s']:,.0f} img/s", "target": f"≥ {GOAL_LABEL_IMG_S:,.0f} img/s",
                    "met": lab["img_s"] >= GOAL_LABEL_IMG_S})  # fmt: skip
    if photo and "end_to_end" in photo:
        from fashion_edge.benchmarks import photobench as pb

        e = photo["end_to_end"]
        subject = f"{photo['photos']} JPEGs of {photo['megapixels']:g} MP, {photo['model']}"
        out += [{"goal": "phone photos end to end", "subject": subject, "value": f"{e['img_s']:,.0f} img/s",
                 "target": f"≥ {pb.GOAL_IMG_S:,.0f} img/s", "met": e["img_s"] >= pb.GOAL_IMG_S},
                {"goal": "phone photos peak RSS", "subject": subject, "value": f"{e['peak_rss_mb']:,.0f} MB",
                 "target": f"≤ {pb.GOAL_RSS_MB:,.0f} MB", "met": e["peak_rss_mb"] <= pb.GOAL_RSS_MB},
                {"goal": "phone photos vs 1-core Pillow draft decode", "subject": subject,
                 "value": f"{photo['ratio_vs_baseline']:.2f}×", "target": f"≥ {pb.GOAL_VS_BASELINE:g}×",
                 "met": photo["ratio_vs_baseline"] >= pb.GOAL_VS_BASELINE}]  # fmt: skip
    return out
