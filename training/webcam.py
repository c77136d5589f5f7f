"""Make catalogue studio shots look like webcam photos taken at a warehouse sorting table.

The catalogue shows each item centred on white. The app sees items on tables and floors, under
warm or cold light, off-centre, partly cut off, blurred, noisy and JPEG-compressed. This module
cuts the item out of its white background (``foreground_mask``), puts it on a table-like
background and degrades it like a cheap camera would (``webcam_like``). It is both a test-set
generator (``make_webcam_set``, console script ``fashion-webcamset``) and a fast on-the-fly
training augmentation (``augment_batch``, ``BatchAugmenter``). No TensorFlow here.
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

BANK_SEED = 20261123  # the background and noise banks are the same in every process
BANK_TILES = 96  # background tiles in the bank
TILE_SHAPE = (160, 120)  # tile height, width: twice the model input so crops differ
NOISE_SHAPE = (160, 160)
LABEL_FIELDS = ["file", "id", "label", "split"]

_K3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
_K7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


# --- foreground mask ------------------------------------------------------------------------


def foreground_mask(img: np.ndarray, white_tol: int = 14, min_part: float = 0.06) -> np.ndarray:
    """Mask (uint8 0/255, HxW) of the item in a studio shot on a white or near-white background.

    Cues: distance from white, colour saturation and edges (so white items on white are found by
    their outline); then closing, hole filling and keeping the large connected parts (a pair of
    shoes stays two parts). ``white_tol`` is how far from pure white a pixel may be and still
    count as background; parts smaller than ``min_part`` of the largest are dropped.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {img.dtype} {img.shape}")
    return _mask_and_darkness(img, white_tol, min_part)[0]


def _mask_and_darkness(
    img: np.ndarray, white_tol: int = 14, min_part: float = 0.06
) -> tuple[np.ndarray, np.ndarray]:
    r, g, b = cv2.split(img)
    lo, hi = cv2.min(cv2.min(r, g), b), cv2.max(cv2.max(r, g), b)
    darkness = cv2.bitwise_not(lo)  # 255 - min: 0 on pure white, large for dark or coloured pixels
    spread = cv2.subtract(hi, lo)  # colourfulness: pale colours on white
    edges = cv2.morphologyEx(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.MORPH_GRADIENT, _K3)  # white items
    mask = cv2.bitwise_or(cv2.bitwise_or(cv2.compare(darkness, white_tol, cv2.CMP_GT),
                                         cv2.compare(spread, 10, cv2.CMP_GT)), cv2.compare(edges, 8, cv2.CMP_GT))  # fmt: skip
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _K7)
    # white items: the studio white is nearly pure, and off-white fabric is not, even where its
    # outline is too faint for the cues above (eroded, then opened: no JPEG ringing specks)
    pure = cv2.bitwise_and(cv2.compare(darkness, 4, cv2.CMP_LE), cv2.compare(spread, 6, cv2.CMP_LE))
    off_white = cv2.morphologyEx(cv2.erode(cv2.bitwise_not(pure), _K3), cv2.MORPH_OPEN, _K5)
    if cv2.countNonZero(off_white) < 0.9 * off_white.size:  # else the backdrop itself is off-white
        mask = cv2.bitwise_or(mask, off_white)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _K3)
    mask = _large_parts(_fill_holes(mask, pure), min_part)
    # closing and the edge cue reach ~3 px into the white: drop near-white pixels of that rim
    rim = cv2.subtract(mask, cv2.erode(mask, _K7))
    near_white = cv2.bitwise_and(cv2.compare(darkness, 6, cv2.CMP_LE), cv2.compare(spread, 8, cv2.CMP_LE))
    mask[cv2.bitwise_and(rim, near_white) > 0] = 0
    return mask, darkness


def _fill_holes(mask: np.ndarray, pure: np.ndarray, see_through: float = 0.012) -> np.ndarray:
    """Fill holes inside the item (regions the border cannot reach) except see-through ones.

    A hole of mostly pure white larger than ``see_through`` of the image is backdrop seen through
    the item (a bag handle's loop, the gap between legs) and stays background.
    """
    h, w = mask.shape
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1] = mask
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 255)
    holes = cv2.bitwise_not(flood[1:-1, 1:-1])
    if not cv2.countNonZero(holes):
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    if n <= 1:
        return mask
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    pure_px = np.bincount(labels.ravel(), weights=(pure.ravel() > 0), minlength=n)
    fill = (area <= see_through * h * w) | (pure_px < 0.5 * area)
    fill[0] = False
    return cv2.bitwise_or(mask, (fill[labels] * 255).astype(np.uint8))


