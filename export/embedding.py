"""The embedding output every exported file carries next to its logits.

The embedding is the input of the model's final Dense layer named ``logits`` (the pooled features
after GAP [-> Dropout, an identity at inference]), or, where the registry names an
``embedding_layer`` for the model, that layer's globally averaged output (a mid-level layer keeps
more generic features for few-shot learning). Export writes a two-output copy of the Keras model,
outputs ``logits`` and ``embedding``, and records their names, the embedding size and its layer in
the metadata; ``runtime.adapter`` learns on it. Models without a ``logits`` Dense layer are
exported as before (one output, no embedding).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOGITS = "logits"
EMBEDDING = "embedding"


def _layer(model: Any, name: str) -> Any | None:
    for n in (name, f"quant_{name}"):  # tfmot wraps layers as quant_<name> under --qat
        try:
            return model.get_layer(n)
        except ValueError:
            continue
    return None


def embedding_layer_for(model_name: str) -> str | None:
    """The registry's ``embedding_layer`` for a model name (None: unknown model or not set)."""
    from fashion_edge.training.models import REGISTRY

    spec = REGISTRY.get(model_name)
    return spec.embedding_layer if spec else None


def with_embedding(model: Any, layer_name: str | None = None) -> Any | None:
    """A Keras model with outputs [logits, embedding], or None if ``model`` has no ``logits`` layer.

    ``layer_name``: the embedding is that layer's global average (it must be a 4-D feature map);
    None: the input of ``logits``.
    """
    import tensorflow as tf

    layer = _layer(model, LOGITS)
    if layer is None or isinstance(model.output, (list, tuple)) or layer.output is not model.output:
        return None
    if layer_name is None:
        emb = tf.keras.layers.Activation("linear", name=EMBEDDING)(layer.input)
    else:
        src = _layer(model, layer_name)
        if src is None or len(src.output.shape) != 4:
            raise ValueError(f"embedding layer {layer_name!r} is not a feature map of {model.name}")
        emb = tf.keras.layers.GlobalAveragePooling2D(name=EMBEDDING)(src.output)
    return tf.keras.Model(model.input, [model.output, emb], name=f"{model.name}_with_embedding")


def cached(ctx: Any, key: str, model: Any) -> Any:
    """``with_embedding(model)`` once per export (kept in ctx.choices); the model itself if None."""
    store = ctx.choices.setdefault("_with_embedding", {})
    if key not in store:
        store[key] = with_embedding(model, embedding_layer_for(ctx.meta.model))
    return store[key] or model


def meta_changes(two: Any) -> dict[str, Any]:
    """Metadata fields for a file converted from ``two`` (empty when it has no embedding)."""
    if not isinstance(two.output, (list, tuple)):
        return {}
    logits, emb = two.output_names  # converters name the outputs after these layers
    return {"logits_output": logits, "embedding_output": emb, "embedding_size": int(two.output_shape[1][-1]),
            "embedding_layer": _source(two)}  # fmt: skip


def _source(two: Any) -> str | None:
    """The pooled layer behind the embedding output (None: the embedding is the logits' input)."""
    import tensorflow as tf

    emb = two.get_layer(EMBEDDING)
    if not isinstance(emb, tf.keras.layers.GlobalAveragePooling2D):
        return None
    inbound = emb.inbound_nodes[0].inbound_layers
    return (inbound[0] if isinstance(inbound, list) else inbound).name


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays (1.0 for two zero rows)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(1)
    both_zero = (na == 0) & (nb == 0)
    return np.where(both_zero, 1.0, dot / np.maximum(na * nb, 1e-12))
