"""The loaded classifier and the review threshold, shared by both modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from fashion_edge import runtime


class ModelHolder(QObject):
    """Holds the current classifier; a failed load keeps the previous one.

    ``classifier`` is what everything predicts with: the plain model (``base``) or, once staff
    corrections were learned, ``runtime.adapter.adapted(base, adapter)``.
    ``changed`` fires with the new classifier; ``threshold_changed`` with the effective threshold.
    """

    changed = Signal(object)
    threshold_changed = Signal(float)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.classifier: Any | None = None
        self.base: Any | None = None  # the model file as loaded, without the adapter
        self.adapter: Any | None = None
        self._threshold: float | None = None  # None: the model's own review_threshold

    def load(self, path: str | Path) -> Any:
        """Load a model file; raises runtime.ModelLoadError (one line) and keeps the old model."""
        clf = runtime.load(path)
        self.set_classifier(clf)
        return clf

    def set_classifier(self, clf: Any) -> None:
        """Use an already loaded classifier (or any object honouring the Classifier contract)."""
        self.base, self.adapter = clf, None
        self.classifier = clf
        self.changed.emit(clf)
        self.threshold_changed.emit(self.threshold)

    def set_adapter(self, adapter: Any | None) -> None:
        """Predict through a learned adapter on the plain model (None: the plain model again)."""
        if self.base is None:
            raise RuntimeError("no model loaded")
        if adapter is None:
            clf = self.base
        else:
            from fashion_edge.runtime.adapter import adapted

            clf = adapted(self.base, adapter)
        self.adapter = adapter
        self.classifier = clf
        self.changed.emit(clf)
        self.threshold_changed.emit(self.threshold)

    @property
    def threshold(self) -> float:
        """Confidence below which an item is 'unknown / needs review'."""
        if self._threshold is not None:
            return self._threshold
        if self.classifier is not None:
            return float(self.classifier.meta.review_threshold)
        return 0.0

    @property
    def review_override(self) -> float | None:
        """The threshold a person set, or None: the classifier's own review rule (for an adapted
        model that is more than one number: ``runtime.adapted.AdaptedClassifier.decide``)."""
        return self._threshold

    def set_threshold(self, value: float | None) -> None:
        """A user threshold in [0, 1], or None to go back to the model's."""
        self._threshold = None if value is None else min(1.0, max(0.0, float(value)))
        self.threshold_changed.emit(self.threshold)

    def worker_classifier(self) -> Any:
        """A classifier a background job may use while the UI keeps its own.

        The runtime Classifier is thread-safe, so this is the same object; kept as one place to
        change if a backend ever needs one instance per thread.
        """
        if self.classifier is None:
            raise RuntimeError("no model loaded")
        return self.classifier
