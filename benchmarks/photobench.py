"""Folder labeling on phone-size photos: 12 MP JPEGs, end to end, against a decode-only baseline.

The photos are generated deterministically from ``real-dev/eval`` (upscaled to ~12 MP, JPEG
quality 90) into an ignored cache folder (``.cache/photos12mp/``), never committed. Two fresh
processes are timed in the same run on the same files:

- end to end: ``runtime.labeling.run_labeling`` (decode + infer + CSV), the default workers;
  img/s and peak RSS of that process;
- baseline: Pillow ``draft`` (DCT scaling) decode + shrink to the model's input, one thread.

    python -m fashion_edge.benchmarks.photobench models/articletype8/model_int8.onnx --n 200
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fashion_edge.benchmarks.latency import WorkerError, peak_rss_mb, run_json
from fashion_edge.training.data import CACHE_DIR, SHARED_DATA

REAL_DEV = SHARED_DATA / "real-dev"
CACHE = CACHE_DIR / "photos12mp"
MEGAPIXELS = 12.0
QUALITY = 90
GOAL_IMG_S = 120.0  # issue 15: 12 MP JPEGs end to end on 2 cores
GOAL_RSS_MB = 400.0
GOAL_VS_BASELINE = 2.0  # x the single-core Pillow draft decode


class PhotoBenchError(ValueError):
    """Missing source photos or a bad argument; the message is one line."""


def source_photos(root: Path = REAL_DEV) -> list[Path]:
    """real-dev/eval photos, sorted (deterministic order); PhotoBenchError when absent."""
    files = sorted((root / "eval").rglob("*.jpg")) if (root / "eval").is_dir() else []
    if not files:
        raise PhotoBenchError(f"{root / 'eval'}: no real-dev photos (../shared/data absent?)")
    return files


def upscale(img: np.ndarray, megapixels: float = MEGAPIXELS) -> np.ndarray:
    """Resize (bicubic) to about ``megapixels`` million pixels, keeping the aspect ratio."""
    h, w = img.shape[:2]
    s = (megapixels * 1e6 / (h * w)) ** 0.5
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)


def generate_photos(
    n: int,
    megapixels: float = MEGAPIXELS,
    quality: int = QUALITY,
    root: Path = REAL_DEV,
    cache: Path = CACHE,
    sources: Sequence[Path] | None = None,
) -> Path:
    """A folder of ``n`` JPEGs of ~``megapixels`` MP made from ``sources`` (default real-dev/eval),
    cached and deterministic; file names ``<index>_<source folder>_<source stem>.jpg``."""
    src = list(sources) if sources is not None else source_photos(root)
    key = hashlib.sha256(f"{n}|{megapixels}|{quality}|{[str(p) for p in src]}".encode()).hexdigest()[:10]
    folder = cache / f"{megapixels:g}mp-q{quality}-n{n}-{key}"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = src[i % len(src)]
        bgr = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR)
        ok, buf = cv2.imencode(".jpg", upscale(bgr, megapixels), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise PhotoBenchError(f"{p}: cannot encode")
        (folder / f"{i:05d}_{p.parent.name}_{p.stem}.jpg").write_bytes(buf.tobytes())
    (folder / ".complete").write_text("ok\n")
    return folder


def draft_baseline(folder: Path, height: int, width: int) -> dict[str, Any]:
    """One thread: read each file, Pillow ``draft`` decode (DCT scaling), shrink to height x width."""
    from PIL import Image

    from fashion_edge.runtime.preprocess import IMAGE_SUFFIXES, fit_image

    cv2.setNumThreads(1)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    t0 = time.perf_counter()
    for p in files:
        with Image.open(io.BytesIO(p.read_bytes())) as im:
            im.draft("RGB", (2 * width, 2 * height))  # the smallest DCT scale still >= 2x the input
            fit_image(np.asarray(im.convert("RGB")), height, width)
    seconds = time.perf_counter() - t0
    return {
        "images": len(files),
        "seconds": seconds,
        "img_s": len(files) / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def label_folder(folder: Path, model: Path, threads: int, workers: int | None) -> dict[str, Any]:
    """``run_labeling`` over the folder into a fresh CSV: img/s (model load excluded), peak RSS."""
    from fashion_edge import runtime
    from fashion_edge.runtime.labeling import run_labeling

    clf = runtime.load(model, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        kw = {} if workers is None else {"workers": workers}
        s = run_labeling(folder, clf, Path(tmp) / "labels.csv", **kw)
        seconds = time.perf_counter() - t0
    return {"images": s.this_run, "errors": s.errors, "seconds": seconds, "img_s": s.this_run / seconds,
            "peak_rss_mb": peak_rss_mb(), "threads": threads, "workers": workers or "auto"}  # fmt: skip


def _child(args: list[str], threads: int, timeout: float = 1800) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return run_json([sys.executable, "-m", "fashion_edge.benchmarks.photobench", *args], env, timeout)


def photo_row(model: Path, n: int = 200, threads: int = 2, workers: int | None = None) -> dict[str, Any]:
    """The photo-folder row: end to end vs the single-core draft baseline, same files, same run."""
    from fashion_edge.runtime.metadata import read_metadata

    meta = read_metadata(model)
    folder = generate_photos(n)
    size = sum(p.stat().st_size for p in folder.glob("*.jpg")) / n
    base = _child(["--child-baseline", str(folder), "--size", f"{meta.height}x{meta.width}"], 1)
    e2e = _child(["--child-label", str(folder), str(model), "--threads", str(threads)]
                 + ([] if workers is None else ["--workers", str(workers)]), threads)  # fmt: skip
    ratio = e2e["img_s"] / base["img_s"]
    return {
        "photos": n, "megapixels": MEGAPIXELS, "mean_file_kb": size / 1024, "model": model.name,
        "end_to_end": e2e, "baseline_draft_1core": base, "ratio_vs_baseline": ratio,
        "goals_met": {"img_s": e2e["img_s"] >= GOAL_IMG_S, "rss": e2e["peak_rss_mb"] <= GOAL_RSS_MB,
                      "vs_baseline": ratio >= GOAL_VS_BASELINE},
    }  # fmt: skip


def photo_line(row: dict[str, Any] | None) -> str:
    """One line for the report: the phone-photo row, never to be mistaken for the thumbnail row."""
    if not row:
        return "Phone photos (12 MP JPEGs): not measured"
    if row.get("skipped") or row.get("error"):
        return f"Phone photos (12 MP JPEGs): {row.get('skipped') or row.get('error')}"
    e, b = row["end_to_end"], row["baseline_draft_1core"]
    return (
        f"Phone photos ({row['photos']} JPEGs of {row['megapixels']:g} MP, {row['mean_file_kb']:.0f} KB each): "
        f"{e['img_s']:,.0f} img/s end to end ({e['threads']} threads, workers {e['workers']}), peak RSS "
        f"{e['peak_rss_mb']:.0f} MB; {row['ratio_vs_baseline']:.2f}x a 1-core Pillow draft decode "
        f"({b['img_s']:,.0f} img/s)"
    )


def safe_photo_row(model: Path, n: int, threads: int = 2) -> dict[str, Any]:
    """:func:`photo_row`, or a record that says why it was skipped or failed (for fashion-bench)."""
    try:
        return photo_row(model, n, threads)
    except PhotoBenchError as e:
        return {"skipped": f"skipped: {e}"}
    except WorkerError as e:
        return {"error": f"failed: {e}"}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from fashion_edge.runtime.classifier import default_model_path

    ap.add_argument("model", nargs="?", type=Path, default=default_model_path())
    ap.add_argument("--n", type=int, default=200, help="photos (default 200)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--workers", type=int, default=None, help="decode workers (default: the runtime's choice)"
    )
    ap.add_argument("--child-baseline", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-label", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--size", default="80x60", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    try:
        if a.child_baseline:
            h, w = (int(v) for v in a.size.split("x"))
            print(json.dumps(draft_baseline(a.child_baseline, h, w)))
            return 0
        if a.child_label:
            print(json.dumps(label_folder(a.child_label, a.model, a.threads, a.workers)))
            return 0
        if a.n < 1:
            raise PhotoBenchError("--n must be at least 1")
        row = photo_row(a.model, a.n, a.threads, a.workers)
    except (PhotoBenchError, WorkerError) as e:
        print(f"photobench: {e}", file=sys.stderr)
        return 2
    print(photo_line(row))
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
