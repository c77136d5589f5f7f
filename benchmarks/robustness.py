"""Robustness of every file of a model: clean vs webcam-like accuracy, and unknown item types.

    python -m fashion_edge.benchmarks.robustness models/articletype8 --md benchmarks/ROBUSTNESS.md

For each model file (through ``runtime.load``, one inference thread by default):

* clean top-1 and macro-F1 on the known-class test items of the folder's ``splits.csv`` (a
  prediction of the model's ``unknown`` class counts as wrong);
* top-1 on webcam-like copies of the same items (``training.webcam.make_webcam_set``, seed 0,
  cached under ``.cache/webcam/<model>-test-s0``);
* open-set: catalogue items of article types the model never saw (``training.unknowns``);
  AUROC of the max calibrated probability over the known classes, and the share of known and
  unknown items the runtime auto-accepts (``Prediction.needs_review`` is False; it also flags
  predictions of the unknown class).

Writes ``robustness.json`` (every figure) and ``robustness.md`` (the table) to ``--out``;
prints the table. Exit 0 when every file was measured, 1 when one failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.benchmarks.robustness_report import pct, report, table
from fashion_edge.benchmarks.robustness_sets import EvalSets, RobustnessError, build_sets, model_files
from fashion_edge.runtime.metadata import MetadataError, load_json

CHUNK = 256  # images per inference call


# --- measuring ------------------------------------------------------------------------------


def probabilities(clf: Any, x: np.ndarray) -> np.ndarray:
    """Calibrated probabilities in chunks."""
    if not len(x):
        return np.zeros((0, len(clf.classes)), np.float32)
    return np.concatenate([clf.probabilities(x[i : i + CHUNK]) for i in range(0, len(x), CHUNK)])


def decisions(clf: Any, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted class index, auto-accepted, open-set score) per row, by the runtime's own rules.

    Accepted = ``not Prediction.needs_review`` (confidence threshold and unknown class). The score
    is the largest calibrated probability over the known classes.
    """
    preds = clf.predictions(probs, top_k=1)
    index = {c: i for i, c in enumerate(clf.classes)}
    pred = np.array([index[p.label] for p in preds], np.int64)
    accepted = np.array([not p.needs_review for p in preds], bool)
    known_cols = [i for i, c in enumerate(clf.classes) if c != clf.meta.unknown_class]
    score = probs[:, known_cols].max(axis=1) if len(probs) else np.zeros(0)
    return pred, accepted, score


