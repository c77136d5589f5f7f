"""Fit a decoded image to a model's input, and the camera view: the one preprocessing path.

Decoding (``read_image``, ``decode_image``, ``ImageError``) lives in ``runtime.decode`` and is
re-exported here. Training builds its image cache with exactly these functions, so what the model saw in training
is what it sees in the app, ``fashion-label`` and the benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from fashion_edge.runtime.decode import (  # noqa: F401  (public names, re-exported)
    MARGIN,
    MAX_PIXELS,
    ImageError,
    choose_workers,
    decode_image,
    read_image,
    read_sized,
    sniff_image,
)
from fashion_edge.runtime.metadata import ModelMetadata

# The one list of image suffixes: folder listings label these and count every other file as
# skipped. HEIC/HEIF through pillow-heif, AVIF and GIF (first frame) through OpenCV; .jfif/.jpe
# are JPEG. A name without any suffix is an image when its first bytes are one (``is_image_file``).
IMAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif", ".heic", ".heif",
)  # fmt: skip


def is_image_file(path: str | Path) -> bool:
    """An image to label: a suffix in IMAGE_SUFFIXES (any case), or no suffix at all and a file
    that starts like an image (sniffed: regular files only, without blocking, 64 bytes read)."""
    suffix = os.path.splitext(os.path.basename(path))[1].lower()
    if suffix:
        return suffix in IMAGE_SUFFIXES
    return sniff_image(path) is not None


def center_crop_aspect(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Largest centred crop of ``img`` with the aspect ratio height:width (camera frames)."""
    h, w = img.shape[:2]
    target = width / height
    if w / h > target:  # too wide: trim the sides
        new_w = max(1, round(h * target))
        x0 = (w - new_w) // 2
        return img[:, x0 : x0 + new_w]
    new_h = max(1, round(w / target))
    y0 = (h - new_h) // 2
    return img[y0 : y0 + new_h, :]


AUTOCROP_MARGIN = 0.05  # share of the object's box added on each side
_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def autocrop_foreground(img: np.ndarray, margin: float = AUTOCROP_MARGIN) -> np.ndarray:
    """Crop a camera frame around its foreground object, keeping the frame's aspect ratio.

    Foreground = pixels far (in Lab, Otsu threshold) from the median colour of the frame's
    border, opened and closed; the box spans the connected parts at least 15 % of the largest.
    Returns ``img`` unchanged when the border is studio white (what the model was trained on),
    or the box is tiny (< 4 % of the frame) or most of it (> 80 %). Measured on webcam-like
    test images (benchmarks.robustness, int8 ONNX articletype8): top-1 +3.0 / +4.2 points on two
    seeds, clean catalogue images -0.06 points; about 0.3 ms per 80x60 frame.
    """
    h, w = img.shape[:2]
    if img.ndim != 3 or img.shape[2] != 3 or min(h, w) < 8:
        return img
    lab = cv2.cvtColor(cv2.GaussianBlur(img, (3, 3), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    b = max(1, min(h, w) // 20)
    border = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3),
                             lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])  # fmt: skip
    bg = np.median(border, axis=0)
    if bg[0] > 245 and abs(bg[1] - 128) < 4 and abs(bg[2] - 128) < 4:
        return img
    spread = float(np.percentile(np.linalg.norm(border - bg, axis=1), 75)) + 1.0
    dist = np.clip(np.linalg.norm(lab - bg, axis=2) * (40.0 / spread), 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(dist, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, _K5), cv2.MORPH_CLOSE, _K5)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return img
    parts = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= 0.15 * stats[1:, cv2.CC_STAT_AREA].max()]
    x0, y0 = parts[:, 0].min(), parts[:, 1].min()
    x1, y1 = (parts[:, 0] + parts[:, 2]).max(), (parts[:, 1] + parts[:, 3]).max()
    bw, bh = float(x1 - x0), float(y1 - y0)
    if not 0.04 * h * w <= bw * bh <= 0.8 * h * w:
        return img
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bw, bh = bw * (1 + 2 * margin), bh * (1 + 2 * margin)
    if bw / bh > w / h:
        bh = bw * h / w
    else:
        bw = bh * w / h
    cw, ch = min(w, round(bw)), min(h, round(bh))
    left = int(round(min(max(cx - cw / 2, 0), w - cw)))
    top = int(round(min(max(cy - ch / 2, 0), h - ch)))
    return img[top : top + ch, left : left + cw]


