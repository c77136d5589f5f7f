"""The runtime facade: load ONNX/TFLite float/int8 files, preprocess, predict, clear load errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fashion_edge.runtime import ModelLoadError, default_model_path, load
from fashion_edge.runtime.classifier import softmax
from fashion_edge.runtime.metadata import ONNX_KEY, ModelMetadata, tflite_with_metadata
from tests.onnx_tiny import colour_image, make_tiny_models, tiny_metadata

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["Tshirts", "Watches", "Casual Shoes"]


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    return make_tiny_models()


@pytest.fixture(params=["onnx_float32", "onnx_int8", "tflite_float32", "tflite_int8", "tflite_uint8"])
def model_path(request, tiny_models) -> Path:
    return tiny_models[request.param]


def with_onnx_metadata(src: Path, dst: Path, meta: ModelMetadata | None) -> Path:
    """A copy of an ONNX file with other (or no) embedded metadata."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    del model.metadata_props[:]
    if meta is not None:
        helper.set_model_props(model, {ONNX_KEY: meta.to_json()})
    onnx.save(model, str(dst))
    return dst


def test_load_reads_metadata_and_predicts_known_colours(model_path):
    clf = load(model_path, threads=1)
    assert clf.classes == CLASSES
    assert clf.format == model_path.suffix.lstrip(".")
    assert clf.precision == ("int8" if "int8" in model_path.name else "float32")
    preds = clf.predict([colour_image(c) for c in (0, 1, 2, 2, 1, 0)], top_k=2)
    assert [p.label for p in preds] == [CLASSES[c] for c in (0, 1, 2, 2, 1, 0)]
    for p in preds:
        assert len(p.top_k) == 2 and p.top_k[0] == (p.label, p.confidence)
        assert p.top_k[0][1] >= p.top_k[1][1]
        assert p.needs_review == (p.confidence < clf.meta.review_threshold)


def test_int8_agrees_with_float(tiny_models):
    rng = np.random.default_rng(1)
    x = np.stack([colour_image(int(rng.integers(3)), strength=int(rng.integers(40, 255))) for _ in range(40)])
    for fmt in ("onnx", "tflite"):
        pf = load(tiny_models[f"{fmt}_float32"]).probabilities(x)
        pq = load(tiny_models[f"{fmt}_int8"]).probabilities(x)
        assert (pf.argmax(1) == pq.argmax(1)).mean() >= 0.95
        assert np.abs(pf - pq).max() < 0.1


def test_uint8_io_file_takes_raw_pixels_and_agrees_with_float(tiny_models):
    """The --int8-io file (uint8 in: q = x, uint8 out) gives the float file's top-1 through runtime.load."""
    rng = np.random.default_rng(2)
    x = np.stack([colour_image(int(rng.integers(3)), strength=int(rng.integers(40, 255))) for _ in range(40)])
    q = load(tiny_models["tflite_uint8"])
    assert q.backend.input_dtype == np.uint8 and tuple(q.backend.in_quant) == (1.0, 0)
    assert q.backend.output_dtype == np.uint8 and q.meta.input_quant == {"scale": 1.0, "zero_point": 0}
    pf, pq = load(tiny_models["tflite_float32"]).probabilities(x), q.probabilities(x)
    assert (pf.argmax(1) == pq.argmax(1)).all()
    assert np.abs(pf - pq).max() < 0.1
    assert np.array_equal(q.probabilities(x.astype(np.float32)), pq)  # float pixels: quantized to the same


