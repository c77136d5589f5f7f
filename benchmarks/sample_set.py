"""The embedded sample (``benchmarks/sample/``): 252 real catalogue test images shipped in the package.

``fashion-bench MODEL_DIR --quick`` falls back to it when no catalogue is found, so the first
command of the README runs on a fresh clone. Labels come from the model folder's own
``splits.csv`` (its test split), so a model is only ever scored on its own test images.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


class SampleError(ValueError):
    """The sample cannot be used for this model; the message says why."""


def sample_ids(folder: Path = SAMPLE_DIR) -> list[str]:
    """Ids of the sample's images, in ``labels.csv`` order."""
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return [r["id"] for r in csv.DictReader(f)]


def load_sample(
    model_dir: Path, folder: Path = SAMPLE_DIR
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(x uint8 NxHxWxC, y class indices, ids, classes) of the sample images in the model's test split."""
    from fashion_edge.runtime.metadata import load_json
    from fashion_edge.runtime.preprocess import fit_image, read_image
    from fashion_edge.training.data import read_splits

    splits, meta_path = model_dir / "splits.csv", model_dir / "metadata.json"
    if not splits.is_file() or not meta_path.is_file():
        raise SampleError(f"{model_dir}: needs splits.csv and metadata.json to use the embedded sample")
    meta = load_json(meta_path)
    if meta.recipe == "fmnist":
        raise SampleError(f"{model_dir}: a Fashion-MNIST model; the embedded sample is catalogue images")
    test = {r["id"]: r["label"] for r in read_splits(splits) if r["split"] == "test"}
    ids = [i for i in sample_ids(folder) if i in test]
    if not ids:
        raise SampleError(f"{model_dir}: none of the embedded sample's images is in its test split")
    index = {c: k for k, c in enumerate(meta.classes)}
    x = np.stack(
        [
            fit_image(read_image(folder / "images" / f"{i}.jpg"), meta.height, meta.width, meta.fit)
            for i in ids
        ]
    )
    return x, np.array([index[test[i]] for i in ids], dtype=np.int64), ids, list(meta.classes)
