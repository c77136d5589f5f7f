"""One PNG: top-1 accuracy against p50 latency, and p50 latency bars for every setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot(result: dict[str, Any], path: Path) -> Path:
    """Write the accuracy-vs-latency scatter and the latency bars side by side to ``path``."""
    rows = [r for r in result["rows"] if not r.get("error")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    s = result["settings"]
    for r in rows:
        p50 = (r.get("headline") or {}).get("p50_ms")
        acc = (r.get("accuracy") or {}).get("top1")
        if p50 is None or acc is None:
            continue
        marker = "o" if r["precision"] == "int8" else "s"
        ax1.scatter(p50, acc * 100, s=60, marker=marker, label=r["name"], alpha=0.8)
    ax1.set_xlabel(f"p50 latency, ms (batch {s['headline_batch']}, {s['headline_threads']} thread)")
    ax1.set_ylabel("top-1 accuracy, %")
    ax1.set_title("Accuracy vs latency (int8: circles)")
    if ax1.collections:
        ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)

    settings = sorted({(c["batch"], c["threads"]) for r in rows for c in r["latency"]["configs"]})
    width = 0.8 / max(1, len(settings))
    y = np.arange(len(rows))
    for i, (b, t) in enumerate(settings):
        per_image = [
            next(
                (c["p50_ms"] / b for c in r["latency"]["configs"] if (c["batch"], c["threads"]) == (b, t)), 0
            )
            for r in rows
        ]
        ax2.barh(y + i * width, per_image, height=width, label=f"batch {b}, {t} thread(s)")
    ax2.set_yticks(y + width * (len(settings) - 1) / 2, [r["name"] for r in rows], fontsize=8)
    ax2.invert_yaxis()
    ax2.set_xlabel("p50 ms per image")
    ax2.set_title("Latency per image")
    ax2.legend(fontsize=8)
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(f"fashion-bench: {result['model_name']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
