"""Tiny model files with embedded fashion-edge metadata, for tests and benchmarks of the runtime.

``make_tiny_models()`` writes a float and an int8 variant in ONNX and TFLite. Every model is the
same function: ``logits = mean_colour(x / 127.5 - 1) @ W + b`` over an NHWC float input of RGB pixels
in [0, 255]. With the default three classes a mostly red image is class 0, green class 1, blue
class 2, so tests can check predictions without training anything. Files are cached (keyed by the
classes and input size), so only the first call pays for the TensorFlow import (TFLite only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fashion_edge.runtime.metadata import ONNX_KEY, ModelMetadata, tflite_with_metadata

VERSION = 3  # bump when the generated models change
DEFAULT_CLASSES = ("Tshirts", "Watches", "Casual Shoes")
NAMES = ("onnx_float32", "onnx_int8", "tflite_float32", "tflite_int8", "tflite_uint8")
FILES = {
    "onnx_float32": "model_float32.onnx",
    "onnx_int8": "model_int8.onnx",
    "tflite_float32": "model_float32.tflite",
    "tflite_int8": "model_int8.tflite",  # int8 I/O, as --int8-io wrote before issue 24
    "tflite_uint8": "model_int8_uint8io.tflite",  # uint8 I/O (raw pixels), as --int8-io writes now
}


def tiny_weights(k: int) -> tuple[np.ndarray, np.ndarray]:
    """W (3, K), b (K,): the first three classes respond to red, green and blue dominance."""
    w = np.zeros((3, k), np.float32)
    for j in range(k):
        if j < 3:
            w[:, j] = -8.0 / 3
            w[j, j] += 8.0
        else:  # further classes: fixed small pseudo-random directions
            w[:, j] = np.cos(np.arange(3) * (j + 1)) * 2.0
    b = np.zeros(k, np.float32)
    return w, b


def tiny_metadata(classes: tuple[str, ...], h: int, w: int, fmt: str, precision: str) -> ModelMetadata:
    return ModelMetadata(
        classes=list(classes),
        height=h,
        width=w,
        temperature=1.0,
        review_threshold=0.5,
        recipe="tiny-test",
        model="mean-colour-linear",
        source_run="tests/onnx_tiny.py",
        format=fmt,
        precision=precision,
    )


def colour_image(channel: int, h: int = 80, w: int = 60, strength: int = 200) -> np.ndarray:
    """A white-padded image with a saturated patch of one RGB channel (what the tiny model detects)."""
    img = np.full((h, w, 3), 255, np.uint8)
    patch = np.full((h // 2 + 10, w // 2 + 10, 3), 255 - strength, np.uint8)
    patch[..., channel] = 255
    y0, x0 = (h - patch.shape[0]) // 2, (w - patch.shape[1]) // 2
    img[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] = patch
    return img


def _calibration(h: int, w: int, n: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    imgs = [colour_image(i % 3, h, w, int(rng.integers(60, 255))) for i in range(n)]
    imgs += [rng.integers(0, 256, (h, w, 3)).astype(np.uint8) for _ in range(n // 3)]
    return np.stack(imgs).astype(np.float32)


# --- ONNX -----------------------------------------------------------------------------------


def onnx_float_model(path: Path, meta: ModelMetadata, bias: float = 0.0) -> None:
    """logits = pooled @ W + b (+ ``bias``), pooled = mean of x/127.5 - 1 over H, W; when the metadata
    names an embedding output, ``pooled`` is also that second output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = meta.num_classes
    wt, b = tiny_weights(k)
    pooled = meta.embedding_output or "pooled"
    inits = [
        numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale"),
        numpy_helper.from_array(np.array(-1.0, np.float32), "shift"),
        numpy_helper.from_array(wt, "W"),
        numpy_helper.from_array(b + np.float32(bias), "B"),
    ]
    nodes = [
        helper.make_node("Mul", ["input", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["norm"]),
        helper.make_node("ReduceMean", ["norm"], [pooled], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", [pooled, "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])]
    if meta.embedding_output:
        outputs.append(helper.make_tensor_value_info(pooled, TensorProto.FLOAT, ["N", 3]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", meta.height, meta.width, 3])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx_tiny")
    model.ir_version = 8
    helper.set_model_props(model, {ONNX_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def _onnx_int8(float_path: Path, path: Path, meta: ModelMetadata) -> None:
    import onnx
    from onnx import helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": x[None]} for x in _calibration(meta.height, meta.width)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    tmp = path.with_suffix(".tmp.onnx")
    logging.disable(logging.WARNING)  # "consider pre-processing": not needed for this toy graph
    try:
        quantize_static(
            str(float_path),
            str(tmp),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Add", "Mul", "ReduceMean"],
        )
    finally:
        logging.disable(logging.NOTSET)
    model = onnx.load(str(tmp))
    tmp.unlink()
    del model.metadata_props[:]
    helper.set_model_props(model, {ONNX_KEY: meta.to_json()})
    onnx.save(model, str(path))


# --- TFLite (TensorFlow only here, never in runtime/) -----------------------------------------


def _tflite(paths: dict[str, Path], classes: tuple[str, ...], h: int, w: int) -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras
    from ai_edge_litert.interpreter import Interpreter

    k = len(classes)
    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(h, w, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1.0),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(k),
        ]
    )
    model.layers[-1].set_weights(list(tiny_weights(k)))
    calib = _calibration(h, w)

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    meta = tiny_metadata(classes, h, w, "tflite", "float32")
    paths["tflite_float32"].write_bytes(tflite_with_metadata(conv.convert(), meta))

    for name, io in (("tflite_int8", tf.int8), ("tflite_uint8", tf.uint8)):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x[None]] for x in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = io
        flat = conv.convert()
        scale, zero = Interpreter(model_content=flat).get_input_details()[0]["quantization"]
        meta = tiny_metadata(classes, h, w, "tflite", "int8").replace(
            input_quant={"scale": float(scale), "zero_point": int(zero)}
        )
        paths[name].write_bytes(tflite_with_metadata(flat, meta))


