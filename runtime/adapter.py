"""Learn from a site's corrections in seconds, offline: a small head on the model's embedding.

    from fashion_edge.runtime import load
    from fashion_edge.runtime.adapter import fit_adapter, save_adapter, load_adapter, adapted
    clf = load()
    ad = fit_adapter(clf, [("a.jpg", "Shirts"), ("b.jpg", "Jeans"), ...])   # new class: Jeans
    save_adapter(ad, Path("adapter.npz"))
    clf2 = adapted(clf, load_adapter(Path("adapter.npz"), clf))            # same interface as clf

The head (``runtime.adapter_head``) blends the model's own logits with a softmax regression on
its L2-normalised embedding (a second output of the same int8 file). Its held-out accuracy and
review threshold come from stratified 4-fold cross-validation over the corrections; the safety gate
scores it on the model's own catalogue test ids (``runtime.adapter_gate``). No TensorFlow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.adapter_head import (
    DEFAULT_L2,
    Anchors,
    Head,
    base_term,
    calibrate_threshold,
    features,
    fit_head,
    head_logits,
    out_of_fold,
    softmax,
    stratified_folds,
)
from fashion_edge.runtime.classifier import Classifier, NoEmbeddingError, Prediction
from fashion_edge.runtime.metadata import MetadataError
from fashion_edge.runtime.preprocess import ImageError

FORMAT = "fashion-edge-adapter/1"
MAX_CATALOGUE_DROP = 2.0  # points: the safety gate
REVIEW_TARGET = 0.97  # held-out precision (90 % lower bound) the adapted review threshold must reach
MIN_HELDOUT_FOR_THRESHOLD = 20
MAX_CONFIDENCE = 1 - 1e-6  # adapted confidences stay below 1, so a threshold of 1 reviews everything
N_FOLDS = 4  # 25 % held out per fold
L2_GRID = (1e-3, 3e-4, 1e-4)  # l2="auto": chosen per fit on the held-out corrections
ANCHOR_WEIGHT = 1.0  # total weight of the catalogue anchors vs 1 for the corrections (real-dev learn/ CV)

Example = tuple[str | Path | np.ndarray, str]
Progress = Callable[[str, int, int], None]  # (stage, done, total)


class AdapterError(ValueError):
    """Bad corrections or a bad adapter file; the message is one line naming the file and the problem."""


@dataclass
class Adapter:
    """A fitted adapter: what it learned from, how it scored, and its parameters."""

    classes: list[str]
    new_classes: list[str]
    model_fingerprint: str
    n_examples: int
    conflicts: int
    created: str
    heldout_acc: float | None
    heldout_acc_before: float | None
    catalogue_acc: float | None
    catalogue_acc_before: float | None
    accepted: bool
    refusal: str | None
    review_threshold: float
    threshold_note: str
    heldout_n: int = 0
    catalogue_n: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # examples per class
    skipped: int = 0  # unreadable images left out
    notes: list[str] = field(default_factory=list)
    model_file: str = ""
    l2: float = DEFAULT_L2
    forced: bool = False
    W: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    b: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    alpha: float = 1.0

    @property
    def head(self) -> Head:
        return Head(self.W, self.b, self.alpha, len(self.classes) - len(self.new_classes))

    def summary(self) -> str:
        """One line for people: 'learned from N items · held-out accuracy X % (was Y %)'."""
        if self.heldout_acc is None or self.heldout_acc_before is None:
            acc = "too few examples per class for a held-out accuracy"
        else:
            acc = (
                f"accuracy on your held-out items {self.heldout_acc:.0%} (was {self.heldout_acc_before:.0%})"
            )
        new = f" · new classes: {', '.join(self.new_classes)}" if self.new_classes else ""
        return f"learned from {self.n_examples} items · {acc}{new}"

    def info(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("W", "b"):
            d.pop(k)
        return d


def model_fingerprint(path: str | Path) -> str:
    """sha256 of the model file's bytes (first 16 hex digits; cached per path, size and mtime)."""
    from fashion_edge.runtime.journal_guard import model_fingerprint as file_fingerprint

    fp = file_fingerprint(path)
    if not fp:
        raise AdapterError(f"{path}: model file cannot be read")
    return fp


def _key(item: str | Path | np.ndarray) -> str:
    if isinstance(item, np.ndarray):
        return "array:" + hashlib.sha256(np.ascontiguousarray(item).tobytes()).hexdigest()
    return str(Path(item).resolve())


def dedupe(examples: Sequence[Example]) -> tuple[list[int], int]:
    """Indices to keep (the last label wins for an image given twice) and the conflicting repeats."""
    last: dict[str, int] = {}
    conflicts = 0
    for i, (item, label) in enumerate(examples):
        k = _key(item)
        if k in last and examples[last[k]][1] != label:
            conflicts += 1
        last[k] = i
    return sorted(last.values()), conflicts


