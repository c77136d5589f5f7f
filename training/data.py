"""Readers for the real data: the Fashion Product Images catalogue and Fashion-MNIST IDX files.

No TensorFlow here: export, benchmarks and tests load evaluation images through this module.
Images are decoded with ``runtime.preprocess`` (the product's one preprocessing path) and cached
as uint8 ``.npy`` arrays so every later epoch and every later step reads the same pixels.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import struct
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashion_edge.runtime.preprocess import ImageError, fit_image, read_image

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# A checkout (or editable install) keeps runs/, .cache/ and ../shared/data around the repo. An
# installed package (wheel, ``pip install .``) must not write into site-packages: it treats the
# current folder as its work folder instead (FASHION_EDGE_DATA / FASHION_EDGE_CACHE override both).
REPO_ROOT = _PACKAGE_ROOT if (_PACKAGE_ROOT / "pyproject.toml").is_file() else Path.cwd()
SHARED_DATA = Path(os.environ.get("FASHION_EDGE_DATA", REPO_ROOT.parent / "shared" / "data"))
CACHE_DIR = Path(os.environ.get("FASHION_EDGE_CACHE", REPO_ROOT / ".cache"))
CATALOGUE_DIR = SHARED_DATA / "fashion-product-images-small"
FMNIST_DIR = SHARED_DATA / "fashion-mnist-partial"
STYLES_FIELDS = [
    "id", "gender", "masterCategory", "subCategory", "articleType",
    "baseColour", "season", "year", "usage", "productDisplayName",
]  # fmt: skip
FMNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


class DataError(ValueError):
    """Missing or unusable data; the message names the path and the problem."""


@dataclass
class Catalogue:
    """styles.csv rows that have an image, plus what was skipped on the way."""

    root: Path
    rows: list[dict[str, str]]
    stats: dict[str, int] = field(default_factory=dict)

    def image_path(self, item_id: str) -> Path:
        return self.root / "images" / f"{item_id}.jpg"


def resolve_catalogue(path: str | Path | None = None) -> Path:
    """A folder holding ``styles.csv`` + ``images/``; a tarball is unpacked once into the cache."""
    p = Path(path) if path else CATALOGUE_DIR
    if p.is_dir() and (p / "styles.csv").exists():
        return p
    tarballs = sorted(p.glob("*.tar.gz")) if p.is_dir() else ([p] if p.name.endswith(".tar.gz") else [])
    if not tarballs:
        raise DataError(f"{p}: no styles.csv or .tar.gz catalogue found")
    tarball = tarballs[0]
    dest = CACHE_DIR / tarball.name.removesuffix(".tar.gz")
    if not (dest / ".complete").exists():
        tmp = dest.with_name(dest.name + ".partial")
        tmp.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="data")
        inner = tmp if (tmp / "styles.csv").exists() else next(tmp.glob("*/styles.csv")).parent
        if dest.exists():
            import shutil

            shutil.rmtree(dest)
        inner.rename(dest)
        if tmp.exists():
            tmp.rmdir() if not any(tmp.iterdir()) else None
        (dest / ".complete").write_text(tarball.name)
    return dest


def read_styles(csv_path: str | Path) -> tuple[list[dict[str, str]], int]:
    """Rows of styles.csv with exactly the 10 expected fields, and how many malformed rows were skipped.

    The Kaggle download has rows with unquoted commas in productDisplayName (11+ fields).
    """
    rows, malformed = [], 0
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != STYLES_FIELDS:
            raise DataError(f"{csv_path}: header is not {','.join(STYLES_FIELDS)}")
        for rec in reader:
            if not rec:
                continue
            if len(rec) != len(STYLES_FIELDS) or not rec[0].strip().isdigit():
                malformed += 1
                continue
            rows.append({k: v.strip() for k, v in zip(STYLES_FIELDS, rec, strict=True)})
    return rows, malformed


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read styles.csv, drop malformed rows and rows whose image is missing, and count both."""
    root = resolve_catalogue(path)
    rows, malformed = read_styles(root / "styles.csv")
    present = {p.stem for p in (root / "images").glob("*.jpg")}
    kept = [r for r in rows if r["id"] in present]
    stats = {
        "csv_rows": len(rows) + malformed,
        "malformed_rows_skipped": malformed,
        "rows_without_image_skipped": len(rows) - len(kept),
        "rows_used": len(kept),
    }
    return Catalogue(root=root, rows=kept, stats=stats)


