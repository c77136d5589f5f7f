"""Which EfficientNet-Lite0 layers to keep float in ONNX int8: per-tensor vs per-channel weights, with and
without the depthwise convolutions in float (800 validation images; latency batch 1, 1 thread, best of 3).

    python scripts/lite0_quant_layers.py [RUN] [FLOAT_ONNX]    # needs the [train] extra and the catalogue
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization.shape_inference import quant_pre_process

from fashion_edge.export.onnx_export import _latency_ms, _logits, _quantize, _session, float_front
from fashion_edge.training.data import load_split


def main(run: Path, src: Path, out: Path = Path(".cache/lite0_quant_layers")) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pre = out / "pre.onnx"
    quant_pre_process(str(src), str(pre))
    xv, yv, _, _ = load_split(run, "val", None)
    xt, _, _, _ = load_split(run, "train", None)
    calib = xt[np.random.default_rng(0).choice(len(xt), 300, replace=False)]
    xv, yv = xv[:800], yv[:800]
    graph = onnx.load(str(pre)).graph
    depthwise = [n.name for n in graph.node
                 if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)]  # fmt: skip
    front = float_front(pre)
    float_pred = _logits(_session(pre), xv).argmax(1)
    trials = [("per-channel, stem float (shipped)", True, front), ("per-tensor, stem float", False, front),
              ("per-channel, stem + depthwise float", True, front + depthwise),
              ("per-tensor, stem + depthwise float", False, front + depthwise), ("per-channel, all int8", True, [])]  # fmt: skip
    print("| variant | val top-1 | agreement with float | p50 ms | MB |\n|---|---|---|---|---|")
    for i, (name, per_channel, exclude) in enumerate(trials):
        path = out / f"trial{i}.onnx"
        _quantize(pre, path, calib, per_channel, exclude)
        sess = _session(path)
        pred = _logits(sess, xv).argmax(1)
        ms = min(_latency_ms(sess, xv, runs=100) for _ in range(3))
        print(f"| {name} | {(pred == yv).mean():.2%} | {(pred == float_pred).mean():.2%} | {ms:.2f} | "
              f"{path.stat().st_size / 1e6:.2f} |")  # fmt: skip
    sess = _session(pre)
    ms = min(_latency_ms(sess, xv, runs=100) for _ in range(3))
    print(f"| float32 | {(float_pred == yv).mean():.2%} | 100% | {ms:.2f} | {src.stat().st_size / 1e6:.2f} |")
    print(f"({len(depthwise)} depthwise convolutions)")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0] if args else "models/articletype8-lite0/run"),
         Path(args[1] if len(args) > 1 else "models/articletype8-lite0/model_float32.onnx"))  # fmt: skip