def embed_examples(
    clf: Classifier,
    items: Sequence[str | Path | np.ndarray],
    batch: int = 64,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, embeddings, ok mask) of images or paths; unreadable images get ok = False."""
    prepared, ok = [], np.zeros(len(items), bool)
    for i, item in enumerate(items):
        try:
            prepared.append(clf.prepare(item))
            ok[i] = True
        except (ImageError, OSError):
            continue
    logits, embs = [], []
    for i in range(0, len(prepared), batch):
        z, e = clf.logits_and_embedding(np.stack(prepared[i : i + batch]))
        logits.append(z)
        embs.append(e)
        if progress:
            progress("embedding", min(i + batch, len(prepared)), len(prepared))
    if not prepared:
        return np.zeros((0, len(clf.classes)), np.float32), np.zeros((0, 0), np.float32), ok
    return np.concatenate(logits), np.concatenate(embs), ok


def _require_embedding(clf: Classifier) -> None:
    if not clf.meta.embedding_output:
        raise AdapterError(f"{clf.path}: model has no embedding output; re-export it with fashion-export")


def fit_adapter(
    clf: Classifier,
    examples: Sequence[Example],
    *,
    embeddings: np.ndarray | None = None,
    logits: np.ndarray | None = None,
    force: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
    l2: float | str = "auto",
    catalogue: Any = "auto",
    anchor_weight: float = ANCHOR_WEIGHT,
) -> Adapter:
    """Fit an adapter on (image or path, label) pairs; labels the model lacks become new classes.

    ``embeddings``/``logits`` (row i = examples[i]) skip the inference. ``catalogue``: "auto"
    scores the model's catalogue test ids when present, None skips that, or a
    ``runtime.adapter_gate.CatalogueSet``. AdapterError for unusable corrections.
    """
    from fashion_edge.runtime.adapter_gate import CatalogueSet, catalogue_for

    _require_embedding(clf)
    if embeddings is not None and len(embeddings) != len(examples):
        raise AdapterError(f"{len(embeddings)} embeddings for {len(examples)} examples")
    if embeddings is not None and logits is None:
        raise AdapterError("pass the model's logits together with cached embeddings")
    rows, conflicts = dedupe(examples)
    kept = [examples[i] for i in rows]
    labels = [str(lab) for _, lab in kept]
    if any(not lab.strip() for lab in labels):
        raise AdapterError("an example has an empty class name")
    if embeddings is None:
        z, e, ok = embed_examples(clf, [it for it, _ in kept], progress=progress)
    else:
        z, e, ok = np.asarray(logits)[rows], np.asarray(embeddings)[rows], np.ones(len(kept), bool)
    skipped = int((~ok).sum())
    labels = [lab for lab, good in zip(labels, ok, strict=True) if good]
    if len(labels) < 2:
        why = "no readable images" if not labels else "only 1 example"
        raise AdapterError(f"{why} among {len(kept)} corrections: at least 2 are needed")
    known = list(clf.classes)
    new = sorted({lab for lab in labels} - set(known))
    classes = known + new
    y = np.array([classes.index(lab) for lab in labels])
    base = base_term(z, clf.meta.temperature, clf.meta.outputs)
    feats = features(e)
    notes = []
    if skipped:
        notes.append(f"{skipped} unreadable image(s) left out")
    cat = catalogue_for(clf, progress=progress) if catalogue == "auto" else catalogue
    anchors = None
    if isinstance(cat, CatalogueSet) and cat.anchors is not None and anchor_weight > 0:
        a = cat.anchors
        anchors = Anchors(base_term(a.logits, clf.meta.temperature, clf.meta.outputs), features(a.emb), a.y,
                          anchor_weight)  # fmt: skip
    if len(set(labels)) < 2 and anchors is None:
        raise AdapterError(
            f"all {len(labels)} corrections are '{labels[0]}': add photos of other classes too "
            "(the model's catalogue test images, which would anchor the fit, are not available here)"
        )

    fold = stratified_folds(y, N_FOLDS, seed)
    grid = L2_GRID if l2 == "auto" else (float(l2),)
    fallback_thr = 1.0  # too little held-out evidence: every adapted prediction goes to review
    runs: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    if fold is None or (fold >= 0).sum() < 2:
        notes.append("fewer than 2 examples per class: no held-out accuracy")
        chosen = DEFAULT_L2 if l2 == "auto" else float(l2)
    else:
        runs = out_of_fold(base, feats, y, len(classes), fold, grid, anchors)
        chosen = min(grid, key=lambda g: _balanced_log_loss(runs[g][0], y[runs[g][1]]))
        if len(grid) > 1:
            notes.append(
                f"l2 {chosen:g} chosen on held-out log-loss from {', '.join(f'{g:g}' for g in grid)}"
            )
        small = [c for c in classes if (y == classes.index(c)).sum() == 1]
        if small:
            notes.append(f"classes with 1 example (never held out): {', '.join(small)}")
    if anchors is not None:
        notes.append(f"anchored on {len(anchors.y)} catalogue images (weight {anchor_weight:g})")
    if not isinstance(cat, CatalogueSet):
        notes.append("catalogue check skipped: the model's test images are not available here")
    counts = {c: int((y == i).sum()) for i, c in enumerate(classes) if (y == i).any()}
    # the chosen penalty first; if the catalogue gate refuses it, the stronger ones in turn
    candidates = [chosen] + sorted((g for g in grid if g > chosen), reverse=False)
    tried: list[Adapter] = []
    for g in candidates:
        head = fit_head(base, feats, y, len(classes), g, anchors)
        heldout_acc = heldout_before = None
        thr, heldout_n = fallback_thr, 0
        thr_note = f"no held-out items: kept the conservative threshold {fallback_thr:.3g}"
        if g in runs:
            probs, idx = runs[g]
            pred = probs.argmax(1)
            heldout_n = len(idx)
            heldout_acc = float((pred == y[idx]).mean())
            heldout_before = float((base[idx].argmax(1) == y[idx]).mean())
            unknown = np.array([classes[p] == clf.meta.unknown_class for p in pred])
            thr, thr_note = calibrate_threshold(
                probs.max(1), pred == y[idx], unknown, REVIEW_TARGET, MIN_HELDOUT_FOR_THRESHOLD, fallback_thr
            )
        ad = Adapter(
            classes=classes, new_classes=new, model_fingerprint=model_fingerprint(clf.path), n_examples=len(y),
            conflicts=conflicts, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            heldout_acc=heldout_acc, heldout_acc_before=heldout_before, catalogue_acc=None,
            catalogue_acc_before=None, accepted=True, refusal=None, review_threshold=float(thr),
            threshold_note=thr_note, heldout_n=heldout_n, counts=counts, skipped=skipped, notes=list(notes),
            model_file=clf.path.name, l2=g, forced=force, W=head.W, b=head.b, alpha=head.alpha,
        )  # fmt: skip
        if not isinstance(cat, CatalogueSet) or _gate(ad, cat, clf):
            if g != chosen:
                ad.notes.append(f"l2 raised to {g:g}: with {chosen:g} the catalogue gate refused")
            return ad
        tried.append(ad)
    ad = tried[0]  # refused at every penalty: the best fit on the corrections, used only if forced
    ad.accepted = force
    return ad


def _gate(ad: Adapter, cat: Any, clf: Classifier) -> bool:
    """Score ``ad`` on the catalogue set; record the figures and a refusal; True when it passes."""
    ad.catalogue_n = len(cat.y)
    ad.catalogue_acc_before = cat.accuracy(cat.base_pred)
    ad.catalogue_acc = cat.accuracy(adapter_probs(ad, cat.logits, cat.emb, clf).argmax(1))
    drop = (ad.catalogue_acc_before - ad.catalogue_acc) * 100
    if drop > MAX_CATALOGUE_DROP:
        ad.refusal = (
            f"catalogue accuracy drops {drop:.1f} points ({ad.catalogue_acc_before:.1%} -> "
            f"{ad.catalogue_acc:.1%} on {ad.catalogue_n} test images; max {MAX_CATALOGUE_DROP:g})"
        )
        return False
    return True


def _balanced_log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    counts = np.bincount(y)
    return float(-(np.log(p) / counts[y]).sum() / (counts > 0).sum())


def adapter_probs(ad: Adapter, logits: np.ndarray, emb: np.ndarray, clf: Classifier) -> np.ndarray:
    """Adapted probabilities (N, len(ad.classes)) from the model's logits and embeddings."""
    base = base_term(logits, clf.meta.temperature, clf.meta.outputs)
    probs = softmax(head_logits(ad.head, base, features(emb)))
    return np.minimum(probs, MAX_CONFIDENCE).astype(np.float32)


