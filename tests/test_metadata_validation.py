"""Model metadata is validated on load: one clear line, never a traceback or a merged class folder."""

from __future__ import annotations

import pytest

from fashion_edge.runtime.classifier import ModelLoadError, load
from fashion_edge.runtime.metadata import MetadataError, ModelMetadata


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": ["", "a"]}, "is empty"),
        ({"classes": ["a", "a"]}, "listed twice"),
        ({"classes": ["Shirts", "shirts"]}, "listed twice"),
        ({"classes": ["needs_review", "a"]}, "reserved"),
        ({"classes": ["a|b", "c"]}, "contains '|'"),
        ({"classes": ["a/b", "c"]}, "contains '/'"),
        ({"classes": ["=HYPERLINK(1)", "c"]}, "formula"),
        ({"classes": ["-x", "c"]}, "formula"),
        ({"classes": ["tab\tin", "c"]}, "control character"),
        ({"classes": []}, "non-empty list"),
        ({"review_threshold": "high"}, "review_threshold 'high' is not a number"),
        ({"review_threshold": 1.5}, "not a number in [0, 1]"),
        ({"review_threshold": float("nan")}, "not a number in [0, 1]"),
        ({"temperature": 0}, "temperature"),
        ({"fit": "zoom"}, "fit 'zoom' is unknown"),
        ({"unknown_class": "other"}, "not one of the classes"),
    ],
)
def test_bad_metadata_is_refused_with_one_line(changes, message):
    d = {"classes": ["Tshirts", "Watches"], **changes}
    with pytest.raises(MetadataError) as e:
        ModelMetadata.from_dict(d)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_good_metadata_loads():
    meta = ModelMetadata.from_dict(
        {"classes": ["Tshirts", "unknown"], "unknown_class": "unknown", "review_threshold": 1}
    )
    assert meta.classes == ["Tshirts", "unknown"]


def test_a_model_file_with_bad_metadata_is_a_model_load_error(tmp_path):
    onnx = pytest.importorskip("onnx")
    from tests.onnx_tiny import make_tiny_models

    src = make_tiny_models(tflite=False)["onnx_int8"]
    model = onnx.load(str(src))
    for p in model.metadata_props:
        if p.key == "fashion_edge":
            meta = ModelMetadata.from_json(p.value)
            d = meta.to_dict()
            d["classes"] = ["a|b", *meta.classes[1:]]
            import json

            p.value = json.dumps(d)
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ModelLoadError, match=r"bad\.onnx: metadata class name 'a\|b' contains '\|'"):
        load(bad)
