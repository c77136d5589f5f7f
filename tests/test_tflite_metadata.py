"""Standard TFLite Metadata (export.tflite_metadata): what MediaPipe / TFLite Support read, beside our record."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fashion_edge.runtime.metadata import ModelMetadata, read_tflite_metadata

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "models").glob("articletype8*/*.tflite"))
CLASSES = ["Shirts", "Tshirts", "Watches"]

# --- a minimal reader of the M001 tables (field slots of metadata_schema.fbs) ---------------------


class _T:
    def __init__(self, buf: bytes, pos: int) -> None:
        from flatbuffers.table import Table

        self.t = Table(bytearray(buf), pos)

    def _off(self, slot: int) -> int:
        return self.t.Offset(4 + 2 * slot)

    def str(self, slot: int) -> str | None:
        o = self._off(slot)
        return self.t.String(o + self.t.Pos).decode() if o else None

    def u8(self, slot: int) -> int:
        from flatbuffers import number_types as n

        o = self._off(slot)
        return self.t.Get(n.Uint8Flags, o + self.t.Pos) if o else 0

    def sub(self, slot: int) -> _T:
        o = self._off(slot)
        assert o, f"field {slot} absent"
        return _T(self.t.Bytes, self.t.Indirect(o + self.t.Pos))

    def tables(self, slot: int) -> list[_T]:
        o = self._off(slot)
        if not o:
            return []
        start = self.t.Vector(o)
        return [_T(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(self.t.VectorLen(o))]

    def floats(self, slot: int) -> list[float]:
        from flatbuffers import number_types as n

        return self.t.GetVectorAsNumpy(n.Float32Flags, self._off(slot)).tolist()


def standard_metadata(path: Path) -> _T:
    """The ModelMetadata table in the TFLITE_METADATA buffer of a .tflite file."""
    from tensorflow.lite.python import schema_py_generated as fb

    data = path.read_bytes()
    model = fb.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name() == b"TFLITE_METADATA":
            buf = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
            assert buf[4:8] == b"M001"
            return _T(buf, int.from_bytes(buf[:4], "little"))  # the root table's offset
    raise AssertionError(f"{path.name}: no TFLITE_METADATA")


def summary(path: Path) -> dict[str, Any]:
    root = standard_metadata(path)
    sub = root.tables(3)[0]
    inp = sub.tables(2)[0]
    norm = [pu.sub(1) for pu in inp.tables(4) if pu.u8(0) == 1]
    outs = sub.tables(3)
    return {
        "name": root.str(0),
        "description": root.str(1),
        "parser": root.str(7),
        "input_colour": inp.sub(3).sub(1).u8(0),  # Content.content_properties -> ImageProperties.color_space
        "norm": [(n.floats(0), n.floats(1)) for n in norm],
        "outputs": [o.str(0) for o in outs],
        "labels": {o.str(0): [(f.str(0), f.u8(2)) for f in o.tables(6)] for o in outs},
        "input_description": inp.str(1),
    }


# --- a tiny model converted, written, read back ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_flatbuffers() -> dict[str, bytes]:
    pytest.importorskip("tensorflow")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    inp = keras.Input((8, 6, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    emb = keras.layers.GlobalAveragePooling2D(name="embedding")(keras.layers.Conv2D(4, 3)(x))
    logits = keras.layers.Dense(len(CLASSES), name="logits")(emb)
    model = keras.Model(inp, {"logits": logits, "embedding": emb})
    calib = np.random.default_rng(0).integers(0, 256, (16, 8, 6, 3)).astype(np.float32)
    out = {"float": tf.lite.TFLiteConverter.from_keras_model(model).convert()}
    for name, io in (("int8io", tf.int8), ("uint8io", tf.uint8)):  # before / since issue 24
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x[None]] for x in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = io
        out[name] = conv.convert()
    return out


def _meta(**kw: Any) -> ModelMetadata:
    return ModelMetadata(classes=CLASSES, height=8, width=6, recipe="tiny", temperature=1.5, review_threshold=0.6,
                         source_run="run-1", embedding_output="embedding", **kw)  # fmt: skip


def _outputs(content: bytes, x: np.ndarray) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=content)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(o["index"]) for o in it.get_output_details()]


def test_float_model_gets_normalization_labels_and_keeps_our_record(
    tiny_flatbuffers: dict[str, bytes], tmp_path: Path
) -> None:
    from fashion_edge.export.tflite_metadata import with_standard_metadata

    raw = tiny_flatbuffers["float"]
    path = tmp_path / "m.tflite"
    path.write_bytes(with_standard_metadata(raw, _meta()))
    assert read_tflite_metadata(path) == _meta()  # our record, read by the unchanged runtime reader
    with zipfile.ZipFile(path) as zf:  # one zip, stored (MediaPipe refuses deflated members)
        assert sorted(zf.namelist()) == ["labels.txt", "metadata.json"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert zf.read("labels.txt").decode().split() == CLASSES
    s = summary(path)
    assert s["name"] == "fashion-edge tiny" and "metadata.json" in s["description"] and s["parser"] == "1.0.0"
    assert s["input_colour"] == 1  # RGB
    assert s["norm"] == [([0.0] * 3, [1.0] * 3)]  # the model scales 0-255 itself
    assert sorted(s["outputs"]) == ["embedding", "logits"]
    assert s["labels"] == {
        "logits": [("labels.txt", 2)],
        "embedding": [],
    }  # TENSOR_AXIS_LABELS on logits only
    x = np.random.default_rng(1).integers(0, 256, (1, 8, 6, 3)).astype(np.float32)
    for a, b in zip(_outputs(raw, x), _outputs(path.read_bytes(), x), strict=True):
        np.testing.assert_array_equal(a, b)  # same model, bit for bit


def test_output_metadata_follows_the_subgraph_output_order(
    tiny_flatbuffers: dict[str, bytes], tmp_path: Path
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from fashion_edge.export.tflite_metadata import with_standard_metadata

    path = tmp_path / "m.tflite"
    path.write_bytes(with_standard_metadata(tiny_flatbuffers["float"], _meta()))
    widths = [int(o["shape"][-1]) for o in Interpreter(model_path=str(path)).get_output_details()]
    expected = ["logits" if w == len(CLASSES) else "embedding" for w in widths]
    assert summary(path)["outputs"] == expected


def test_int8_input_gets_no_normalization_but_its_quantization_in_words(
    tiny_flatbuffers: dict[str, bytes], tmp_path: Path
) -> None:
    from fashion_edge.export.tflite_metadata import with_standard_metadata

    meta = _meta(precision="int8", input_quant={"scale": 1.0, "zero_point": -128})
    path = tmp_path / "m.tflite"
    path.write_bytes(with_standard_metadata(tiny_flatbuffers["int8io"], meta))
    s = summary(path)
    assert s["norm"] == [] and "int8 RGB, q = x / 1.0 + -128" in s["input_description"]
    assert read_tflite_metadata(path).input_quant == {"scale": 1.0, "zero_point": -128}


def test_uint8_input_gets_no_normalization_and_raw_pixels_in_words(
    tiny_flatbuffers: dict[str, bytes], tmp_path: Path
) -> None:
    from fashion_edge.export.tflite_metadata import with_standard_metadata

    meta = _meta(precision="int8", input_quant={"scale": 1.0, "zero_point": 0})
    path = tmp_path / "m.tflite"
    path.write_bytes(with_standard_metadata(tiny_flatbuffers["uint8io"], meta))
    s = summary(path)
    assert s["norm"] == [] and "uint8 RGB, q = x / 1.0 + 0 for pixel values" in s["input_description"]
    assert read_tflite_metadata(path).input_quant == {"scale": 1.0, "zero_point": 0}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_tflite_files_carry_the_standard_metadata(path: Path) -> None:
    pytest.importorskip("tensorflow")
    meta = read_tflite_metadata(path)
    s = summary(path)
    assert "logits" in s["outputs"] and s["labels"]["logits"] == [("labels.txt", 2)]
    assert s["norm"] == ([([0.0] * 3, [1.0] * 3)] if meta.input_quant is None else [])
    with zipfile.ZipFile(path) as zf:
        assert zf.read("labels.txt").decode().split("\n")[: meta.num_classes] == meta.classes
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