# --- file: an .npz of arrays + one JSON record, written atomically -----------------------------


def save_adapter(adapter: Adapter, path: Path) -> None:
    """Write atomically: a temp file in the same folder, fsync, os.replace (old file kept on a crash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = json.dumps({"format": FORMAT, **adapter.info()})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, W=adapter.W, b=adapter.b, info=np.array(info))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def load_adapter(path: Path, clf: Classifier) -> Adapter:
    """Read an adapter file; AdapterError if it is missing, corrupt or was fitted on another model."""
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"{path}: adapter file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            arrays = {k: np.array(z[k]) for k in ("W", "b")}
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise AdapterError(f"{path}: not a readable adapter file ({type(e).__name__})") from None
    except Exception as e:  # zipfile.BadZipFile and friends from a truncated file
        raise AdapterError(f"{path}: corrupt adapter file ({type(e).__name__})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise AdapterError(f"{path}: not a fashion-edge adapter (format {info.get('format')!r})")
    fp = model_fingerprint(clf.path)
    if info.get("model_fingerprint") != fp:
        raise AdapterError(
            f"{path}: adapter was fitted on another model ({info.get('model_file') or '?'}, "
            f"fingerprint {info.get('model_fingerprint')}), not {clf.path.name} ({fp}); refit it"
        )
    info.pop("format")
    try:
        ad = Adapter(**info, W=arrays["W"], b=arrays["b"])
    except TypeError as e:
        raise AdapterError(f"{path}: adapter record is incomplete ({e})") from None
    c, k = len(ad.classes), len(ad.classes) - len(ad.new_classes)
    if ad.W.ndim != 2 or ad.W.shape[1] != c or ad.b.shape != (c,) or ad.classes[:k] != list(clf.classes):
        raise AdapterError(f"{path}: adapter parameters do not match its classes (damaged file)")
    if clf.meta.embedding_size and ad.W.shape[0] != clf.meta.embedding_size:
        raise AdapterError(
            f"{path}: adapter expects {ad.W.shape[0]}-d embeddings, model gives {clf.meta.embedding_size}"
        )
    return ad


# --- the adapted classifier --------------------------------------------------------------------


class AdaptedClassifier(Classifier):
    """``runtime.Classifier`` with the adapter applied: same file, more classes, own threshold."""

    def __init__(self, base: Classifier, adapter: Adapter) -> None:
        _require_embedding(base)
        try:
            meta = base.meta.replace(
                classes=list(adapter.classes), review_threshold=adapter.review_threshold, temperature=1.0,
                outputs="probabilities",
            )  # fmt: skip
        except (MetadataError, ValueError) as e:
            raise AdapterError(f"{base.path}: adapter classes rejected ({e})") from None
        super().__init__(base.path, base.backend, meta)
        self.base = base
        self.adapter = adapter
        digest = hashlib.sha256(adapter.W.tobytes() + adapter.b.tobytes() + repr(adapter.alpha).encode())
        # journals record which model made a row: the file's fingerprint plus this adapter's
        self.model_id = f"{adapter.model_fingerprint}+{digest.hexdigest()[:8]}"

    def __repr__(self) -> str:
        return f"AdaptedClassifier({self.path.name}, {len(self.classes)} classes, {self.adapter.n_examples} examples)"

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Adapted probabilities (the metadata says outputs='probabilities', temperature 1)."""
        z, e = self.base.logits_and_embedding(x)
        return adapter_probs(self.adapter, z, e, self.base)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Adapted probabilities as fitted (confidences capped just below 1; no renormalising)."""
        return self.logits(x)

    def logits_and_embedding(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z, e = self.base.logits_and_embedding(x)
        return adapter_probs(self.adapter, z, e, self.base), e

    def decide(
        self, z: np.ndarray, e: np.ndarray, top_k: int = 3, review_threshold: float | None = None
    ) -> list[Prediction]:
        """Adapted predictions from the base model's logits and embeddings.

        Review rule: the adapter's own threshold (recalibrated on held-out corrections). Where that
        does not accept an item, it is still auto-accepted when the adapted answer is the base model's
        own auto-accepted answer: learning must not take away what the model already got right, and
        with few corrections (threshold 1.0) it would otherwise send every item to review. A user's
        ``review_threshold`` replaces both.
        """
        preds = self.predictions(adapter_probs(self.adapter, z, e, self.base), top_k, review_threshold)
        if review_threshold is not None:
            return preds
        base = self.base.predictions(self.base.calibrated(z), top_k=1)
        return [
            replace(p, needs_review=False)
            if p.needs_review and not b.needs_review and b.label == p.label
            else p
            for p, b in zip(preds, base, strict=True)
        ]

    def predict_prepared(
        self, x: np.ndarray, top_k: int = 3, review_threshold: float | None = None
    ) -> list[Prediction]:
        z, e = self.base.logits_and_embedding(x)
        return self.decide(z, e, top_k, review_threshold)

    def embed(self, x: np.ndarray) -> np.ndarray:
        return self.base.embed(x)


def adapted(clf: Classifier, adapter: Adapter) -> Classifier:
    """The classifier with ``adapter`` applied (AdapterError if it belongs to another model)."""
    if adapter.model_fingerprint != model_fingerprint(clf.path):
        raise AdapterError(f"{clf.path}: adapter was fitted on another model; refit it")
    return AdaptedClassifier(clf, adapter)


__all__ = [
    "Adapter",
    "AdapterError",
    "NoEmbeddingError",
    "adapted",
    "fit_adapter",
    "load_adapter",
    "save_adapter",
]
