"""Make catalogue studio shots look like webcam photos taken at a warehouse sorting table.

The catalogue shows each item centred on white. The app sees items on tables and floors, under
warm or cold light, off-centre, partly cut off, blurred, noisy and JPEG-compressed. This module
cuts the item out of its white background (``foreground_mask``, in ``webcam_mask``), puts it on
a table-like background (``webcam_backgrounds``) and degrades it like a cheap camera would
(``webcam_like``). It is both a test-set generator (``make_webcam_set``, console script
``fashion-webcamset``) and a fast on-the-fly training augmentation (``augment_batch``,
``BatchAugmenter``). No TensorFlow here.
"""

from __future__ import annotations

import argparse
import csv
import sys
import zlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from fashion_edge.runtime.metadata import MetadataError
from fashion_edge.runtime.preprocess import ImageError, read_image
from fashion_edge.training.webcam_backgrounds import (
    BANK_SEED,
    BANK_TILES,
    NOISE_SHAPE,
    SURFACE_COLOURS,
    TILE_SHAPE,
    WebcamDependencyError,
    background_bank,
    noise_bank,
    random_background,
    sample_textures,
)
from fashion_edge.training.webcam_mask import foreground_mask, mask_and_darkness, soft_alpha

__all__ = [
    "BANK_SEED", "BANK_TILES", "LABEL_FIELDS", "NOISE_SHAPE", "SURFACE_COLOURS", "TILE_SHAPE", "BatchAugmenter",
    "WebcamDependencyError", "augment_batch", "background_bank", "contact_sheet", "foreground_mask", "item_rng",
    "load_webcam_set", "main", "make_webcam_set", "random_background", "webcam_like", "webcam_like_jpeg",
]  # fmt: skip

LABEL_FIELDS = ["file", "id", "label", "split"]


# --- the webcam look ------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _grids(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / max(w - 1, 1) * 2 - 1, yy / max(h - 1, 1) * 2 - 1
    return xx, yy, xx * xx + yy * yy


def _homography(u: np.ndarray, h: int, w: int, strength: float) -> np.ndarray:
    """Scale 0.6-1.1, rotation, off-centre shift (sometimes cut at an edge), slight perspective."""
    scale = 1 + strength * (0.5 * u[0] - 0.4)  # 0.6 .. 1.1
    angle = strength * 15 * (2 * u[1] - 1)
    cut = u[2] < 0.25 * strength  # push the item over an edge
    reach = 0.42 if cut else 0.18
    dx, dy = strength * reach * (2 * u[3] - 1) * w, strength * reach * (2 * u[4] - 1) * h
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    rot[:, 2] += (dx, dy)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = cv2.transform(src[None], rot)[0]
    jitter = strength * 0.06 * np.float32([w, h]) * (2 * u[5:13].reshape(4, 2).astype(np.float32) - 1)
    return cv2.getPerspectiveTransform(src, (dst + jitter).astype(np.float32))


