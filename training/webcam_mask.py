"""Cut a catalogue item out of its white studio background: the mask and its soft alpha edge."""

from __future__ import annotations

import cv2
import numpy as np

_K3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
_K7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def foreground_mask(img: np.ndarray, white_tol: int = 14, min_part: float = 0.06) -> np.ndarray:
    """Mask (uint8 0/255, HxW) of the item in a studio shot on a white or near-white background.

    Cues: distance from white, colour saturation and edges (so white items on white are found by
    their outline); then closing, hole filling and keeping the large connected parts (a pair of
    shoes stays two parts). ``white_tol`` is how far from pure white a pixel may be and still
    count as background; parts smaller than ``min_part`` of the largest are dropped.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {img.dtype} {img.shape}")
    return mask_and_darkness(img, white_tol, min_part)[0]


def mask_and_darkness(
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


def soft_alpha(mask: np.ndarray, darkness: np.ndarray, ramp: float = 60.0) -> np.ndarray:
    """Alpha (uint8) of the item: 255 inside, fading with whiteness over a 2 px rim (no white halo)."""
    rim = cv2.subtract(mask, cv2.erode(mask, _K5))
    soft = cv2.convertScaleAbs(darkness, alpha=255 / ramp)
    return np.where(rim > 0, soft, mask)
