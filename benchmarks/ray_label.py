"""Labeling throughput: single process vs Ray Data on the same CPUs, and the cost of the safety
checks (journal fsync, lock, stat). ``python -m fashion_edge.benchmarks.ray_label FOLDER``.

Each variant labels every image of FOLDER into a fresh journal (model load excluded); the
single-process rows are the ``fashion-label`` defaults (2 decode threads, batches of 64).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fashion_edge.runtime.classifier import DEFAULT_MODEL, load
from fashion_edge.runtime.journal import JournalWriter, LabelRecord
from fashion_edge.runtime.journal_guard import JournalLock
from fashion_edge.runtime.labeling import find_images, run_labeling


def timed(folder: Path, clf: Any, **kw: Any) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        s = run_labeling(folder, clf, Path(tmp) / "labels.csv", **kw)
        sec = time.perf_counter() - t0
    return {"images": s.this_run, "seconds": round(sec, 3), "img_s": round(s.this_run / sec, 1)}


def costs(folder: Path, clf: Any, repeats: int = 1000) -> dict[str, float]:
    """Microseconds per image of ``os.stat``, per run of taking the lock, and milliseconds per
    journal batch of 64 rows for the write and for an fsync (done per batch only before moves)."""
    paths = find_images(folder)
    t0 = time.perf_counter()
    for p in paths:
        os.stat(p)
    stat_us = (time.perf_counter() - t0) / max(1, len(paths)) * 1e6
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for _ in range(repeats):
            with JournalLock(Path(tmp) / "j.csv"):
                pass
        lock_us = (time.perf_counter() - t0) / repeats * 1e6
        rows = [
            LabelRecord(f"{i:06d}.jpg", "Watches", 0.99, [("Watches", 0.99)], model="0" * 16)
            for i in range(64)
        ]
        with JournalWriter(Path(tmp) / "f.csv") as w:
            t0 = time.perf_counter()
            for _ in range(200):
                w.append(rows)
            append_ms = (time.perf_counter() - t0) / 200 * 1e3
            t0 = time.perf_counter()
            for _ in range(200):
                w.append(rows)
                os.fsync(w._fd)
            fsync_ms = (time.perf_counter() - t0) / 200 * 1e3 - append_ms
    return {
        "stat_us_per_image": round(stat_us, 2),
        "lock_us_per_run": round(lock_us, 1),
        "append_ms_per_batch_of_64": round(append_ms, 3),
        "fsync_ms_per_batch": round(fsync_ms, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    a = ap.parse_args(argv)
    clf = load(a.model, threads=a.cpus)
    out: dict[str, Any] = {"cpus": a.cpus, "model": a.model.name}
    timed(a.folder, clf)  # warm the page cache
    out["single"] = timed(a.folder, clf)
    out.update(costs(a.folder, clf))
    if not a.no_ray:
        import ray

        from fashion_edge.runtime.ray_label import ray_engine

        eng = ray_engine(a.model, a.folder, num_cpus=a.cpus)
        out["ray_cold"] = timed(a.folder, clf, engine=eng)  # includes starting the local Ray instance
        ray.init(num_cpus=a.cpus, include_dashboard=False, log_to_driver=False)
        try:
            timed(a.folder, clf, engine=eng)  # workers and actors warm
            out["ray_warm"] = timed(a.folder, clf, engine=eng)
        finally:
            ray.shutdown()
        for k in ("ray_cold", "ray_warm"):
            out[f"{k}_over_single"] = round(out[k]["img_s"] / out["single"]["img_s"], 3)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
