"""The one "needs review" rule, used by the classifier, ``fashion-label``, the app and export.

An item needs a person's look when the model is not sure enough (calibrated confidence below
the threshold), when it says the item is none of the known classes (the model's unknown class),
or when the confidence is not a real number at all (NaN/inf from a broken model or an absurd
temperature): false-safe, nothing doubtful is ever auto-accepted.

The threshold itself is chosen here too, once for export (on the validation split) and for the
adapter (on held-out corrections): ``choose_threshold`` is the lowest confidence whose items at or
above it are right often enough, proved by the Wilson lower bound (``wilson_lower``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE_Z = 1.2816  # one-sided 90 % normal quantile for the Wilson lower bound


def needs_review(label: str, confidence: float, meta: Any, threshold: float | None = None) -> bool:
    """True when this prediction must be checked by a person.

    ``meta`` is the model's ``ModelMetadata`` (``review_threshold``, ``unknown_class``);
    ``threshold`` overrides the stored threshold (a user's choice) but never the unknown class.
    """
    thr = meta.review_threshold if threshold is None else threshold
    try:
        conf = float(confidence)
    except (TypeError, ValueError):
        return True
    if not math.isfinite(conf) or not 0.0 <= conf <= 1.0:
        return True
    if meta.unknown_class is not None and label == meta.unknown_class:
        return True
    return conf < thr


def auto_accepted(probs: Any, threshold: float, unknown_index: int | None = None) -> Any:
    """Vector form of the same rule for an (N, K) probability matrix: True where an item is
    auto-accepted (finite top confidence >= ``threshold``, top class not the unknown class)."""
    p = np.asarray(probs, np.float64)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    finite = np.isfinite(p).all(axis=1) & (conf >= 0.0) & (conf <= 1.0)
    ok = finite & (np.nan_to_num(conf, nan=-1.0) >= threshold)
    if unknown_index is not None:
        ok &= pred != unknown_index
    return ok


def wilson_lower(correct: Any, n: Any, z: float = CONFIDENCE_Z) -> np.ndarray:
    """One-sided Wilson lower bound (90 % for the default z) of a proportion correct / n (vectorised)."""
    n = np.asarray(n, np.float64)
    p = np.asarray(correct, np.float64) / n
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


@dataclass(frozen=True)
class ThresholdChoice:
    """The cut ``choose_threshold`` found (``threshold`` None when none reaches the target), with the
    figures of that cut, or of the best cut when none does."""

    threshold: float | None
    precision: float  # right among the items at/above the cut
    precision_lower: float  # its Wilson lower bound
    count: int  # items at/above the cut
    total: int  # all items, those never accepted included
    best_confidence: float  # the cut's confidence (the best one's when none reaches the target)

    @property
    def coverage(self) -> float:
        return self.count / self.total if self.total else 0.0


def choose_threshold(conf: Any, correct: Any, acceptable: Any, target: float) -> ThresholdChoice:
    """Lowest confidence whose items at or above it are >= ``target`` right with 90 % confidence.

    ``acceptable`` is False for items the review rule sends to a person whatever their confidence
    (the unknown class, NaN): they rank below every cut. A cut falls only after the last of a run of
    equal confidences, since a threshold accepts all of them.
    """
    conf = np.asarray(conf, np.float64)
    conf = np.where(np.asarray(acceptable, bool) & np.isfinite(conf), conf, -np.inf)
    order = np.argsort(-conf, kind="stable")
    c, r = conf[order], np.asarray(correct, bool)[order]
    total = len(c)
    if total == 0:
        return ThresholdChoice(None, float("nan"), float("nan"), 0, 0, float("nan"))
    hits, n = np.cumsum(r), np.arange(1, total + 1)
    lower = wilson_lower(hits, n)
    last_of_tie = np.append(c[1:] != c[:-1], True) & np.isfinite(c)
    ok = np.flatnonzero((lower >= target) & last_of_tie)
    k = int(ok[-1]) if len(ok) else int(np.argmax(np.where(last_of_tie, lower, -1.0)))
    found = len(ok) > 0
    return ThresholdChoice(
        float(c[k]) if found else None, float(hits[k] / n[k]), float(lower[k]), k + 1, total, float(c[k])
    )