def test_probabilities_are_calibrated_softmax(model_path):
    clf = load(model_path)
    x = np.stack([colour_image(c) for c in range(3)])
    logits = clf.logits(x)
    assert logits.dtype == np.float32 and logits.shape == (3, 3)
    np.testing.assert_allclose(clf.probabilities(x), softmax(logits, clf.meta.temperature), atol=1e-6)
    np.testing.assert_allclose(clf.probabilities(x).sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(clf.logits(x.astype(np.float32)), logits, atol=1e-5)  # uint8 == float input


def test_temperature_and_threshold_come_from_the_file(tiny_models, tmp_path):
    meta = tiny_metadata(tuple(CLASSES), 80, 60, "onnx", "float32").replace(
        temperature=4.0, review_threshold=0.9
    )
    path = with_onnx_metadata(tiny_models["onnx_float32"], tmp_path / "hot.onnx", meta)
    base, hot = load(tiny_models["onnx_float32"]), load(path)
    x = np.stack([colour_image(0)])
    assert hot.probabilities(x).max() < base.probabilities(x).max()  # flatter at T=4
    np.testing.assert_allclose(hot.probabilities(x), softmax(base.logits(x) / 4.0), atol=1e-6)
    assert hot.predict(x)[0].needs_review and not base.predict(x)[0].needs_review
    assert not hot.predict(x, review_threshold=0.0)[0].needs_review  # override


def test_batches_of_any_size_match_single_images(model_path):
    clf = load(model_path)
    rng = np.random.default_rng(2)
    x = np.stack([colour_image(int(rng.integers(3)), strength=int(rng.integers(40, 255))) for _ in range(70)])
    one = np.concatenate([clf.logits(x[i : i + 1]) for i in range(len(x))])
    for n in (70, 5, 64):
        np.testing.assert_allclose(clf.logits(x[:n]), one[:n], rtol=1e-3, atol=1e-3)


def test_predict_preprocesses_paths_and_odd_sizes(tiny_models, tmp_path):
    clf = load(tiny_models["onnx_float32"])
    big = cv2.resize(colour_image(2), (600, 800), interpolation=cv2.INTER_NEAREST)  # 800x600 RGB
    wide = np.ascontiguousarray(np.transpose(colour_image(1), (1, 0, 2)))  # 60x80: padded, not stretched
    rgba = np.dstack([cv2.cvtColor(colour_image(0), cv2.COLOR_RGB2BGR), np.full((80, 60), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "red.png"), rgba)
    preds = clf.predict([big, wide, tmp_path / "red.png", str(tmp_path / "red.png")])
    assert [p.label for p in preds] == ["Casual Shoes", "Watches", "Tshirts", "Tshirts"]
    assert clf.predict([]) == []
    with pytest.raises(ValueError, match="expected a batch of shape"):
        clf.logits(np.zeros((1, 32, 32, 3), np.uint8))


def test_threads_setting_reaches_the_backend(tiny_models):
    clf = load(tiny_models["onnx_float32"], threads=1)
    assert clf.backend.session.get_session_options().intra_op_num_threads == 1
    assert load(tiny_models["tflite_int8"], threads=2).backend.threads == 2


def test_load_errors_are_one_clear_line(tiny_models, tmp_path):
    def error(path: Path) -> str:
        with pytest.raises(ModelLoadError) as e:
            load(path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg
        return msg

    assert "file not found" in error(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage" * 50)
    assert "corrupt ONNX file" in error(tmp_path / "junk.onnx")
    (tmp_path / "junk.tflite").write_bytes(b"\x00garbage" * 50)
    assert "corrupt TFLite file" in error(tmp_path / "junk.tflite")
    (tmp_path / "model.pt").write_bytes(b"x")
    assert "unsupported model type" in error(tmp_path / "model.pt")
    foreign = with_onnx_metadata(tiny_models["onnx_float32"], tmp_path / "foreign.onnx", None)
    assert "not a fashion-edge model (no metadata)" in error(foreign)
    bare = tiny_models["tflite_float32"].read_bytes()
    bare = bare[: bare.rfind(b"PK\x03\x04")]  # strip the appended metadata zip
    (tmp_path / "bare.tflite").write_bytes(bare)
    assert "not a fashion-edge model (no metadata)" in error(tmp_path / "bare.tflite")
    four = tiny_metadata((*CLASSES, "Jeans"), 80, 60, "onnx", "float32")
    mismatch = with_onnx_metadata(tiny_models["onnx_float32"], tmp_path / "four.onnx", four)
    assert "4 classes but the model outputs 3" in error(mismatch)
    wrong = tiny_metadata(tuple(CLASSES), 96, 96, "tflite", "float32")
    (tmp_path / "size.tflite").write_bytes(tflite_with_metadata(bare, wrong))
    assert "metadata says input" in error(tmp_path / "size.tflite")


def test_default_model_path_env_override(monkeypatch, tmp_path):
    monkeypatch.delenv("FASHION_EDGE_MODEL", raising=False)
    assert default_model_path() == REPO / "models" / "articletype8-lite0" / "model_int8.tflite"
    monkeypatch.setenv("FASHION_EDGE_MODEL", str(tmp_path / "m.tflite"))
    assert default_model_path() == tmp_path / "m.tflite"


def test_runtime_never_imports_tensorflow(tiny_models, tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), colour_image(1))
    code = (
        "import sys\n"
        "from fashion_edge import runtime\n"
        "from fashion_edge.runtime.labeling import run_labeling\n"
        "from fashion_edge.runtime.label_cli import main\n"
        f"for p in {[str(p) for p in tiny_models.values()]!r}:\n"
        "    clf = runtime.load(p)\n"
        f"    assert clf.predict([{str(tmp_path / 'a.png')!r}])[0].label == 'Watches'\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
