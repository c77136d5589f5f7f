"""ONNX writers: float32 via tf2onnx, int8 via onnxruntime static quantization (QDQ, s8/s8).

The int8 file is calibrated on the same representative images as TFLite. Per-channel and
per-tensor weight scales are both built and measured on the validation split; the better one
(accuracy, then agreement with float, then latency) is kept and the choice recorded.

The input scaling and the first convolution stay float32 (:func:`float_front`): with 3 input
channels ORT's QLinearConv is ~2x slower than its float NCHWc kernel (107 vs 46 us on the
compact model), so keeping that one conv float made int8 ~9% faster (3.2x -> 3.5x vs float).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.export.embedding import cached, meta_changes
from fashion_edge.export.formats import Artifact, ExportContext

OPSET = 17  # tf2onnx 1.17 supports <= 18
INPUT_NAME = "input"


def _model(ctx: ExportContext) -> object:
    """The Keras model to convert: outputs [logits, embedding] when the model has a logits layer."""
    return cached(ctx, "float", ctx.model)


def float_model_path(ctx: ExportContext) -> Path:
    """The float ONNX model (converted once per export and cached in the scratch folder)."""
    path = ctx.workdir / "float32.onnx"
    if not path.exists():
        import tensorflow as tf
        import tf2onnx

        h, w, c = ctx.meta.input_shape
        spec = [tf.TensorSpec((None, h, w, c), tf.float32, name=INPUT_NAME)]
        proto, _ = tf2onnx.convert.from_keras(_model(ctx), input_signature=spec, opset=OPSET)
        path.write_bytes(proto.SerializeToString())
    return path


def write_float32(ctx: ExportContext) -> Artifact:
    return Artifact(float_model_path(ctx).read_bytes(), meta_changes(_model(ctx)), {"opset": OPSET})


class _Reader:
    """onnxruntime CalibrationDataReader over uint8 images, in small float batches."""

    def __init__(self, images: np.ndarray, batch: int = 32) -> None:
        self._batches = [images[i : i + batch].astype(np.float32) for i in range(0, len(images), batch)]
        self._it = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        b = next(self._it, None)
        return None if b is None else {INPUT_NAME: b}

    def rewind(self) -> None:
        self._it = iter(self._batches)


def float_front(path: Path) -> list[str]:
    """Names of the nodes up to and including the first Conv (input scaling + first conv)."""
    import onnx

    names: list[str] = []
    for node in onnx.load(str(path)).graph.node:
        names.append(node.name)
        if node.op_type == "Conv":
            return [n for n in names if n]
    return []


def _quantize(pre: Path, out: Path, calib: np.ndarray, per_channel: bool, exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(_Reader, CalibrationDataReader):
        pass

    quantize_static(
        str(pre), str(out), Reader(calib), quant_format=QuantFormat.QDQ, per_channel=per_channel,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
    )  # fmt: skip


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _logits(sess: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    name, out = sess.get_inputs()[0].name, [sess.get_outputs()[0].name]  # logits come first
    outs = [sess.run(out, {name: x[i : i + batch].astype(np.float32)})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def _latency_ms(sess: Any, x: np.ndarray, runs: int = 30) -> float:
    name, one = sess.get_inputs()[0].name, x[:1].astype(np.float32)
    sess.run(None, {name: one})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: one})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def write_int8(ctx: ExportContext) -> Artifact:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = ctx.workdir / "float32_pre.onnx"
    quant_pre_process(str(float_model_path(ctx)), str(pre))
    float_pred = _logits(_session(float_model_path(ctx)), ctx.val_x).argmax(1)
    trials: dict[str, dict[str, float]] = {}
    exclude = float_front(pre)
    for per_channel in (False, True):
        out = ctx.workdir / f"int8_pc{int(per_channel)}.onnx"
        _quantize(pre, out, ctx.calib, per_channel, exclude)
        sess = _session(out)
        pred = _logits(sess, ctx.val_x).argmax(1)
        trials["per_channel" if per_channel else "per_tensor"] = {
            "val_top1": float((pred == ctx.val_y).mean()) if len(pred) else float("nan"),
            "val_agreement": float((pred == float_pred).mean()) if len(pred) else float("nan"),
            "ms_batch1": _latency_ms(sess, ctx.val_x),
        }
    best = max(
        trials, key=lambda k: (trials[k]["val_top1"], trials[k]["val_agreement"], -trials[k]["ms_batch1"])
    )
    raw = (ctx.workdir / f"int8_pc{int(best == 'per_channel')}.onnx").read_bytes()
    notes = {"method": "PTQ (onnxruntime static, QDQ s8/s8)", "weights": best, "trials": trials,
             "float_nodes": exclude, "calibration_images": len(ctx.calib)}  # fmt: skip
    return Artifact(raw, meta_changes(_model(ctx)), notes)