def fit_image(
    img: np.ndarray,
    height: int,
    width: int,
    mode: str = "pad",
    pad_value: int = 255,
    source_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Resize an RGB uint8 image to height x width: ``pad`` (keep aspect, pad), ``crop`` or ``stretch``.

    ``source_size``: the (height, width) the image had before a reduced decode; ``pad`` then
    places it exactly where the full-size image would go (its rounding, not the reduced one's).
    """
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    if mode == "crop":
        img = center_crop_aspect(img, height, width)
        mode = "stretch"
    if mode == "stretch":
        interp = cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_LINEAR
        return cv2.resize(img, (width, height), interpolation=interp)
    if mode != "pad":
        raise ValueError(f"unknown fit mode {mode!r}")
    sh, sw = source_size or (h, w)
    scale = min(height / sh, width / sw)
    new_h, new_w = max(1, round(sh * scale)), max(1, round(sw * scale))
    interp = cv2.INTER_AREA if (new_h < h if source_size else scale < 1) else cv2.INTER_LINEAR
    resized = cv2.resize(img, (new_w, new_h), interpolation=interp)
    out = np.full((height, width, 3), pad_value, dtype=np.uint8)
    y0, x0 = (height - new_h) // 2, (width - new_w) // 2
    out[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return out


def prepare(img: np.ndarray, meta: ModelMetadata, source_size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB uint8 image -> the model's HxWxC uint8 input (colour order and fit from metadata);
    ``source_size``: its size before a reduced decode (see ``fit_image``)."""
    out = fit_image(img, meta.height, meta.width, meta.fit, meta.pad_value, source_size)
    if meta.color_order.upper() == "BGR":
        out = out[:, :, ::-1]
    if meta.channels == 1:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[:, :, None]
    return np.ascontiguousarray(out)


def load_for_model(path: str | Path, meta: ModelMetadata) -> np.ndarray:
    """Read a file (a JPEG at reduced size where that keeps enough pixels) and prepare it: HxWxC uint8,
    placed exactly as the full-size decode would be."""
    img, full_size = read_sized(path, min_size=(meta.height, meta.width))
    return prepare(img, meta, full_size)


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files in a folder (``is_image_file``), sorted, hidden files skipped."""
    root = Path(folder)
    it = root.rglob("*") if recursive else root.iterdir()
    files = [
        p
        for p in it
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
        and not p.is_dir()
        and is_image_file(p)
    ]
    return sorted(files)


CAMERA_AUTOCROP = False  # off: on the shipped webcam-trained model it costs 6.9 points (87.6 -> 80.8 %, benchmarks/ROBUSTNESS.md)
CAMERA_WORK_HEIGHT = 160  # frames are shrunk to this before auto-crop: its kernels were tuned at 80x60


def camera_view(frame: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """What the model sees of a camera frame: the centred 3:4 crop inside the framing guide, shrunk,
    then (if ``CAMERA_AUTOCROP``) cropped around the largest foreground object."""
    crop = center_crop_aspect(frame, meta.height, meta.width)
    if crop.shape[0] > CAMERA_WORK_HEIGHT:
        scale = CAMERA_WORK_HEIGHT / crop.shape[0]
        crop = cv2.resize(
            crop, (max(1, round(crop.shape[1] * scale)), CAMERA_WORK_HEIGHT), interpolation=cv2.INTER_AREA
        )
    return autocrop_foreground(crop) if CAMERA_AUTOCROP else crop
