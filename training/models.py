"""Model registry: name -> builder(input_shape, num_classes) -> tf_keras Model emitting logits.

Every model takes float pixels in [0, 255] and normalises inside itself, so the preprocessing a
deployed file needs is only decode + fit (``runtime.preprocess``). Each entry also carries the
training recipe of its seed (optimizer, batch size, callbacks), in one place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tfmot needs Keras 2 (tf-keras); before TF import


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and how its seed trained it."""

    name: str
    build: Callable[[tuple[int, int, int], int], object]
    summary: str
    batch: int = 64
    lr: float = 2e-3
    optimizer: str = "adamw"  # adamw (cosine decay) | adam (+ReduceLROnPlateau, as the seeds)
    epochs: int = 30
    patience: int = 6
    label_smoothing: float = 0.1
    augment: tuple[str, ...] = ("flip", "shift", "zoom", "light")
    weight_decay: float = 1e-4
    input_kind: str = "catalogue"  # catalogue (RGB, input_size) | fmnist (28x28x1)
    input_size: tuple[int, int] = (80, 60)  # height, width of a catalogue model's input (--input overrides)
    normalization: str = "inside-model: x/127.5-1"  # what the model's first layer does (recorded in metadata)
    freeze_epochs: int = 0  # pretrained backbones: epochs with the backbone frozen before full fine-tuning
    finetune_lr: float | None = None  # learning rate once the backbone is unfrozen (default lr * 0.3)
    # The layer whose globally pooled output export writes as the ``embedding`` output that
    # runtime.adapter learns on (None: the input of the final ``logits`` Dense).
    embedding_layer: str | None = None
    extra: dict = field(default_factory=dict)

    def input_shape(self, size: tuple[int, int] | None = None) -> tuple[int, int, int]:
        """The input contract: (H, W, C); ``size`` overrides a catalogue model's height and width."""
        if self.input_kind == "fmnist":
            return (28, 28, 1)
        h, w = size or self.input_size
        return (h, w, 3)


def _keras():
    import tensorflow as tf

    return tf.keras


def _conv_bn(x, filters: int, k=3, strides=1, name: str = ""):
    L = _keras().layers
    x = L.Conv2D(filters, k, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x)


def build_compact(input_shape, num_classes, widths=(24, 48, 96, 192), head_filters=256, dropout=0.3):
    """The product model: 4 VGG-style stages (2x conv3x3-BN-ReLU, max-pool), a 256-filter conv on the
    5x3 map, global average pooling, dropout, linear classifier. ~1.1 M parameters, ~145 M MACs.
    ``compact-s`` is the same at 2/3 width (0.59 M parameters, ~66 M MACs)."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(inp)
    for s, f in enumerate(widths, 1):
        x = _conv_bn(x, f, name=f"s{s}a")
        x = _conv_bn(x, f, name=f"s{s}b")
        x = L.MaxPooling2D(name=f"s{s}_pool")(x)
    x = _conv_bn(x, head_filters, name="head")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(dropout, name="drop")(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="compact")


def build_s000(input_shape, num_classes):
    """Seed 000's final model exactly: 2,895,768 parameters for 8 classes."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Rescaling(1 / 255.0, name="normalise")(inp)
    for f in (16, 32, 64):
        x = L.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = L.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D()(x)
        x = L.Dropout(0.1)(x)
    x = L.Flatten()(x)
    x = L.Dense(512, activation="relu")(x)
    x = L.Dropout(0.5)(x)
    x = L.Dense(512, activation="relu")(x)
    x = L.Dropout(0.5)(x)
    x = L.Dense(512, activation="relu")(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="s000")


def build_s000_baseline(input_shape, num_classes):
    """Seed 000's baseline: Conv16 - MaxPool - Conv64 - MaxPool - Flatten - Dense."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Rescaling(1 / 255.0, name="normalise")(inp)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D()(x)
    x = L.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D()(x)
    x = L.Flatten()(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="s000_baseline")


def build_s001(input_shape, num_classes):
    """Seed 001's CNN: [Conv32 x2, BN, pool, drop .2], [Conv64 x2, BN, pool, drop .2], Dense512-BN-drop .25."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Rescaling(1 / 255.0, name="normalise")(inp)
    for f in (32, 64):
        x = L.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = L.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = L.BatchNormalization()(x)
        x = L.MaxPooling2D()(x)
        x = L.Dropout(0.2)(x)
    x = L.Flatten()(x)
    x = L.Dense(512, activation="relu")(x)
    x = L.BatchNormalization()(x)
    x = L.Dropout(0.25)(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="s001")


