"""The catalogue check set's logits and embeddings, kept on disk once per model file.

The safety gate and the fit's anchors (``runtime.adapter_gate``) need the model's outputs on about
1,265 catalogue test images: 3-8 s of decoding and inference, which the first refit of every app
session and every ``fashion-label --learn-from`` run used to pay. They depend only on the model
file, so they are computed once and kept in the user's cache folder, keyed by the model's
fingerprint (``runtime.adapter_record.model_fingerprint``: sha256 of the file):

    $FASHION_EDGE_CACHE/check-set/<fingerprint>-<cap>.npz      (FASHION_EDGE_CACHE set)
    $XDG_CACHE_HOME/fashion-edge/check-set/...                   (else; ~/.cache by default)

A file is written atomically (temp file in the same folder, fsync, ``os.replace``) and read with a
size bound (``runtime.safe_file.read_bounded``). A missing, truncated, corrupt or stale file (other
test ids or labels, other shapes) is ignored and recomputed; a cache folder that cannot be written
only costs the time. Nothing here raises.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from fashion_edge.runtime.safe_file import read_bounded

FORMAT = "fashion-edge-check-set/1"
MAX_BYTES = 256 * 2**20  # far above any real set (1,265 x (K + 192) float32 is about 1 MB)
CACHE_ENV = "FASHION_EDGE_CACHE"


def cache_dir() -> Path:
    """The user's cache folder for fashion-edge (read at call time, so tests can point it elsewhere)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fashion-edge"


def cache_path(fingerprint: str, cap: int) -> Path:
    return cache_dir() / "check-set" / f"{fingerprint}-{int(cap)}.npz"


def path_for(model: str | Path, cap: int) -> Path | None:
    """The cache file of a model file's check set (None when the model file cannot be read)."""
    from fashion_edge.runtime.adapter_record import AdapterError, model_fingerprint

    try:
        return cache_path(model_fingerprint(model), cap)
    except AdapterError:
        return None


def load(
    path: Path, ids: list[str], y: np.ndarray, n_classes: int, emb_size: int | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(logits, embeddings) cached for exactly these ``ids`` and labels ``y``; None otherwise."""
    try:
        data = read_bounded(path, MAX_BYTES)
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                return None
            cached_ids, cached_y = [str(i) for i in z["ids"]], np.asarray(z["y"])
            logits, emb = np.asarray(z["logits"], np.float32), np.asarray(z["emb"], np.float32)
    except Exception:  # noqa: BLE001 (unsafe, unreadable, truncated or foreign: only a cache, recomputed)
        return None
    n = len(ids)
    if cached_ids != list(ids) or cached_y.shape != (n,) or not np.array_equal(cached_y, y):
        return None
    if logits.shape != (n, n_classes) or emb.ndim != 2 or emb.shape[0] != n:
        return None
    if emb_size and emb.shape[1] != emb_size:
        return None
    if not (np.isfinite(logits).all() and np.isfinite(emb).all()):
        return None
    return logits, emb


def save(path: Path, ids: list[str], y: np.ndarray, logits: np.ndarray, emb: np.ndarray) -> bool:
    """Write atomically; False (and nothing left behind) when the cache folder cannot be written."""
    buf = io.BytesIO()
    np.savez(
        buf,
        format=np.array(FORMAT),
        ids=np.array(ids, dtype=str),
        y=np.asarray(y, np.int64),
        logits=np.asarray(logits, np.float32),
        emb=np.asarray(emb, np.float32),
    )
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return False
