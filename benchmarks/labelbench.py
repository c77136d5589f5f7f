"""End-to-end folder labeling throughput (decode + infer + write CSV) through ``runtime.labeling``.

:func:`write_images` fills a folder with real test images; the timing itself runs in a fresh
process (``python -m fashion_edge.benchmarks.labelbench``) like the latency measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fashion_edge.benchmarks.latency import run_json


def write_images(folder: Path, n: int, ids: Sequence[str], x: np.ndarray, source_root: Path | None) -> int:
    """Write ``n`` images into ``folder``: copies of the original catalogue JPEGs where
    ``source_root/images/<id>.jpg`` exists, otherwise the prepared pixels re-encoded as JPEG.
    Cycles through the test images when ``n`` is larger than the split. Returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        j = i % len(ids)
        dst = folder / f"{i:06d}_{ids[j]}.jpg"
        src = source_root / "images" / f"{ids[j]}.jpg" if source_root else None
        if src is not None and src.exists():
            shutil.copyfile(src, dst)
        else:
            img = x[j] if x[j].shape[-1] == 3 else np.repeat(x[j], 3, axis=-1)
            cv2.imwrite(str(dst), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return n


def time_labeling(folder: Path, model: Path, threads: int, workers: int, batch_size: int) -> dict[str, Any]:
    """Label every image of ``folder`` once into a fresh CSV; time it (model load excluded)."""
    from fashion_edge import runtime
    from fashion_edge.runtime.labeling import run_labeling

    clf = runtime.load(model, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = run_labeling(folder, clf, Path(tmp) / "labels.csv", batch_size=batch_size, workers=workers)
        seconds = time.perf_counter() - t0
    return {
        "model": model.name,
        "images": summary.this_run,
        "errors": summary.errors,
        "needs_review": summary.needs_review,
        "seconds": seconds,
        "img_s": summary.this_run / seconds if seconds > 0 else float("nan"),
        "threads": threads,
        "workers": workers,
        "batch_size": batch_size,
    }


def label_in_subprocess(
    folder: Path, model: Path, threads: int = 2, workers: int = 2, batch_size: int = 64, timeout: float = 1800
) -> dict[str, Any]:
    """Run :func:`time_labeling` in a fresh process; WorkerError on failure."""
    cmd = [sys.executable, "-m", "fashion_edge.benchmarks.labelbench", str(folder), str(model)]
    cmd += ["--threads", str(threads), "--workers", str(workers), "--batch-size", str(batch_size)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return run_json(cmd, env, timeout)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("model", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args(argv)
    try:
        out = time_labeling(a.folder, a.model, a.threads, a.workers, a.batch_size)
    except Exception as e:  # one line for the parent process
        msg = str(e).strip().splitlines()
        print(f"labeling {a.folder}: {type(e).__name__}: {msg[0] if msg else ''}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