def build_resnet18(input_shape, num_classes):
    """ResNet-18 (basic blocks 2-2-2-2, 64..512 filters), from scratch; 7x7/2 stem + 3x3/2 max-pool."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(inp)
    x = _conv_bn(x, 64, k=7, strides=2, name="stem")
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    for s, (f, n) in enumerate(zip((64, 128, 256, 512), (2, 2, 2, 2), strict=True), 1):
        for b in range(n):
            stride = 2 if (b == 0 and s > 1) else 1
            name = f"s{s}b{b}"
            y = _conv_bn(x, f, strides=stride, name=f"{name}a")
            y = L.Conv2D(f, 3, padding="same", use_bias=False, name=f"{name}b_conv")(y)
            y = L.BatchNormalization(name=f"{name}b_bn")(y)
            if stride != 1 or x.shape[-1] != f:
                x = L.Conv2D(f, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
                x = L.BatchNormalization(name=f"{name}_proj_bn")(x)
            x = L.ReLU()(L.Add()([x, y]))
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="resnet18")


def build_efficientnetb0(input_shape, num_classes):
    """EfficientNet-B0 from scratch (weights=None: no download at run time); it rescales inside."""
    keras = _keras()
    base = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=input_shape, pooling="avg"
    )
    x = keras.layers.Dropout(0.2)(base.output)
    out = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(base.input, out, name="efficientnetb0")


# --- Fashion-MNIST (28x28x1) -------------------------------------------------------------------


def build_mlp(input_shape, num_classes, units=(512, 256), dropout=0.2, l2=1e-3):
    """Seed 003's MLP family: Dense + BatchNorm + Dropout + L2, SELU."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Flatten()(L.Rescaling(1 / 255.0, name="normalise")(inp))
    for u in units:
        x = L.Dense(u, activation="selu", kernel_regularizer=keras.regularizers.l2(l2))(x)
        x = L.BatchNormalization()(x)
        x = L.Dropout(dropout)(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="mlp")


def build_cnn(input_shape, num_classes, blocks=2, filters=16, dropout=0.2):
    """Seed 003's CNN family: conv blocks (3x3, filters doubling), MaxPool, BatchNorm, Dropout."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Rescaling(1 / 255.0, name="normalise")(inp)
    for b in range(blocks):
        x = L.Conv2D(filters * 2**b, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D()(x)
        x = L.BatchNormalization()(x)
        x = L.Dropout(dropout)(x)
    x = L.Flatten()(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="cnn")


def build_cnn2(input_shape, num_classes, bn: bool = False, skip: bool = False):
    """Seed 004's CNN2: 2 x (Conv32 3x3 + MaxPool), Dense128, Dropout .5; optional BN before each
    conv, and y = conv(x) + x around each conv (1x1 projection where the channel count changes)."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input(input_shape, name="input")
    x = L.Rescaling(1 / 255.0, name="normalise")(inp)
    for _ in range(2):
        h = L.BatchNormalization()(x) if bn else x
        y = L.Conv2D(32, 3, padding="same", activation="relu")(h)
        if skip:
            x = x if x.shape[-1] == 32 else L.Conv2D(32, 1, padding="same")(x)
            y = L.Add()([y, x])
        x = L.MaxPooling2D()(y)
    x = L.Flatten()(x)
    x = L.Dense(128, activation="relu")(x)
    x = L.Dropout(0.5)(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inp, out, name="cnn2" + ("_bn" if bn else "") + ("_skip" if skip else ""))


def build_lite0(input_shape, num_classes):
    """EfficientNet-Lite0 with ImageNet weights (training.lite0): 3.4 M parameters with an 8-9 class head."""
    from fashion_edge.training.lite0 import build_lite0_pretrained

    return build_lite0_pretrained(input_shape, num_classes)


_seed_fit = dict(
    optimizer="adam", label_smoothing=0.0, augment=(), weight_decay=0.0, normalization="inside-model: x/255"
)
_fm = dict(input_kind="fmnist", augment=(), label_smoothing=0.0, epochs=40, patience=8, batch=64, lr=1e-3)

REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec(
            "lite0",
            build_lite0,
            "EfficientNet-Lite0, ImageNet-pretrained (no download), 160x120",
            input_size=(160, 120),
            normalization="inside-model: (x-127)/128",
            freeze_epochs=1,
            batch=32,
            lr=1e-3,
            finetune_lr=3e-4,
            epochs=7,
            patience=3,
            weight_decay=1e-5,
            # stage 6's last residual (192-d): it keeps more of ImageNet's generic features than the
            # catalogue-tuned 1280-d head; adapter on real-dev k=5/20/50: +3/+5/+7 points (docs/adapter.md)
            embedding_layer="b14_add",
        ),  # fmt: skip
        ModelSpec("compact", build_compact, "product CNN: 4 conv stages + BN, GAP, <=2 M params (default)"),
        ModelSpec(
            "compact-s",
            lambda s, n: build_compact(s, n, widths=(16, 32, 64, 128)),
            "compact at 2/3 width: faster, less accurate",
        ),  # fmt: skip
        ModelSpec(
            "s000", build_s000, "seed 000 final CNN, 2.9 M params", batch=16, lr=1e-3, patience=7, **_seed_fit
        ),
        ModelSpec(
            "s000-baseline",
            build_s000_baseline,
            "seed 000 baseline CNN",
            batch=16,
            lr=1e-3,
            patience=7,
            **_seed_fit,
        ),  # fmt: skip
        ModelSpec(
            "s001",
            build_s001,
            "seed 001 CNN, ~9.9 M params",
            batch=32,
            lr=1e-3,
            optimizer="adam",
            label_smoothing=0.0,
            augment=("flip",),
            weight_decay=0.0,
        ),  # fmt: skip
        ModelSpec("resnet18", build_resnet18, "ResNet-18 from scratch", epochs=12, patience=4),
        ModelSpec(
            "efficientnetb0", build_efficientnetb0, "EfficientNet-B0 from scratch", epochs=12, patience=4
        ),
        ModelSpec(
            "mlp",
            build_mlp,
            "seed 003 MLP (Fashion-MNIST)",
            optimizer="sgd",
            lr=1e-2,
            **{k: v for k, v in _fm.items() if k != "lr"},
        ),  # fmt: skip
        ModelSpec(
            "cnn",
            build_cnn,
            "seed 003 CNN (Fashion-MNIST)",
            optimizer="sgd",
            lr=1e-2,
            **{k: v for k, v in _fm.items() if k != "lr"},
        ),  # fmt: skip
        ModelSpec("cnn2", build_cnn2, "seed 004 CNN2 (Fashion-MNIST)", optimizer="adam", **_fm),
        ModelSpec(
            "cnn2-bn",
            lambda s, n: build_cnn2(s, n, bn=True),
            "seed 004 CNN2 + BatchNorm",
            optimizer="adam",
            **_fm,
        ),  # fmt: skip
        ModelSpec(
            "cnn2-bn-skip",
            lambda s, n: build_cnn2(s, n, bn=True, skip=True),
            "seed 004 CNN2 + BN + skip",
            optimizer="adam",
            **_fm,
        ),  # fmt: skip
    ]
}


def count_params(name: str, input_shape=(80, 60, 3), num_classes: int = 8) -> int:
    return int(REGISTRY[name].build(input_shape, num_classes).count_params())


# Parameter counts of the registry at each model's usual input, so that ``fashion-train --models``
# answers without building every TensorFlow graph (19 s). tests/test_cli.py checks the file
# against the builders; rewrite it with ``python -m fashion_edge.training.models``.
PARAMS_FILE = Path(__file__).with_name("model_params.json")


def _listed(spec: ModelSpec) -> tuple[list[int], int]:
    return list(spec.input_shape()), 10 if spec.input_kind == "fmnist" else 8


def cached_params() -> dict[str, int]:
    """Registry name -> parameter count, for the entries whose cached input and classes still match."""
    try:
        cache = json.loads(PARAMS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for name, spec in REGISTRY.items():
        hit = cache.get(name)
        if isinstance(hit, dict) and [hit.get("input_shape"), hit.get("classes")] == list(_listed(spec)):
            out[name] = int(hit["params"])
    return out


def listing_needs_tensorflow() -> bool:
    """True when some registry entry is not in the cache (its graph must be built to count)."""
    return set(cached_params()) != set(REGISTRY)


def listing() -> str:
    """One line per model: name, parameter count at its usual input, summary."""
    cached, lines = cached_params(), []
    for name, spec in REGISTRY.items():
        shape, k = _listed(spec)
        n = cached[name] if name in cached else count_params(name, tuple(shape), k)
        lines.append(f"{name:15s} {n:>11,d} params  {spec.summary}")
    return "\n".join(lines)


def write_params_cache() -> dict[str, dict]:
    """Build every registry model once and write PARAMS_FILE."""
    cache = {}
    for name, spec in REGISTRY.items():
        shape, k = _listed(spec)
        cache[name] = {"input_shape": shape, "classes": k, "params": count_params(name, tuple(shape), k)}
    lines = [f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in cache.items()]
    PARAMS_FILE.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    return cache


if __name__ == "__main__":
    print(f"wrote {PARAMS_FILE} ({len(write_params_cache())} models)")
