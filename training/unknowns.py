"""Open-set evaluation: items of article types the model was never taught.

At the sorting table the camera also sees jeans, heels, belts, sunglasses... A model with eight
classes must not confidently call them T-shirts; its calibrated confidence should fall below the
review threshold. ``unknown_ids`` picks such catalogue items (deterministic, stratified, capped per
type, optionally split into training negatives and evaluation items that never overlap);
``open_set_metrics`` scores how well max calibrated probability separates known from unknown.
No TensorFlow here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from fashion_edge.training.data import Catalogue


def unknown_ids(
    catalogue: Catalogue,
    known_classes: Iterable[str],
    field: str = "articleType",
    seed: int = 0,
    n: int = 2000,
    per_type_cap: int | None = None,
    min_per_type: int = 1,
    exclude_ids: Iterable[str] = (),
    exclude_types: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """Up to ``n`` (id, type) pairs of catalogue items whose ``field`` is not a known class.

    Stratified: types take turns (sorted by name, ids shuffled with ``seed`` inside each type)
    until ``n`` items are picked, so rare types are not drowned by common ones; no type gives
    more than ``per_type_cap``. Types with fewer than ``min_per_type`` items are skipped. Items
    in ``exclude_ids`` (e.g. every id of a run's splits) and types in ``exclude_types`` never
    appear. Same arguments -> same list, in the same order.
    """
    known = set(known_classes)
    skip_types = set(exclude_types) | known
    skip_ids = {str(i) for i in exclude_ids}
    by_type: dict[str, list[str]] = defaultdict(list)
    for row in catalogue.rows:
        kind = row.get(field, "")
        if kind and kind not in skip_types and row["id"] not in skip_ids:
            by_type[kind].append(row["id"])
    rng = np.random.default_rng(seed)
    queues = {}
    for kind in sorted(by_type):
        ids = sorted(by_type[kind], key=_id_key)
        if len(ids) < min_per_type:
            continue
        order = rng.permutation(len(ids))
        cap = len(ids) if per_type_cap is None else min(per_type_cap, len(ids))
        queues[kind] = [ids[i] for i in order[:cap]]
    picked: list[tuple[str, str]] = []
    depth = 0
    while len(picked) < n and any(depth < len(q) for q in queues.values()):
        for kind, q in queues.items():
            if depth < len(q) and len(picked) < n:
                picked.append((q[depth], kind))
        depth += 1
    return picked


def split_unknowns(
    items: Sequence[tuple[str, str]], eval_fraction: float = 0.5, seed: int = 0, by_type: bool = False
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Split unknown items into (train_negatives, eval) that never share an id.

    ``by_type=False``: every type appears on both sides (per type, ``eval_fraction`` of its items,
    at least one, go to eval when the type has two or more). ``by_type=True``: whole types go to
    one side, so eval measures types never seen as negatives (the honest open-set test).
    """
    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must be between 0 and 1, got {eval_fraction}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for item in items:
        groups[item[1]].append(item)
    train, evaluation = [], []
    if by_type:
        kinds = sorted(groups)
        order = rng.permutation(len(kinds))
        n_eval = max(1, round(eval_fraction * len(kinds))) if len(kinds) > 1 else len(kinds)
        eval_kinds = {kinds[i] for i in order[:n_eval]}
        for kind in kinds:
            (evaluation if kind in eval_kinds else train).extend(groups[kind])
        return train, evaluation
    for kind in sorted(groups):
        group = groups[kind]
        order = rng.permutation(len(group))
        n_eval = min(len(group), max(1, round(eval_fraction * len(group)))) if len(group) > 1 else 1
        evaluation.extend(group[i] for i in sorted(order[:n_eval]))
        train.extend(group[i] for i in sorted(order[n_eval:]))
    return train, evaluation


def max_confidence(probabilities: np.ndarray) -> np.ndarray:
    """The open-set score of each row: its largest calibrated probability."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"expected an N x K probability matrix, got shape {p.shape}")
    return p.max(axis=1)


def open_set_metrics(
    known_conf: Sequence[float] | np.ndarray,
    unknown_conf: Sequence[float] | np.ndarray,
    threshold: float,
    known_correct: Sequence[bool] | np.ndarray | None = None,
) -> dict[str, Any]:
    """How well confidence separates known-class items from unknown ones, and what a threshold does.

    Returns ``auroc`` (known = positive, score = max calibrated probability; 1.0 = perfectly
    separated, 0.5 = chance), ``known_accepted`` (share of known items with conf >= threshold,
    i.e. labelled automatically), ``unknown_accepted`` (share of unknown items wrongly labelled
    automatically), ``accepted_known_accuracy`` (accuracy on the auto-accepted known items, when
    ``known_correct`` is given), ``fpr_at_95_tpr`` (unknown accepted when 95 % of known are), and
    counts. Undefined values are NaN.
    """
    known = np.asarray(known_conf, dtype=np.float64).ravel()
    unknown = np.asarray(unknown_conf, dtype=np.float64).ravel()
    nan = float("nan")
    out: dict[str, Any] = {
        "threshold": float(threshold),
        "n_known": int(known.size),
        "n_unknown": int(unknown.size),
    }
    if known.size and unknown.size:
        from sklearn.metrics import roc_auc_score

        y = np.concatenate([np.ones(known.size), np.zeros(unknown.size)])
        out["auroc"] = float(roc_auc_score(y, np.concatenate([known, unknown])))
        t95 = threshold_for_known_acceptance(known, 0.95)
        out["fpr_at_95_tpr"] = float(np.mean(unknown >= t95))
    else:
        out["auroc"] = nan
        out["fpr_at_95_tpr"] = nan
    accepted = known >= threshold
    out["known_accepted"] = float(accepted.mean()) if known.size else nan
    out["known_review"] = float(1 - accepted.mean()) if known.size else nan
    out["unknown_accepted"] = float(np.mean(unknown >= threshold)) if unknown.size else nan
    if known_correct is not None:
        correct = np.asarray(known_correct, dtype=bool).ravel()
        if correct.size != known.size:
            raise ValueError(f"known_correct has {correct.size} values for {known.size} known items")
        out["known_accuracy"] = float(correct.mean()) if known.size else nan
        out["accepted_known_accuracy"] = float(correct[accepted].mean()) if accepted.any() else nan
    return out


def threshold_for_known_acceptance(known_conf: Sequence[float] | np.ndarray, rate: float) -> float:
    """The highest threshold that still auto-accepts at least ``rate`` of the known items."""
    s = np.sort(np.asarray(known_conf, dtype=np.float64).ravel())
    if not s.size:
        raise ValueError("no known confidences")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be between 0 and 1, got {rate}")
    k = min(s.size - 1, int(math.floor((1 - rate) * s.size + 1e-9)))
    return float(s[k])


def threshold_for_unknown_acceptance(unknown_conf: Sequence[float] | np.ndarray, max_rate: float) -> float:
    """The lowest threshold that auto-accepts at most ``max_rate`` of the unknown items."""
    s = np.sort(np.asarray(unknown_conf, dtype=np.float64).ravel())
    if not s.size:
        raise ValueError("no unknown confidences")
    if not 0 <= max_rate <= 1:
        raise ValueError(f"max_rate must be between 0 and 1, got {max_rate}")
    allowed = int(math.floor(max_rate * s.size + 1e-9))  # how many unknowns may pass
    if allowed >= s.size:
        return 0.0
    return float(np.nextafter(s[s.size - allowed - 1], np.inf))


def _id_key(item_id: str) -> tuple[int, str]:
    return (int(item_id), item_id) if item_id.isdigit() else (1 << 62, item_id)
