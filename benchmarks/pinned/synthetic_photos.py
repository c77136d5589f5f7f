"""Deterministic photo-like JPEGs without any project data: ``photo`` = 12 MP (4000x3000, q90,
~800 KB), ``thumb`` = 60x80 (q75). Used where real-dev may not be copied (a lent timing machine).

    python benchmarks/pinned/synthetic_photos.py OUT N photo|thumb [START STEP]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np


def scene(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour fields, fine blurred noise and a few discs: JPEG sizes like real photos."""
    small = rng.integers(0, 256, (max(2, h // 150), max(2, w // 150), 3)).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(rng.normal(0, 18, (h // 4, w // 4, 3)).astype(np.float32), (0, 0), 1.0)
    img = np.clip(img.astype(np.float32) + cv2.resize(noise, (w, h)), 0, 255).astype(np.uint8)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, centre, int(rng.integers(50, min(h, w) // 3)), c, -1)
    return img


def main(argv: list[str]) -> None:
    out, n, kind = Path(argv[0]), int(argv[1]), argv[2]
    start, step = (int(argv[3]), int(argv[4])) if len(argv) > 4 else (0, 1)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(start, n, step):
        rng = np.random.default_rng(i)
        if kind == "photo":
            h, w = (3000, 4000) if i % 2 else (4000, 3000)
            img, q = scene(h, w, rng), 90
        else:
            img, q = scene(800, 600, rng)[::10, ::10].copy(), 75
        cv2.imwrite(str(out / f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, q])


if __name__ == "__main__":
    main(sys.argv[1:])
