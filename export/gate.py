"""The parity gate: every exported file is evaluated through the product runtime, not TensorFlow.

Reference = the Keras float model on the run's test split. An int8 file fails the gate when its
top-1 accuracy drops more than ``max_drop`` points or any class loses more than
``max_class_drop`` points of recall.

The files run on this machine's int8 kernels only (``cpu_path`` says which). x86 CPUs without
VNNI run ONNX Runtime's int8 Conv/MatMul with u8s8 instructions that add pairs of products in
int16 and saturate when weights use all 8 bits; the gate cannot emulate that, so it checks the
int8 ONNX weights instead: within ±64 (7 bits), 2 x 255 x 64 < 32768 and every path computes the
same sums. A file with wider weights fails: it only holds on the build machine's instruction set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, recall_score

GOAL_DROP = 0.3  # points: int8 within 0.3 points of float
GOAL_AGREEMENT = 0.995  # argmax agreement with the Keras float model
GOAL_SIZE_RATIO = 0.27  # int8 file size / float file size


class GateError(RuntimeError):
    """One or more files failed the gate; the message is one line per failure."""


@dataclass
class Scores:
    """Test-split scores of one model (percent where it says points)."""

    top1: float  # percent
    macro_f1: float  # percent
    recall: list[float]  # percent per class, in class order
    n: int

    @classmethod
    def of(cls, pred: np.ndarray, y: np.ndarray, num_classes: int) -> Scores:
        labels = list(range(num_classes))
        rec = recall_score(y, pred, labels=labels, average=None, zero_division=0) * 100
        f1 = f1_score(y, pred, labels=labels, average="macro", zero_division=0) * 100
        return cls(float((pred == y).mean() * 100), float(f1), [float(r) for r in rec], len(y))


@dataclass
class FileResult:
    """One exported file against the reference."""

    file: str
    format: str
    precision: str
    io: str
    size_bytes: int
    scores: Scores
    agreement: float  # percent of test items with the same argmax as the Keras float model
    recall_delta: list[float]  # points per class (file - reference)
    top1_delta: float  # points (file - reference)
    coverage: float = float("nan")  # share of test items at/above the review threshold
    accuracy_above: float = float("nan")  # accuracy of those items
    notes: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # cosine of the file's embedding output with the float reference's: mean, min, 1st percentile
    embedding_cosine: dict[str, float] | None = None
    # int8 ONNX: [min, max] of the int8 weights feeding Conv/Gemm/MatMul (None: not int8 ONNX or unchecked)
    int8_weight_range: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def runtime_logits(
    path: str | Path, x: np.ndarray, threads: int | None = None, batch: int = 256
) -> tuple[np.ndarray, list[str]]:
    """Logits of a model file through ``runtime.load`` (ONNX Runtime / LiteRT), and its class names."""
    logits, _, classes = runtime_outputs(path, x, threads, batch)
    return logits, classes


def runtime_outputs(
    path: str | Path, x: np.ndarray, threads: int | None = None, batch: int = 256
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Logits, embeddings (None for a file without that output) and class names, through the runtime."""
    from fashion_edge.runtime import load

    clf = load(path, threads=threads)
    if not clf.meta.embedding_output:
        outs = [np.asarray(clf.logits(x[i : i + batch])) for i in range(0, len(x), batch)]
        return np.concatenate(outs), None, list(clf.classes)
    pairs = [clf.logits_and_embedding(x[i : i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]), list(clf.classes)


SATURATION_FREE = 64  # |int8 weight| bound that keeps u8s8 int16 pair sums exact: 2 * 255 * 64 < 32768
_WEIGHT_OPS = {"Conv", "Gemm", "MatMul"}


def saturation_free(weight_range: list[int] | None) -> bool:
    """Whether int8 weights in ``weight_range`` ([min, max]) keep u8s8 int16 pair sums exact on x86
    CPUs without VNNI (|w| <= SATURATION_FREE); True when there are none."""
    return not weight_range or max(-weight_range[0], weight_range[1]) <= SATURATION_FREE


def int8_weight_range(path: str | Path) -> list[int] | None:
    """[min, max] of the int8 weights that feed dense Conv/Gemm/MatMul through DequantizeLinear (QDQ
    ONNX); None when the file has none or the ``onnx`` package is absent. Depthwise convolutions are
    left out: their x86 kernels widen to int32 and cannot saturate (``onnx_export`` docstring)."""
    from fashion_edge.export.onnx_export import is_depthwise

    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    used_by: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            used_by.setdefault(name, set()).add("depthwise" if is_depthwise(node) else node.op_type)
    lo = hi = None
    for node in graph.node:
        if (
            node.op_type == "DequantizeLinear"
            and node.input[0] in inits
            and used_by.get(node.output[0], set()) & _WEIGHT_OPS
        ):
            w = numpy_helper.to_array(inits[node.input[0]])
            if w.dtype == np.int8 and w.size:
                lo = int(w.min()) if lo is None else min(lo, int(w.min()))
                hi = int(w.max()) if hi is None else max(hi, int(w.max()))
    return None if lo is None or hi is None else [lo, hi]


def cpu_path() -> dict[str, Any]:
    """The CPU the gate measured on and the int8 kernel path its flags select."""
    from fashion_edge.benchmarks.sysinfo import cpu_info

    info = cpu_info()
    return {
        "model": info["model"],
        "int8_path": info["int8_path"],
        "flags": [f for f, on in info["flags"].items() if on],
    }


def cosine_summary(emb: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    from fashion_edge.export.embedding import cosine

    c = cosine(emb, ref)
    return {"mean": float(c.mean()), "min": float(c.min()), "p01": float(np.percentile(c, 1))}


def evaluate_file(
    path: Path,
    fmt: Any,
    x: np.ndarray,
    y: np.ndarray,
    ref_pred: np.ndarray,
    ref: Scores,
    *,
    classes: list[str],
    temperature: float,
    threshold: float,
    threads: int | None = None,
    ref_emb: np.ndarray | None = None,
) -> FileResult:
    """Score one file on the test split against the reference predictions (and embeddings)."""
    from fashion_edge.export.calibration import accuracy_above
    from fashion_edge.runtime.classifier import softmax

    logits, emb, file_classes = runtime_outputs(path, x, threads)
    k = len(ref.recall)
    if logits.shape != (len(x), k):
        raise GateError(f"{path.name}: outputs shape {logits.shape}, expected ({len(x)}, {k})")
    pred = logits.argmax(1)
    s = Scores.of(pred, y, k)
    cov, acc = accuracy_above(softmax(logits, temperature), y, threshold)
    res = FileResult(
        file=path.name, format=fmt.family, precision=fmt.precision, io=fmt.io, size_bytes=path.stat().st_size,
        scores=s, agreement=float((pred == ref_pred).mean() * 100),
        recall_delta=[a - b for a, b in zip(s.recall, ref.recall, strict=True)], top1_delta=s.top1 - ref.top1,
        coverage=cov, accuracy_above=acc,
    )  # fmt: skip
    if emb is not None and ref_emb is not None and emb.shape == ref_emb.shape:
        res.embedding_cosine = cosine_summary(emb, ref_emb)
    if fmt.family == "onnx" and fmt.precision == "int8":
        res.int8_weight_range = int8_weight_range(path)
    if file_classes != classes:
        res.failures.append(f"{path.name} names its classes {file_classes}, expected {classes}")
    return res


def apply_gate(
    results: list[FileResult], classes: list[str], max_drop: float = 1.0, max_class_drop: float = 3.0
) -> list[str]:
    """Record and return failures: files losing too much accuracy or any class's recall.

    The rule is written for int8 files; float files are held to it too, so a broken float
    conversion cannot ship either.
    """
    failures = []
    for r in results:
        if -r.top1_delta > max_drop:
            r.failures.append(f"{r.file} lost {-r.top1_delta:.1f} points (max {max_drop:g})")
        if not saturation_free(r.int8_weight_range):
            r.failures.append(
                f"{r.file} has int8 weights in {r.int8_weight_range}: x86 kernels without VNNI can saturate "
                f"(needs |w| <= {SATURATION_FREE}, reduce_range)"
            )
        worst = int(np.argmin(r.recall_delta))
        if -r.recall_delta[worst] > max_class_drop:
            r.failures.append(
                f"{r.file} lost {-r.recall_delta[worst]:.1f} points of recall on '{classes[worst]}' "
                f"(max {max_class_drop:g})"
            )
        failures += r.failures
    return failures


def goals(results: list[FileResult]) -> dict[str, dict[str, Any]]:
    """The issue's targets per int8 file (measured and reported, not gated)."""
    float_size = {r.format: r.size_bytes for r in results if r.precision == "float32" and r.io == "float32"}
    out = {}
    for r in results:
        if r.precision != "int8":
            continue
        ratio = r.size_bytes / float_size[r.format] if r.format in float_size else float("nan")
        out[r.file] = {
            "within_0.3_points": -r.top1_delta <= GOAL_DROP,
            "agreement_99.5": r.agreement >= GOAL_AGREEMENT * 100,
            "size_ratio": ratio,
            "size_le_0.27x": bool(ratio <= GOAL_SIZE_RATIO),
        }
    return out
