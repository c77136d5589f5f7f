"""Latency rounds of ``fashion-bench``: every model file in fresh processes, best round kept."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from fashion_edge.benchmarks.latency import WorkerError, measure_in_subprocess


def measure_model(
    path: Path, inputs: Path, logits_path: Path | None, a: argparse.Namespace
) -> dict[str, Any]:
    """Latency at every thread count (one process each) + logits from the first process."""
    configs, runs = [], {}
    for i, t in enumerate(a.threads_list):
        runs[t] = measure_in_subprocess(
            path, inputs, t, a.batches_list, a.runs, a.warmup, a.max_seconds, logits_path if i == 0 else None
        )
        configs += runs[t]["configs"]
    first = runs[a.threads_list[0]]
    return {
        "format": first["format"],
        "precision": first["precision"],
        "load_s": first["load_s"],
        "rss_before_load_mb": first["rss_before_load_mb"],
        "rss_peak_mb": {str(t): r["rss_peak_mb"] for t, r in runs.items()},
        "configs": configs,
    }


def merge_rounds(a_lat: dict[str, Any], b_lat: dict[str, Any]) -> dict[str, Any]:
    """Per setting keep the round with the lower p50 (the least disturbed one); min load, max RSS."""
    best = {(c["batch"], c["threads"]): c for c in a_lat["configs"]}
    for c in b_lat["configs"]:
        key = (c["batch"], c["threads"])
        if key not in best or c["p50_ms"] < best[key]["p50_ms"]:
            best[key] = c
    merged = dict(a_lat)
    merged["configs"] = [best[(c["batch"], c["threads"])] for c in a_lat["configs"]]
    merged["load_s"] = min(a_lat["load_s"], b_lat["load_s"])
    merged["rss_peak_mb"] = {
        t: max(v, b_lat["rss_peak_mb"].get(t, v)) for t, v in a_lat["rss_peak_mb"].items()
    }
    merged["rounds"] = a_lat.get("rounds", 1) + 1
    return merged


def measure_all(
    entries: list[Path], inputs: Path, tmp: Path, a: argparse.Namespace
) -> list[tuple[dict[str, Any] | None, str | None]]:
    """Latency of every file, ``--rounds`` times with the order reversed every other round so that
    a load change on the machine hits float and int8 alike; logits come from the first round."""
    results: list[tuple[dict[str, Any] | None, str | None]] = [(None, None)] * len(entries)
    for rnd in range(a.rounds):
        order = list(range(len(entries)))[:: -1 if rnd % 2 else 1]
        for k, i in enumerate(order, 1):
            lat, error = results[i]
            if error:
                continue
            t0 = time.perf_counter()
            try:
                new = measure_model(entries[i], inputs, tmp / f"logits_{i}.npy" if rnd == 0 else None, a)
            except WorkerError as e:
                results[i] = (None, str(e))
                status = f"error: {e}"
            else:
                results[i] = (merge_rounds(lat, new) if lat else {**new, "rounds": 1}, None)
                head = new["configs"][0]
                status = f"p50 {head['p50_ms']:.3f} ms (batch {head['batch']}, {head['threads']} thread)"
            print(
                f"[round {rnd + 1}/{a.rounds}, {k}/{len(entries)}] {entries[i].name}: {status} "
                f"({time.perf_counter() - t0:.1f} s)",
                file=sys.stderr,
            )
    return results