def known_figures(clf: Any, x: np.ndarray, y: np.ndarray) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Top-1, macro-F1 (known classes), accept rate and accuracy of accepted; scores; correctness."""
    from sklearn.metrics import f1_score

    pred, accepted, score = decisions(clf, probabilities(clf, x))
    correct = pred == y
    labels = [i for i, c in enumerate(clf.classes) if c != clf.meta.unknown_class]
    nan = float("nan")
    out = {
        "n": int(len(y)),
        "top1": float(correct.mean()) if len(y) else nan,
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0))
        if len(y)
        else nan,
        "predicted_unknown": float(np.mean(~np.isin(pred, labels))) if len(y) else nan,
        "accepted": float(accepted.mean()) if len(y) else nan,
        "accepted_accuracy": float(correct[accepted].mean()) if accepted.any() else nan,
    }
    return out, score, correct


def evaluate_file(path: Path, sets: EvalSets, threads: int | None) -> dict[str, Any]:
    """Every figure for one model file (raises ModelLoadError / ValueError on a bad file)."""
    from fashion_edge.runtime import load
    from fashion_edge.training.unknowns import open_set_metrics

    t0 = time.perf_counter()
    clf = load(path, threads=threads)
    if list(clf.classes) != list(sets.classes):
        raise RobustnessError(f"{path}: classes differ from the folder's metadata.json")
    clean, clean_score, clean_correct = known_figures(clf, sets.clean_x, sets.clean_y)
    webcam, _, _ = known_figures(clf, sets.webcam_x, sets.webcam_y)
    webcam_crop, _, _ = known_figures(clf, sets.webcam_crop_x, sets.webcam_y)
    _, unk_accepted, unk_score = decisions(clf, probabilities(clf, sets.unknown_x))
    open_set = open_set_metrics(clean_score, unk_score, clf.meta.review_threshold, clean_correct)
    # accept decisions are the runtime's (needs_review), not the bare score threshold
    open_set["score_threshold_known_accepted"] = open_set["known_accepted"]
    open_set["score_threshold_unknown_accepted"] = open_set["unknown_accepted"]
    open_set["known_accepted"] = clean["accepted"]
    open_set["known_review"] = 1 - clean["accepted"]
    open_set["unknown_accepted"] = float(unk_accepted.mean()) if len(unk_accepted) else float("nan")
    open_set["accepted_known_accuracy"] = clean["accepted_accuracy"]
    open_set["unknown_accepted_by_type"] = _by_type(sets.unknown_types, unk_accepted)
    gap = clean["top1"] - webcam["top1"] if webcam["n"] else float("nan")
    return {
        "file": path.name,
        "path": str(path),
        "format": clf.format,
        "precision": clf.precision,
        "review_threshold": float(clf.meta.review_threshold),
        "unknown_class": clf.meta.unknown_class,
        "clean": clean,
        "webcam": webcam,
        "webcam_autocrop": webcam_crop,
        "gap": gap,
        "open_set": open_set,
        "seconds": time.perf_counter() - t0,
        "error": None,
    }


def _by_type(types: Sequence[str], accepted: np.ndarray) -> dict[str, float]:
    """Share of each unknown type that was auto-accepted (worst first)."""
    out: dict[str, list[bool]] = {}
    for t, a in zip(types, accepted, strict=True):
        out.setdefault(t, []).append(bool(a))
    rates = {t: float(np.mean(v)) for t, v in out.items()}
    return dict(sorted(rates.items(), key=lambda kv: (-kv[1], kv[0])))


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m fashion_edge.benchmarks.robustness", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "model_dir", type=Path, help="exported model folder (metadata.json, splits.csv, model_* files)"
    )
    ap.add_argument("--files", help="comma-separated model file names (default: every model_* file present)")
    ap.add_argument(
        "--webcam-set", type=Path, help="webcam-like set folder (made here when it has no labels.csv)"
    )
    ap.add_argument("--unknown-n", type=int, default=2000, help="unknown catalogue items (default 2000)")
    ap.add_argument("--threads", type=int, default=1, help="inference threads per model (default 1)")
    ap.add_argument("--data", type=Path, help="catalogue folder or tarball (default: the shared data)")
    ap.add_argument("--out", type=Path, help="output folder (default runs/robustness-<model>-<timestamp>)")
    ap.add_argument("--md", type=Path, help="also write the markdown report here")
    a = ap.parse_args(argv)
    if a.unknown_n < 0 or a.threads < 1:
        raise RobustnessError("--unknown-n must be ≥ 0 and --threads ≥ 1")
    if not a.model_dir.is_dir():
        raise RobustnessError(f"{a.model_dir}: not a folder (expected an exported model folder)")
    for name in ("metadata.json", "splits.csv"):
        if not (a.model_dir / name).is_file():
            raise RobustnessError(f"{a.model_dir / name}: not found (the model folder needs it)")
    return a


def run(a: argparse.Namespace, command: str, log: Any) -> dict[str, Any]:
    """Measure every file; the result record (rows and set descriptions)."""
    from fashion_edge.runtime import ModelLoadError

    meta = load_json(a.model_dir / "metadata.json")
    files = model_files(a.model_dir, a.files)
    sets = build_sets(a, meta, log)
    rows = []
    for k, path in enumerate(files, 1):
        try:
            row = evaluate_file(path, sets, a.threads)
            o = row["open_set"]
            log(f"[{k}/{len(files)}] {path.name}: clean {pct(row['clean']['top1'])}, webcam "
                f"{pct(row['webcam']['top1'])}, AUROC {o['auroc']:.4f} ({row['seconds']:.1f} s)")  # fmt: skip
        except (ModelLoadError, RobustnessError, MetadataError, ValueError, RuntimeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            row = {"file": path.name, "path": str(path), "error": msg}
            log(f"[{k}/{len(files)}] {path.name}: error: {msg}")
        rows.append(row)
    return {
        "schema": "fashion-robustness/1",
        "command": command,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_dir": str(a.model_dir),
        "threads": a.threads,
        "sets": {
            "n_clean": int(len(sets.clean_y)),
            "n_webcam": int(len(sets.webcam_y)),
            "unknown_class": sets.unknown_class,
            **sets.notes,
        },
        "rows": rows,
    }


def write_outputs(result: dict[str, Any], out: Path, md: Path | None) -> list[Path]:
    """robustness.json and robustness.md in ``out`` (and the report at ``md``)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "robustness.json", out / "robustness.md"]
    paths[0].write_text(json.dumps(result, indent=2, default=_json_default) + "\n", encoding="utf-8")
    text = report(result)
    paths[1].write_text(text, encoding="utf-8")
    if md:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(text, encoding="utf-8")
        paths.append(md)
    return paths


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "-m", "fashion_edge.benchmarks.robustness", *argv])
    from fashion_edge.runtime.preprocess import ImageError
    from fashion_edge.training.data import DataError

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        a = parse_args(argv)
        result = run(a, command, log)
        out = (
            a.out or Path("runs") / f"robustness-{a.model_dir.resolve().name}-{datetime.now():%Y%m%d-%H%M%S}"
        )
        paths = write_outputs(result, out, a.md)
    except (RobustnessError, DataError, MetadataError, ImageError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"robustness: error: {msg}", file=sys.stderr)
        return 2
    print(table(result["rows"]))
    print(f"\nWrote {', '.join(str(p) for p in paths)}")
    return 1 if any(r["error"] for r in result["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
