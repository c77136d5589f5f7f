"""Measure what sorting-table corrections buy: fine-tune on k webcam-like images per class, made from
TRAIN items only (seed 1), and evaluate on the webcam-like TEST set (seed 0) that the robustness
benchmark uses, float and int8, through the product runtime.

    python scripts/finetune_gain.py runs/articletype8-compact-webcam-open --per-class 10 50

Writes <out>/finetune_gain.md and .json. Each step is a product command (fashion-train --finetune,
fashion-export --int8, benchmarks.robustness), so this measures the path users take.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fashion_edge.runtime.metadata import load_json  # noqa: E402
from fashion_edge.training.data import load_split  # noqa: E402
from fashion_edge.training.webcam import item_rng, webcam_like  # noqa: E402


def make_extra(run: Path, out: Path, per_class: int, seed: int = 1) -> int:
    """k webcam-like copies of TRAIN items per known class, saved as <out>/<label>/<id>.jpg."""
    meta = load_json(run / "metadata.json")
    x, y, ids, classes = load_split(run, "train")
    rng = np.random.default_rng(seed)
    n = 0
    for c, name in enumerate(classes):
        if name == meta.unknown_class:
            continue
        idx = np.where(y == c)[0]
        for i in rng.choice(idx, min(per_class, len(idx)), replace=False):
            img = webcam_like(x[i], item_rng(seed, ids[i], 0))
            (out / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / name / f"{ids[i]}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            n += 1
    return n


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def robustness(export_dir: Path, out: Path) -> dict:
    run([sys.executable, "-m", "fashion_edge.benchmarks.robustness", str(export_dir), "--files",
         "model_float32.onnx,model_int8.onnx", "--out", str(out)])  # fmt: skip
    return json.loads((out / "robustness.json").read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--per-class", type=int, nargs="+", default=[10, 50])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "finetune-gain")
    a = p.parse_args()
    bin_dir = Path(sys.executable).parent
    a.out.mkdir(parents=True, exist_ok=True)
    base_export = a.run / "export-gain"
    if not (base_export / "model_int8.onnx").exists():
        run(
            [
                str(bin_dir / "fashion-export"),
                "--int8",
                "--formats",
                "onnx",
                str(a.run),
                "--out",
                str(base_export),
            ]
        )
    results = {"base": robustness(base_export, a.out / "rob-base")}
    for k in a.per_class:
        extra = a.out / f"extra-{k}"
        n = make_extra(a.run, extra, k) if not extra.exists() else sum(1 for _ in extra.rglob("*.jpg"))
        ft = a.out / f"ft-{k}"
        if not (ft / "model.keras").exists():
            run([str(bin_dir / "fashion-train"), "--finetune", str(a.run), "--extra", str(extra),
                 "--epochs", str(a.epochs), "--out", str(ft)])  # fmt: skip
        if not (ft / "export" / "model_int8.onnx").exists():
            run(
                [
                    str(bin_dir / "fashion-export"),
                    "--int8",
                    "--formats",
                    "onnx",
                    str(ft),
                    "--out",
                    str(ft / "export"),
                ]
            )
        results[f"{k}/class"] = {**robustness(ft / "export", a.out / f"rob-{k}"), "extra_images": n}
    (a.out / "finetune_gain.json").write_text(json.dumps(results, indent=2, default=str))
    lines = [
        "| fine-tuned on | file | clean top-1 | webcam top-1 | webcam gain (pts) |",
        "|---|---|---|---|---|",
    ]
    base_rows = {r["file"]: r for r in results["base"]["rows"]}
    for key, res in results.items():
        for r in res["rows"]:
            b = base_rows[r["file"]]
            gain = 100 * (r["webcam"]["top1"] - b["webcam"]["top1"])
            lines.append(f"| {key} | {r['file']} | {100 * r['clean']['top1']:.2f} % | "
                         f"{100 * r['webcam']['top1']:.2f} % | {gain:+.2f} |")  # fmt: skip
    (a.out / "finetune_gain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
