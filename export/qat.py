"""Quantization-aware fine-tuning (tensorflow-model-optimization, Keras 2 / tf_keras).

tfmot rejects ``Rescaling``; every layer its default 8-bit registry supports is annotated and the
rest (Rescaling, input) are left float, then ``quantize_apply`` builds the fake-quant model, which
is fine-tuned briefly at a low learning rate on the training split.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def quantize_aware(model: Any) -> Any:
    """A QAT copy of ``model`` (weights kept), every supported layer annotated."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    supported = registry.Default8BitQuantizeRegistry()
    annotate = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer: Any) -> Any:
        return annotate(layer) if supported.supports(layer) else layer

    annotated = tf.keras.models.clone_model(model, clone_function=clone)
    annotated.set_weights(model.get_weights())
    with tfmot.quantization.keras.quantize_scope():
        return tfmot.quantization.keras.quantize_apply(annotated)


def finetune(
    model: Any, x: np.ndarray, y: np.ndarray, epochs: int = 2, lr: float = 1e-4, batch: int = 64
) -> Any:
    """Fine-tune the QAT copy of ``model`` on (x, y); returns the QAT model."""
    import tensorflow as tf

    qat = quantize_aware(model)
    qat.compile(
        optimizer=tf.keras.optimizers.Adam(lr),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    qat.fit(x.astype(np.float32), y, epochs=epochs, batch_size=batch, shuffle=True, verbose=0)
    return qat
