"""Which layer should a model's embedding output come from? Decided on real-dev learn/ only.

    python scripts/embedding_layer_choice.py runs/articletype8-lite0 [--layers b14_add gap ...] [--imagenet]

For each candidate layer of a run's model.keras (globally averaged), the adapter's head
(``runtime.adapter_head.fit_head``, with the model's own logits) is fitted on k photos per class
drawn from ``real-dev/learn/`` and scored on the remaining known-class photos of learn/; mean over
5 draws. eval/ is never read. ``--imagenet``: the features come from the ImageNet-only Lite0
(no catalogue training; the run's logits stay the base). ``a+b``: both layers, each L2-normalised,
concatenated. Needs TensorFlow (a training install).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

DEFAULT_LAYERS = ("gap", "b15_project_bn", "b14_expand_relu6", "b14_add", "b13_add", "b12_add")
KS = (5, 20, 50)
DRAWS = 5
L2 = 1e-4  # the weakest of runtime.adapter.L2_GRID: the grid's choice varies per draw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a fashion-train run folder (model.keras, metadata.json)")
    ap.add_argument("--layers", nargs="+", default=list(DEFAULT_LAYERS))
    ap.add_argument("--imagenet", action="store_true", help="features of the ImageNet-only Lite0")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from fashion_edge.benchmarks.adapter_curve import draw
    from fashion_edge.benchmarks.realphotos import folder_items
    from fashion_edge.runtime.adapter_head import base_term, features, fit_head, head_logits
    from fashion_edge.runtime.metadata import ModelMetadata
    from fashion_edge.runtime.preprocess import load_for_model
    from fashion_edge.training.data import SHARED_DATA

    learn = SHARED_DATA / "real-dev" / "learn"
    if not learn.is_dir():
        print(f"embedding_layer_choice: {learn} is missing (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    meta = ModelMetadata.from_json((args.run / "metadata.json").read_text())
    model = tf.keras.models.load_model(args.run / "model.keras", compile=False)
    items = folder_items(learn)
    paths, labels = [p for p, _ in items], [lab for _, lab in items]
    x = np.stack([load_for_model(p, meta) for p in paths]).astype(np.float32)
    src = model
    if args.imagenet:
        from fashion_edge.training.lite0 import build_lite0_pretrained

        src = build_lite0_pretrained(model.input_shape[1:], len(meta.classes))
    names = list(dict.fromkeys(part for name in args.layers for part in name.split("+")))
    pooled = [tf.keras.layers.GlobalAveragePooling2D()(src.get_layer(n).output)
              if len(src.get_layer(n).output.shape) == 4 else src.get_layer(n).output for n in names]  # fmt: skip
    logits = model.predict(x, batch_size=64, verbose=0)
    outs = tf.keras.Model(src.input, pooled).predict(x, batch_size=64, verbose=0)
    feats = dict(zip(names, outs if len(names) > 1 else [outs], strict=True))
    classes = list(meta.classes)
    y = np.array([classes.index(lab) if lab in classes else -1 for lab in labels])
    if (y < 0).any():
        print(f"embedding_layer_choice: learn/ folders not among the model's classes: "
              f"{sorted({lab for lab in labels if lab not in classes})}", file=sys.stderr)  # fmt: skip
        return 2
    known = np.array([lab != meta.unknown_class for lab in labels])
    base = base_term(logits, meta.temperature, meta.outputs)
    print(f"{len(paths)} learn/ photos; top-1 on the rest of learn/'s known classes, mean of {DRAWS} draws")
    print("| layer | dim | " + " | ".join(f"k={k}" for k in KS) + " |")
    print("|---|---|" + "---|" * len(KS))
    for name in args.layers:
        parts = name.split("+")
        f = np.hstack([features(feats[n]) for n in parts]) / np.sqrt(len(parts))
        row = []
        for k in KS:
            accs = []
            for s in range(DRAWS):
                idx = draw(labels, k, 100 + s, classes)
                rest = known.copy()
                rest[idx] = False
                head = fit_head(base[idx], f[idx], y[idx], len(classes), l2=L2)
                accs.append(float((head_logits(head, base[rest], f[rest]).argmax(1) == y[rest]).mean()))
            row.append(np.mean(accs))
        print(f"| {name} | {f.shape[1]} | " + " | ".join(f"{r:.1%}" for r in row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
