"""The app's learning store: staff corrections -> examples -> an adapter on top of the model (Qt-free).

Everything lives in one folder (the app's data folder, ``learning/``):

- ``examples.jsonl``: one line per correction or saved capture (image path, label, where it came
  from), appended and fsync'ed the moment it is made; the last label of an image wins.
- ``embeddings-<model fingerprint>.npz``: the model's logits and embedding of every example image,
  so a refit only runs the model on new images, and an image moved away after its correction still
  counts.
- ``adapter.npz``: the adapter in use (``runtime.adapter``, written atomically), loaded with the model.
- ``previous/``: the adapters it replaced (newest last), for *Undo*; ``<stamp>.none`` marks "no
  adapter" and ``<stamp>.examples.jsonl`` the example list a factory reset put aside.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES_NAME = "examples.jsonl"
ADAPTER_NAME = "adapter.npz"
STATE_NAME = "state.json"
HISTORY_DIR = "previous"
HISTORY_KEEP = 5  # adapters kept for Undo
AUTO_REFIT_EVERY = 20  # default: refit after this many new corrections (0 = only on request)
EMBED_BATCH = 32

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Cached = tuple[str, np.ndarray, np.ndarray]  # file stamp, logits, embedding


class LearningError(ValueError):
    """Learning cannot go on; the message is one line for the user."""


class Cancelled(Exception):
    """The user stopped a refit."""


@dataclass(frozen=True)
class Example:
    """One taught image: its absolute path, the label a person gave it, and where it came from."""

    path: str
    label: str
    source: str = "folder"  # folder (a correction) | capture (camera) | taught (new-class dialog)
    time: float = 0.0


@dataclass
class FitResult:
    """A fitted adapter (not installed yet) and what the refit had to leave out."""

    adapter: Any
    fingerprint: str
    rows: int  # examples.jsonl rows the fit saw (for "N new since the last fit")
    skipped: list[str] = field(default_factory=list)  # one line per unreadable example image
    embedded: int = 0  # images the model had to run on (the others came from the cache)
    seconds: float = 0.0


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def training_pairs(examples: Sequence[Example]) -> list[tuple[str, str]]:
    """(path, label) in time order; an image confirmed twice with the same label counts once.

    An image given two different labels stays twice, so the adapter uses the last one and counts
    the conflict.
    """
    last: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for ex in examples:
        if last.get(ex.path) == ex.label:
            continue
        last[ex.path] = ex.label
        out.append((ex.path, ex.label))
    return out


class LearningStore:
    """Examples, embedding cache and adapter files in one folder (created on first write)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.examples_path = self.folder / EXAMPLES_NAME
        self.adapter_path = self.folder / ADAPTER_NAME
        self.history = self.folder / HISTORY_DIR

    # --- examples -------------------------------------------------------------------------
    def add(self, path: str | Path, label: str, source: str = "folder") -> Example:
        """Record one taught image (fsync'ed); raises OSError if the folder is not writable."""
        label = label.strip()
        if not label:
            raise LearningError(f"{path}: empty label")
        ex = Example(str(Path(path).resolve()), label, source, round(time.time(), 3))
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(ex.__dict__, ensure_ascii=False) + "\n"
        with open(self.examples_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return ex

    def rows(self) -> list[Example]:
        """Every recorded row in order; a torn or foreign line is skipped."""
        return self._read(self.examples_path)

    @staticmethod
    def _read(path: Path) -> list[Example]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                d = json.loads(line)
                out.append(
                    Example(str(d["path"]), str(d["label"]), str(d.get("source", "")), float(d["time"]))
                )
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def current_labels(self) -> dict[str, str]:
        """image path -> its last label."""
        return {ex.path: ex.label for ex in self.rows()}

    def labels(self) -> list[str]:
        """Every label taught so far, in the order first taught."""
        return list(dict.fromkeys(self.current_labels().values()))

    def new_since_fit(self) -> int:
        """Images labelled (or relabelled) after the last refit was installed."""
        return len({ex.path for ex in self.rows()[int(self._state().get("fitted_rows", 0)) :]})

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.folder / STATE_NAME).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return {}

    def _set_state(self, **values: Any) -> None:
        state = self._state() | values
        _write_atomic(self.folder / STATE_NAME, json.dumps(state).encode())

    # --- embeddings -----------------------------------------------------------------------
    def _cache_path(self, fingerprint: str) -> Path:
        return self.folder / f"embeddings-{fingerprint[:16]}.npz"

    def _load_cache(self, fingerprint: str) -> dict[str, Cached]:
        try:
            with np.load(self._cache_path(fingerprint), allow_pickle=False) as z:
                return {
                    str(p): (str(s), lo, e)
                    for p, s, lo, e in zip(z["paths"], z["stamps"], z["logits"], z["emb"], strict=True)
                }
        except Exception:  # missing, truncated or foreign: it is only a cache, recomputed
            return {}

    def _save_cache(self, fingerprint: str, cache: dict[str, Cached]) -> None:
        if not cache:
            return
        import io

        paths = list(cache)
        buf = io.BytesIO()
        np.savez(
            buf,
            paths=np.array(paths),
            stamps=np.array([cache[p][0] for p in paths]),
            logits=np.stack([cache[p][1] for p in paths]).astype(np.float32),
            emb=np.stack([cache[p][2] for p in paths]).astype(np.float32),
        )
        _write_atomic(self._cache_path(fingerprint), buf.getvalue())

    def embeddings(
        self,
        clf: Any,
        paths: Sequence[str],
        fingerprint: str,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str], int]:
        """path -> (logits, embedding) for the readable paths, one line per unreadable one, images run.

        A cached embedding is reused while the file is unchanged, or when the file is gone.
        """
        from fashion_edge.runtime.preprocess import ImageError

        cache = self._load_cache(fingerprint)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        todo: list[tuple[str, str]] = []
        skipped: list[str] = []
        for p in dict.fromkeys(paths):
            try:
                st = os.stat(p)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stamp = ""
            hit = cache.get(p)
            if hit is not None and (not stamp or hit[0] == stamp):
                out[p] = (hit[1], hit[2])
            elif not stamp:
                skipped.append(f"{p}: file not found")
            else:
                todo.append((p, stamp))
        total, done = len(todo), 0
        if progress:
            progress("your images", 0, total)
        for i in range(0, total, EMBED_BATCH):
            if cancelled and cancelled():
                raise Cancelled
            batch, ok = [], []
            for p, stamp in todo[i : i + EMBED_BATCH]:
                try:
                    batch.append(clf.prepare(p))
                    ok.append((p, stamp))
                except (ImageError, OSError, ValueError) as e:
                    skipped.append(str(e) if str(p) in str(e) else f"{p}: {e}")
            if batch:
                logits, emb = clf.logits_and_embedding(np.stack(batch))
                for (p, stamp), lo, e in zip(ok, logits, emb, strict=True):
                    out[p] = (lo, e)
                    cache[p] = (stamp, lo, e)
            done += len(todo[i : i + EMBED_BATCH])
            if progress:
                progress("your images", done, total)
        if todo:
            self._save_cache(fingerprint, cache)
        return out, skipped, total

    # --- fitting --------------------------------------------------------------------------
    def fit(
        self,
        clf: Any,
        force: bool = False,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> FitResult:
        """Embed the examples (cached) and fit an adapter on the plain model ``clf``; nothing is saved.

        Raises LearningError (one line) when there is nothing usable to learn from.
        """
        from fashion_edge.runtime.adapter import AdapterError, fit_adapter, model_fingerprint

        t0 = time.perf_counter()
        rows = self.rows()
        pairs = training_pairs(rows)
        if not pairs:
            raise LearningError("nothing to learn from yet: correct or save some items first")
        if not clf.meta.embedding_output:
            raise AdapterError(f"{clf.path}: model has no embedding output; re-export it with fashion-export")
        fingerprint = model_fingerprint(clf.path)
        emb, skipped, embedded = self.embeddings(clf, [p for p, _ in pairs], fingerprint, progress, cancelled)
        usable = [(p, label) for p, label in pairs if p in emb]
        if not usable:
            raise LearningError(f"none of the {len(pairs)} taught images could be read ({skipped[0]})")
        if cancelled and cancelled():
            raise Cancelled
        logits = np.stack([emb[p][0] for p, _ in usable])
        matrix = np.stack([emb[p][1] for p, _ in usable])
        adapter = fit_adapter(clf, usable, embeddings=matrix, logits=logits, force=force, progress=progress)
        return FitResult(adapter, fingerprint, len(rows), skipped, embedded, time.perf_counter() - t0)

    # --- the adapter in use ---------------------------------------------------------------
    def load(self, clf: Any) -> Any | None:
        """The stored adapter for the plain model ``clf``, or None; AdapterError (one line) if unusable."""
        if not self.adapter_path.exists():
            return None
        from fashion_edge.runtime.adapter import load_adapter

        return load_adapter(self.adapter_path, clf)

    def _stamp(self) -> str:
        self.history.mkdir(parents=True, exist_ok=True)
        base = time.strftime("%Y%m%d-%H%M%S")
        n = 0
        while any(self.history.glob(f"{base}-{n:02d}.*")):
            n += 1
        return f"{base}-{n:02d}"

    def _push_current(self) -> str:
        """Put the adapter in use (or a 'none' marker) into previous/; returns the stamp."""
        stamp = self._stamp()
        if self.adapter_path.exists():
            shutil.copy2(self.adapter_path, self.history / f"{stamp}.npz")
        else:
            (self.history / f"{stamp}.none").write_bytes(b"")
        kept = self._history()
        for old in kept[:-HISTORY_KEEP]:
            for f in self.history.glob(f"{old}.*"):
                if f.name.endswith(".examples.jsonl"):  # put-aside examples are never deleted
                    (self.folder / "archive").mkdir(exist_ok=True)
                    os.replace(f, self.folder / "archive" / f.name)
                else:
                    f.unlink(missing_ok=True)
        return stamp

    def _history(self) -> list[str]:
        if not self.history.is_dir():
            return []
        return sorted(
            {f.name.split(".", 1)[0] for f in self.history.iterdir() if not f.name.endswith(".tmp")}
        )

    def can_undo(self) -> bool:
        return bool(self._history())

    def install(self, result: FitResult) -> None:
        """Make a fitted adapter the one in use (the old one goes to previous/ for Undo)."""
        from fashion_edge.runtime.adapter import save_adapter

        self.folder.mkdir(parents=True, exist_ok=True)
        self._push_current()
        save_adapter(result.adapter, self.adapter_path)
        self._set_state(fitted_rows=result.rows)

    def undo(self) -> bool:
        """Go back to the adapter used before the last change (or none); False if there is no history."""
        stamps = self._history()
        if not stamps:
            return False
        stamp = stamps[-1]
        saved = self.history / f"{stamp}.npz"
        aside = self.history / f"{stamp}.examples.jsonl"
        if aside.exists():  # undoing a factory reset: the examples come back, newer rows kept after them
            newer = self.examples_path.read_bytes() if self.examples_path.exists() else b""
            _write_atomic(self.examples_path, aside.read_bytes() + newer)
            aside.unlink()
        if saved.exists():
            os.replace(saved, self.adapter_path)
            _fsync_dir(self.folder)
        else:
            self.adapter_path.unlink(missing_ok=True)
        for f in self.history.glob(f"{stamp}.*"):
            f.unlink(missing_ok=True)
        self._set_state(fitted_rows=len(self.rows()))
        return True

    def reset(self) -> None:
        """Factory reset: no adapter, and the examples are put aside (Undo brings both back)."""
        if not self.adapter_path.exists() and not self.examples_path.exists():
            return
        stamp = self._push_current()
        if self.examples_path.exists():
            os.replace(self.examples_path, self.history / f"{stamp}.examples.jsonl")
        self.adapter_path.unlink(missing_ok=True)
        _fsync_dir(self.folder)
        self._set_state(fitted_rows=0)
