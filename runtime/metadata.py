"""The one metadata record that travels inside every model file.

Training writes it to ``metadata.json`` in the run folder; export embeds it in each file
(ONNX ``metadata_props`` key ``fashion_edge``; TFLite: a zip appended to the flatbuffer holding
``metadata.json`` and ``labels.txt``). Runtime, app and benchmarks read classes, input size and
preprocessing from here only. Reading needs no TensorFlow.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fashion_edge.runtime.safe_file import UnsafeFileError, open_regular, read_bounded

SCHEMA = "fashion-edge/1"
ONNX_KEY = "fashion_edge"  # key in ONNX metadata_props holding the JSON record
TFLITE_MEMBER = "metadata.json"  # member of the zip appended to a .tflite file


class MetadataError(ValueError):
    """A model file without readable fashion-edge metadata."""


@dataclass
class ModelMetadata:
    """Everything a consumer needs to run a model: classes, input contract, calibration."""

    classes: list[str]
    height: int = 80
    width: int = 60
    channels: int = 3
    color_order: str = "RGB"  # channel order of the input tensor
    layout: str = "NHWC"
    # Input tensor holds float32 pixel values in [0, 255]; the model normalises inside itself
    # (a Rescaling layer: x / 127.5 - 1). Integer-I/O files also carry input_quant below.
    input_range: tuple[float, float] = (0.0, 255.0)
    normalization: str = "inside-model: x/127.5-1"
    fit: str = "pad"  # pad: keep aspect, pad with pad_value | crop: centre crop | stretch
    pad_value: int = 255  # catalogue backgrounds are white
    temperature: float = 1.0  # softmax(logits / T); fitted on the validation split
    review_threshold: float = 0.0  # calibrated confidence below this => needs review / unknown
    unknown_class: str | None = None  # a catch-all class trained on other item types: always "needs review"
    recipe: str = ""
    model: str = ""
    source_run: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    format: str = ""  # keras | onnx | tflite
    precision: str = "float32"  # float32 | float16 | int8
    outputs: str = "logits"  # logits | probabilities (what the model's output tensor holds)
    input_quant: dict[str, float] | None = None  # {"scale": s, "zero_point": z}: uint8 (or older int8) I/O
    # A second output: the pooled features fed to the final Dense layer (runtime.adapter learns on them).
    logits_output: str | None = None  # name of the logits output when the file has several outputs
    embedding_output: str | None = None  # name of the embedding output (None: old export, no embedding)
    embedding_size: int | None = None
    embedding_layer: str | None = None  # the pooled layer it comes from (None: the input of the logits)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_range"] = list(self.input_range)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMetadata:
        if not isinstance(d, dict) or "classes" not in d:
            raise MetadataError("metadata has no 'classes' list")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "input_range" in kwargs:
            rng = kwargs["input_range"]
            if not isinstance(rng, (list, tuple)) or len(rng) != 2 or any(_number(v) is None for v in rng):
                raise MetadataError(f"metadata input_range {rng!r} is not two numbers")
            kwargs["input_range"] = tuple(rng)
        try:
            meta = cls(**kwargs)
        except TypeError as e:
            raise MetadataError(f"metadata is malformed ({e})") from None
        validate(meta)
        return meta

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise MetadataError(f"metadata is not valid JSON ({e})") from None
        except RecursionError:
            raise MetadataError("metadata JSON is nested too deeply") from None

    def replace(self, **changes: Any) -> ModelMetadata:
        d = self.to_dict()
        d.update(changes)
        return ModelMetadata.from_dict(d)


# --- validation on load -------------------------------------------------------------------

FITS = ("pad", "crop", "stretch")
COLOR_ORDERS = ("RGB", "BGR", "GRAY")  # GRAY: 1-channel models (Fashion-MNIST recipe)
OUTPUTS = ("logits", "probabilities")
MAX_SIDE = 4096  # input height/width: the shipped models take 80x60 to 224x224
MAX_MODEL_BYTES = 512 * 2**20  # a model file larger than this is refused before it is read (shipped: < 20 MB)
MAX_METADATA_BYTES = 2**20  # the metadata record (JSON) inside a model file
RESERVED_CLASSES = ("needs_review",)  # the sorting folder of unsure items
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas
UNSAFE_IN_CLASS = ("|", "/", "\\")  # "|" separates top-k in journals; separators would nest folders


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def class_name_problem(name: str) -> str:
    """Why ``name`` cannot be a class (it becomes a folder name and a journal field), or ""."""
    c = name
    return (
        "is empty" if not c.strip()
        else "has leading or trailing spaces" if c != c.strip()
        else f"contains '{next(ch for ch in UNSAFE_IN_CLASS if ch in c)}'" if any(ch in c for ch in UNSAFE_IN_CLASS)
        else "contains a control character" if any(ord(ch) < 32 or ord(ch) == 127 for ch in c)
        else "is reserved" if c.casefold() in RESERVED_CLASSES or c in (".", "..")
        else "starts like a spreadsheet formula" if c.startswith(FORMULA_START)
        else ""
    )  # fmt: skip


def validate(meta: ModelMetadata) -> None:
    """Refuse metadata that would mislabel, mis-sort or crash mid-run: one MetadataError line
    naming the field.

    Class names: non-empty, unique (also ignoring case: they become folder names), no ``|``,
    ``/`` or ``\\``, no control characters, not ``.``/``..`` or the reserved ``needs_review``,
    not starting like a spreadsheet formula. ``review_threshold`` a number in [0, 1],
    ``temperature`` a positive number, ``fit`` one of FITS, ``unknown_class`` one of the classes.
    The input contract: ``height``/``width`` whole numbers in 1..MAX_SIDE, ``channels`` 1 or 3,
    ``color_order`` RGB, BGR or GRAY, ``layout`` NHWC, ``pad_value`` a whole number in 0..255,
    ``outputs`` one of OUTPUTS; output names strings, ``embedding_size`` a positive whole number.
    """
    classes = meta.classes
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise MetadataError("metadata 'classes' must be a non-empty list of names")
    seen: dict[str, str] = {}
    for c in classes:
        bad = class_name_problem(c) or ("is listed twice" if c.casefold() in seen else "")
        if bad:
            raise MetadataError(f"metadata class name {c!r} {bad}")
        seen[c.casefold()] = c
    for name in ("height", "width"):
        v = _int(getattr(meta, name))
        if v is None or not 1 <= v <= MAX_SIDE:
            raise MetadataError(
                f"metadata {name} {getattr(meta, name)!r} is not a whole number in 1..{MAX_SIDE}"
            )
    if _int(meta.channels) not in (1, 3):
        raise MetadataError(f"metadata channels {meta.channels!r} is not 1 or 3")
    if not isinstance(meta.color_order, str) or meta.color_order.upper() not in COLOR_ORDERS:
        raise MetadataError(f"metadata color_order {meta.color_order!r} is not RGB, BGR or GRAY")
    if meta.layout != "NHWC":
        raise MetadataError(f"metadata layout {meta.layout!r} is not NHWC")
    pad = _int(meta.pad_value)
    if pad is None or not 0 <= pad <= 255:
        raise MetadataError(f"metadata pad_value {meta.pad_value!r} is not a whole number in 0..255")
    if meta.outputs not in OUTPUTS:
        raise MetadataError(
            f"metadata outputs {meta.outputs!r} is unknown (expected one of {', '.join(OUTPUTS)})"
        )
    for name in ("logits_output", "embedding_output", "embedding_layer"):
        if getattr(meta, name) is not None and not isinstance(getattr(meta, name), str):
            raise MetadataError(f"metadata {name} {getattr(meta, name)!r} is not a name")
    size = meta.embedding_size
    if size is not None and (_int(size) is None or size < 1):
        raise MetadataError(f"metadata embedding_size {size!r} is not a positive whole number")
    q = meta.input_quant
    if q is not None and (
        not isinstance(q, dict) or (_number(q.get("scale")) or 0) <= 0 or _int(q.get("zero_point")) is None
    ):
        raise MetadataError(f"metadata input_quant {q!r} is not {{scale > 0, zero_point: whole number}}")
    for name in ("metrics", "provenance"):
        if not isinstance(getattr(meta, name), dict):
            raise MetadataError(f"metadata {name} is not an object")
    thr = _number(meta.review_threshold)
    if thr is None or not 0.0 <= thr <= 1.0:
        raise MetadataError(f"metadata review_threshold {meta.review_threshold!r} is not a number in [0, 1]")
    temp = _number(meta.temperature)
    if temp is None or temp <= 0:
        raise MetadataError(f"metadata temperature {meta.temperature!r} is not a positive number")
    if meta.fit not in FITS:
        raise MetadataError(f"metadata fit {meta.fit!r} is unknown (expected one of {', '.join(FITS)})")
    if meta.unknown_class is not None and (
        not isinstance(meta.unknown_class, str) or meta.unknown_class not in classes
    ):
        raise MetadataError(f"metadata unknown_class {meta.unknown_class!r} is not one of the classes")


def save_json(meta: ModelMetadata, path: str | Path) -> None:
    Path(path).write_text(meta.to_json() + "\n", encoding="utf-8")


def _read(path: str | Path, max_bytes: int) -> bytes:
    """A model or metadata file's bytes (regular files only, bounded); MetadataError naming it."""
    try:
        return read_bounded(path, max_bytes)
    except UnsafeFileError as e:
        raise MetadataError(f"{path}: {e}") from None


