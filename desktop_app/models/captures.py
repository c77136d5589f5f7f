"""Saving a captured camera item with its label: <folder>/<label>/capture-<time>.png + a journal row."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fashion_edge.runtime.labeling import LabelRecord, append_records, sanitize_folder_name

JOURNAL_NAME = "fashion-labels.csv"


def save_capture(
    folder: str | Path, image_rgb: np.ndarray, label: str, prediction: Any | None = None
) -> Path:
    """Write the image (never overwriting) and append its row to <folder>/fashion-labels.csv.

    The row is source=model when ``label`` is the model's confident answer, else source=human.
    """
    root = Path(folder)
    sub = root / sanitize_folder_name(label)
    sub.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode the captured image")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = sub / (f"capture-{stamp}.png" if n == 0 else f"capture-{stamp}-{n}.png")
        try:
            with open(path, "xb") as f:
                f.write(data.tobytes())
            break
        except FileExistsError:
            continue
    else:
        raise OSError(f"{sub}: too many captures this second")
    by_model = prediction is not None and prediction.label == label and not prediction.needs_review
    if by_model:
        rec = LabelRecord(
            path.relative_to(root).as_posix(), label, prediction.confidence, list(prediction.top_k)
        )
    else:
        rec = LabelRecord(path.relative_to(root).as_posix(), label, 1.0, [], False, "", "human")
    append_records(root / JOURNAL_NAME, [rec])
    return path