# --- entry point ------------------------------------------------------------------------------


def cache_key(classes: tuple[str, ...], h: int, w: int, tflite: bool) -> str:
    raw = json.dumps([VERSION, list(classes), h, w, tflite])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def make_tiny_models(
    dirpath: str | Path | None = None,
    classes: tuple[str, ...] = DEFAULT_CLASSES,
    h: int = 80,
    w: int = 60,
    tflite: bool = True,
) -> dict[str, Path]:
    """Write (or reuse) tiny models; returns {"onnx_float32"|"onnx_int8"|"tflite_float32"|"tflite_int8"|"tflite_uint8": path}.

    ``dirpath`` defaults to ``.cache/tiny_models/<key>`` in the repository. ``tflite=False`` skips
    the TFLite files (and the TensorFlow import). A ``.complete`` stamp marks a finished set.
    """
    classes = tuple(classes)
    key = cache_key(classes, h, w, tflite)
    if dirpath is None:
        from fashion_edge.training.data import CACHE_DIR

        dirpath = CACHE_DIR / "tiny_models" / key
    d = Path(dirpath)
    names = NAMES if tflite else NAMES[:2]
    paths = {n: d / FILES[n] for n in names}
    stamp = d / ".complete"
    if stamp.exists() and stamp.read_text() == key and all(p.exists() for p in paths.values()):
        return paths
    d.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=d))  # build aside, then swap in file by file,
    try:  # so concurrent test processes never read a half-written model
        built = {n: tmp / FILES[n] for n in names}
        onnx_float_model(built["onnx_float32"], tiny_metadata(classes, h, w, "onnx", "float32"))
        _onnx_int8(built["onnx_float32"], built["onnx_int8"], tiny_metadata(classes, h, w, "onnx", "int8"))
        if tflite:
            _tflite(built, classes, h, w)
        for n in names:
            os.replace(built[n], paths[n])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stamp.write_text(key)
    return paths


if __name__ == "__main__":  # python -m tests.onnx_tiny [DIR]
    import sys

    for name, p in make_tiny_models(sys.argv[1] if len(sys.argv) > 1 else None).items():
        print(f"{name}: {p} ({p.stat().st_size} bytes)")