def _large_parts(mask: np.ndarray, min_part: float) -> np.ndarray:
    """Keep connected components at least ``min_part`` times the largest one."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.concatenate([[False], areas >= max(8, min_part * areas.max())])
    return (keep[labels] * 255).astype(np.uint8)


def _soft_alpha(mask: np.ndarray, darkness: np.ndarray, ramp: float = 60.0) -> np.ndarray:
    """Alpha (uint8) of the item: 255 inside, fading with whiteness over a 2 px rim (no white halo)."""
    rim = cv2.subtract(mask, cv2.erode(mask, _K5))
    soft = cv2.convertScaleAbs(darkness, alpha=255 / ramp)
    return np.where(rim > 0, soft, mask)


# --- backgrounds ----------------------------------------------------------------------------

# RGB surface colours: grey / beige / brown tables, dark floors, cardboard, off-white, blue-grey
SURFACE_COLOURS = np.array(
    [
        [128, 128, 128], [170, 168, 160], [95, 95, 98], [200, 190, 170], [185, 160, 125],
        [140, 105, 70], [100, 70, 45], [60, 50, 45], [40, 40, 42], [70, 75, 80],
        [190, 150, 100], [225, 222, 215], [150, 160, 170], [110, 120, 105], [175, 140, 115],
        [215, 215, 212], [235, 232, 225], [200, 205, 210],
    ],
    np.float32,
)  # fmt: skip


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a small random grid upscaled smoothly."""
    h, w = shape
    small = rng.uniform(-1, 1, (cells, max(2, round(cells * w / h)))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def _colour(rng: np.random.Generator) -> np.ndarray:
    base = SURFACE_COLOURS[rng.integers(len(SURFACE_COLOURS))]
    return np.clip(base * rng.uniform(0.85, 1.15) + rng.normal(0, 8, 3), 5, 250).astype(np.float32)


def _plain(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    shade = 1 + 0.08 * _smooth_noise(rng, shape, 3) + 0.02 * rng.standard_normal(shape).astype(np.float32)
    return _colour(rng)[None, None, :] * shade[:, :, None]


def _wood(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    warp = 6 * _smooth_noise(rng, shape, 4)
    freq = rng.uniform(0.15, 0.5)
    grain = np.sin((xx + warp * 3) * freq + 0.5 * np.sin(yy * 0.05)) * 0.5 + 0.5
    fine = _smooth_noise(rng, (h, w), 40)
    pattern = 0.82 + 0.14 * grain + 0.05 * fine
    if rng.random() < 0.5:
        pattern = cv2.resize(pattern.T.copy(), (w, h))
    wood = np.array([150, 105, 65], np.float32) * rng.uniform(0.6, 1.4)
    return np.clip(wood, 20, 235)[None, None, :] * pattern[:, :, None]


def _tiles(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    out = _plain(rng, shape)
    period = int(rng.integers(30, 80))
    grout = _colour(rng) * 0.7
    x0, y0 = rng.integers(0, period, 2)
    thick = int(rng.integers(1, 4))
    for y in range(int(y0), h, period):
        out[y : y + thick] = grout
    for x in range(int(x0), w, period):
        out[:, x : x + thick] = grout
    return out


def _weave(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(0.8, 2.0)
    pattern = 0.9 + 0.06 * np.sin(xx * f) * np.sin(yy * f) + 0.05 * _smooth_noise(rng, shape, 5)
    return _colour(rng)[None, None, :] * pattern[:, :, None]


def _gradient(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * 0.5 + 0.5
    c0, c1 = _colour(rng), _colour(rng)
    return c0[None, None, :] * (1 - t[:, :, None]) + c1[None, None, :] * t[:, :, None]


def _photo_texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A crop of scikit-image's bundled texture photos (brick, gravel, grass), tinted, low contrast."""
    textures = _sample_textures()
    tex = textures[int(rng.integers(len(textures)))]
    h, w = shape
    size = int(rng.integers(max(h, 100), tex.shape[0]))
    y0, x0 = rng.integers(0, tex.shape[0] - size + 1, 2)
    crop = tex[y0 : y0 + size, x0 : x0 + round(size * w / h)]
    crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    contrast = rng.uniform(0.25, 0.7)
    pattern = 1 + contrast * (crop - crop.mean())
    return _colour(rng)[None, None, :] * pattern[:, :, None]


class WebcamDependencyError(ImportError):
    """scikit-image is missing: seeded webcam-like sets would silently differ, so they are refused."""


@lru_cache(maxsize=1)
def _sample_textures() -> tuple[np.ndarray, ...]:
    """scikit-image's bundled texture photos. No fallback: a different bank would change every
    "seeded" webcam-like set between installs without a word."""
    try:
        from skimage import data
    except ImportError:
        raise WebcamDependencyError(
            "webcam-like images need scikit-image (its brick/gravel/grass photos): pip install 'fashion-edge[train]'"
        ) from None
    return tuple(getattr(data, name)() for name in ("brick", "gravel", "grass"))


_GENERATORS = (_plain, _plain, _wood, _wood, _tiles, _weave, _gradient, _photo_texture, _photo_texture)


@lru_cache(maxsize=1)
def background_bank() -> np.ndarray:
    """BANK_TILES seeded background tiles, N x 160 x 120 x 3 uint8 (built once, same everywhere)."""
    rng = np.random.default_rng(BANK_SEED)
    tiles = []
    for i in range(BANK_TILES):
        tile = _GENERATORS[i % len(_GENERATORS)](rng, TILE_SHAPE)
        tile = tile + rng.normal(0, 1.5, tile.shape)  # surface grain
        tiles.append(np.clip(tile, 0, 255).astype(np.uint8))
    return np.stack(tiles)


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(BANK_SEED + 1).standard_normal((*NOISE_SHAPE, 3)).astype(np.float32)


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A seeded HxWx3 uint8 background: a random crop (and flip) of a random bank tile."""
    bank = background_bank()
    tile = bank[int(rng.integers(len(bank)))]
    th, tw = tile.shape[:2]
    if height > th or width > tw:
        s = max(height / th, width / tw)
        tile = cv2.resize(tile, (int(np.ceil(tw * s)), int(np.ceil(th * s))))
        th, tw = tile.shape[:2]
    y0, x0 = int(rng.integers(0, th - height + 1)), int(rng.integers(0, tw - width + 1))
    crop = tile[y0 : y0 + height, x0 : x0 + width]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


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
    rgba = cv2.merge([*cv2.split(img), _soft_alpha(*_mask_and_darkness(img))])
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
    bank = _noise_bank()
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
        _noise_bank()

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
        _sample_textures()  # fail before reading any data when scikit-image is missing
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
