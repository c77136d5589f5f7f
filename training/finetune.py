"""``fashion-train --finetune RUN --extra DIR``: fine-tune a run on sorting-table corrections."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from fashion_edge.runtime.metadata import load_json, save_json
from fashion_edge.training.evaluate import evaluate_run, load_images
from fashion_edge.training.fit import make_dataset, one_hot_ds
from fashion_edge.training.models import REGISTRY
from fashion_edge.training.splits import read_split_pairs


class FinetuneError(RuntimeError):
    """A user-facing failure: printed as one line, exit 2."""


def read_extra(extra: Path, classes: list[str]) -> list[tuple[Path, str]]:
    """(image, label) pairs from the sorting table: the app's journal (rows a person set or confirmed,
    source=human, last row per path wins) plus images in ``<label>/`` sub-folders (captures)."""
    from fashion_edge.runtime.labeling import read_labels
    from fashion_edge.runtime.preprocess import list_images

    if not extra.is_dir():
        raise FinetuneError(f"{extra}: not a folder of corrections")
    pairs: dict[Path, str] = {}
    for journal in sorted(extra.rglob("fashion-labels.csv")):
        for rel, rec in read_labels(journal).items():
            if rec.source == "human" and not rec.error and rec.label in classes:
                pairs[(journal.parent / rel).resolve()] = rec.label
    for sub in sorted(p for p in extra.iterdir() if p.is_dir() and p.name in classes):
        for img in list_images(sub):
            pairs.setdefault(img.resolve(), sub.name)
    if not pairs:
        raise FinetuneError(
            f"{extra}: no labelled images (a fashion-labels.csv with corrections, or <class>/ folders)"
        )
    return sorted(pairs.items())


MAX_CLASS_REPEAT = 4  # a rare correction class is repeated at most this often to match the largest


def balance_classes(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repeat the examples of smaller classes (up to MAX_CLASS_REPEAT times) so that every corrected
    class weighs about as much as the largest: 312 handbags must not teach "a real photo is a bag"."""
    counts = np.bincount(y)
    reps = np.clip(np.round(counts.max() / np.maximum(counts, 1)), 1, MAX_CLASS_REPEAT).astype(int)
    idx = np.concatenate([np.repeat(np.flatnonzero(y == c), reps[c]) for c in np.unique(y)])
    return x[idx], y[idx]


def finetune(args: argparse.Namespace) -> Path:
    """Fine-tune a run's model on sorting-table images mixed with its own training data (no forgetting)."""
    import tensorflow as tf

    from fashion_edge.runtime.preprocess import ImageError, load_for_model

    src = Path(args.finetune)
    if not (src / "model.keras").exists():
        raise FinetuneError(f"{src}: not a trained run (no model.keras)")
    meta = load_json(src / "metadata.json")
    pairs = read_extra(Path(args.extra), meta.classes)
    run = Path(args.out or f"{src}-ft")
    if run.exists() and any(run.iterdir()):
        raise FinetuneError(f"{run}: run folder exists; choose another --out")
    run.mkdir(parents=True, exist_ok=True)
    index = {c: i for i, c in enumerate(meta.classes)}
    xs, ys, bad = [], [], 0
    for path, label in pairs:
        try:
            xs.append(load_for_model(path, meta))
            ys.append(index[label])
        except ImageError as e:
            bad += 1
            print(f"skipping {path}: {e}", file=sys.stderr)
    x_extra, y_extra = balance_classes(np.stack(xs), np.array(ys))
    splits = read_split_pairs(src / "splits.csv")
    data_root = args.data or meta.provenance.get("data_root")
    rng = np.random.default_rng(args.seed)
    n_old = min(len(splits["train"]), max(2000, 4 * len(x_extra)))
    old = [splits["train"][i] for i in sorted(rng.choice(len(splits["train"]), n_old, replace=False))]
    x_old = load_images(meta.recipe, data_root, [p[0] for p in old], meta)
    y_old = np.array([index[p[1]] for p in old])
    reps = max(1, n_old // (4 * len(x_extra)))  # extra images make up about a fifth of each epoch
    x = np.concatenate([x_old, np.repeat(x_extra, reps, axis=0)])
    y = np.concatenate([y_old, np.repeat(y_extra, reps)])
    val_ids = [p[0] for p in splits["val"]]
    xv = load_images(meta.recipe, data_root, val_ids, meta)
    yv = np.array([index[p[1]] for p in splits["val"]])
    k = len(meta.classes)
    saved = json.loads((src / "run_args.json").read_text()) if (src / "run_args.json").exists() else {}
    spec = REGISTRY.get(meta.model, REGISTRY["compact"])
    ds = one_hot_ds(make_dataset(x, y, 64, True, spec.augment, args.seed, saved.get("webcam_aug") or 0), k)
    model = tf.keras.models.load_model(src / "model.keras", compile=False)
    model.compile(
        tf.keras.optimizers.Adam(args.lr or 1e-4),
        tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=spec.label_smoothing),
        metrics=["accuracy"],
    )
    epochs = args.epochs or 3
    t0 = time.time()
    model.fit(ds, validation_data=one_hot_ds(make_dataset(xv, yv, 256, False, (), 0), k), epochs=epochs,
              callbacks=[tf.keras.callbacks.CSVLogger(str(run / "history.csv"))],
              verbose=1 if sys.stdout.isatty() else 2)  # fmt: skip
    model.save(run / "model.keras")
    shutil.copy(src / "splits.csv", run / "splits.csv")
    if (src / "run_args.json").exists():
        shutil.copy(src / "run_args.json", run / "run_args.json")
    meta.source_run = run.name
    meta.provenance = {**meta.provenance, "finetuned_from": str(src), "extra": str(args.extra),
                       "extra_images": len(xs), "extra_after_balancing": len(x_extra), "extra_unreadable": bad}  # fmt: skip
    save_json(meta, run / "metadata.json")
    extra = {"device": "CPU" if not tf.config.list_physical_devices("GPU") else "GPU",
             "train_seconds": time.time() - t0, "epochs_run": epochs, "data_root": data_root,
             "settings": {"finetune_from": str(src), "extra": str(args.extra), "extra_images": len(xs), "extra_after_balancing": len(x_extra),
                          "old_train_images": n_old, "repeats": reps, "lr": args.lr or 1e-4, "epochs": epochs}}  # fmt: skip
    info = evaluate_run(run, data_root, extra)
    print(f"fine-tuned on {len(xs)} images: test top-1 {info['test']['top1']:.4f} -> {run}")
    return run
