"""The one "needs review" rule, used by the classifier, ``fashion-label``, the app and export.

An item needs a person's look when the model is not sure enough (calibrated confidence below
the threshold), when it says the item is none of the known classes (the model's unknown class),
or when the confidence is not a real number at all (NaN/inf from a broken model or an absurd
temperature): false-safe, nothing doubtful is ever auto-accepted.
"""

from __future__ import annotations

import math
from typing import Any


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
    import numpy as np

    p = np.asarray(probs, np.float64)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    finite = np.isfinite(p).all(axis=1) & (conf >= 0.0) & (conf <= 1.0)
    ok = finite & (np.nan_to_num(conf, nan=-1.0) >= threshold)
    if unknown_index is not None:
        ok &= pred != unknown_index
    return ok
