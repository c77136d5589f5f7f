"""Does decoding JPEGs at reduced size (``read_image(path, min_size)``) move predictions?

Compares predictions from the reduced decode against a full decode, with any model file:

- ``real-dev/eval`` at its own size (<= 224 px: for an 80x60 input almost nothing is reduced);
- the same photos upscaled to ~12 MP (``benchmarks.photobench`` cache, ignored by git);
- a margin sweep: each photo re-encoded at 6 sizes, decoded at every DCT scale; agreement with the
  full decode when the scale is chosen with ``MARGIN`` = 1, 1.5, 2, 3;
- the catalogue test split (``models/<recipe>/splits.csv``) at native size: arrays byte-identical.

Top-1 counts the photos of the model's known classes only (real-dev also has ``unknown`` items).
The noise floor is the model's agreement with itself under +-1 random changes of each input value.

    python -m fashion_edge.benchmarks.decode_accuracy --model models/articletype8/model_int8.onnx
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fashion_edge.benchmarks.photobench import REAL_DEV, PhotoBenchError, generate_photos, source_photos
from fashion_edge.runtime import decode
from fashion_edge.runtime.classifier import Classifier, default_model_path, load
from fashion_edge.runtime.preprocess import load_for_model, prepare, read_image
from fashion_edge.training.data import CACHE_DIR

SWEEP_LONG_SIDES = (320, 480, 640, 960, 1280, 1920)
SWEEP_MARGINS = (1.0, 1.5, 2.0, 3.0)


def _inputs(clf: Classifier, images: Iterable[np.ndarray]) -> np.ndarray:
    """Model inputs; each image is fitted as it comes (full-size 12 MP decodes are never held together)."""
    return np.stack([prepare(im, clf.meta) for im in images])


def _top1(clf: Classifier, x: np.ndarray) -> np.ndarray:
    return np.concatenate([clf.probabilities(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])


def _predict(clf: Classifier, images: Iterable[np.ndarray]) -> np.ndarray:
    return _top1(clf, _inputs(clf, images))


def noise_floor(clf: Classifier, x: np.ndarray, seed: int = 0) -> float:
    """Agreement of the model with itself when every input value moves by -1, 0 or +1 at random:
    how far apart two equally good decodes can be on these images."""
    noise = np.random.default_rng(seed).integers(-1, 2, x.shape)
    return float(
        (_top1(clf, x) == _top1(clf, np.clip(x.astype(int) + noise, 0, 255).astype(np.uint8))).mean()
    )


def _compare(clf: Classifier, paths: list[Path], labels: list[str]) -> dict[str, Any]:
    size = (clf.meta.height, clf.meta.width)
    t0 = time.perf_counter()
    x_full = _inputs(clf, (read_image(p) for p in paths))
    full = _top1(clf, x_full)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    red = _top1(clf, np.stack([load_for_model(p, clf.meta) for p in paths]))  # what the runtime does
    t_red = time.perf_counter() - t0
    reduced = sum(decode.jpeg_scale(decode.read_header(decode.read_file(p)), size) > 1 for p in paths)
    known = np.array([lab in clf.classes and lab != clf.meta.unknown_class for lab in labels])
    y = np.array([clf.classes.index(lab) if k else -1 for lab, k in zip(labels, known, strict=True)])
    return {
        "images": len(paths), "reduced": int(reduced), "agreement": float((full == red).mean()),
        "noise_floor": noise_floor(clf, x_full), "known": int(known.sum()),
        "top1_full": float((full[known] == y[known]).mean()) if known.any() else None,
        "top1_reduced": float((red[known] == y[known]).mean()) if known.any() else None,
        "seconds_full": t_full, "seconds_reduced": t_red,
    }  # fmt: skip


def margin_sweep(clf: Classifier, paths: list[Path]) -> list[dict[str, Any]]:
    """Agreement with the full decode when the DCT scale is chosen with each margin in SWEEP_MARGINS."""
    h_in, w_in = clf.meta.height, clf.meta.width
    agree: dict[float, list[bool]] = {m: [] for m in SWEEP_MARGINS}
    for p in paths:
        src = cv2.imdecode(np.fromfile(p, np.uint8), cv2.IMREAD_COLOR)
        images, chosen = [], []
        for long_side in SWEEP_LONG_SIDES:
            f = long_side / max(src.shape[:2])
            big = cv2.resize(
                src, (round(src.shape[1] * f), round(src.shape[0] * f)), interpolation=cv2.INTER_CUBIC
            )
            data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            header = decode.read_header(data)
            scales = {m: decode.jpeg_scale(header, (h_in, w_in), m) for m in SWEEP_MARGINS}
            by_scale = {s: len(images) + i for i, s in enumerate(sorted(set(scales.values()) | {1}))}
            for s in sorted(by_scale):  # fitted as the runtime does: full-size geometry
                images.append(prepare(_decode_at(data, s), clf.meta, big.shape[:2]))
            chosen.append({m: by_scale[s] for m, s in scales.items()} | {"full": by_scale[1]})
        pred = _top1(clf, np.stack(images))
        for c in chosen:
            for m in SWEEP_MARGINS:
                agree[m].append(bool(pred[c[m]] == pred[c["full"]]))
    return [{"margin": m, "agreement": float(np.mean(agree[m])), "n": len(agree[m])} for m in SWEEP_MARGINS]


def _decode_at(data: bytes, scale: int) -> np.ndarray:
    flag = cv2.IMREAD_COLOR if scale == 1 else decode._REDUCED_FLAGS[scale]
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), flag), cv2.COLOR_BGR2RGB)


def catalogue_identical(clf: Classifier, splits: Path, limit: int = 0) -> dict[str, Any]:
    """Catalogue test images at native size: reduced-path arrays byte-identical to full decodes."""
    root, rows = _catalogue_test(splits)
    ids = [i for i, _ in rows][: limit or None]
    size = (clf.meta.height, clf.meta.width)
    same = sum(
        np.array_equal(
            read_image(root / "images" / f"{i}.jpg", size), read_image(root / "images" / f"{i}.jpg")
        )
        for i in ids
    )
    return {"images": len(ids), "identical": int(same)}


def _catalogue_test(splits: Path) -> tuple[Path, list[tuple[str, str]]]:
    from fashion_edge.training.data import resolve_catalogue

    with open(splits, newline="", encoding="utf-8") as f:
        rows = [(r["id"], r["label"]) for r in csv.DictReader(f) if r["split"] == "test"]
    return resolve_catalogue(), rows


def catalogue_12mp(clf: Classifier, splits: Path, n: int) -> dict[str, Any]:
    """The catalogue test split (the model's own domain) upscaled to 12 MP: reduced vs full decode."""
    root, rows = _catalogue_test(splits)
    rows = rows[:n]
    label = {i: lab for i, lab in rows}
    folder = generate_photos(len(rows), sources=[root / "images" / f"{i}.jpg" for i, _ in rows],
                             cache=CACHE_DIR / "catalogue12mp")  # fmt: skip
    photos = sorted(folder.glob("*.jpg"))
    return _compare(clf, photos, [label[p.stem.split("_", 2)[2]] for p in photos])


def run(model: Path, n12: int, sweep_n: int, n_catalogue: int = 500) -> dict[str, Any]:
    clf = load(model)
    src = source_photos(REAL_DEV)
    labels = [p.parent.name for p in src]
    out: dict[str, Any] = {
        "model": str(model),
        "input": [clf.meta.height, clf.meta.width],
        "margin": decode.MARGIN,
    }
    out["native"] = _compare(clf, src, labels)
    folder = generate_photos(n12 or len(src))
    photos = sorted(folder.glob("*.jpg"))
    out["12mp"] = _compare(clf, photos, [p.name.split("_")[1] for p in photos])
    splits = model.parent / "splits.csv"
    if splits.exists() and n_catalogue:
        try:
            out["catalogue_12mp"] = catalogue_12mp(clf, splits, n_catalogue)
        except Exception as e:  # noqa: BLE001 (catalogue absent: say so, keep the rest)
            out["catalogue_12mp"] = {"skipped": str(e)}
    step = max(1, len(src) // sweep_n) if sweep_n else 1
    out["margin_sweep"] = margin_sweep(clf, src[::step][:sweep_n] if sweep_n else src)
    if splits.exists():
        try:
            root, rows = _catalogue_test(splits)
            cat = [root / "images" / f"{i}.jpg" for i, _ in rows]
            out["margin_sweep_catalogue"] = margin_sweep(clf, cat[:: max(1, len(cat) // sweep_n)][:sweep_n])
            out["catalogue"] = catalogue_identical(clf, splits)
        except Exception as e:  # noqa: BLE001 (catalogue absent: say so, keep the rest)
            out["catalogue"] = {"skipped": str(e)}
    return out


def report(r: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.2f} %"

    lines = [f"model {r['model']}, input {r['input'][0]}x{r['input'][1]}, MARGIN {r['margin']}", "",
             "| set | images | decoded reduced | agreement | model's own noise floor | top-1 full | top-1 reduced |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    sets = (("native", "real-dev eval, native size"), ("12mp", "real-dev eval upscaled to 12 MP"),
            ("catalogue_12mp", "catalogue test split upscaled to 12 MP"))  # fmt: skip
    for key, name in sets:
        s = r.get(key)
        if not s or "skipped" in s:
            lines.append(f"| {name} | {s['skipped'] if s else 'not run'} | | | | | |")
            continue
        lines.append(f"| {name} | {s['images']} | {s['reduced']} | {pct(s['agreement'])} | {pct(s['noise_floor'])} | "
                     f"{pct(s['top1_full'])} | {pct(s['top1_reduced'])} |")  # fmt: skip
    cat_sweep = {m["margin"]: m for m in r.get("margin_sweep_catalogue", [])}
    lines += ["", f"agreement with the full decode, each image re-encoded with long side {SWEEP_LONG_SIDES}:", "",
              "| margin | real-dev eval photos | catalogue test images |", "|---|---|---|"]  # fmt: skip
    for m in r["margin_sweep"]:
        c = cat_sweep.get(m["margin"])
        other = f"{pct(c['agreement'])} (n={c['n']})" if c else "–"
        lines.append(f"| {m['margin']:g} | {pct(m['agreement'])} (n={m['n']}) | {other} |")
    cat = r.get("catalogue")
    if cat:
        text = cat.get("skipped") or f"{cat['identical']}/{cat['images']} byte-identical arrays"
        lines += ["", f"catalogue test split, native size: {text}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--n12", type=int, default=0, help="12 MP photos (default: every eval photo)")
    ap.add_argument("--sweep-n", type=int, default=300, help="photos in the margin sweep (0 = all)")
    ap.add_argument("--catalogue-n", type=int, default=500, help="catalogue test images upscaled (0 = skip)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)
    try:
        r = run(a.model, a.n12, a.sweep_n, a.catalogue_n)
    except PhotoBenchError as e:
        print(f"decode_accuracy: {e}", file=sys.stderr)
        return 2
    print(report(r))
    if a.json:
        a.json.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
