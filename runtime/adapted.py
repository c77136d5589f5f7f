"""The adapted classifier: the model's file with an adapter applied (more classes, own threshold)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from fashion_edge.runtime.adapter_head import base_term, features, head_logits
from fashion_edge.runtime.adapter_record import Adapter, AdapterError, model_fingerprint
from fashion_edge.runtime.classifier import Classifier, Prediction, softmax
from fashion_edge.runtime.metadata import MetadataError

MAX_CONFIDENCE = 1 - 1e-6  # adapted confidences stay below 1, so a threshold of 1 reviews everything


def require_embedding(clf: Classifier) -> None:
    if not clf.meta.embedding_output:
        raise AdapterError(f"{clf.path}: model has no embedding output; re-export it with fashion-export")


def adapter_probs(ad: Adapter, logits: np.ndarray, emb: np.ndarray, clf: Classifier) -> np.ndarray:
    """Adapted probabilities (N, len(ad.classes)) from the model's logits and embeddings."""
    base = base_term(logits, clf.meta.temperature, clf.meta.outputs)
    probs = softmax(head_logits(ad.head, base, features(emb)), dtype=np.float64)
    return np.minimum(probs, MAX_CONFIDENCE).astype(np.float32)


def fallback_open(ad: Adapter) -> frozenset[str]:
    """The model's classes whose sure answers ``ad`` still auto-accepts (``adapter.fallback_classes``);
    for a file written before that field: every class when it teaches none of its own, else none."""
    if ad.fallback_classes is not None:
        return frozenset(ad.fallback_classes)
    known = ad.classes[: len(ad.classes) - len(ad.new_classes)]
    return frozenset() if ad.new_classes else frozenset(known)


class AdaptedClassifier(Classifier):
    """``runtime.Classifier`` with the adapter applied: same file, more classes, own threshold."""

    def __init__(self, base: Classifier, adapter: Adapter) -> None:
        require_embedding(base)
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
        own auto-accepted answer *and* that class is one the site's examples leave open
        (``fallback_open``): learning must not take away what the model already got right, but the
        model's confident answer is no evidence where the site teaches classes the model never saw,
        or where the site's own examples show it wrong. A user's ``review_threshold`` replaces both.
        """
        preds = self.predictions(adapter_probs(self.adapter, z, e, self.base), top_k, review_threshold)
        if review_threshold is not None:
            return preds
        base = self.base.predictions(self.base.calibrated(z), top_k=1)
        return [
            replace(p, needs_review=False)
            if p.needs_review and not b.needs_review and b.label == p.label and p.label in self.fallback_open
            else p
            for p, b in zip(preds, base, strict=True)
        ]

    @property
    def fallback_open(self) -> frozenset[str]:
        """Classes whose plain-model sure answers are still auto-accepted (see ``decide``)."""
        return fallback_open(self.adapter)

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
