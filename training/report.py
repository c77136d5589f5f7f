"""Evaluation figures and the run's ``report.md``: metrics (scikit-learn) and plots (matplotlib)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, logits: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Top-1, macro-F1 and per-class precision/recall/F1/support."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    pred = logits.argmax(axis=1)
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    return {
        "top1": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
        "n": int(len(y_true)),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(classes)
        },
    }


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(y_true: np.ndarray, pred: np.ndarray, classes: list[str], path: Path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _plt()
    size = max(6, 0.45 * len(classes) + 3)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        y_true, pred, labels=list(range(len(classes))), display_labels=classes, ax=ax,
        xticks_rotation=60, colorbar=False, include_values=len(classes) <= 16,
    )  # fmt: skip
    ax.set_title("Test confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history_csv: Path, path: Path) -> None:
    if not history_csv.exists():
        return
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    plt = _plt()
    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, ax in (("loss", axes[0]), ("accuracy", axes[1])):
        for prefix in ("", "val_"):
            if prefix + key in rows[0]:
                ax.plot(ep, [float(r[prefix + key]) for r in rows], label=prefix + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_most_wrong(
    x: np.ndarray, y: np.ndarray, probs: np.ndarray, classes: list[str], path: Path, n=16
) -> None:
    """Grid of the test images the model got wrong with the highest confidence."""
    pred = probs.argmax(axis=1)
    wrong = np.where(pred != y)[0]
    if len(wrong) == 0:
        return
    order = wrong[np.argsort(-probs[wrong, pred[wrong]])][:n]
    plt = _plt()
    cols = min(8, len(order))
    rows = int(np.ceil(len(order) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 2.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order, strict=False):
        img = x[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        ax.set_title(f"true {classes[y[i]]}\npred {classes[pred[i]]}\n{probs[i, pred[i]]:.2f}", fontsize=7)
    fig.suptitle("Most confidently wrong test images")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_feature_maps(model, images: np.ndarray, titles: list[str], path: Path, n_maps: int = 8) -> None:
    """Seed 004: feature maps of the first two conv layers for a few images."""
    import tensorflow as tf

    convs = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)][:2]
    if not convs:
        return
    probe = tf.keras.Model(model.input, [c.output for c in convs])
    outs = probe.predict(images.astype("float32"), verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    plt = _plt()
    rows = len(images) * len(convs)
    fig, axes = plt.subplots(rows, n_maps + 1, figsize=((n_maps + 1) * 1.1, rows * 1.2), squeeze=False)
    r = 0
    for i, title in enumerate(titles):
        for li, out in enumerate(outs):
            axes[r, 0].imshow(images[i][..., 0], cmap="gray")
            axes[r, 0].set_title(f"{title}\n{convs[li].name}", fontsize=6)
            for k in range(n_maps):
                axes[r, k + 1].imshow(out[i][..., k % out.shape[-1]], cmap="viridis")
            r += 1
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(run: Path, info: dict[str, Any]) -> None:
    """report.md + report.json from the evaluation record."""
    (run / "report.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    m = info["test"]
    lines = [
        f"# {info['model']} on {info['recipe']}",
        "",
        f"- Test top-1 **{m['top1']:.4f}**, macro-F1 **{m['macro_f1']:.4f}** on {m['n']} test images"
        f" (val top-1 {info.get('val', {}).get('top1', float('nan')):.4f}).",
        f"- {info['params']:,} parameters; trained {info.get('epochs_run', '?')} epochs in"
        f" {info.get('train_seconds', 0) / 60:.1f} min on {info.get('device', '?')}.",
        f"- Data: {info.get('data_root', '')}; fingerprint {info.get('data_fingerprint', '')}.",
        "",
        "## Data",
        "",
    ]
    for k, v in info.get("data_stats", {}).items():
        lines.append(f"- {k.replace('_', ' ')}: {v:,}" if isinstance(v, int) else f"- {k}: {v}")
    for k, v in info.get("recipe_notes", {}).items():
        lines.append(f"- recipe {k.replace('_', ' ')}: {v}")
    lines.append(f"- split sizes: {info.get('split_sizes')}")
    lines += [
        "",
        "## Per class (test)",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for c, v in m["per_class"].items():
        lines.append(f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    lines += ["", "## Figures", ""]
    for name, title in [
        ("confusion.png", "Confusion matrix"),
        ("curves.png", "Training curves"),
        ("most_wrong.png", "Most confidently wrong"),
        ("feature_maps.png", "Feature maps"),
    ]:
        if (run / name).exists():
            lines.append(f"![{title}]({name})")
    lines += ["", "## Settings", "", "```json", json.dumps(info.get("settings", {}), indent=2), "```", ""]
    (run / "report.md").write_text("\n".join(lines))