def _render(img: np.ndarray, rng: np.random.Generator, strength: float) -> tuple[np.ndarray, int]:
    """The webcam-like image before JPEG compression, and the JPEG quality to use."""
    h, w = img.shape[:2]
    u = rng.random(40)
    rgba = cv2.merge([*cv2.split(img), soft_alpha(*mask_and_darkness(img))])
    warped = cv2.warpPerspective(rgba, _homography(u, h, w, strength), (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255, 0))  # fmt: skip
    alpha8 = np.ascontiguousarray(warped[:, :, 3])
    # background: tinted, darkened by the item's soft shadow (cast away from the light)
    bg = random_background(rng, h, w)
    tint = 0.85 + 0.3 * u[14:17]
    bg = cv2.multiply(bg, (float(tint[0]), float(tint[1]), float(tint[2]), 0.0))
    shift = np.float32([[1, 0, (2 * u[17] - 1) * 5], [0, 1, 1 + 4 * u[18]]])
    shadow = cv2.blur(cv2.warpAffine(alpha8, shift, (w, h)), (7, 7))
    shade = cv2.convertScaleAbs(shadow, alpha=-(0.15 + 0.35 * u[19]), beta=255)
    bg = cv2.multiply(bg, cv2.merge([shade, shade, shade]), scale=1 / 255)
    # a studio pixel is a * item + (1 - a) * white, so swapping white for the background is
    # pixel - (1 - a) * (255 - background)
    inv_a = cv2.bitwise_not(alpha8)
    spill = cv2.multiply(cv2.bitwise_not(bg), cv2.merge([inv_a, inv_a, inv_a]), scale=1 / 255)
    comp = cv2.subtract(cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB), spill)
    # light: brightness, an illumination gradient + vignette, colour temperature
    xx, yy, r2 = _grids(h, w)
    s = strength
    brightness = 1 + s * (0.55 * u[20] - 0.35)
    gx, gy, vig = s * 0.25 * (2 * u[21] - 1), s * 0.25 * (2 * u[22] - 1), s * 0.25 * u[23]
    light = brightness * (1 + gx * xx + gy * yy - vig * r2)
    temp = s * (2 * u[24] - 1)  # < 0 cold (bluish), > 0 warm (yellow/orange)
    gains = np.float32([1 + 0.14 * temp, 1 + 0.02 * temp, 1 - 0.18 * temp])
    out = comp.astype(np.float32)
    out *= light[:, :, None] * gains
    # optics: mild defocus or motion blur; a low-resolution sensor (down and up again)
    if u[25] < 0.25 * s:
        out = cv2.GaussianBlur(out, (0, 0), 0.3 + 0.4 * u[26] * s)
    elif u[25] < 0.33 * s:
        out = cv2.filter2D(out, -1, _motion_kernel(2 + int(u[26] * 1.99), int(u[27] * 4)))
    elif u[28] < 0.15 * s:
        f = 0.65 + 0.25 * u[29]
        small = cv2.resize(out, (max(2, round(w * f)), max(2, round(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    # sensor noise, stronger in the dark
    noise = _noise_crop(rng, h, w)
    sigma_n = s * (1 + 6 * u[30])
    out += noise * (sigma_n * (1.4 - light))[:, :, None]
    out8 = np.clip(out, 0, 255).astype(np.uint8)
    gamma = 1 + s * 0.35 * (2 * u[31] - 1)
    out8 = cv2.LUT(out8, _gamma_lut(round(gamma, 2)))
    quality = int(round(90 - s * 60 * u[32]))
    return out8, max(5, min(100, quality))


def _noise_crop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    bank = noise_bank()
    if h > bank.shape[0] or w > bank.shape[1]:
        return rng.standard_normal((h, w, 3), dtype=np.float32)
    y0, x0 = int(rng.integers(0, bank.shape[0] - h + 1)), int(rng.integers(0, bank.shape[1] - w + 1))
    return bank[y0 : y0 + h, x0 : x0 + w]


@lru_cache(maxsize=16)
def _motion_kernel(length: int, direction: int) -> np.ndarray:
    """A normalised line kernel: horizontal, vertical or one of the diagonals."""
    k = np.zeros((length, length), np.float32)
    if direction == 0:
        k[length // 2, :] = 1
    elif direction == 1:
        k[:, length // 2] = 1
    else:
        np.fill_diagonal(k if direction == 2 else k[::-1], 1)
    return k / k.sum()


@lru_cache(maxsize=128)
def _gamma_lut(gamma: float) -> np.ndarray:
    return np.clip(255 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)


def _jpeg_bytes(img_rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return buf.tobytes()


def _decode_jpeg(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def webcam_like_jpeg(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> bytes:
    """``webcam_like`` as the JPEG file bytes it decodes from (what ``make_webcam_set`` writes)."""
    out, quality = _render(_as_rgb(img), rng, float(strength))
    return _jpeg_bytes(out, quality)


def webcam_like(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A catalogue image (HxWx3 uint8 RGB, white background) as a webcam might see it; same size.

    The item is cut out and placed on a random table/floor background with random scale
    (0.6-1.1), offset, rotation, perspective and sometimes cut at an edge; then warm/cold light,
    brightness, gamma, an illumination gradient, a soft shadow, blur, noise and JPEG quality 30-90.
    Deterministic given ``rng``'s state. ``strength`` scales every change (0: only the new
    background; 1: the full range). HxWx1 input is handled as grey.
    """
    gray = img.ndim == 3 and img.shape[2] == 1
    out = _decode_jpeg(webcam_like_jpeg(img, rng, strength))
    return cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[:, :, None] if gray else out


def _as_rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
    return np.ascontiguousarray(img)


def augment_batch(
    x: np.ndarray, rng: np.random.Generator, p: float = 0.5, strength: float = 1.0
) -> np.ndarray:
    """A copy of an N x H x W x C uint8 batch where a random share ``p`` of images is ``webcam_like``."""
    out = np.array(x, dtype=np.uint8, copy=True)
    pick = np.flatnonzero(rng.random(len(out)) < p)
    for i in pick:
        out[i] = webcam_like(out[i], rng, strength)
    return out


class BatchAugmenter:
    """A seeded callable ``x -> augment_batch(x, ...)`` that owns its generator.

    Meant for ``tf.numpy_function(BatchAugmenter(seed), [x], tf.uint8)``: each call continues
    the same random stream, so a training run is repeatable for a given seed and call order.
    """

    def __init__(self, seed: int = 0, p: float = 0.5, strength: float = 1.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.p, self.strength = p, strength
        background_bank()  # build the caches now, not inside the first training step
        noise_bank()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return augment_batch(np.asarray(x), self.rng, self.p, self.strength)


# --- a webcam-like evaluation set -----------------------------------------------------------


def item_rng(seed: int, item_id: str, k: int) -> np.random.Generator:
    """The generator for copy ``k`` of item ``item_id``: independent of order and subset."""
    return np.random.default_rng([int(seed), zlib.crc32(item_id.encode()), int(k)])


def make_webcam_set(
    model_or_run_dir: str | Path,
    out_dir: str | Path,
    split: str = "test",
    seed: int = 0,
    per_image: int = 1,
    data: str | Path | None = None,
    strength: float = 1.0,
    sheet_grid: tuple[int, int] = (8, 8),
) -> Path:
    """Write webcam-like copies of a run's (or model folder's) split to ``out_dir``.

    Writes ``images/<id>_<k>.jpg``, ``labels.csv`` (file,id,label,split) and ``contact_sheet.png``
    (originals next to their webcam-like copies). Same seed -> same files, byte for byte.
    """
    from fashion_edge.training.data import DataError, load_split

    if per_image < 1:
        raise DataError(f"per_image must be >= 1, got {per_image}")
    try:
        x, y, ids, classes = load_split(model_or_run_dir, split, data=data)
    except KeyError as e:  # a label in splits.csv that metadata.json does not list
        raise DataError(
            f"{Path(model_or_run_dir) / 'splits.csv'}: label {e} is not a class in metadata.json"
        ) from None
    if x.ndim != 4 or x.shape[3] != 3:
        raise DataError(
            f"{model_or_run_dir}: webcam-like images need RGB catalogue images, got shape {x.shape[1:]}"
        )
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, pairs = [], []
    for img, yi, item_id in zip(x, y, ids, strict=True):
        for k in range(per_image):
            name = f"images/{item_id}_{k}.jpg"
            data_bytes = webcam_like_jpeg(img, item_rng(seed, item_id, k), strength)
            (out / name).write_bytes(data_bytes)
            rows.append([name, item_id, classes[int(yi)], split])
            if k == 0 and len(pairs) < sheet_grid[0] * sheet_grid[1]:
                pairs.append((img, _decode_jpeg(data_bytes), classes[int(yi)]))
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(LABEL_FIELDS)
        writer.writerows(rows)
    cv2.imwrite(
        str(out / "contact_sheet.png"), cv2.cvtColor(contact_sheet(pairs, sheet_grid[1]), cv2.COLOR_RGB2BGR)
    )
    return out


def contact_sheet(
    pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], cols: int = 8, zoom: int = 2
) -> np.ndarray:
    """An RGB grid of (original | webcam-like) pairs, each captioned with its label, enlarged."""
    if not pairs:
        return np.full((32, 32, 3), 255, np.uint8)
    h, w = pairs[0][0].shape[:2]
    cell_w, cell_h, caption = 2 * w * zoom + 6, h * zoom + 16, 14
    rows = -(-len(pairs) // cols)
    sheet = np.full((rows * cell_h + 4, cols * cell_w + 4, 3), 255, np.uint8)
    for i, (orig, fake, label) in enumerate(pairs):
        r, c = divmod(i, cols)
        y0, x0 = 2 + r * cell_h, 2 + c * cell_w
        for j, im in enumerate((orig, fake)):
            big = cv2.resize(im, (w * zoom, h * zoom), interpolation=cv2.INTER_NEAREST)
            sheet[y0 : y0 + h * zoom, x0 + j * w * zoom : x0 + (j + 1) * w * zoom] = big
        cv2.putText(sheet, label[:18], (x0 + 2, y0 + h * zoom + caption - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    return sheet


def load_webcam_set(out_dir: str | Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Read a set written by ``make_webcam_set``: (x uint8 NxHxWx3, labels, ids)."""
    from fashion_edge.training.data import DataError

    d = Path(out_dir)
    path = d / "labels.csv"
    if not path.exists():
        raise DataError(f"{d}: no labels.csv (not a webcam set written by fashion-webcamset)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != LABEL_FIELDS:
            raise DataError(f"{path}: header is not {','.join(LABEL_FIELDS)}")
        rows = list(reader)
    if not rows:
        raise DataError(f"{path}: no rows")
    images = []
    for r in rows:
        try:
            images.append(read_image(d / r["file"]))
        except ImageError as e:
            raise DataError(f"{d / r['file']}: {e}") from None
    return np.stack(images), [r["label"] for r in rows], [r["id"] for r in rows]


def main(argv: Sequence[str] | None = None) -> int:
    """``fashion-webcamset RUN_OR_MODEL_DIR --out DIR [--split test] [--seed 0] [--per-image 1]``."""
    from fashion_edge.training.data import DataError

    ap = argparse.ArgumentParser(
        prog="fashion-webcamset",
        description="Write webcam-like copies of a run's (or model folder's) split, with labels.csv and a contact sheet.",
    )
    ap.add_argument(
        "run_or_model_dir", help="folder with metadata.json and splits.csv (a run or a model folder)"
    )
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--split", default="test", help="split to convert (default: test)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same files)")
    ap.add_argument("--per-image", type=int, default=1, help="webcam-like copies per image (default: 1)")
    ap.add_argument("--strength", type=float, default=1.0, help="0: new background only, 1: full range")
    ap.add_argument("--data", default=None, help="catalogue folder or tarball (default: ../shared/data)")
    args = ap.parse_args(argv)
    try:
        sample_textures()  # fail before reading any data when scikit-image is missing
        out = make_webcam_set(args.run_or_model_dir, args.out, args.split, args.seed, args.per_image,
                              data=args.data, strength=args.strength)  # fmt: skip
    except (DataError, MetadataError, ImageError, ValueError, OSError, WebcamDependencyError) as e:
        print(f"fashion-webcamset: error: {_one_line(e)}", file=sys.stderr)
        return 2
    n = sum(1 for _ in open(out / "labels.csv", encoding="utf-8")) - 1
    print(
        f"wrote {n} webcam-like images to {out / 'images'}, labels {out / 'labels.csv'}, sheet {out / 'contact_sheet.png'}"
    )
    return 0


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    msg = text[0] if text else type(e).__name__
    if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
        msg = f"{e.filename}: {msg}"
    return msg


if __name__ == "__main__":
    sys.exit(main())
