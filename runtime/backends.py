"""One small class per model format; each turns a prepared NHWC batch into float32 logits.

A file may have more than one output (e.g. ``logits`` and ``embedding``, the pooled features):
``run`` returns the logits output, ``run_outputs`` any named outputs from one inference.

``OnnxBackend`` runs ``.onnx`` files in ONNX Runtime, ``LiteRTBackend`` runs ``.tflite`` files in the
LiteRT interpreter (``ai-edge-litert``, no TensorFlow). Integer-I/O files (uint8, or int8 from older
exports) are quantized on the way in and dequantized on the way out with the scales stored in the
file's own tensors.
Both read the file through ``safe_file`` (regular files only, at most ``MAX_MODEL_BYTES``) and
hand the bytes to the runtime, which never opens the path itself.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fashion_edge.runtime.metadata import MAX_MODEL_BYTES
from fashion_edge.runtime.quiet import native_stderr_silenced, verbose_requested
from fashion_edge.runtime.safe_file import UnsafeFileError, read_bounded


class BackendError(ValueError):
    """A model file the backend cannot load; the message says why (without the path)."""


class Backend(Protocol):
    """What the classifier needs from a format: input shape/type and ``run``."""

    input_shape: tuple[int | None, int | None, int | None, int | None]  # N, H, W, C (None = dynamic)
    output_size: int
    input_dtype: np.dtype

    output_names: list[str]

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def run_outputs(self, x: np.ndarray, names: list[str]) -> list[np.ndarray]: ...

    def use_logits(self, name: str) -> None: ...


def read_model(path: str | Path) -> bytes:
    """A model file's bytes: a regular file (no FIFO, no device) of at most MAX_MODEL_BYTES."""
    try:
        return read_bounded(path, MAX_MODEL_BYTES)
    except UnsafeFileError as e:
        raise BackendError(str(e)) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Float pixel values -> the integer tensor type of a quantized input (round, saturate)."""
    info = np.iinfo(dtype)
    q = np.round(x.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def default_logits(names: list[str]) -> str:
    """The logits output of a file: the one named ``logits`` when there are several, else the first."""
    return "logits" if len(names) > 1 and "logits" in names else names[0]


class OnnxBackend:
    """ONNX Runtime on CPU; ``threads`` sets the intra-op thread count (None = ORT default);
    ``content``: the file's bytes when already read (``read_model``)."""

    def __init__(self, path: str | Path, threads: int | None = None, content: bytes | None = None) -> None:
        import onnxruntime as ort

        content = read_model(path) if content is None else content
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(content, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises Fail / InvalidProtobuf / InvalidGraph ...
            raise BackendError(f"corrupt ONNX file ({_first_line(e)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise BackendError(f"expected 1 input and 1 output, found {len(inputs)} and {len(outputs)}")
        inp = inputs[0]
        if len(inp.shape) != 4:
            raise BackendError(f"expected a 4-D NHWC input, found shape {inp.shape}")
        self._outputs = {o.name: o for o in outputs}
        self.output_names = [o.name for o in outputs]
        self.input_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape)  # type: ignore[assignment]
        self.use_logits(default_logits(self.output_names))
        types = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}
        if inp.type not in types:
            raise BackendError(f"unsupported input type {inp.type}")
        self.input_dtype = np.dtype(types[inp.type])

    def use_logits(self, name: str) -> None:
        """Make output ``name`` the one ``run`` returns (BackendError if the file has none)."""
        if name not in self._outputs:
            raise BackendError(f"no output named '{name}' (outputs: {', '.join(self.output_names)})")
        self.output_name = name
        shape = self._outputs[name].shape
        size = shape[-1] if shape else None
        self.output_size = int(size) if isinstance(size, int) else -1

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_outputs(x, [self.output_name])[0]

    def run_outputs(self, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The named outputs (float32, N x -1) of one inference over batch ``x``."""
        if self.input_dtype != np.float32 and x.dtype != self.input_dtype:
            raise BackendError(f"model wants {self.input_dtype} input")  # no integer-I/O ONNX exported
        feed = np.ascontiguousarray(x, dtype=self.input_dtype)
        fixed = self.input_shape[0]
        if fixed is not None and len(feed) != fixed:  # fixed-batch file: run in pieces
            parts = [self.run_outputs(feed[i : i + fixed], names) for i in range(0, len(feed), fixed)]
            return [np.concatenate([p[j] for p in parts]) for j in range(len(names))]
        outs = self.session.run(list(names), {self.input_name: feed})
        return [np.asarray(o, dtype=np.float32).reshape(len(feed), -1) for o in outs]


class LiteRTBackend:
    """LiteRT interpreter; one interpreter per batch size seen (resized once, then reused);
    ``content``: the file's bytes when already read (``read_model``)."""

    def __init__(self, path: str | Path, threads: int | None = None, content: bytes | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter_cls = Interpreter
        self.content = read_model(path) if content is None else content
        self.threads = int(threads) if threads else None
        self._lock = threading.Lock()  # an interpreter is not safe to share between threads
        self._by_batch: dict[int, Any] = {}
        with native_stderr_silenced(not verbose_requested()):  # "INFO: Created ... XNNPACK delegate"
            interp = self._new_interpreter()
        (inp,) = interp.get_input_details()
        if len(inp["shape"]) != 4:
            raise BackendError(f"expected a 4-D NHWC input, found shape {list(inp['shape'])}")
        self.input_shape = (None, *(int(d) for d in inp["shape"][1:]))  # type: ignore[assignment]
        self.input_dtype = np.dtype(inp["dtype"])
        self.in_quant = inp["quantization"]  # (scale, zero_point); (0.0, 0) when float
        self._outputs = self._output_details(interp)
        self.output_names = list(self._outputs)
        self.use_logits(default_logits(self.output_names))
        self._by_batch[int(inp["shape"][0])] = interp

    @staticmethod
    def _output_details(interp: Any) -> dict[str, dict[str, Any]]:
        """Output name -> tensor details; names from the signature when the file has one."""
        details = {d["index"]: d for d in interp.get_output_details()}
        named: dict[str, dict[str, Any]] = {}
        try:
            sig = interp.get_signature_runner().get_output_details()
            named = {name: details[d["index"]] for name, d in sig.items() if d["index"] in details}
        except (ValueError, KeyError, RuntimeError):  # no signature in the file
            named = {}
        if len(named) != len(details):
            named = {d["name"]: d for d in details.values()}
        return named

    def use_logits(self, name: str) -> None:
        """Make output ``name`` the one ``run`` returns (BackendError if the file has none)."""
        if name not in self._outputs:
            raise BackendError(f"no output named '{name}' (outputs: {', '.join(self.output_names)})")
        out = self._outputs[name]
        self.output_name = name
        self.output_size = int(out["shape"][-1])
        self.output_dtype = np.dtype(out["dtype"])
        self.out_quant = out["quantization"]

    def _new_interpreter(self) -> Any:
        try:
            interp = self._interpreter_cls(model_content=self.content, num_threads=self.threads)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"corrupt TFLite file ({_first_line(e)})") from None
        return interp

    def _interpreter(self, n: int) -> Any:
        interp = self._by_batch.get(n)
        if interp is None:
            interp = self._new_interpreter()
            idx = interp.get_input_details()[0]["index"]
            interp.resize_tensor_input(idx, [n, *self.input_shape[1:]])
            interp.allocate_tensors()
            if len(self._by_batch) >= 4:  # keep a few sizes (full batch + remainders)
                self._by_batch.pop(next(iter(self._by_batch)))
            self._by_batch[n] = interp
        return interp

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_outputs(x, [self.output_name])[0]

    def run_outputs(self, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The named outputs (float32, N x -1, dequantized) of one inference over batch ``x``."""
        if self.input_dtype == np.float32:
            feed = np.ascontiguousarray(x, dtype=np.float32)
        elif x.dtype == self.input_dtype and tuple(self.in_quant) == (1.0, 0):  # q = x: raw uint8 pixels
            feed = np.ascontiguousarray(x)
        else:
            scale, zero = self.in_quant
            feed = quantize(x, scale, zero, self.input_dtype)
        missing = [n for n in names if n not in self._outputs]
        if missing:
            raise BackendError(f"no output named '{missing[0]}' (outputs: {', '.join(self.output_names)})")
        with self._lock:
            interp = self._interpreter(len(feed))
            interp.set_tensor(interp.get_input_details()[0]["index"], feed)
            interp.invoke()
            raw = [(interp.get_tensor(self._outputs[n]["index"]), self._outputs[n]) for n in names]
        res = []
        for out, d in raw:
            if np.dtype(d["dtype"]) != np.float32:
                out = dequantize(out, *d["quantization"])
            res.append(np.asarray(out, dtype=np.float32).reshape(len(feed), -1))
        return res


BACKENDS: dict[str, type] = {".onnx": OnnxBackend, ".tflite": LiteRTBackend}


def open_backend(path: str | Path, threads: int | None = None, content: bytes | None = None) -> Backend:
    """The backend for a file's suffix; BackendError for an unknown suffix or unloadable file
    (``content``: the file's bytes when already read)."""
    return BACKENDS[check_suffix(path)](path, threads, content)


def check_suffix(path: str | Path) -> str:
    """The file's suffix if a backend runs it; BackendError otherwise (nothing is read)."""
    suffix = Path(path).suffix.lower()
    if suffix not in BACKENDS:
        raise BackendError(f"unsupported model type '{suffix}' (expected .onnx or .tflite)")
    return suffix
