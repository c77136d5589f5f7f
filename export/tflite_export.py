"""TFLite writers: float32, float16 and full-integer int8 (float or uint8 I/O).

int8 is post-training full-integer quantization (int8 weights and activations, builtin int8 ops
only) calibrated on the representative set, or the quantization-aware model under ``--qat``.
Default I/O is float32: a drop-in file for the runtime and app, the quantize/dequantize ops cost
almost nothing. ``--int8-io`` adds a file with uint8 input/output for microcontroller-style
deployment: the input is the raw pixels (scale 1, zero point 0, which TFLite Micro and MediaPipe
both accept; MediaPipe refuses int8 inputs); its input scale/zero-point go into the metadata
(``input_quant``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from fashion_edge.export.embedding import cached, meta_changes
from fashion_edge.export.formats import Artifact, ExportContext


def _converter(model: Any) -> Any:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model)


def _model(ctx: ExportContext, qat: bool = False) -> Any:
    """The Keras model to convert: outputs [logits, embedding] when the model has a logits layer."""
    return cached(ctx, "qat", ctx.qat_model) if qat else cached(ctx, "float", ctx.model)


def _logits_index(it: Any) -> int:
    """Tensor index of the logits output (by signature name in a two-output file, else the first)."""
    try:
        sig = it.get_signature_runner().get_output_details()
    except ValueError:  # no signature
        sig = {}
    for name, detail in sig.items():
        if name.endswith("logits"):
            return int(detail["index"])
    return int(it.get_output_details()[0]["index"])


def _representative(calib: np.ndarray) -> Any:
    def gen() -> Iterator[list[np.ndarray]]:
        for img in calib:
            yield [img[None].astype(np.float32)]

    return gen


def write_float32(ctx: ExportContext) -> Artifact:
    model = _model(ctx)
    return Artifact(_converter(model).convert(), meta_changes(model), {})


def write_float16(ctx: ExportContext) -> Artifact:
    import tensorflow as tf

    model = _model(ctx)
    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return Artifact(conv.convert(), meta_changes(model), {"weights": "float16, computed in float32 on CPU"})


def _convert_int8(model: Any, calib: np.ndarray, int8_io: bool) -> bytes:
    import tensorflow as tf

    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = _representative(calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:  # the int8 graph with quantize ops at both ends (uint8 in -> int8, int8 -> uint8 out)
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
    with (
        warnings.catch_warnings()
    ):  # "Statistics for quantized inputs were expected": calibration provides them
        warnings.simplefilter("ignore", UserWarning)
        return conv.convert()


def _val_scores(flatbuffer: bytes, ctx: ExportContext) -> dict[str, float]:
    """Validation top-1 and agreement with the Keras float model of a float-I/O TFLite model (LiteRT)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flatbuffer, num_threads=ctx.threads or 1)
    inp, out = it.get_input_details()[0], _logits_index(it)
    preds = []
    for i in range(0, len(ctx.val_x), 256):
        batch = ctx.val_x[i : i + 256].astype(np.float32)
        it.resize_tensor_input(inp["index"], list(batch.shape))
        it.allocate_tensors()
        it.set_tensor(inp["index"], batch)
        it.invoke()
        preds.append(it.get_tensor(out).argmax(1))
    pred = np.concatenate(preds)
    ref = np.asarray(ctx.model.predict(ctx.val_x.astype(np.float32), verbose=0)).argmax(1)
    return {"val_top1": float((pred == ctx.val_y).mean()), "val_agreement": float((pred == ref).mean())}


def choose_method(ctx: ExportContext) -> str:
    """PTQ, or under --qat whichever of PTQ/QAT measures better on val (ties keep QAT, as asked)."""
    if ctx.qat_model is None:
        return "PTQ"
    if "int8_method" not in ctx.choices:
        trials = {m: _val_scores(_convert_int8(_model(ctx, m == "QAT"), ctx.calib, False), ctx)
                  for m in ("PTQ", "QAT")}  # fmt: skip
        key = {m: (t["val_top1"], t["val_agreement"]) for m, t in trials.items()}
        ctx.choices["int8_method"] = "QAT" if key["QAT"] >= key["PTQ"] else "PTQ"
        ctx.choices["int8_trials"] = trials
    return ctx.choices["int8_method"]


def _int8(ctx: ExportContext, int8_io: bool) -> Artifact:
    method = choose_method(ctx)
    model = _model(ctx, qat=method == "QAT")
    raw = _convert_int8(model, ctx.calib, int8_io)
    notes: dict[str, Any] = {"method": method, "calibration_images": len(ctx.calib)}
    if "int8_trials" in ctx.choices:
        notes["trials"] = ctx.choices["int8_trials"]
    changes: dict[str, Any] = meta_changes(model)
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
