"""The adapter as a record and a file: what it learned from, how it scored, its parameters.

``save_adapter`` writes an .npz of arrays plus one JSON record atomically; ``load_adapter`` refuses,
in one line, a missing, corrupt or foreign file (fitted on another model).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.adapter_head import DEFAULT_L2, Head
from fashion_edge.runtime.classifier import Classifier

FORMAT = "fashion-edge-adapter/1"


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
