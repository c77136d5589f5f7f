"""Inputs and the safety gate of the adapter: corrections folders and the model's catalogue test ids.

``examples_from_folder(DIR)`` reads ``DIR/<class>/`` image folders (the app's captures layout).
``catalogue_for(clf)`` loads the catalogue test images named by ``splits.csv`` next to the model
file (images under ``$FASHION_EDGE_DATA/fashion-product-images-small``, read with the same
no-TensorFlow loader training uses): a seeded sample of at most ``CATALOGUE_CAP`` scores the
gate, up to ``ANCHORS_PER_CLASS`` of the others per class anchor the fit (they keep the head
close to the model on catalogue images). Logits and embeddings are cached per model file, in this
process and on disk (``runtime.check_set_cache``, keyed by the model's fingerprint).
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_edge.runtime import check_set_cache
from fashion_edge.runtime.classifier import Classifier
from fashion_edge.runtime.metadata import RESERVED_CLASSES, class_name_problem
from fashion_edge.runtime.preprocess import ImageError, is_image_file, read_image
from fashion_edge.runtime.safe_file import UnsafeFileError, open_regular

CATALOGUE_CAP = 1000  # test images scored by the gate (a seeded sample; the full split is ~2,000)
ANCHORS_PER_CLASS = 30  # other test images (never scored by the gate) that anchor the fit per class
MAX_SPLITS_BYTES = 64 * 2**20  # a model's splits.csv (the shipped ones are under 1 MB)

_CACHE: dict[tuple[str, int], CatalogueSet | None] = {}
_LOCK = threading.Lock()


@dataclass
class CatalogueSet:
    """The model's catalogue test images: labels, the model's logits and embeddings."""

    y: np.ndarray
    logits: np.ndarray
    emb: np.ndarray
    ids: list[str]
    anchors: CatalogueSet | None = None  # disjoint from the gate's images

    @property
    def base_pred(self) -> np.ndarray:
        return self.logits.argmax(1)

    def accuracy(self, pred: np.ndarray) -> float:
        return float((np.asarray(pred) == self.y).mean()) if len(self.y) else float("nan")


def examples_from_folder(folder: str | Path, known: Sequence[str] = ()) -> list[tuple[Path, str]]:
    """(path, class) for every image in ``folder/<class>/``; AdapterError for unusable folders.

    The tool's own review pile (``needs_review/``, what ``--sort-into`` leaves unsure) is not a
    class and is passed over, so a sorted folder that a person has tidied can be learned from as it
    is. Folder names are checked first, before any image is read: a name that cannot be a class
    (reserved, a control character, a formula, see ``metadata.class_name_problem``) or that
    differs only in case from another folder or from one of ``known`` (the model's classes) is an
    error naming that folder. So is an empty class folder, or one with no decodable image.
    """
    from fashion_edge.runtime.adapter import AdapterError

    root = Path(folder)
    if not root.is_dir():
        raise AdapterError(f"{root}: corrections folder not found")
    classes = sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in RESERVED_CLASSES
    )
    if not classes:
        raise AdapterError(f"{root}: no <class>/ folders of corrected photos")
    seen = {k.casefold(): k for k in known}
    for d in classes:
        bad = class_name_problem(d.name)
        if bad:
            raise AdapterError(f"{d}: folder name {d.name!r} cannot be a class (it {bad})")
        other = seen.get(d.name.casefold(), d.name)
        if other != d.name:
            where = "a class of the model" if other in known else "another folder"
            raise AdapterError(f"{d}: folder name {d.name!r} differs only in case from {other!r} ({where})")
        seen[d.name.casefold()] = d.name
    out: list[tuple[Path, str]] = []
    for d in classes:
        files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if is_image_file(p)]
        if not images:
            raise AdapterError(f"{d}: empty class folder (no image files)")
        readable = [p for p in images if _readable(p)]
        if not readable:
            raise AdapterError(f"{d}: none of its {len(images)} image files can be read")
        out += [(p, d.name) for p in readable]
    return out


def _readable(p: Path) -> bool:
    try:
        read_image(p)
        return True
    except (ImageError, OSError):
        return False


def catalogue_for(
    clf: Classifier, cap: int = CATALOGUE_CAP, data: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CatalogueSet | None:  # fmt: skip
    """The gate's catalogue set for ``clf`` (None when splits.csv or the images are absent)."""
    from fashion_edge.runtime.adapter import model_fingerprint

    key = (model_fingerprint(clf.path), cap)
    with _LOCK:  # a refit waits for a warm-up already loading the same set instead of loading it twice
        if key not in _CACHE:
            _CACHE[key] = _load(clf, cap, data, progress)
        return _CACHE[key]


def catalogue_test_rows(splits: Path, classes: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a model's ``splits.csv`` in the test split whose label is one of ``classes``.

    Opened through ``safe_file`` (a FIFO or a device there is refused, never read): AdapterError,
    one line naming the file.
    """
    from fashion_edge.runtime.adapter_record import AdapterError

    try:
        with io.TextIOWrapper(open_regular(splits, MAX_SPLITS_BYTES), encoding="utf-8", newline="") as f:
            return [r for r in csv.DictReader(f) if r.get("split") == "test" and r.get("label") in classes]
    except (UnsafeFileError, OSError, UnicodeDecodeError, csv.Error) as e:
        raise AdapterError(f"{splits}: cannot read the model's splits ({e})") from None


def _load(clf: Classifier, cap: int, data: str | Path | None, progress) -> CatalogueSet | None:
    splits = clf.path.parent / "splits.csv"
    if not splits.is_file() or clf.meta.recipe == "fmnist":
        return None
    rows = catalogue_test_rows(splits, clf.classes)
    if not rows:
        return None
    order = np.random.default_rng(0).permutation(len(rows))
    n_gate = min(cap, (len(rows) + 1) // 2)
    gate = np.sort(order[:n_gate])
    per: dict[str, int] = {}
    anchor = []
    for i in np.sort(order[n_gate:]):
        lab = rows[i]["label"]
        if per.get(lab, 0) < ANCHORS_PER_CLASS:
            per[lab] = per.get(lab, 0) + 1
            anchor.append(i)
    rows = [rows[i] for i in gate] + [rows[i] for i in anchor]
    ids = [r["id"] for r in rows]
    y = np.array([clf.classes.index(r["label"]) for r in rows])
    # computed once per model file (runtime.check_set_cache): the first refit is as fast as the next
    cached = check_set_cache.path_for(clf.path, cap)
    hit = check_set_cache.load(cached, ids, y, len(clf.classes), clf.meta.embedding_size) if cached else None
    if hit is not None:
        z, e = hit
    else:
        from fashion_edge.training.data import (
            CATALOGUE_DIR,
            DataError,
            load_catalogue_images,
            resolve_catalogue,
        )

        try:
            root = resolve_catalogue(data or CATALOGUE_DIR)
            if not all((root / "images" / f"{i}.jpg").is_file() for i in ids):
                return None
            x = load_catalogue_images(root, ids, clf.meta.height, clf.meta.width, clf.meta.fit)
        except (DataError, OSError, ValueError):
            return None
        logits, embs = [], []
        for i in range(0, len(x), 128):
            lo, em = clf.logits_and_embedding(x[i : i + 128])
            logits.append(lo)
            embs.append(em)
            if progress:
                progress("catalogue check", min(i + 128, len(x)), len(x))
        z, e = np.concatenate(logits), np.concatenate(embs)
        if cached:
            check_set_cache.save(cached, ids, y, z, e)
    g = n_gate
    anchors = CatalogueSet(y[g:], z[g:], e[g:], ids[g:]) if len(y) > g else None
    return CatalogueSet(y[:g], z[:g], e[:g], ids[:g], anchors)
