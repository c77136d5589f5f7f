"""Accuracy figures from logits: top-1, macro-F1, agreement with a reference, recall changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score


def per_class_recall(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Recall of each of the ``k`` classes (0 where a class has no test images)."""
    return np.asarray(recall_score(y, pred, labels=list(range(k)), average=None, zero_division=0))


def evaluate(
    logits: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    reference_pred: np.ndarray | None = None,
    top_changes: int = 3,
) -> dict[str, Any]:
    """Metrics of one model; with ``reference_pred`` also agreement and the largest recall changes."""
    k = len(classes)
    if logits.ndim != 2 or logits.shape != (len(y), k):
        raise ValueError(f"logits have shape {logits.shape}, expected ({len(y)}, {k})")
    pred = logits.argmax(axis=1)
    out: dict[str, Any] = {
        "n": int(len(y)),
        "top1": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)),
        "finite": bool(np.isfinite(logits).all()),
    }
    if reference_pred is not None:
        out["agreement"] = float(np.mean(pred == reference_pred))
        delta = per_class_recall(y, pred, k) - per_class_recall(y, reference_pred, k)
        order = np.argsort(-np.abs(delta), kind="stable")[:top_changes]
        out["recall_changes"] = [
            {"class": classes[i], "delta": float(delta[i])} for i in order if abs(delta[i]) > 0
        ]
    return out


def top1(logits: np.ndarray, y: np.ndarray) -> float:
    """Share of images whose argmax is the label."""
    return float(np.mean(logits.argmax(axis=1) == y)) if len(y) else float("nan")
