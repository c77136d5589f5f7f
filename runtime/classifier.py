"""``load(path)`` -> ``Classifier``: the one way anything in fashion-edge classifies images.

Class names, input size, colour order, fit, temperature and review threshold come from the
metadata inside the model file; preprocessing is ``runtime.preprocess.prepare`` (the same code
training used to build its image cache).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_edge.runtime.backends import (
    Backend,
    BackendError,
    OnnxBackend,
    check_suffix,
    open_backend,
    read_model,
)
from fashion_edge.runtime.metadata import (
    MetadataError,
    ModelMetadata,
    onnx_session_metadata,
    read_tflite_metadata,
)
from fashion_edge.runtime.preprocess import load_for_model, prepare
from fashion_edge.runtime.review import needs_review

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = (
    REPO_ROOT / "models" / "articletype8-lite0" / "model_int8.tflite"
)  # best on real photos, fastest (README)
DEFAULT_BATCH = 64  # measured: batches of 32-128 run at the same per-image cost on 2 cores


class ModelLoadError(ValueError):
    """A model that cannot be used; the message is one line naming the file and the problem."""


class NoEmbeddingError(ValueError):
    """A model file exported before the embedding output existed."""


@dataclass(frozen=True)
class Prediction:
    """One image's result: best label, calibrated confidence, top-k and the review flag."""

    label: str
    confidence: float
    top_k: list[tuple[str, float]]
    needs_review: bool


def default_model_path() -> Path:
    """The shipped model (``FASHION_EDGE_MODEL`` overrides)."""
    env = os.environ.get("FASHION_EDGE_MODEL")
    return Path(env) if env else DEFAULT_MODEL


