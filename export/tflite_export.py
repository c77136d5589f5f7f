"""TFLite writers: float32, float16 and full-integer int8 (float or int8 I/O).

int8 is post-training full-integer quantization (int8 weights and activations, builtin int8 ops
only) calibrated on the representative set, or the quantization-aware model under ``--qat``.
Default I/O is float32: a drop-in file for the runtime and app, the quantize/dequantize ops cost
almost nothing. ``--int8-io`` adds a file with int8 input/output for microcontroller-style
deployment; its input scale/zero-point go into the metadata (``input_quant``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from export.formats import Artifact, ExportContext


def _converter(model: Any) -> Any:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model)


def _representative(calib: np.ndarray) -> Any:
    def gen() -> Iterator[list[np.ndarray]]:
        for img in calib:
            yield [img[None].astype(np.float32)]

    return gen


def write_float32(ctx: ExportContext) -> Artifact:
    return Artifact(_converter(ctx.model).convert(), {}, {})


def write_float16(ctx: ExportContext) -> Artifact:
    import tensorflow as tf

    conv = _converter(ctx.model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return Artifact(conv.convert(), {}, {"weights": "float16, computed in float32 on CPU"})


def _int8(ctx: ExportContext, int8_io: bool) -> Artifact:
    import tensorflow as tf

    model = ctx.qat_model if ctx.qat_model is not None else ctx.model
    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = _representative(ctx.calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    raw = conv.convert()
    method = "QAT" if ctx.qat_model is not None else "PTQ"
    notes: dict[str, Any] = {"method": method, "calibration_images": len(ctx.calib)}
    changes: dict[str, Any] = {}
    if int8_io:
        scale, zero = input_quantization(raw)
        changes["input_quant"] = {"scale": scale, "zero_point": zero}
        notes["input_quant"] = changes["input_quant"]
    return Artifact(raw, changes, notes)


def write_int8(ctx: ExportContext) -> Artifact:
    return _int8(ctx, int8_io=False)


def write_int8_io(ctx: ExportContext) -> Artifact:
    return _int8(ctx, int8_io=True)


def input_quantization(flatbuffer: bytes) -> tuple[float, int]:
    """(scale, zero_point) of the first input tensor, read with LiteRT (no TensorFlow)."""
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_content=flatbuffer).get_input_details()[0]
    scale, zero = detail["quantization"]
    return float(scale), int(zero)
