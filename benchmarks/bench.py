"""``fashion-bench``: accuracy and latency of every file of a model, int8 against float, in one run.

    fashion-bench models/articletype8 --results-md benchmarks/RESULTS.md
    fashion-bench MODEL_DIR --quick --floor top1=0.93 --floor agreement=0.99   # CI

Each model file is measured in its own fresh process per thread count (benchmarks.latency), so
load time and peak RSS are that file's alone and ratios come from the same run on the same machine.
Writes results.json (every figure), results.md (tables) and bench.png to --out; prints the table;
exits 1 when a --floor/--ceiling is missed or a model fails, 2 on bad input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.benchmarks import floors as floor_checks
from fashion_edge.benchmarks.compare import compare_table
from fashion_edge.benchmarks.labelbench import label_in_subprocess, write_images
from fashion_edge.benchmarks.latency import WorkerError, measure_in_subprocess
from fashion_edge.benchmarks.photobench import photo_line, safe_photo_row
from fashion_edge.benchmarks.sysinfo import environment
from fashion_edge.benchmarks.table import main_table, report, speedup_table
from fashion_edge.runtime.metadata import ModelMetadata

FORMAT_LABELS = {"keras": "Keras", "tflite": "TFLite", "onnx": "ONNX"}
QUICK = {
    "rounds": 1,
    "runs": 20,
    "warmup": 3,
    "max_seconds": 2.0,
    "batches": "1",
    "threads": "1",
    "limit": 256,
    "label_n": 64,
    "photo_n": 0,
}
FULL = {"rounds": 3, "runs": 200, "warmup": 20, "max_seconds": 5.0, "batches": "1,32", "threads": "1,2", "limit": 0,
        "label_n": 2000, "photo_n": 200}  # fmt: skip
# Targets from issue #7 (reported as goals, not enforced; use --floor/--ceiling to enforce)
GOAL_INT8_TOP1_DROP = 0.003
GOAL_INT8_SIZE_RATIO = 0.27
GOAL_INT8_SPEEDUP = 2.5
GOAL_INT8_P50_MS = 0.5
GOAL_LABEL_IMG_S = 1000.0


class BenchError(ValueError):
    """Bad input: the message names the file and the problem."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="fashion-bench", description=__doc__.splitlines()[0])
    ap.add_argument(
        "model_dir", nargs="?", type=Path, help="exported model folder (default: the default model's folder)"
    )
    ap.add_argument("--quick", action="store_true", help="few runs, batch 1, 1 thread, ≤256 images (CI)")
    ap.add_argument("--out", type=Path, help="output folder (default runs/bench-<timestamp>)")
    ap.add_argument(
        "--floor", action="append", default=[], metavar="METRIC=V", help="fail below, e.g. top1=0.93"
    )
    ap.add_argument(
        "--ceiling", action="append", default=[], metavar="METRIC=V", help="fail above, e.g. p50_ms=0.5"
    )
    ap.add_argument("--threads", help="thread counts, e.g. 1,2 (default 1,2; quick 1)")
    ap.add_argument("--batches", help="batch sizes, e.g. 1,32 (default 1,32; quick 1)")
    ap.add_argument("--rounds", type=int, help="repeat all latency runs, best p50 kept (default 3; quick 1)")
    ap.add_argument("--runs", type=int, help="timed runs per setting (default 200; quick 20)")
    ap.add_argument("--warmup", type=int, help="untimed runs first (default 20; quick 3)")
    ap.add_argument("--max-seconds", type=float, help="time cap per setting (default 10; quick 2)")
    ap.add_argument("--limit", type=int, help="test images used for accuracy (0 = all; quick 256)")
    ap.add_argument("--data", type=Path, help="catalogue folder or tarball (default: the shared data)")
    ap.add_argument("--label-folder", type=Path, help="time labeling this folder instead of test images")
    ap.add_argument(
        "--label-n", type=int, help="test images to label end to end (default 2000; quick 64; 0 = skip)"
    )
    ap.add_argument(
        "--label-model",
        help="file name in MODEL_DIR used for labeling (default: the runtime default's file name)",
    )
    ap.add_argument("--label-threads", type=int, default=2, help="inference threads for labeling (default 2)")
    ap.add_argument(
        "--photo-n", type=int, help="12 MP photos labelled end to end (default 200; quick 0 = skip)"
    )
    ap.add_argument("--webcam-set", type=Path, help="webcam-like set folder (labels.csv): extra Webcam top-1")
    ap.add_argument(
        "--keras", type=Path, metavar="RUN_DIR", help="training run with model.keras: float reference"
    )
    ap.add_argument("--results-md", type=Path, help="also write the report here (+ a .png beside it)")
    ap.add_argument(
        "--compare",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="also benchmark DIR in the same run; one side-by-side table (latency × the first DIR's int8 ONNX)",
    )
    a = ap.parse_args(argv)
    if a.model_dir is None:  # the runtime's default model (FASHION_EDGE_MODEL, else the shipped one)
        from fashion_edge.runtime.classifier import default_model_path

        a.model_dir = default_model_path().parent
    preset = QUICK if a.quick else FULL
    for key, value in preset.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    a.threads_list = int_list(a.threads, "--threads")
    a.batches_list = int_list(a.batches, "--batches")
    if a.rounds < 1 or a.runs < 1 or a.warmup < 0 or a.max_seconds <= 0 or a.limit < 0 or a.label_n < 0:
        raise BenchError(
            "--rounds and --runs must be ≥ 1; --warmup, --limit, --label-n ≥ 0; --max-seconds > 0"
        )
    return a