def softmax(logits: np.ndarray, temperature: float = 1.0, dtype: type = np.float32) -> np.ndarray:
    """softmax(logits / temperature) over the last axis of an (N, K) array: the one implementation
    (runtime, export calibration, adapter fits). Float32 as the runtime computes it; fits pass
    ``dtype=np.float64``. A temperature that is not a positive number counts as 1."""
    t = float(temperature) if temperature > 0 else 1.0
    z = np.asarray(logits, dtype) / dtype(t)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Classifier:
    """A loaded model plus its metadata; thread-safe ``logits``/``probabilities``/``predict``."""

    def __init__(self, path: Path, backend: Backend, meta: ModelMetadata) -> None:
        self.path = path
        self.backend = backend
        self.meta = meta
        self.classes: list[str] = list(meta.classes)
        self.format = path.suffix.lower().lstrip(".")
        self.precision = meta.precision

    def __repr__(self) -> str:
        return f"Classifier({self.path.name}, {self.format}/{self.precision}, {len(self.classes)} classes)"

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Prepared batch N,H,W,C (uint8 or float32 pixel values 0..255) -> float32 logits (N, K)."""
        x = self._batch(x)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return self.backend.run(x)

    def _batch(self, x: np.ndarray) -> np.ndarray:
        """One image or a batch -> an (N, H, W, C) array of the model's input shape (ValueError if not)."""
        x = np.asarray(x)
        x = x[None] if x.ndim == 3 else x
        want = self.meta.input_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, want))}), got {x.shape}")
        return x

    def logits_and_embedding(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, K) and embedding (N, D) of a prepared batch, from one inference."""
        name = self.meta.embedding_output
        if not name:
            raise NoEmbeddingError(
                f"{self.path}: model has no embedding output; re-export it with fashion-export"
            )
        x = self._batch(x)
        if len(x) == 0:
            d = self.meta.embedding_size or 0
            return np.zeros((0, len(self.classes)), np.float32), np.zeros((0, d), np.float32)
        logits, emb = self.backend.run_outputs(x, [self.backend.output_name, name])
        return logits, emb

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Prepared batch -> pooled features (N, D), the input of the model's last layer (same file)."""
        return self.logits_and_embedding(x)[1]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: softmax(logits / temperature)."""
        return self.calibrated(self.logits(x))

    def calibrated(self, out: np.ndarray) -> np.ndarray:
        """The model's raw output (N, K) -> calibrated probabilities."""
        if self.meta.outputs == "probabilities":  # model already applies softmax
            out = np.log(np.clip(out, 1e-12, 1.0))
        return softmax(out, self.meta.temperature)

    def decide(
        self,
        z: np.ndarray,
        e: np.ndarray | None = None,
        top_k: int = 3,
        review_threshold: float | None = None,
    ) -> list[Prediction]:
        """Predictions from the model's own outputs: logits ``z`` (the embedding ``e`` is for the
        adapted classifier, which overrides this), the review rule applied."""
        return self.predictions(self.calibrated(z), top_k, review_threshold)

    def predict_prepared(
        self, x: np.ndarray, top_k: int = 3, review_threshold: float | None = None
    ) -> list[Prediction]:
        """Predictions for a prepared batch (N, H, W, C): one inference, the review rule applied."""
        return self.predictions(self.probabilities(x), top_k, review_threshold)

    def prepare(self, image: np.ndarray | str | Path) -> np.ndarray:
        """An RGB uint8 image of any size (or a file path, decoded reduced to what the input needs)
        -> the model's HxWxC uint8 input."""
        if isinstance(image, (str, Path)):
            return load_for_model(image, self.meta)  # placed as the full-size decode would be
        return prepare(image, self.meta)

    def predict(
        self,
        images: Sequence[np.ndarray | str | Path] | np.ndarray,
        top_k: int = 3,
        review_threshold: float | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> list[Prediction]:
        """Predictions for RGB uint8 images of any size or file paths (ImageError on a bad file).

        ``review_threshold`` overrides the model's stored threshold for ``needs_review``.
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        batch = [self.prepare(im) for im in images]
        if not batch:
            return []
        return [
            p
            for i in range(0, len(batch), batch_size)
            for p in self.predict_prepared(np.stack(batch[i : i + batch_size]), top_k, review_threshold)
        ]

    def predictions(
        self, probs: np.ndarray, top_k: int = 3, review_threshold: float | None = None
    ) -> list[Prediction]:
        """Turn an (N, K) probability matrix into Predictions."""
        thr = self.meta.review_threshold if review_threshold is None else review_threshold
        k = max(1, min(int(top_k), len(self.classes)))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        out = []
        for row, idx in zip(probs, order, strict=True):
            top = [(self.classes[i], float(row[i])) for i in idx]
            out.append(
                Prediction(top[0][0], top[0][1], top, needs_review(top[0][0], top[0][1], self.meta, thr))
            )
        return out


def load(path: str | Path | None = None, threads: int | None = None) -> Classifier:
    """Load a ``.onnx`` or ``.tflite`` fashion-edge model (default: the shipped one).

    Raises ModelLoadError with one line such as ``models/x.onnx: file not found``. The file is
    read once, through ``safe_file`` (a FIFO or device is refused without blocking, at most
    ``MAX_MODEL_BYTES``); its metadata is validated before anything runs.
    """
    p = Path(path) if path is not None else default_model_path()
    if not p.exists():
        raise ModelLoadError(f"{p}: file not found")
    if p.is_dir():
        raise ModelLoadError(f"{p}: is a folder, not a model file")
    try:
        check_suffix(p)  # before reading: a file of another type is not read at all
        content = read_model(p)
        backend = open_backend(p, threads, content)
        if isinstance(backend, OnnxBackend):
            meta = onnx_session_metadata(backend.session, p)
        else:
            meta = read_tflite_metadata(p, content)
    except BackendError as e:
        raise ModelLoadError(f"{p}: {e}") from None
    except MetadataError as e:
        msg = str(e)
        if "no fashion-edge metadata" in msg:
            msg = f"{p}: not a fashion-edge model (no metadata)"
        raise ModelLoadError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    try:
        if meta.logits_output:
            backend.use_logits(meta.logits_output)
    except BackendError as e:
        raise ModelLoadError(f"{p}: {e}") from None
    if meta.embedding_output and meta.embedding_output not in backend.output_names:
        raise ModelLoadError(f"{p}: the model has no '{meta.embedding_output}' output named in its metadata")
    if backend.output_size not in (-1, meta.num_classes):
        raise ModelLoadError(
            f"{p}: metadata lists {meta.num_classes} classes but the model outputs {backend.output_size}"
        )
    dims = backend.input_shape[1:]
    if any(d is not None and d != m for d, m in zip(dims, meta.input_shape, strict=True)):
        raise ModelLoadError(f"{p}: metadata says input {meta.input_shape} but the model takes {dims}")
    return Classifier(p, backend, meta)
