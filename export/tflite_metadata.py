"""Standard TFLite Metadata (what MediaPipe Tasks and TFLite Support read), written beside our record.

The metadata is a ``ModelMetadata`` flatbuffer (public ``metadata_schema.fbs``, file identifier
``M001``) stored in a model buffer named ``TFLITE_METADATA``. It holds: model name and description;
for the image input, RGB and the normalization ``(x - 0) / 1`` (the model scales 0–255 itself);
for the logits output, ``labels.txt`` as a TENSOR_AXIS_LABELS associated file. Associated files
live in a zip appended to the model: that is the zip ``runtime.metadata.tflite_with_metadata``
already appends (``metadata.json`` + ``labels.txt``), so one zip serves both readers and our
record stays the source of truth.

No score calibration: TFLite's is a per-class sigmoid of one logit, which cannot express our
``softmax(logits / T)``; consumers get raw logits (argmax unchanged) and the temperature is in
our record and in the output's description.

The tables are built by hand with ``flatbuffers`` (no tflite-support: it needs protobuf<4);
the model is re-packed with TensorFlow's own schema code (export already has TensorFlow).
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np

from fashion_edge.runtime.metadata import ModelMetadata, tflite_with_metadata

METADATA_NAME = "TFLITE_METADATA"
LABELS_FILE = "labels.txt"
PARSER_VERSION = "1.0.0"  # oldest metadata parser that reads everything written here
# enum and union values of metadata_schema.fbs
_TENSOR_AXIS_LABELS = 2
_RGB = 1
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_NORMALIZATION_OPTIONS = 1


class _Writer:
    """Thin helpers over flatbuffers.Builder for the few tables we write."""

    def __init__(self) -> None:
        self.b = flatbuffers.Builder(1024)

    def str(self, s: str) -> int:
        return self.b.CreateString(s)

    def vec(self, offsets: list[int]) -> int:
        self.b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            self.b.PrependUOffsetTRelative(o)
        return self.b.EndVector()

    def floats(self, values: list[float]) -> int:
        self.b.StartVector(4, len(values), 4)
        for v in reversed(values):
            self.b.PrependFloat32(float(v))
        return self.b.EndVector()

    def table(self, n_fields: int, fields: dict[int, tuple[str, int]]) -> int:
        """A table; fields maps slot -> ("off" | "u8" | "u32", value)."""
        self.b.StartObject(n_fields)
        for slot, (kind, value) in fields.items():
            if kind == "off":
                self.b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "u8":
                self.b.PrependUint8Slot(slot, value, 0)
            else:
                self.b.PrependUint32Slot(slot, value, 0)
        return self.b.EndObject()


def _tensor(w: _Writer, name: str, description: str, content: int, units: list[int], files: list[int]) -> int:
    fields = {0: ("off", w.str(name)), 1: ("off", w.str(description)), 3: ("off", content)}
    if units:
        fields[4] = ("off", w.vec(units))
    if files:
        fields[6] = ("off", w.vec(files))
    return w.table(7, fields)


def metadata_buffer(
    meta: ModelMetadata,
    output_names: list[str],
    input_dtype: str = "float32",
    quant: dict[str, float] | None = None,
) -> bytes:
    """The ``M001`` flatbuffer for a model whose outputs are ``output_names`` (in subgraph order).

    Normalization options are written for a float32 input only: MediaPipe then feeds 0–255 as is.
    A quantized input (uint8 from ``--int8-io``; int8 in files exported before) gets none: MediaPipe
    feeds a uint8 image input the pixels as they are (and refuses int8 inputs); the description
    gives the quantization ``q = x / scale + zero_point``.
    """
    w = _Writer()
    h, wd = meta.height, meta.width
    size = w.table(2, {0: ("u32", wd), 1: ("u32", h)})
    image = w.table(2, {0: ("u8", _RGB), 1: ("off", size)})
    in_content = w.table(2, {0: ("u8", _IMAGE_PROPERTIES), 1: ("off", image)})
    units = []
    if input_dtype == "float32":
        norm = w.table(2, {0: ("off", w.floats([0.0] * 3)), 1: ("off", w.floats([1.0] * 3))})
        units = [w.table(2, {0: ("u8", _NORMALIZATION_OPTIONS), 1: ("off", norm)})]
        how = "float32 RGB values 0-255 (the model normalises inside itself)"
    else:
        q = quant or {}
        how = (
            f"{input_dtype} RGB, q = x / {q.get('scale')} + {q.get('zero_point')} for pixel values x in 0-255"
        )
    fit = f"padded with {meta.pad_value} to {wd}:{h}" if meta.fit == "pad" else meta.fit
    inp = _tensor(w, "image", f"{h}x{wd} {how}; images are {fit} before resizing.", in_content, units, [])
    outs = []
    for name in output_names:
        feature = w.table(2, {0: ("u8", _FEATURE_PROPERTIES), 1: ("off", w.table(0, {}))})
        if name == "embedding":
            desc = f"pooled features ({meta.embedding_layer or 'input of the logits layer'}), for runtime.adapter"
            outs.append(_tensor(w, "embedding", desc, feature, [], []))
            continue
        labels = w.table(5, {0: ("off", w.str(LABELS_FILE)), 1: ("off", w.str("class names, one per line")),
                             2: ("u8", _TENSOR_AXIS_LABELS)})  # fmt: skip
        desc = (f"logits; probabilities = softmax(logits / {meta.temperature:.4g}); "
                f"below {meta.review_threshold:.4g} confidence: needs review")  # fmt: skip
        outs.append(_tensor(w, "logits", desc, feature, [], [labels]))
    sub = w.table(10, {2: ("off", w.vec([inp])), 3: ("off", w.vec(outs))})
    desc = (f"fashion-edge {meta.recipe or meta.model} classifier ({meta.num_classes} classes, {meta.precision}). "
            "The full fashion-edge record is metadata.json in the zip appended to this file.")  # fmt: skip
    root = w.table(8, {0: ("off", w.str(f"fashion-edge {meta.recipe or meta.model}".strip())),
                       1: ("off", w.str(desc)), 2: ("off", w.str(meta.source_run)),
                       3: ("off", w.vec([sub])), 7: ("off", w.str(PARSER_VERSION))})  # fmt: skip
    w.b.Finish(root, file_identifier=b"M001")
    return bytes(w.b.Output())


def _output_names(model: Any) -> list[str]:
    """The name ("logits" or "embedding") of each subgraph output, from the signature output names."""
    sub = model.subgraphs[0]
    by_index: dict[int, str] = {}
    for sig in model.signatureDefs or []:
        for t in sig.outputs or []:
            key = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            by_index[t.tensorIndex] = "logits" if key.endswith("logits") else "embedding"
    names = [by_index.get(int(i), "") for i in sub.outputs]
    if len(names) == 1:
        return ["logits"]
    if sorted(names) != ["embedding", "logits"]:
        raise ValueError(f"cannot tell the logits output among {len(names)} outputs")
    return names


def with_standard_metadata(flatbuffer: bytes, meta: ModelMetadata) -> bytes:
    """The model with TFLITE_METADATA inside, then our zip (metadata.json + labels.txt) appended."""
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    tensor = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]]
    dtype = (
        "float32"
        if tensor.type == fb.TensorType.FLOAT32
        else "int8"
        if tensor.type == fb.TensorType.INT8
        else "uint8"
    )
    data = metadata_buffer(meta, _output_names(model), dtype, meta.input_quant)
    model.metadata = [
        m for m in model.metadata or [] if m.name not in (METADATA_NAME, METADATA_NAME.encode())
    ]
    buf = fb.BufferT()
    buf.data = np.frombuffer(data, np.uint8)
    model.buffers.append(buf)
    entry = fb.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    return tflite_with_metadata(flatbuffer_utils.convert_object_to_bytearray(model), meta)
