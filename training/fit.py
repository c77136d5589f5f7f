"""The training loop's parts: tf.data pipeline, optimiser, checkpoints, and the fine-tuning phases.

A pretrained model (``ModelSpec.freeze_epochs``) first trains its new head on a frozen backbone, then
everything at ``ModelSpec.finetune_lr``; its BatchNorm layers stay in inference mode throughout (small
CPU batches would only blur the ImageNet statistics). Checkpoints every epoch make ``--resume`` work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def make_dataset(
    x, y, batch: int, training: bool, augment: tuple[str, ...], seed: int, webcam_p: float = 0.0
):
    """tf.data: in-memory uint8 arrays (decoded once, in parallel, by runtime.preprocess) -> shuffle ->
    batch -> on-the-fly augmentation -> prefetch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch, drop_remainder=False)
    if training and webcam_p > 0:
        from fashion_edge.training.webcam import augment_batch

        rng = np.random.default_rng(seed)

        def _webcam(xb):
            return augment_batch(xb, rng, p=webcam_p)

        def _map_webcam(xb, yb):
            out = tf.numpy_function(_webcam, [xb], tf.uint8)
            out.set_shape(xb.shape)
            return out, yb

        ds = ds.map(_map_webcam, num_parallel_calls=1)
    ds = ds.map(lambda xb, yb: (tf.cast(xb, tf.float32), yb), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        L = tf.keras.layers
        layers = []
        if "flip" in augment:
            layers.append(L.RandomFlip("horizontal", seed=seed))
        if "shift" in augment:
            layers.append(L.RandomTranslation(0.08, 0.08, fill_mode="constant", fill_value=255.0, seed=seed))
        if "zoom" in augment:
            layers.append(L.RandomZoom((-0.1, 0.15), fill_mode="constant", fill_value=255.0, seed=seed))
        if "light" in augment:
            layers.append(L.RandomBrightness(0.15, value_range=(0, 255), seed=seed))
            layers.append(L.RandomContrast(0.15, seed=seed))
        aug = tf.keras.Sequential(layers)
        ds = ds.map(
            lambda xb, yb: (tf.clip_by_value(aug(xb, training=True), 0.0, 255.0), yb),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_model(model, spec, steps_per_epoch: int, epochs: int, lr: float, warmup: bool = True):
    import tensorflow as tf

    if spec.optimizer == "adamw":
        schedule = tf.keras.optimizers.schedules.CosineDecay(
            lr * 0.1 if warmup else lr, decay_steps=max(1, steps_per_epoch * epochs), alpha=0.01,
            warmup_target=lr if warmup else None, warmup_steps=steps_per_epoch if warmup else 0,
        )  # fmt: skip
        opt = tf.keras.optimizers.AdamW(schedule, weight_decay=spec.weight_decay)
    elif spec.optimizer == "sgd":
        opt = tf.keras.optimizers.SGD(lr, momentum=0.9)
    else:
        opt = tf.keras.optimizers.Adam(lr)
    model.compile(
        optimizer=opt,
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=spec.label_smoothing),
        metrics=["accuracy"],
    )


def one_hot_ds(ds, k: int):
    import tensorflow as tf

    return ds.map(lambda xb, yb: (xb, tf.one_hot(yb, k)))


def set_phase(model, spec, frozen: bool) -> None:
    """Freeze (or unfreeze) a pretrained model's backbone; its BatchNorm layers always stay frozen."""
    import tensorflow as tf

    from fashion_edge.training.lite0 import backbone_layers

    for layer in backbone_layers(model):
        layer.trainable = not frozen and not isinstance(layer, tf.keras.layers.BatchNormalization)


def phases(spec, epochs: int, lr: float) -> list[tuple[int, int, bool, float]]:
    """(first epoch, end epoch, backbone frozen?, learning rate) for each phase of a run."""
    if spec.freeze_epochs <= 0:
        return [(0, epochs, False, lr)]
    k = min(spec.freeze_epochs, epochs)
    return [(0, k, True, lr), (k, epochs, False, spec.finetune_lr or lr * 0.3)]


def checkpoint_callback(run: Path, patience: int, best_val: float):
    """Every epoch: ``checkpoints/last.keras`` + ``state.json`` (for --resume); ``model.keras`` when val
    accuracy improves; early stop after ``patience`` epochs without improvement."""
    import tensorflow as tf

    last = run / "checkpoints" / "last.keras"
    state_path = run / "checkpoints" / "state.json"

    class Checkpoint(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.wait = best_val, 0

        def on_epoch_end(self, epoch, logs=None):
            val = float((logs or {}).get("val_accuracy", 0.0))
            if val > self.best:
                self.best, self.wait = val, 0
                self.model.save(run / "model.keras.tmp.keras")
                os.replace(run / "model.keras.tmp.keras", run / "model.keras")
            else:
                self.wait += 1
            self.model.save(run / "checkpoints" / "last.tmp.keras")
            os.replace(run / "checkpoints" / "last.tmp.keras", last)
            state_path.write_text(json.dumps({"epoch": epoch + 1, "best_val": self.best}))
            if self.wait >= patience:
                print(f"early stop: no val improvement for {patience} epochs")
                self.model.stop_training = True

    return Checkpoint()
