"""A tiny ONNX model with two outputs (logits and embedding), for the adapter tests.

embedding = [mean colour, mean squared colour] of the normalised input (6 values);
logits = embedding @ W with the red/green/blue weights of ``tests/onnx_tiny.py`` (first three rows),
so red, green and blue images are classes 0, 1, 2, while a yellow image (red + green) is a class
the model does not know but its embedding separates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashion_edge.runtime.metadata import ONNX_KEY, ModelMetadata
from tests.onnx_tiny import DEFAULT_CLASSES, tiny_weights


def tiny_embedding_meta(classes: tuple[str, ...] = DEFAULT_CLASSES, embedding: bool = True) -> ModelMetadata:
    extra = (
        {"logits_output": "logits", "embedding_output": "embedding", "embedding_size": 6} if embedding else {}
    )
    return ModelMetadata(
        classes=list(classes), height=80, width=60, temperature=1.0, review_threshold=0.5, recipe="tiny-test",
        model="mean-colour-linear", format="onnx", precision="float32", **extra,
    )  # fmt: skip


def make_embedding_model(
    path: Path, classes: tuple[str, ...] = DEFAULT_CLASSES, embedding: bool = True
) -> Path:
    """Write the two-output model (or, with ``embedding=False``, the same graph as an old export)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    meta = tiny_embedding_meta(classes, embedding)
    k = meta.num_classes
    w3, b = tiny_weights(k)
    w6 = np.concatenate([w3, np.zeros((3, k), np.float32)])
    inits = [
        numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale"),
        numpy_helper.from_array(np.array(-1.0, np.float32), "shift"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(w6, "W"),
        numpy_helper.from_array(b, "B"),
    ]
    nodes = [
        helper.make_node("Mul", ["input", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["norm"]),
        helper.make_node("Mul", ["norm", "norm"], ["sq"]),
        helper.make_node("ReduceMean", ["norm"], ["m1"], axes=[1, 2], keepdims=0),
        helper.make_node("ReduceMean", ["sq"], ["m2"], axes=[1, 2], keepdims=0),
        helper.make_node("Concat", ["m1", "m2"], ["embedding"], axis=1),
        helper.make_node("MatMul", ["embedding", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])]
    if embedding:
        outputs.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 6]))
    graph = helper.make_graph(
        nodes, "tiny_embedding",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", meta.height, meta.width, 3])],
        outputs, inits[:2] + inits[3:],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="adapter_tiny"
    )
    model.ir_version = 8
    helper.set_model_props(model, {ONNX_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def coloured(rgb: tuple[int, int, int], seed: int, h: int = 80, w: int = 60) -> np.ndarray:
    """A noisy image of one colour: e.g. (255, 40, 40) red, (230, 230, 40) yellow."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = rgb
    img += rng.normal(0, 25, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


COLOURS = {"red": (230, 40, 40), "green": (40, 230, 40), "blue": (40, 40, 230), "yellow": (230, 230, 40)}