def int_list(text: str, option: str) -> list[int]:
    try:
        values = sorted({int(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        raise BenchError(f"{option} {text!r}: expected comma-separated whole numbers, e.g. 1,2") from None
    if not values or min(values) < 1:
        raise BenchError(f"{option} {text!r}: expected numbers ≥ 1")
    return values


def discover_models(model_dir: Path) -> list[Path]:
    """The model files of an exported folder: export's format table order, then any other file."""
    from fashion_edge.export.formats import present

    if not model_dir.is_dir():
        raise BenchError(f"{model_dir}: not a folder (expected an exported model folder)")
    files = [path for _fmt, path in present(model_dir)]
    files += sorted(p for p in model_dir.iterdir() if p.suffix in (".onnx", ".tflite") and p not in files)
    if not files:
        raise BenchError(f"{model_dir}: no .onnx or .tflite model files")
    return files


def guess_kind(path: Path) -> dict[str, str]:
    """Format and precision from the file name (used only when the model could not be loaded)."""
    fmt = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}.get(path.suffix, path.suffix)
    precision = next((p for p in ("int8", "float16", "float32") if p in path.stem), "float32")
    return {"format": fmt, "precision": precision}


def load_test_set(a: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Test images of the model's split (evenly thinned to --limit). With --quick and no catalogue
    found (and no --data given), the embedded sample's images of that split, saying so in one line."""
    from fashion_edge.training.data import DataError, load_split

    a.data_source = str(a.data) if a.data else "catalogue"
    try:
        x, y, ids, classes = load_split(a.model_dir, "test", data=a.data)
    except DataError as e:
        if a.data is not None or "catalogue found" not in str(e):
            raise
        if not a.quick:
            raise BenchError(
                f"{e} (the full benchmark needs it: README, Set up; --quick uses the embedded sample)"
            ) from None
        from fashion_edge.benchmarks.sample_set import SAMPLE_DIR, SampleError, load_sample

        try:
            x, y, ids, classes = load_sample(a.model_dir)
        except SampleError as s:
            raise BenchError(f"{e}; embedded sample unusable: {s}") from None
        a.data, a.data_source = SAMPLE_DIR, "embedded sample"
        print(
            f"fashion-bench: no catalogue found ({e.args[0].split(':')[0]}); using the embedded sample: "
            f"{len(ids)} test images in {SAMPLE_DIR} (full catalogue: see README, Set up)",
            file=sys.stderr,
        )
    if a.limit and len(x) > a.limit:
        keep = np.linspace(0, len(x) - 1, a.limit).round().astype(int)
        x, y, ids = x[keep], y[keep], [ids[i] for i in keep]
    return x, y, ids, classes


def load_webcam(folder: Path, meta: ModelMetadata) -> tuple[np.ndarray, np.ndarray]:
    """A webcam-like labelled set (training.webcam) as model inputs and class indices."""
    from fashion_edge.runtime.preprocess import prepare
    from fashion_edge.training.webcam import load_webcam_set

    images, labels, _ids = load_webcam_set(folder)
    index = {c: i for i, c in enumerate(meta.classes)}
    unknown = sorted({str(lab) for lab in labels} - set(index))
    if unknown:
        raise BenchError(f"{folder}: labels not among the model's classes: {', '.join(unknown[:5])}")
    x = np.stack([prepare(img, meta) for img in images])
    return x, np.array([index[str(lab)] for lab in labels], dtype=np.int64)


def measure_model(
    path: Path, inputs: Path, logits_path: Path | None, a: argparse.Namespace
) -> dict[str, Any]:
    """Latency at every thread count (one process each) + logits from the first process."""
    configs, runs = [], {}
    for i, t in enumerate(a.threads_list):
        runs[t] = measure_in_subprocess(
            path, inputs, t, a.batches_list, a.runs, a.warmup, a.max_seconds, logits_path if i == 0 else None
        )
        configs += runs[t]["configs"]
    first = runs[a.threads_list[0]]
    return {
        "format": first["format"],
        "precision": first["precision"],
        "load_s": first["load_s"],
        "rss_before_load_mb": first["rss_before_load_mb"],
        "rss_peak_mb": {str(t): r["rss_peak_mb"] for t, r in runs.items()},
        "configs": configs,
    }


def merge_rounds(a_lat: dict[str, Any], b_lat: dict[str, Any]) -> dict[str, Any]:
    """Per setting keep the round with the lower p50 (the least disturbed one); min load, max RSS."""
    best = {(c["batch"], c["threads"]): c for c in a_lat["configs"]}
    for c in b_lat["configs"]:
        key = (c["batch"], c["threads"])
        if key not in best or c["p50_ms"] < best[key]["p50_ms"]:
            best[key] = c
    merged = dict(a_lat)
    merged["configs"] = [best[(c["batch"], c["threads"])] for c in a_lat["configs"]]
    merged["load_s"] = min(a_lat["load_s"], b_lat["load_s"])
    merged["rss_peak_mb"] = {
        t: max(v, b_lat["rss_peak_mb"].get(t, v)) for t, v in a_lat["rss_peak_mb"].items()
    }
    merged["rounds"] = a_lat.get("rounds", 1) + 1
    return merged


def measure_all(
    entries: list[Path], inputs: Path, tmp: Path, a: argparse.Namespace
) -> list[tuple[dict[str, Any] | None, str | None]]:
    """Latency of every file, ``--rounds`` times with the order reversed every other round so that
    a load change on the machine hits float and int8 alike; logits come from the first round."""
    results: list[tuple[dict[str, Any] | None, str | None]] = [(None, None)] * len(entries)
    for rnd in range(a.rounds):
        order = list(range(len(entries)))[:: -1 if rnd % 2 else 1]
        for k, i in enumerate(order, 1):
            lat, error = results[i]
            if error:
                continue
            t0 = time.perf_counter()
            try:
                new = measure_model(entries[i], inputs, tmp / f"logits_{i}.npy" if rnd == 0 else None, a)
            except WorkerError as e:
                results[i] = (None, str(e))
                status = f"error: {e}"
            else:
                results[i] = (merge_rounds(lat, new) if lat else {**new, "rounds": 1}, None)
                head = new["configs"][0]
                status = f"p50 {head['p50_ms']:.3f} ms (batch {head['batch']}, {head['threads']} thread)"
            print(
                f"[round {rnd + 1}/{a.rounds}, {k}/{len(entries)}] {entries[i].name}: {status} "
                f"({time.perf_counter() - t0:.1f} s)",
                file=sys.stderr,
            )
    return results


def model_row(
    path: Path, lat: dict[str, Any] | None, error: str | None, a: argparse.Namespace
) -> dict[str, Any]:
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
    """ "ONNX int8"-style names; variants (int8 I/O, extra files) get a qualifier in the precision."""
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


def default_file(models: list[Path]) -> Path:
    """The file labelling is timed with: the one named like the runtime's default model file (what
    ``fashion-label`` uses), else the int8 ONNX file, else any ONNX file."""
    from fashion_edge.runtime.classifier import default_model_path

    for name in (default_model_path().name, "model_int8.onnx"):
        if found := next((p for p in models if p.name == name), None):
            return found
    return next((p for p in models if p.suffix == ".onnx"), models[0])


def labeling(
    a: argparse.Namespace, models: list[Path], x: np.ndarray, ids: list[str], tmp: Path, recipe: str
):
    """Time ``runtime.labeling`` on a folder of real test images with the default file (``default_file``)."""
    if a.label_model:
        model = a.model_dir / a.label_model
        if model not in models:
            raise BenchError(f"{model}: --label-model is not a model file of {a.model_dir}")
    else:
        model = default_file(models)
    folder = a.label_folder
    if folder is None:
        if a.label_n == 0:
            return None
        source = None
        if recipe != "fmnist":
            from fashion_edge.training.data import DataError, resolve_catalogue

            try:
                source = resolve_catalogue(a.data)
            except DataError:
                source = None
        folder = tmp / "label_images"
        write_images(folder, a.label_n, ids, x, source)
    elif not folder.is_dir():
        raise BenchError(f"{folder}: --label-folder is not a folder")
    try:
        return label_in_subprocess(folder, model, threads=a.label_threads, workers=2)
    except WorkerError as e:
        return {"error": str(e), "model": model.name}


def run(a: argparse.Namespace, command: str) -> dict[str, Any]:
    """Measure everything; returns the result record (rows, speed-ups, labeling, goals, environment)."""
    models = discover_models(a.model_dir)
    x, y, ids, classes = load_test_set(a)
    from fashion_edge.runtime.metadata import load_json

    meta = load_json(a.model_dir / "metadata.json")
    notes: list[str] = []
    entries: list[Path] = []
    if a.keras:
        keras_file = a.keras / "model.keras" if a.keras.is_dir() else a.keras
        if not keras_file.is_file():
            raise BenchError(f"{keras_file}: no Keras model (expected RUN_DIR/model.keras)")
        if importlib.util.find_spec("tensorflow") is None:
            notes.append("Keras row skipped: TensorFlow is not installed")
        else:
            run_meta = keras_file.parent / "metadata.json"
            if run_meta.exists() and load_json(run_meta).classes != classes:
                raise BenchError(f"{run_meta}: classes differ from {a.model_dir / 'metadata.json'}")
            entries.append(keras_file)
    entries += models
    wx = wy = None
    if a.webcam_set:
        wx, wy = load_webcam(a.webcam_set, meta)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fashion-bench-") as tmpdir:
        tmp = Path(tmpdir)
        inputs = tmp / "inputs.npy"
        np.save(inputs, x if wx is None else np.concatenate([x, wx]))
        measured = measure_all(entries, inputs, tmp, a)
        for i, path in enumerate(entries):
            lat, error = measured[i]
            logits_path = tmp / f"logits_{i}.npy"
            row = model_row(path, lat, error, a)
            row["logits"] = np.load(logits_path) if lat and logits_path.exists() else None
            rows.append(row)
        lab = labeling(a, models, x, ids, tmp, meta.recipe)
        photo_model = default_file(models)
        photo = safe_photo_row(photo_model, a.photo_n, a.label_threads) if a.photo_n > 0 else None
    name_rows(rows)
    ref = pick_reference(rows)
    finish_accuracy(rows, y, classes, wy, ref)
    for r in rows:  # size relative to the float32 file of the same format
        f = next(
            (o for o in rows if o["format"] == r["format"] and o["file"].startswith("model_float32")), None
        )
        r["size_ratio"] = r["size_bytes"] / f["size_bytes"] if f else None
    ups = speedups(rows)
    return {
        "schema": "fashion-bench/1",
        "command": command,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_dir": str(a.model_dir),
        "model_name": a.model_dir.name,
        "quick": a.quick,
        "settings": {
            "threads": a.threads_list,
            "batches": a.batches_list,
            "rounds": a.rounds,
            "runs": a.runs,
            "warmup": a.warmup,
            "max_seconds": a.max_seconds,
            "n_test": int(len(y)),
            "headline_batch": a.batches_list[0],
            "headline_threads": a.threads_list[0],
            "label_n": a.label_n,
            "n_webcam": None if wy is None else int(len(wy)),
            "data": a.data_source,
        },  # fmt: skip
        "environment": environment(),
        "reference": ref["name"] if ref else None,
        "reference_file": ref["file"] if ref else None,
        "rows": rows,
        "speedups": ups,
        "labeling": lab,
        "photo_labeling": photo,
        "goals": goals(rows, ups, lab, photo),
        "notes": notes,
    }


def finish_accuracy(
    rows: list[dict[str, Any]],
    y: np.ndarray,
    classes: list[str],
    wy: np.ndarray | None,
    ref: dict[str, Any] | None,
) -> None:
    """Accuracy of each row against the labels and the reference's predictions; drops raw logits."""
    from fashion_edge.benchmarks.accuracy import evaluate, top1  # scikit-learn: imported after parsing

    n = len(y)
    ref_pred = ref["logits"][:n].argmax(axis=1) if ref else None
    for r in rows:
        logits = r.pop("logits")
        if logits is None:
            r["accuracy"] = None
            continue
        r["accuracy"] = evaluate(logits[:n], y, classes, ref_pred)
        r["webcam_top1"] = top1(logits[n:], wy) if wy is not None else None


def write_outputs(result: dict[str, Any], out: Path, results_md: Path | None) -> dict[str, Path]:
    """results.json, results.md, bench.png in ``out``; the report (+ PNG) at ``results_md`` too."""
    from fashion_edge.benchmarks.plots import plot  # matplotlib: imported after parsing

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "md": out / "results.md", "png": out / "bench.png"}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, paths["png"])
    paths["md"].write_text(report(result, paths["png"].name), encoding="utf-8")
    if results_md:
        results_md.parent.mkdir(parents=True, exist_ok=True)
        png = results_md.with_suffix(".png")
        shutil.copyfile(paths["png"], png)
        results_md.write_text(report(result, png.name), encoding="utf-8")
        paths["results_md"] = results_md
    return paths


def compare_folders(a: argparse.Namespace, command: str, first: dict[str, Any]) -> list[dict[str, Any]]:
    """Benchmark every --compare folder with the same settings (no second photo-folder run)."""
    from fashion_edge.benchmarks.compare import real_photos, summary

    entries = [summary(first, real_photos(Path(first["model_dir"])))]
    for folder in a.compare:
        other = argparse.Namespace(**{**vars(a), "model_dir": folder, "photo_n": 0, "webcam_set": None,
                                      "keras": None, "label_n": 0})  # fmt: skip
        entries.append(summary(run(other, command), real_photos(folder)))
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["fashion-bench", *argv])
    from fashion_edge.runtime.metadata import MetadataError
    from fashion_edge.training.data import DataError

    try:
        a = parse_args(argv)
        floors = floor_checks.parse(a.floor, "floor")
        ceilings = floor_checks.parse(a.ceiling, "ceiling")
        result = run(a, command)
        if a.compare:
            result["compare"] = compare_folders(a, command, result)
    except (BenchError, floor_checks.FloorError, DataError, MetadataError) as e:
        print(f"fashion-bench: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"fashion-bench: missing module ({e})", file=sys.stderr)
        return 2
    result["floors"] = floor_checks.check(result, floors, ceilings)
    failed = [f for f in result["floors"] if not f["ok"]]
    errors = [r for r in result["rows"] if r["error"]]
    result["ok"] = not failed and not errors
    out = a.out or Path("runs") / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    paths = write_outputs(result, out, a.results_md)
    print(main_table(result))
    if result.get("compare"):
        print("\n" + compare_table(result["compare"]))
    if result.get("photo_labeling"):
        print(photo_line(result["photo_labeling"]))
    if result["speedups"]:
        print()
        print(speedup_table(result))
    print(f"\nWrote {', '.join(str(p) for p in paths.values())}")
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    for r in errors:
        print(f"fashion-bench: {r['path']}: {r['error']}", file=sys.stderr)
    for f in failed:
        bound = "below floor" if f["kind"] == "floor" else "above ceiling"
        print(
            f"fashion-bench: {f['subject']}: {f['metric']} = {f['value']} {bound} {f['bound']:g}",
            file=sys.stderr,
        )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
