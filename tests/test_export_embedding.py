"""The embedding output export writes: the logits' input, or a registry-named layer's pooled output."""

from __future__ import annotations

import numpy as np
import pytest

from fashion_edge.export.embedding import embedding_layer_for, meta_changes, with_embedding
from fashion_edge.training.models import REGISTRY


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, imported when these tests run (not at collection, as the other TF tests do)."""
    return pytest.importorskip("tensorflow", reason="needs the [train] extra")


def _tiny(tf):
    L = tf.keras.layers
    inp = tf.keras.Input((16, 12, 3))
    feat = L.Conv2D(4, 3, padding="same", name="feat")(inp)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="top")(feat)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return tf.keras.Model(inp, L.Dense(3, name="logits")(x)), feat


def test_named_layer_is_pooled_into_the_embedding_output(tf) -> None:
    model, _ = _tiny(tf)
    two = with_embedding(model, "feat")
    x = np.random.default_rng(0).normal(size=(2, 16, 12, 3)).astype(np.float32)
    logits, emb = two.predict(x, verbose=0)
    feat = tf.keras.Model(model.input, model.get_layer("feat").output).predict(x, verbose=0)
    np.testing.assert_allclose(emb, feat.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert meta_changes(two) == {
        "logits_output": "logits", "embedding_output": "embedding", "embedding_size": 4, "embedding_layer": "feat"
    }  # fmt: skip


def test_default_embedding_is_the_input_of_the_logits_layer(tf) -> None:
    model, _ = _tiny(tf)
    two = with_embedding(model)
    changes = meta_changes(two)
    assert changes["embedding_size"] == 8 and changes["embedding_layer"] is None


def test_a_missing_or_flat_embedding_layer_is_refused_by_name(tf) -> None:
    model, _ = _tiny(tf)
    for bad in ("nope", "gap"):
        with pytest.raises(ValueError, match=bad):
            with_embedding(model, bad)


def test_every_registry_embedding_layer_exists_in_its_model(tf) -> None:
    """A registry entry naming an embedding layer must build a model that has it as a feature map."""
    named = {n: s for n, s in REGISTRY.items() if s.embedding_layer}
    assert "lite0" in named
    for name, spec in named.items():
        assert embedding_layer_for(name) == spec.embedding_layer
        model = spec.build(spec.input_shape((64, 48)), 5)
        two = with_embedding(model, spec.embedding_layer)
        assert meta_changes(two)["embedding_layer"] == spec.embedding_layer
    assert embedding_layer_for("compact") is None and embedding_layer_for("no-such-model") is None
