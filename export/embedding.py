"""The embedding output every exported file carries next to its logits.

The embedding is the input of the model's final Dense layer named ``logits`` (for the registry's
models: the pooled features after GAP [-> Dropout, an identity at inference]). Export writes a
two-output copy of the Keras model, outputs ``logits`` and ``embedding``, and records their names
and the embedding size in the metadata; ``runtime.adapter`` learns on it. Models without a
``logits`` Dense layer are exported as before (one output, no embedding).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOGITS = "logits"
EMBEDDING = "embedding"


def _logits_layer(model: Any) -> Any | None:
    for name in (LOGITS, f"quant_{LOGITS}"):  # tfmot wraps layers as quant_<name> under --qat
        try:
            return model.get_layer(name)
        except ValueError:
            continue
    return None


def with_embedding(model: Any) -> Any | None:
    """A Keras model with outputs [logits, embedding], or None if ``model`` has no ``logits`` layer."""
    import tensorflow as tf

    layer = _logits_layer(model)
    if layer is None or isinstance(model.output, (list, tuple)) or layer.output is not model.output:
        return None
    emb = tf.keras.layers.Activation("linear", name=EMBEDDING)(layer.input)
    return tf.keras.Model(model.input, [model.output, emb], name=f"{model.name}_with_embedding")


def cached(ctx: Any, key: str, model: Any) -> Any:
    """``with_embedding(model)`` once per export (kept in ctx.choices); the model itself if None."""
    store = ctx.choices.setdefault("_with_embedding", {})
    if key not in store:
        store[key] = with_embedding(model)
    return store[key] or model


def meta_changes(two: Any) -> dict[str, Any]:
    """Metadata fields for a file converted from ``two`` (empty when it has no embedding)."""
    if not isinstance(two.output, (list, tuple)):
        return {}
    logits, emb = two.output_names  # converters name the outputs after these layers
    return {"logits_output": logits, "embedding_output": emb, "embedding_size": int(two.output_shape[1][-1])}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays (1.0 for two zero rows)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(1)
    both_zero = (na == 0) & (nb == 0)
    return np.where(both_zero, 1.0, dot / np.maximum(na * nb, 1e-12))
