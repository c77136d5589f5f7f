"""Latency of one model file, measured in a fresh process (``python -m fashion_edge.benchmarks.latency``).

One process per model and thread count: peak RSS is that model's alone (the runtime without
TensorFlow, except for the Keras row), thread settings cannot leak between models, and the load
time is a cold load. The process prints one JSON line; :func:`measure_in_subprocess` runs it.
It can also write the model's logits on every input image (``--logits-out``), computed after
the timed runs so that they do not raise the reported peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LOGITS_BATCH = 256


class WorkerError(RuntimeError):
    """The measuring process failed; the message is its last error line."""


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: ``VmHWM`` of /proc/self/status. ``getrusage`` ``ru_maxrss`` is not used there because
    Linux carries it over ``execve`` from the parent, so a fresh worker would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def summarize(times_ns: Sequence[int], batch: int) -> dict[str, float]:
    """p50/p90/p99/mean/min in ms per batch and the throughput in images/s."""
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "img_s": float(batch * 1000.0 / p50),
        "runs": len(ms),
    }


def time_calls(fn: Callable[[], object], runs: int, warmup: int, max_seconds: float) -> list[int]:
    """Call ``fn`` ``warmup`` times untimed, then up to ``runs`` timed times (at least 5, at most
    ``max_seconds`` of timed work); returns each call's duration in ns."""
    for _ in range(warmup):
        fn()
    times: list[int] = []
    budget = int(max_seconds * 1e9)
    spent = 0
    while len(times) < runs and (spent < budget or len(times) < 5):
        t0 = time.perf_counter_ns()
        fn()
        dt = time.perf_counter_ns() - t0
        times.append(dt)
        spent += dt
    return times


def batch_of(x: np.ndarray, size: int) -> np.ndarray:
    """``size`` images from ``x``, cycling when there are fewer."""
    return np.ascontiguousarray(x[np.arange(size) % len(x)])


def load_model(path: Path, threads: int) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, str]]:
    """A logits function for the file and its format/precision; ``.keras`` goes through TensorFlow."""
    if path.suffix == ".keras":
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        model = tf.keras.models.load_model(path, compile=False)

        def keras_logits(x: np.ndarray) -> np.ndarray:
            return np.asarray(model(x.astype(np.float32), training=False))

        return keras_logits, {"format": "keras", "precision": "float32"}
    from fashion_edge import runtime

    clf = runtime.load(path, threads=threads)
    return clf.logits, {"format": str(clf.format), "precision": str(clf.precision)}


def measure(
    path: Path,
    x: np.ndarray,
    threads: int,
    batches: Sequence[int],
    runs: int,
    warmup: int,
    max_seconds: float,
    logits_out: Path | None = None,
) -> dict[str, Any]:
    """Load time, per-batch latency summaries, peak RSS; optionally all logits to ``logits_out``."""
    if path.suffix == ".keras":  # imports are not load time: the baseline RSS includes them
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        import tensorflow  # noqa: F401
    else:
        from fashion_edge import runtime  # noqa: F401
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    logits_fn, kind = load_model(path, threads)
    load_s = time.perf_counter() - t0
    configs = []
    for b in batches:
        xb = batch_of(x, b)
        times = time_calls(lambda xb=xb: logits_fn(xb), runs, warmup, max_seconds)
        configs.append({"batch": b, "threads": threads, **summarize(times, b)})
    result = {
        **kind,
        "threads": threads,
        "load_s": load_s,
        "rss_before_load_mb": rss_before,
        "rss_peak_mb": peak_rss_mb(),
        "configs": configs,
    }
    if logits_out is not None:
        parts = [np.asarray(logits_fn(x[i : i + LOGITS_BATCH])) for i in range(0, len(x), LOGITS_BATCH)]
        np.save(logits_out, np.concatenate(parts).astype(np.float32))
    return result


def measure_in_subprocess(
    path: Path,
    inputs: Path,
    threads: int,
    batches: Sequence[int],
    runs: int,
    warmup: int,
    max_seconds: float,
    logits_out: Path | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run :func:`measure` in a fresh Python process with ``threads`` threads; WorkerError on failure."""
    cmd = [sys.executable, "-m", "fashion_edge.benchmarks.latency", str(path), "--inputs", str(inputs)]
    cmd += ["--threads", str(threads), "--batches", ",".join(map(str, batches)), "--runs", str(runs)]
    cmd += ["--warmup", str(warmup), "--max-seconds", str(max_seconds)]
    if logits_out is not None:
        cmd += ["--logits-out", str(logits_out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return run_json(cmd, env, timeout)


def run_json(cmd: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run a worker command and parse the JSON object on its last stdout line."""
    repo = Path(__file__).resolve().parent.parent
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=repo, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WorkerError(f"timed out after {timeout:.0f} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise WorkerError(err[-1] if err else f"exit status {proc.returncode}")
    return json.loads(lines[-1])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--inputs", type=Path, required=True, help=".npy of prepared NHWC uint8 images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--logits-out", type=Path)
    a = ap.parse_args(argv)
    x = np.load(a.inputs)
    batches = [int(b) for b in a.batches.split(",") if b]
    try:
        out = measure(a.model, x, a.threads, batches, a.runs, a.warmup, a.max_seconds, a.logits_out)
    except Exception as e:  # one line for the parent process, which reports it per model
        msg = str(e).strip().splitlines()
        print(f"{a.model.name}: {type(e).__name__}: {msg[0] if msg else ''}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
