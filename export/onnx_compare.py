"""Compare int8 ONNX files of one model with its float file in one run: test-split agreement and latency.

    python -m fashion_edge.export.onnx_compare models/articletype8-lite0 OLD_int8.onnx [...]

Agreement = same argmax as ``model_float32.onnx`` on the folder's test split (the catalogue);
latency = p50 of batch 1, 1 thread, best of ``--rounds`` rounds that alternate between the files,
so the ratios come from the same machine state. Prints one line per file and the CPU's int8 path.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="onnx_compare", description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("others", type=Path, nargs="*", help="more int8 ONNX files of the same model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args(argv)
    from fashion_edge.export.gate import cpu_path, int8_weight_range
    from fashion_edge.export.onnx_export import _latency_ms, _logits, _session
    from fashion_edge.export.pipeline import _split

    x, _, _ = _split(a.model_dir, "test", None)
    files = [a.model_dir / "model_float32.onnx", a.model_dir / "model_int8.onnx", *a.others]
    sessions = [_session(f) for f in files]
    ref = _logits(sessions[0], x).argmax(1)
    agree = [float((_logits(s, x).argmax(1) == ref).mean()) for s in sessions]
    lat: list[list[float]] = [[] for _ in files]
    for _ in range(a.rounds):
        for i, s in enumerate(sessions):
            lat[i].append(_latency_ms(s, x, a.runs, warmup=10))
    cpu = cpu_path()
    print(f"CPU: {cpu['model']}; int8 path: {cpu['int8_path']}; {len(x)} test images; batch 1, 1 thread")
    for f, ag, ts in zip(files, agree, lat, strict=True):
        best = min(ts)
        print(f"{f}: agreement {ag:.2%}, p50 {best:.3f} ms ({min(lat[0]) / best:.2f}x float), "
              f"dense int8 weights {int8_weight_range(f)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
