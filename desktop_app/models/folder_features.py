"""The plain model's logits and embedding of every item of the open folder, kept while it is open.

Labelling the folder records them (``RecordingClassifier``: the same one inference per batch, both
outputs kept); when the model changes (a refit, *Undo*, *Reset to factory*) the folder is predicted
again from them (``FolderFeatures.engine``): no decoding and no inference, so hundreds of photos
take milliseconds whatever their size, where decoding 200 12-megapixel photos again took seconds.
They are the inputs of ``AdaptedClassifier.decide`` and of the plain model's own review rule, so
the answers are those ``predict`` gives. A file changed since (size or mtime) or never labelled
in this session is decoded and run as before. Qt-free.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.journal import identity_of

Stamp = tuple[int, int]  # (size, mtime_ns)
Engine = Callable[[Sequence[Any], threading.Event], Iterator[list[Any]]]


def _digest(x: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).digest()


def plain_model(clf: Any) -> Any:
    """The model file's own classifier under an adapter (or ``clf`` itself)."""
    return getattr(clf, "base", None) or clf


class FolderFeatures:
    """path -> (file stamp, logits, embedding) of the plain model ``owner`` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[Stamp, np.ndarray, np.ndarray]] = {}
        self._waiting: dict[bytes, set[str]] = {}  # decoded input -> the files it came from
        self.owner: str | None = None  # the plain model file they come from (path and fingerprint)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._waiting.clear()

    def use_model(self, clf: Any) -> None:
        """Keep the features only while the plain model file stays the same (path and contents)."""
        from fashion_edge.runtime.journal_guard import model_fingerprint

        path = getattr(plain_model(clf), "path", None)
        owner = f"{path}:{model_fingerprint(path) if path is not None else ''}"
        if owner != self.owner:
            self.clear()
            self.owner = owner

    def noted(self, path: str, x: np.ndarray) -> None:
        """``path`` was decoded into the model input ``x`` (its outputs come with the batch)."""
        with self._lock:
            self._waiting.setdefault(_digest(x), set()).add(path)

    def record(self, x: np.ndarray, z: np.ndarray, e: np.ndarray) -> None:
        """Keep the outputs of a batch for the files its inputs were decoded from."""
        digests = [_digest(row) for row in x]
        with self._lock:
            for d, zi, ei in zip(digests, z, e, strict=True):
                for path in self._waiting.pop(d, ()):
                    stamp = identity_of(path)
                    if stamp is not None:
                        self._items[path] = (stamp, np.array(zi), np.array(ei))

    def get(self, path: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The outputs kept for ``path`` if the file is unchanged since."""
        with self._lock:
            hit = self._items.get(path)
        if hit is None or identity_of(path) != hit[0]:
            return None
        return hit[1], hit[2]

    def engine(self, clf: Any, review_below: float | None, fallback: Engine) -> Engine:
        """A ``runtime.labeling`` engine: files with kept outputs are answered from them (batch by
        batch, as given), the rest go through ``fallback`` (decode and infer) at the end."""
        from fashion_edge.runtime.journal import LabelRecord
        from fashion_edge.runtime.journal_guard import model_fingerprint

        model_id = getattr(clf, "model_id", None) or model_fingerprint(getattr(clf, "path", None))

        def run(batches: Sequence[Any], cancel: threading.Event) -> Iterator[list[Any]]:
            misses: list[Any] = []
            size = 1
            for batch in batches:
                if cancel.is_set():
                    return
                size = max(size, len(batch))
                keys, zs, es = [], [], []
                for key, path in batch:
                    got = self.get(str(path))
                    if got is None:
                        misses.append((key, path))
                    else:
                        keys.append(key)
                        zs.append(got[0])
                        es.append(got[1])
                if keys:
                    preds = clf.decide(np.stack(zs), np.stack(es), 3, review_below)
                    yield [
                        LabelRecord(k, p.label, p.confidence, p.top_k, p.needs_review, model=model_id)
                        for k, p in zip(keys, preds, strict=True)
                    ]
            if misses:
                rest = fallback([misses[i : i + size] for i in range(0, len(misses), size)], cancel)
                try:
                    yield from rest
                finally:
                    close = getattr(rest, "close", None)
                    if close is not None:
                        close()

        return run


class RecordingClassifier:
    """``clf`` as the labelling engine uses it (``prepare``, ``predict_prepared``), keeping the plain
    model's outputs of every file in ``features``; everything else is ``clf``'s."""

    def __init__(self, clf: Any, features: FolderFeatures) -> None:
        self._clf = clf
        self._plain = plain_model(clf)
        self._features = features

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clf, name)

    def prepare(self, image: Any) -> np.ndarray:
        x = self._clf.prepare(image)
        if isinstance(image, (str, Path)):
            self._features.noted(str(image), x)
        return x

    def predict_prepared(
        self, x: np.ndarray, top_k: int = 3, review_threshold: float | None = None
    ) -> list[Any]:
        z, e = self._plain.logits_and_embedding(x)
        self._features.record(x, z, e)
        return self._clf.decide(z, e, top_k, review_threshold)
