"""Evaluate a run folder's best model on its val and test splits; write metadata.json and report.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fashion_edge.runtime.classifier import softmax
from fashion_edge.runtime.metadata import ModelMetadata, load_json, save_json
from fashion_edge.training import data as D
from fashion_edge.training.report import (
    classification_metrics,
    plot_confusion,
    plot_curves,
    plot_feature_maps,
    plot_most_wrong,
    write_report,
)
from fashion_edge.training.splits import read_split_pairs


def load_images(recipe: str, data_root: str, ids: list[str], meta: ModelMetadata) -> np.ndarray:
    if recipe == "fmnist":
        return D.load_fmnist_images(Path(data_root), ids)
    return D.load_catalogue_images(Path(data_root), ids, meta.height, meta.width, meta.fit)


def predict_logits(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.asarray(model.predict(x.astype(np.float32), batch_size=batch, verbose=0), dtype=np.float32)


def evaluate_run(run: Path, data: str | None = None, extra: dict | None = None) -> dict:
    """Evaluate the run's best model on its val and test splits; write metadata.json and report.md."""
    import tensorflow as tf

    meta = load_json(run / "metadata.json")
    model = tf.keras.models.load_model(run / "model.keras", compile=False)
    data_root = data or meta.provenance.get("data_root")
    pairs = read_split_pairs(run / "splits.csv")
    index = {c: i for i, c in enumerate(meta.classes)}
    results, arrays = {}, {}
    for split in ("val", "test"):
        ids = [p[0] for p in pairs[split]]
        x = load_images(meta.recipe, data_root, ids, meta)
        y = np.array([index[p[1]] for p in pairs[split]])
        logits = predict_logits(model, x)
        results[split] = classification_metrics(y, logits, meta.classes)
        arrays[split] = (x, y, logits)
    x, y, logits = arrays["test"]
    plot_confusion(y, logits.argmax(1), meta.classes, run / "confusion.png")
    plot_curves(run / "history.csv", run / "curves.png")
    plot_most_wrong(x, y, softmax(logits), meta.classes, run / "most_wrong.png")
    if meta.recipe == "fmnist" and any("conv" in layer.name for layer in model.layers):
        picks = [
            int(np.where(y == meta.classes.index(c))[0][0]) for c in ("Pullover", "Bag") if c in meta.classes
        ]
        plot_feature_maps(model, x[picks], [meta.classes[y[i]] for i in picks], run / "feature_maps.png")
    meta.metrics = {
        "test_top1": round(results["test"]["top1"], 4),
        "test_macro_f1": round(results["test"]["macro_f1"], 4),
        "val_top1": round(results["val"]["top1"], 4),
        "test_n": results["test"]["n"],
    }
    save_json(meta, run / "metadata.json")
    prev = json.loads((run / "report.json").read_text()) if (run / "report.json").exists() else {}
    info = {**prev, **(extra or {}), "val": results["val"], "test": results["test"]}
    info.update(model=meta.model, recipe=meta.recipe, params=int(model.count_params()))
    write_report(run, info)
    return info
