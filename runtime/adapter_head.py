"""The adapter's maths (numpy + SciPy): a softmax head on the model's embedding and its own logits.

    adapted logits = alpha * base + feats @ W + b

``base`` is the model's log-probability per known class (row-centred, so a new class column,
whose base is 0, starts at the mean level); ``feats`` the L2-normalised embedding. W, b and alpha
are fitted by L-BFGS on class-balanced cross-entropy with an L2 penalty on W: with few corrections
W stays small and the model's own decision dominates; where the model is confidently wrong on a
site's photos alpha shrinks and the embedding term takes over. New classes are extra columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from fashion_edge.runtime.classifier import softmax
from fashion_edge.runtime.review import choose_threshold

DEFAULT_L2 = 1e-3  # chosen by cross-validation on real-dev learn/ only (benchmarks/ADAPTER.md)


@dataclass
class Head:
    """Fitted parameters: W (D, C), b (C,), alpha; the first K columns are the model's classes."""

    W: np.ndarray
    b: np.ndarray
    alpha: float
    n_known: int


def features(emb: np.ndarray) -> np.ndarray:
    """Row-wise L2-normalised embeddings (float64; zero rows stay zero)."""
    e = np.asarray(emb, np.float64)
    n = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.where(n > 0, n, 1.0)


def base_term(logits: np.ndarray, temperature: float = 1.0, outputs: str = "logits") -> np.ndarray:
    """The model's calibrated log-probabilities, centred per row (float64, N x K)."""
    z = np.asarray(logits, np.float64)
    if outputs == "probabilities":
        z = np.log(np.clip(z, 1e-12, 1.0))
    z = z / (temperature if temperature > 0 else 1.0)
    z = z - z.max(axis=1, keepdims=True)
    z = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return z - z.mean(axis=1, keepdims=True)


def head_logits(head: Head, base: np.ndarray, feats: np.ndarray) -> np.ndarray:
    z = feats @ head.W + head.b
    z[:, : head.n_known] += head.alpha * base
    return z


def balanced_weights(y: np.ndarray, total: float = 1.0) -> np.ndarray:
    """Per-example weights: every class present gets the same share, all sum to ``total``."""
    if len(y) == 0:
        return np.zeros(0)
    counts = np.bincount(y).astype(np.float64)
    w = 1.0 / counts[y]
    return w * (total / w.sum())


@dataclass
class Anchors:
    """Labelled examples from the model's own domain (catalogue), weighted ``weight`` in total."""

    base: np.ndarray
    feats: np.ndarray
    y: np.ndarray
    weight: float


def fit_head(
    base: np.ndarray, feats: np.ndarray, y: np.ndarray, n_classes: int, l2: float = DEFAULT_L2,
    anchors: Anchors | None = None, init: Head | None = None,
) -> Head:  # fmt: skip
    """Fit W, b, alpha (alpha >= 0, starting from the model: W = 0, alpha = 1, or from ``init``).

    Corrections are class-balanced with total weight 1; ``anchors`` (catalogue images with their
    true labels) class-balanced with their own total weight, so the head keeps the model's
    catalogue behaviour while it learns the site's photos.
    One BLAS thread: these matrices are small, and threads on a busy 2-core machine made a
    200-example fit 25-60x slower (measured: 1.6 s -> 0.06 s).
    """
    w = balanced_weights(y)
    if anchors is not None and len(anchors.y):
        base = np.concatenate([base, anchors.base])
        feats = np.concatenate([feats, anchors.feats])
        w = np.concatenate([w, balanced_weights(anchors.y, anchors.weight)])
        y = np.concatenate([y, anchors.y])
    w = w / w.sum()
    with threadpool_limits(1):
        return _fit(base, feats, y, w, n_classes, l2, init)


