"""benchmarks.site_stream: a stream labelled in batches, touches counted, the learner refitted."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fashion_edge import runtime
from fashion_edge.benchmarks import adapter_curve, site_stream
from tests.onnx_tiny import DEFAULT_CLASSES, colour_image, onnx_float_model, tiny_metadata


def stream_folder(root: Path, n: int = 24) -> Path:
    """Tshirts (red), Watches (green) and a class the model lacks, Jeans (yellow), n images each."""
    for i in range(n):
        strength = 120 + (i * 37) % 120
        red, green = colour_image(0, strength=strength), colour_image(1, strength=strength)
        yellow = red.copy()
        yellow[..., 1] = np.maximum(yellow[..., 1], yellow[..., 0])
        for name, img in (("Tshirts", red), ("Watches", green), ("Jeans", yellow)):
            (root / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / name / f"{i:03d}.png"), img[..., ::-1])
    return root


def test_stream_counts_every_touch_and_learns_the_new_class(tmp_path, monkeypatch):
    monkeypatch.setattr(adapter_curve, "CACHE_DIR", tmp_path / "cache")
    meta = tiny_metadata(DEFAULT_CLASSES, 80, 60, "onnx", "float32").replace(
        logits_output="logits", embedding_output="embedding", embedding_size=3
    )
    onnx_float_model(tmp_path / "model.onnx", meta)
    clf = runtime.load(tmp_path / "model.onnx")
    items = site_stream.folder_items(stream_folder(tmp_path / "site"))

    rows = site_stream.run_stream(clf, items, "test", batch=12, spot_check=0.25, seed=1, log=lambda _: None)

    assert sum(r.items for r in rows) == len(items) == 72
    taught = 0
    for r in rows:
        assert r.auto + r.touches == r.items  # every item is auto-accepted or a person's touch
        assert r.spot_checks <= r.touches
        taught += r.touches
        assert r.examples == taught  # every touch becomes an example for the next refit
    assert sum(r.spot_checks for r in rows) > 0
    assert rows[0].top1 < 0.8  # the model cannot name Jeans before it is taught
    assert np.mean([r.top1 for r in rows[-2:]]) > rows[0].top1  # it can after
    assert any(r.refit_s is not None for r in rows)


def test_summary_splits_the_stream_after_the_first_items():
    def row(b: int, touches: int, auto_wrong: int) -> site_stream.BatchRow:
        return site_stream.BatchRow(b, 100 * b, 100, touches, 0, 100 - touches, auto_wrong, 0.5, 0, None, "")

    s = site_stream.summary([row(1, 90, 0), row(2, 80, 0), row(3, 60, 1), row(4, 20, 4)], after=200)

    assert s["all"]["touches_per_100"] == 62.5
    assert s["after_200"]["items"] == 200
    assert s["after_200"]["touches_per_100"] == 40.0
    assert abs(s["after_200"]["auto_precision"] - (1 - 5 / 120)) < 1e-9
