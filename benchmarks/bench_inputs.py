"""Inputs of ``fashion-bench``: the model files of a folder, the test set and a webcam-like set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fashion_edge.runtime.metadata import ModelMetadata


class BenchError(ValueError):
    """Bad input: the message names the file and the problem."""


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
