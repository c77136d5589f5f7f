"""Evaluation sets of the robustness benchmark: clean known-class, webcam-like and unknown items."""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.metadata import ModelMetadata


class RobustnessError(ValueError):
    """Bad input: the message names the file and the problem."""


@dataclass
class EvalSets:
    """Images (model-ready uint8 NHWC) and labels (indices into ``classes``) of the three sets."""

    classes: list[str]
    unknown_class: str | None
    clean_x: np.ndarray
    clean_y: np.ndarray
    webcam_x: np.ndarray
    webcam_y: np.ndarray
    webcam_crop_x: np.ndarray  # the webcam-like images through runtime.preprocess.autocrop_foreground
    unknown_x: np.ndarray
    unknown_types: list[str]
    notes: dict[str, Any] = field(default_factory=dict)


def model_files(model_dir: Path, names: str | None) -> list[Path]:
    """``--files`` (comma-separated names in MODEL_DIR), or every ``model_*.onnx|.tflite`` present."""
    if names:
        files = [model_dir / n.strip() for n in names.split(",") if n.strip()]
        missing = [p for p in files if not p.is_file()]
        if missing:
            raise RobustnessError(f"{missing[0]}: no such model file")
        return files
    files = sorted(p for p in model_dir.glob("model_*") if p.suffix in (".onnx", ".tflite"))
    if not files:
        raise RobustnessError(f"{model_dir}: no model_*.onnx or model_*.tflite files")
    return files


def known_test_set(model_dir: Path, meta: ModelMetadata, data: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Test items of splits.csv whose label is a known class (not the unknown class)."""
    from fashion_edge.training.data import load_split

    try:
        x, y, _ids, classes = load_split(model_dir, "test", data=data)
    except KeyError as e:
        raise RobustnessError(
            f"{model_dir / 'splits.csv'}: label {e} is not a class in metadata.json"
        ) from None
    keep = np.array([classes[int(i)] != meta.unknown_class for i in y], bool)
    if not keep.any():
        raise RobustnessError(f"{model_dir / 'splits.csv'}: no known-class test rows")
    return x[keep], y[keep]


def webcam_folder(model_dir: Path, given: Path | None, data: Path | None, log: Any) -> Path:
    """A webcam-like copy of the test split: ``given`` if it has labels.csv, else made (and cached)."""
    from fashion_edge.training.data import CACHE_DIR, read_splits
    from fashion_edge.training.webcam import make_webcam_set

    folder = given or CACHE_DIR / "webcam" / f"{model_dir.resolve().name}-test-s0"
    test_ids = {r["id"] for r in read_splits(model_dir / "splits.csv") if r["split"] == "test"}
    labels = folder / "labels.csv"
    if labels.exists():
        if given is not None:
            return folder
        with open(labels, newline="", encoding="utf-8") as f:
            if {r["id"] for r in csv.DictReader(f)} == test_ids:
                return folder
        log(f"{folder}: stale (test ids differ), making it again")
    log(f"making {len(test_ids)} webcam-like test images in {folder} ...")
    make_webcam_set(model_dir, folder, split="test", seed=0, data=data)
    return folder


def webcam_set(folder: Path, meta: ModelMetadata) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Known-class rows of a webcam-like set prepared for the model: plain, labels, auto-cropped."""
    from fashion_edge.runtime.preprocess import autocrop_foreground, prepare
    from fashion_edge.training.webcam import load_webcam_set

    images, labels, _ids = load_webcam_set(folder)
    index = {c: i for i, c in enumerate(meta.classes)}
    strange = sorted({str(lab) for lab in labels} - set(index))
    if strange:
        raise RobustnessError(
            f"{folder / 'labels.csv'}: labels not among the model's classes: {', '.join(strange[:5])}"
        )
    keep = [i for i, lab in enumerate(labels) if lab != meta.unknown_class]
    empty = np.zeros((0, *meta.input_shape), np.uint8)
    x = np.stack([prepare(images[i], meta) for i in keep]) if keep else empty
    crop = np.stack([prepare(autocrop_foreground(images[i]), meta) for i in keep]) if keep else empty
    return x, np.array([index[labels[i]] for i in keep], np.int64), crop


def unknown_set(
    model_dir: Path, meta: ModelMetadata, data: Path | None, n: int
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Catalogue items of article types never taught (nor used as training negatives), model-ready."""
    from fashion_edge.runtime.preprocess import prepare
    from fashion_edge.training.data import load_catalogue, load_catalogue_images, read_splits
    from fashion_edge.training.recipes import NEAR_DUPLICATES
    from fashion_edge.training.unknowns import unknown_ids

    known = [c for c in meta.classes if c != meta.unknown_class]
    negative_types = list((meta.provenance or {}).get("negative_types") or [])
    cat = load_catalogue(data)
    picked = unknown_ids(
        cat,
        known,
        n=n,
        exclude_ids=[r["id"] for r in read_splits(model_dir / "splits.csv")],
        exclude_types=[*negative_types, *NEAR_DUPLICATES],
    )
    ids = [i for i, _ in picked]
    x = load_catalogue_images(cat.root, ids, meta.height, meta.width, meta.fit)
    x = np.stack([prepare(im, meta) for im in x]) if len(x) else np.zeros((0, *meta.input_shape), np.uint8)
    types = [t for _, t in picked]
    notes = {
        "n_unknown": len(ids),
        "unknown_types": sorted(set(types)),
        "excluded_types": sorted({*negative_types, *NEAR_DUPLICATES}),
    }
    return x, types, notes


def build_sets(a: argparse.Namespace, meta: ModelMetadata, log: Any) -> EvalSets:
    """Load (or make) the clean, webcam-like and unknown sets once for all files."""
    from fashion_edge.runtime.preprocess import prepare

    t0 = time.perf_counter()
    clean_x, clean_y = known_test_set(a.model_dir, meta, a.data)
    clean_x = np.stack([prepare(im, meta) for im in clean_x])
    log(f"clean test set: {len(clean_y)} known-class images ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    folder = webcam_folder(a.model_dir, a.webcam_set, a.data, log)
    web_x, web_y, crop_x = webcam_set(folder, meta)
    log(f"webcam-like set: {len(web_y)} images from {folder} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    unk_x, unk_types, notes = unknown_set(a.model_dir, meta, a.data, a.unknown_n)
    log(
        f"unknown set: {len(unk_types)} items of {len(notes['unknown_types'])} types ({time.perf_counter() - t0:.1f} s)"
    )
    notes["webcam_set"] = str(folder)
    return EvalSets(
        meta.classes, meta.unknown_class, clean_x, clean_y, web_x, web_y, crop_x, unk_x, unk_types, notes
    )
