"""Calibration data and confidence calibration (no TensorFlow).

- a stratified representative set of training images for int8 quantization;
- temperature scaling fitted on the validation split (minimum NLL of softmax(logits / T));
- the "needs review" threshold: the lowest calibrated confidence above which predictions are
  right at least ``precision`` of the time. "Right on the validation split" alone over-fits the
  noisy top of the confidence ranking (measured on a real run: 98.3 % on val at 6.7 % coverage
  became 92.5 % on test), so the cut must hold with 90 % confidence: the Wilson lower bound of
  the validation precision above it must reach the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_edge.runtime.classifier import softmax
from fashion_edge.runtime.review import auto_accepted, choose_threshold
from fashion_edge.training.data import DataError, load_split

TEMPERATURE_BOUNDS = (0.25, 10.0)  # beyond these the validation set is too small/too easy to say


class CalibrationError(ValueError):
    """Calibration impossible with this data; the message says why."""


def stratified_indices(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` indices keeping class proportions, every present class at least once."""
    rng = np.random.default_rng(seed)
    if n >= len(y):
        return rng.permutation(len(y))
    classes, counts = np.unique(y, return_counts=True)
    share = np.maximum(1, np.floor(counts / counts.sum() * n).astype(int))
    while share.sum() < n:  # hand out the rounding remainder to the largest classes
        room = counts - share
        share[int(np.argmax(room * (room > 0)))] += 1
    picked = [rng.choice(np.flatnonzero(y == c), size=min(k, cnt), replace=False)
              for c, k, cnt in zip(classes, share, counts, strict=True)]  # fmt: skip
    return rng.permutation(np.concatenate(picked))[:n]


def representative_set(run_dir: str | Path, n: int = 300, data: str | Path | None = None) -> np.ndarray:
    """``n`` stratified training images (uint8 NHWC), decoded exactly as in training."""
    try:
        x, y, _, _ = load_split(run_dir, "train", data)
    except (DataError, OSError) as e:
        raise CalibrationError(f"no calibration images found ({e})") from None
    if len(x) == 0:
        raise CalibrationError(f"{run_dir}: no calibration images found in the train split")
    return x[stratified_indices(y, n)]


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature, dtype=np.float64)[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p, 1e-300, None))))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the validation NLL, searched on log T within TEMPERATURE_BOUNDS."""
    from scipy.optimize import minimize_scalar

    lo, hi = np.log(TEMPERATURE_BOUNDS)
    res = minimize_scalar(lambda t: nll(logits, y, float(np.exp(t))), bounds=(lo, hi), method="bounded")
    return float(np.exp(res.x))


@dataclass
class ReviewThreshold:
    threshold: float
    precision: float  # accuracy of predictions with confidence >= threshold (on the data it was fit on)
    coverage: float  # share of items with confidence >= threshold
    precision_lower: float  # its Wilson lower bound (90 % one-sided)


def accuracy_above(
    probs: np.ndarray, y: np.ndarray, threshold: float, unknown_index: int | None = None
) -> tuple[float, float]:
    """(coverage, accuracy among covered) of the items the runtime's review rule auto-accepts
    (confidence >= threshold, finite, not predicted as the unknown class)."""
    pred = probs.argmax(axis=1)
    kept = auto_accepted(probs, threshold, unknown_index)
    if not kept.any():
        return 0.0, float("nan")
    return float(kept.mean()), float((pred[kept] == y[kept]).mean())


def choose_review_threshold(
    probs: np.ndarray, y: np.ndarray, precision: float = 0.98, unknown_index: int | None = None
) -> ReviewThreshold:
    """Lowest confidence t whose precision above it reaches ``precision`` with 90 % confidence
    (``runtime.review.choose_threshold``, the chooser the adapter uses too).

    Items the review rule never accepts (predicted ``unknown_index``, NaN) rank below every cut.

    Raises CalibrationError when no cut does (model too unreliable, or too few validation items
    to support the claim).
    """
    if len(y) == 0:
        raise CalibrationError("the validation split is empty: cannot choose a review threshold")
    acceptable = auto_accepted(probs, -np.inf, unknown_index)
    choice = choose_threshold(probs.max(axis=1), probs.argmax(axis=1) == y, acceptable, precision)
    if choice.threshold is None:
        raise CalibrationError(
            f"no review threshold reaches {precision:.1%} precision on the validation split with 90% confidence "
            f"(best {choice.precision_lower:.1%}, above confidence {choice.best_confidence:.3f} over "
            f"{choice.count} of {choice.total} items); lower the target with --review-precision"
        )
    return ReviewThreshold(choice.threshold, choice.precision, choice.coverage, choice.precision_lower)
