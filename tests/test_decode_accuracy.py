"""The reduced-vs-full decode check (benchmarks.decode_accuracy) works for any model input size."""

from __future__ import annotations

import cv2
import pytest

from fashion_edge.benchmarks import decode_accuracy as da
from fashion_edge.runtime.classifier import load
from tests.onnx_tiny import DEFAULT_CLASSES, colour_image, make_tiny_models


@pytest.mark.parametrize("size", [(80, 60), (160, 120)])
def test_accuracy_check_compares_reduced_and_full_decodes(tmp_path, size):
    clf = load(make_tiny_models(tflite=False, h=size[0], w=size[1])["onnx_int8"], threads=1)
    paths, labels = [], []
    for i in range(3):
        big = cv2.resize(colour_image(i, 80, 60), (1500, 2000), interpolation=cv2.INTER_NEAREST)
        paths.append(tmp_path / f"{i}.jpg")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        labels.append(DEFAULT_CLASSES[i])
    r = da._compare(clf, paths, labels)
    assert r["reduced"] == 3 and r["agreement"] == 1.0 and r["top1_full"] == r["top1_reduced"] == 1.0
    sweep = da.margin_sweep(clf, paths[:1])
    assert [m["margin"] for m in sweep] == list(da.SWEEP_MARGINS)
    assert all(m["n"] == len(da.SWEEP_LONG_SIDES) and m["agreement"] == 1.0 for m in sweep)
    assert "| 2 |" in da.report({"model": "m", "input": list(size), "margin": 2.0, "native": r, "12mp": r,
                                 "margin_sweep": sweep})  # fmt: skip
