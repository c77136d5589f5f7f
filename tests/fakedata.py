"""Tiny generated data for unit tests: a catalogue in the Kaggle layout with learnable classes."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from fashion_edge.training.data import STYLES_FIELDS

# articleType -> (masterCategory, subCategory, shape drawn on a white background)
FAKE_TYPES = {
    "Tshirts": ("Apparel", "Topwear", "rect"),
    "Watches": ("Accessories", "Watches", "circle"),
    "Casual Shoes": ("Footwear", "Shoes", "ellipse"),
}


def draw_item(kind: str, rng: np.random.Generator, h: int = 80, w: int = 60) -> np.ndarray:
    """A white 80x60 image with one coloured shape: easy to learn, unlike any real product."""
    img = np.full((h, w, 3), 255, np.uint8)
    color = tuple(int(c) for c in rng.integers(0, 200, 3))
    cx, cy = w // 2 + int(rng.integers(-4, 5)), h // 2 + int(rng.integers(-4, 5))
    if kind == "rect":
        cv2.rectangle(img, (cx - 20, cy - 28), (cx + 20, cy + 28), color, -1)
    elif kind == "circle":
        cv2.circle(img, (cx, cy), 18, color, -1)
    else:
        cv2.ellipse(img, (cx, cy), (26, 10), 0, 0, 360, color, -1)
    return img


def make_catalogue(
    root: Path, n_per_class: int = 30, seed: int = 0, missing_images: int = 2, malformed_rows: int = 3
) -> Path:
    """Write styles.csv + images/<id>.jpg under root; some rows lack images, some are Kaggle-malformed."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    next_id = 1000
    for art, (master, sub, kind) in FAKE_TYPES.items():
        for _ in range(n_per_class):
            next_id += 1
            rows.append([str(next_id), "Men", master, sub, art, "Blue", "Summer", "2012", "Casual",
                         f"Brand Men {art} {next_id}"])  # fmt: skip
            img = draw_item(kind, rng)
            cv2.imwrite(str(root / "images" / f"{next_id}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    for _ in range(missing_images):  # rows whose image is absent
        next_id += 1
        rows.append([str(next_id), "Women", "Personal Care", "Fragrance", "Perfume and Body Mist",
                     "Black", "Winter", "2013", "Casual", "No image here"])  # fmt: skip
    with open(root / "styles.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(STYLES_FIELDS)
        csv.writer(f).writerows(rows)
        for i in range(malformed_rows):  # unquoted comma in productDisplayName, as in the Kaggle file
            f.write(f"{next_id + 1 + i},Men,Apparel,Topwear,Tshirts,Red,Fall,2011,Casual,Brand, Red Tshirt\n")
    return root
