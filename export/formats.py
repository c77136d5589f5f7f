"""One table of export formats: export writes it, benchmarks and the app read it.

Each row names a file, its container (``tflite`` / ``onnx``), its precision and the writer that
produces its bytes. Writers are named as ``"module:function"`` and resolved on use, so reading
the table imports no TensorFlow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.metadata import ONNX_KEY, ModelMetadata


@dataclass(frozen=True)
class ExportFormat:
    """One exported file kind."""

    name: str  # key used in --formats, reports and benchmarks
    family: str  # container: "tflite" | "onnx" (also the file suffix)
    precision: str  # float32 | float16 | int8
    filename: str
    writer: str  # "module:function" taking an ExportContext, returning an Artifact
    io: str = "float32"  # dtype of the input/output tensors
    needs: str = ""  # option that enables the row ("" = always, with its family)

    @property
    def suffix(self) -> str:
        return "." + self.family

    def resolve_writer(self) -> Callable[[ExportContext], Artifact]:
        module, func = self.writer.split(":")
        return getattr(importlib.import_module(module), func)


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat("tflite-float32", "tflite", "float32", "model_float32.tflite", "fashion_edge.export.tflite_export:write_float32"),
    ExportFormat("tflite-float16", "tflite", "float16", "model_float16.tflite", "fashion_edge.export.tflite_export:write_float16",
                 needs="float16"),
    ExportFormat("tflite-int8", "tflite", "int8", "model_int8.tflite", "fashion_edge.export.tflite_export:write_int8", needs="int8"),
    ExportFormat("tflite-int8-io", "tflite", "int8", "model_int8_uint8io.tflite", "fashion_edge.export.tflite_export:write_int8_io",
                 io="uint8", needs="int8_io"),
    ExportFormat("onnx-float32", "onnx", "float32", "model_float32.onnx", "fashion_edge.export.onnx_export:write_float32"),
    ExportFormat("onnx-int8", "onnx", "int8", "model_int8.onnx", "fashion_edge.export.onnx_export:write_int8", needs="int8"),
)  # fmt: skip
FAMILIES = ("tflite", "onnx")


def select_formats(families: Iterable[str], enabled: Iterable[str]) -> list[ExportFormat]:
    """Rows whose family was asked for and whose enabling option (if any) is on."""
    fams, on = set(families), set(enabled)
    return [f for f in FORMATS if f.family in fams and (not f.needs or f.needs in on)]


def by_filename(name: str) -> ExportFormat | None:
    return next((f for f in FORMATS if f.filename == name), None)


def present(model_dir: str | Path) -> list[tuple[ExportFormat, Path]]:
    """The table's files that exist in an exported model folder, in table order."""
    d = Path(model_dir)
    return [(f, d / f.filename) for f in FORMATS if (d / f.filename).is_file()]


@dataclass
class ExportContext:
    """What every writer may use: the float Keras model and the calibration data."""

    model: Any  # tf_keras.Model, float, outputs logits
    meta: ModelMetadata  # base record for the files (temperature and threshold already set)
    calib: np.ndarray  # uint8 NHWC representative training images
    val_x: np.ndarray  # uint8 NHWC validation images (choices between variants)
    val_y: np.ndarray
    workdir: Path  # scratch folder, removed after the export
    qat_model: Any = None  # quantization-aware model when --qat
    threads: int | None = None
    choices: dict[str, Any] = field(default_factory=dict)  # decisions writers share (e.g. PTQ vs QAT)


@dataclass
class Artifact:
    """A writer's result: the model bytes (no metadata yet) and what it adds to the record."""

    raw: bytes
    meta_changes: dict[str, Any]
    notes: dict[str, Any]


def embed_metadata(fmt: ExportFormat, raw: bytes, meta: ModelMetadata) -> bytes:
    """Model bytes with the full record embedded (TFLite: appended zip, plus the standard TFLite
    Metadata that MediaPipe reads; ONNX: metadata_props)."""
    if fmt.family == "tflite":
        from fashion_edge.export.tflite_metadata import with_standard_metadata

        return with_standard_metadata(raw, meta)
    import onnx

    model = onnx.load_from_string(raw)
    props = {p.key: p.value for p in model.metadata_props if p.key != ONNX_KEY}
    props[ONNX_KEY] = meta.to_json()
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    return model.SerializeToString()
