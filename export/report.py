"""export_report.json (everything, machine-readable) and export_report.md (the same, for people)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from fashion_edge.export.gate import saturation_free


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _pct(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.3f}"


def cpu_lines(cpu: dict[str, Any] | None, files: list[dict[str, Any]]) -> list[str]:
    """Which CPU and int8 kernel path the gate measured, and whether the int8 ONNX weights make that moot."""
    if not cpu:
        return []
    out = [f"Measured on {cpu['model']} ({', '.join(cpu['flags']) or 'no int8 SIMD flags'}): "
           f"int8 path **{cpu['int8_path']}**."]  # fmt: skip
    for r in files:
        rng = r.get("int8_weight_range")
        if rng:
            safe = saturation_free(rng)
            out.append(f"{r['file']}: int8 weights in [{rng[0]}, {rng[1]}]: "
                       + ("7-bit, so CPUs without VNNI compute the same sums (no int16 saturation)." if safe
                          else "8-bit: CPUs without VNNI can saturate, the figures above may not hold there."))  # fmt: skip
    return [*(f"- {line}" for line in out), ""]


def render_markdown(rep: dict[str, Any]) -> str:
    """The report as Markdown: files side by side, per-class recall change, calibration, gate."""
    ref, cal, gate = rep["reference"]["scores"], rep["calibration"], rep["gate"]
    classes = rep["classes"]
    lines = [
        f"# Export report: {rep['run_name']}",
        "",
        f"Source run `{rep['run']}`; {ref['n']} test images, evaluated through the product runtime "
        "(ONNX Runtime / LiteRT, not TensorFlow). Reference: the Keras float model.",
        "",
        f"**Gate: {'PASSED' if gate['passed'] else 'FAILED'}** (max drop {gate['max_drop']:g} points top-1, "
        f"{gate['max_class_drop']:g} points recall per class)",
        "",
    ]
    lines += [f"- {f}" for f in gate["failures"]] + ([""] if gate["failures"] else [])
    lines += cpu_lines(gate.get("cpu"), rep["files"])
    lines += [
        "| file | precision | I/O | size MB | × float | top-1 % | Δ top-1 | macro-F1 % | agreement % "
        "| worst class Δ recall | coverage @thr % | acc. @thr % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| model.keras (reference) | float32 | float32 | – | – | {_pct(ref['top1'])} | – | {_pct(ref['macro_f1'])} "
        f"| 100 | – | {_pct(cal['test_coverage'] * 100)} | {_pct(cal['test_accuracy_above'] * 100)} |",
    ]
    for r in rep["files"]:
        worst = min(range(len(classes)), key=lambda i: r["recall_delta"][i])
        ratio = rep["goals"].get(r["file"], {}).get("size_ratio")
        lines.append(
            f"| {r['file']} | {r['precision']} | {r['io']} | {_mb(r['size_bytes'])} | "
            f"{'–' if ratio is None else f'{ratio:.3f}'} | {_pct(r['scores']['top1'])} | {r['top1_delta']:+.2f} | "
            f"{_pct(r['scores']['macro_f1'])} | {_pct(r['agreement'])} | "
            f"{r['recall_delta'][worst]:+.1f} ({classes[worst]}) | {_pct(r['coverage'] * 100)} | "
            f"{_pct(r['accuracy_above'] * 100)} |"
        )
    lines += [
        "",
        "## Recall per class (%)",
        "",
        "| class | keras | " + " | ".join(r["file"] for r in rep["files"]) + " |",
    ]
    lines.append("|---|---|" + "---|" * len(rep["files"]))
    for i, c in enumerate(classes):
        cells = [f"{r['scores']['recall'][i]:.1f} ({r['recall_delta'][i]:+.1f})" for r in rep["files"]]
        lines.append(f"| {c} | {ref['recall'][i]:.1f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Confidence calibration",
        "",
        f"- Temperature (fitted on {cal['val_n']} validation images, min NLL): **{cal['temperature']:.3f}**"
        + (" (at the search bound)" if cal["temperature_at_bound"] else ""),
        f"- Review threshold: **{cal['review_threshold']:.6g}** — validation predictions at or above it are "
        f"right {cal['val_precision']:.1%} of the time (≥ {cal['val_precision_lower_90']:.1%} with 90% confidence; "
        f"target ≥ {cal['review_precision_target']:.0%}), "
        f"covering {cal['val_coverage']:.1%} of validation items.",
        f"- Test split (Keras): {cal['test_coverage']:.1%} of items above the threshold, "
        f"{cal['test_accuracy_above']:.1%} of them right.",
        "",
        "## Quantization",
        "",
        f"- int8 method: **{rep['quantization']['method']}** — {rep['quantization']['why']}",
        f"- Calibration: {rep['quantization']['calibration_images']} stratified training images, "
        "preprocessed exactly as in training (same decode, fit and cache).",
        "- int8 TFLite I/O: float32 by default (drop-in for the runtime and app; the model quantizes its own "
        "input); `--int8-io` adds model_int8_uint8io.tflite with uint8 input/output (raw pixels in) for "
        "microcontrollers.",
    ]
    for r in rep["files"]:
        if r["notes"]:
            lines.append(f"- {r['file']}: `{json.dumps(r['notes'], sort_keys=True)}`")
    embs = [r for r in rep["files"] if r.get("embedding_cosine")]
    if embs:
        lines += ["", "## Embedding output (for runtime.adapter)", "",
                  "Cosine similarity of each file's embedding with the float reference's, per test image:", "",
                  "| file | mean | 1st percentile | min |", "|---|---|---|---|"]  # fmt: skip
        for r in embs:
            c = r["embedding_cosine"]
            lines.append(f"| {r['file']} | {c['mean']:.4f} | {c['p01']:.4f} | {c['min']:.4f} |")
    lines += ["", "## Goals (measured, not gated)", ""]
    for name, g in rep["goals"].items():
        lines.append(
            f"- {name}: within 0.3 points {'yes' if g['within_0.3_points'] else 'NO'}; "
            f"agreement ≥ 99.5 % {'yes' if g['agreement_99.5'] else 'NO'}; "
            f"size {g['size_ratio']:.3f}× float ({'≤' if g['size_le_0.27x'] else '>'} 0.27×)"
        )
    lines += ["", f"Command: `{rep['command']}`", ""] if rep.get("command") else [""]
    return "\n".join(lines)


def _plain(v: Any) -> Any:
    """JSON-safe copy: NaN -> null, numpy scalars -> Python numbers."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def write_report(out_dir: Path, rep: dict[str, Any]) -> None:
    """Write export_report.json and export_report.md atomically."""
    _atomic_write(out_dir / "export_report.json", json.dumps(_plain(rep), indent=2) + "\n")
    _atomic_write(out_dir / "export_report.md", render_markdown(rep))
