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
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.benchmarks import floors as floor_checks
from fashion_edge.benchmarks.bench_inputs import BenchError, discover_models, load_test_set, load_webcam
from fashion_edge.benchmarks.bench_rounds import measure_all
from fashion_edge.benchmarks.bench_rows import goals, model_row, name_rows, pick_reference, speedups
from fashion_edge.benchmarks.compare import compare_table
from fashion_edge.benchmarks.labelbench import label_in_subprocess, write_images
from fashion_edge.benchmarks.latency import WorkerError
from fashion_edge.benchmarks.photobench import photo_line, safe_photo_row
from fashion_edge.benchmarks.sysinfo import environment
from fashion_edge.benchmarks.table import cpu_line, int8_not_faster, main_table, report, speedup_table

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
        print(cpu_line(environment(), a.threads_list), flush=True)
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
        if line := int8_not_faster(result):
            print(line)
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