def _fit(
    base: np.ndarray, feats: np.ndarray, y: np.ndarray, w: np.ndarray, n_classes: int, l2: float,
    init: Head | None,
) -> Head:  # fmt: skip
    from scipy.optimize import minimize

    full_d = feats.shape[1]
    basis = None
    if len(feats) < full_d:  # W lies in the span of the examples (L2 on W only): fit in that span,
        _, sv, vt = np.linalg.svd(feats, full_matrices=False)  # exactly the same optimum, fewer
        basis = vt[sv > sv.max(initial=0) * 1e-10].T  # parameters (1280-d embeddings: ~3x faster)
        feats = feats @ basis
        if init is not None:
            init = Head(basis.T @ init.W, init.b, init.alpha, init.n_known)
    n, d = feats.shape
    k = base.shape[1]
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0

    def unpack(p: np.ndarray) -> Head:
        return Head(p[: d * n_classes].reshape(d, n_classes), p[d * n_classes : -1], float(p[-1]), k)

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        h = unpack(p)
        z = head_logits(h, base, feats)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        ce = -float((w * (onehot * logp).sum(1)).sum())
        g = (np.exp(logp) - onehot) * w[:, None]
        gw = feats.T @ g + 2 * l2 * h.W
        ga = float((g[:, :k] * base).sum())
        return ce + l2 * float((h.W**2).sum()), np.concatenate([gw.ravel(), g.sum(0), [ga]])

    p0 = np.zeros(d * n_classes + n_classes + 1)
    p0[-1] = 1.0
    if init is not None:  # warm start along a path of penalties (same data)
        p0 = np.concatenate([init.W.ravel(), init.b, [init.alpha]])
    bounds = [(None, None)] * (len(p0) - 1) + [(0.0, None)]
    res = minimize(loss, p0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500})
    h = unpack(res.x)
    return h if basis is None else Head(basis @ h.W, h.b, h.alpha, h.n_known)


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray | None:
    """Fold index per example (each class spread over folds), or None if no class has 2 examples."""
    counts = np.bincount(y)
    if n_folds < 2 or counts.max(initial=0) < 2:
        return None
    rng = np.random.default_rng(seed)
    fold = np.full(len(y), -1)
    start = 0
    for c in np.flatnonzero(counts):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) < 2:
            continue  # a class with one example is only ever trained on
        fold[idx] = (start + np.arange(len(idx))) % n_folds
        start += len(idx)
    return fold


def out_of_fold(
    base: np.ndarray, feats: np.ndarray, y: np.ndarray, n_classes: int, fold: np.ndarray,
    l2s: tuple[float, ...], anchors: Anchors | None = None,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Per penalty: held-out probabilities (M, C) and the indices they belong to.

    One fit per fold and penalty; within a fold each penalty (strongest first) starts from the
    previous one's solution on the same training items, so nothing held out leaks in.
    """
    out: dict[float, tuple[list, list]] = {g: ([], []) for g in l2s}
    for f in range(int(fold.max()) + 1):
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        if len(test) == 0:
            continue
        h = None
        for g in sorted(l2s, reverse=True):
            h = fit_head(base[train], feats[train], y[train], n_classes, g, anchors, init=h)
            out[g][0].append(softmax(head_logits(h, base[test], feats[test]), dtype=np.float64))
            out[g][1].append(test)
    return {
        g: (np.concatenate(p), np.concatenate(i)) if p else (np.zeros((0, n_classes)), np.zeros(0, int))
        for g, (p, i) in out.items()
    }


def calibrate_threshold(
    conf: np.ndarray, right: np.ndarray, reviewable: np.ndarray, target: float, min_n: int, fallback: float
) -> tuple[float, str]:
    """The adapter's review threshold from held-out items (``review.choose_threshold``: lowest
    confidence whose items at/above it are >= ``target`` right with 90 % confidence), with a note.

    ``reviewable`` marks items the review rule sends to review whatever their confidence (e.g. the
    unknown class); they are left out. With fewer than ``min_n`` held-out items the fallback is kept.
    """
    keep = ~np.asarray(reviewable, bool)
    if int(keep.sum()) < min_n:
        return (
            fallback,
            f"{int(keep.sum())} held-out items (< {min_n}): kept the conservative threshold {fallback:.3g}",
        )
    choice = choose_threshold(
        np.asarray(conf)[keep], np.asarray(right)[keep], np.ones(int(keep.sum()), bool), target
    )
    if choice.threshold is None:
        top = float(np.max(np.asarray(conf)[keep]))
        return max(fallback, min(1.0, top + 1e-6)), (
            f"no confidence level is >= {target:.0%} right with 90 % confidence on {choice.total} held-out "
            "items: conservative threshold kept"
        )
    return choice.threshold, (
        f"{choice.precision:.1%} of {choice.count} held-out items at/above {choice.threshold:.3g} were right"
    )
