"""Deterministic stratified splits, written once into the run as ``splits.csv`` (id, label, split)."""

from __future__ import annotations

import csv
from pathlib import Path

from sklearn.model_selection import train_test_split

from fashion_edge.training.recipes import Labelled


def stratified_split(
    lab: Labelled, val: float = 0.1, test: float = 0.1, seed: int = 0
) -> dict[str, list[tuple[str, str]]]:
    """Split (id, label) pairs into train/val/test, stratified by label, the same for the same seed.

    Fashion-MNIST ids ('t10k:i') keep the official test file as the test split.
    """
    pairs = list(zip(lab.ids, lab.labels, strict=True))
    fixed_test = [p for p in pairs if p[0].startswith("t10k:")]
    if fixed_test:
        rest = [p for p in pairs if not p[0].startswith("t10k:")]
        tr, va = train_test_split(rest, test_size=val, random_state=seed, stratify=[p[1] for p in rest])
        return {"train": tr, "val": va, "test": fixed_test}
    tr, hold = train_test_split(
        pairs, test_size=val + test, random_state=seed, stratify=[p[1] for p in pairs]
    )
    va, te = train_test_split(
        hold, test_size=test / (val + test), random_state=seed, stratify=[p[1] for p in hold]
    )
    return {"train": tr, "val": va, "test": te}


def write_splits(splits: dict[str, list[tuple[str, str]]], path: str | Path) -> None:
    """Write splits.csv: one row per id, in split order then id order."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "split"])
        for name in ("train", "val", "test"):
            for item_id, label in sorted(splits[name]):
                w.writerow([item_id, label, name])


def read_split_pairs(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """Inverse of write_splits."""
    out: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["split"], []).append((row["id"], row["label"]))
    return out