def load_json(path: str | Path) -> ModelMetadata:
    try:
        text = _read(path, MAX_METADATA_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError(f"{path}: metadata is not UTF-8 text") from None
    return ModelMetadata.from_json(text)


# --- TFLite: a zip appended to the flatbuffer ------------------------------------------------


def tflite_with_metadata(flatbuffer: bytes, meta: ModelMetadata) -> bytes:
    """Return the flatbuffer with a zip (metadata.json, labels.txt) appended.

    Both TFLite interpreters ignore trailing bytes; ``zipfile`` finds the archive from its end.
    Stored, not deflated: it is also the standard metadata's associated-file zip, and MediaPipe
    reads only uncompressed members ("Expected uncompressed zip archive").
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(TFLITE_MEMBER, meta.to_json())
        zf.writestr("labels.txt", "\n".join(meta.classes) + "\n")
    return flatbuffer + buf.getvalue()


def read_tflite_metadata(path: str | Path, content: bytes | None = None) -> ModelMetadata:
    """The record in the zip appended to a .tflite file (``content``: its bytes, already read);
    the member is size-checked before it is inflated."""
    data = _read(path, MAX_MODEL_BYTES) if content is None else content
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = zf.getinfo(TFLITE_MEMBER)
            if info.file_size > MAX_METADATA_BYTES:
                raise MetadataError(f"{path}: metadata record too large ({info.file_size:,} bytes)")
            raw = zf.read(info)
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, NotImplementedError, ValueError) as e:
        if isinstance(e, MetadataError):
            raise
        raise MetadataError(f"{path}: no fashion-edge metadata (not made by fashion-export?)") from None
    try:
        return ModelMetadata.from_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MetadataError(f"{path}: metadata is not UTF-8 text") from None


# --- ONNX: metadata_props, read through onnxruntime ------------------------------------------


def read_onnx_metadata(path: str | Path) -> ModelMetadata:
    """Read the record through onnxruntime (no ``onnx`` package needed)."""
    import onnxruntime as ort

    content = _read(path, MAX_MODEL_BYTES)
    try:
        sess = ort.InferenceSession(content, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise MetadataError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0]})") from None
    return onnx_session_metadata(sess, path)


def onnx_session_metadata(sess: Any, path: str | Path = "model") -> ModelMetadata:
    props = sess.get_modelmeta().custom_metadata_map
    if ONNX_KEY not in props:
        raise MetadataError(f"{path}: no fashion-edge metadata (not made by fashion-export?)")
    return ModelMetadata.from_json(props[ONNX_KEY])


def read_metadata(path: str | Path) -> ModelMetadata:
    """Metadata of a ``.onnx``, ``.tflite`` or ``metadata.json`` file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return read_onnx_metadata(p)
    if suffix == ".tflite":
        return read_tflite_metadata(p)
    if suffix == ".json":
        return load_json(p)
    try:  # a missing or unsafe file says so first (opened without blocking, nothing read)
        open_regular(p).close()
    except UnsafeFileError as e:
        raise MetadataError(f"{p}: {e}") from None
    raise MetadataError(f"{p}: unsupported model type '{suffix}' (expected .onnx or .tflite)")
