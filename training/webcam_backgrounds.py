"""Seeded table/floor backgrounds and the sensor-noise bank for webcam-like images."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

BANK_SEED = 20261123  # the background and noise banks are the same in every process
BANK_TILES = 96  # background tiles in the bank
TILE_SHAPE = (160, 120)  # tile height, width: twice the model input so crops differ
NOISE_SHAPE = (160, 160)

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
    textures = sample_textures()
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
def sample_textures() -> tuple[np.ndarray, ...]:
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
def noise_bank() -> np.ndarray:
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