def fingerprint(paths: Sequence[Path]) -> str:
    """A short hash of file names and sizes: cheap, and changes when the data does."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(f"{p.name}:{p.stat().st_size};".encode())
    return h.hexdigest()[:16]


# --- Fashion-MNIST IDX ----------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) as a numpy array."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{p}: not an IDX file (bad magic)")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}.get(data[2])
    if dtype is None:
        raise DataError(f"{p}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise DataError(f"{p}: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).exists():
            return folder / name
    raise DataError(f"{folder}: missing {stem}[.gz]")


def load_fmnist(folder: str | Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (x, y), 't10k': (x, y)}; x is N x 28 x 28 x 1 uint8."""
    d = Path(folder) if folder else FMNIST_DIR
    out = {}
    for part in ("train", "t10k"):
        x = read_idx(_find_idx(d, f"{part}-images-idx3-ubyte"))
        y = read_idx(_find_idx(d, f"{part}-labels-idx1-ubyte"))
        if len(x) != len(y):
            raise DataError(f"{d}: {part} has {len(x)} images but {len(y)} labels")
        out[part] = (x[..., None].astype(np.uint8), y.astype(np.int64))
    return out


# --- loading images for a list of ids --------------------------------------------------------


def load_catalogue_images(
    root: Path, ids: Sequence[str], height: int = 80, width: int = 60, fit: str = "pad", workers: int = 8
) -> np.ndarray:
    """Decode ``images/<id>.jpg`` in parallel threads into an N x H x W x 3 uint8 array (cached)."""
    key = hashlib.sha256(("|".join(ids) + f"{root.resolve()}{height}{width}{fit}").encode()).hexdigest()[:16]
    cache = CACHE_DIR / "arrays" / f"cat_{key}.npy"
    if cache.exists():
        return np.load(cache)

    def one(item_id: str) -> np.ndarray:
        try:
            # the runtime's decode: the catalogue's 60x80 JPEGs are never reduced (byte-identical)
            img = read_image(root / "images" / f"{item_id}.jpg", min_size=(height, width))
            return fit_image(img, height, width, fit)
        except ImageError as e:
            raise DataError(f"{root / 'images' / (item_id + '.jpg')}: {e}") from None

    with ThreadPoolExecutor(workers) as ex:
        arr = np.stack(list(ex.map(one, ids))) if ids else np.zeros((0, height, width, 3), np.uint8)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(cache)
    return arr


def load_fmnist_images(folder: Path, ids: Sequence[str]) -> np.ndarray:
    """ids look like 'train:123' / 't10k:5'."""
    parts = load_fmnist(folder)
    return np.stack([parts[i.split(":")[0]][0][int(i.split(":")[1])] for i in ids])


def read_splits(path: str | Path) -> list[dict[str, str]]:
    """Rows of a splits.csv: id, label, split."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_split(
    run_or_model_dir: str | Path, split: str = "test", data: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Images and labels of one split of a run (or of a shipped model folder).

    Returns (x uint8 NxHxWxC, y int class indices, ids, classes). Reads ``splits.csv`` and
    ``metadata.json`` from the folder; images come from ``data`` or the default shared data.
    """
    from fashion_edge.runtime.metadata import load_json

    d = Path(run_or_model_dir)
    if not (d / "splits.csv").exists() or not (d / "metadata.json").exists():
        raise DataError(f"{d}: needs splits.csv and metadata.json")
    meta = load_json(d / "metadata.json")
    rows = [r for r in read_splits(d / "splits.csv") if r["split"] == split]
    if not rows:
        raise DataError(f"{d / 'splits.csv'}: no rows in split '{split}'")
    ids = [r["id"] for r in rows]
    index = {c: i for i, c in enumerate(meta.classes)}
    y = np.array([index[r["label"]] for r in rows], dtype=np.int64)
    if meta.recipe == "fmnist":
        x = load_fmnist_images(Path(data) if data else FMNIST_DIR, ids)
    else:
        root = resolve_catalogue(data)
        x = load_catalogue_images(root, ids, meta.height, meta.width, meta.fit)
    return x, y, ids, meta.classes
