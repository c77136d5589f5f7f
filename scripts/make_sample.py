"""Regenerate the embedded sample ``benchmarks/sample/`` from the full catalogue (deterministic).

    python scripts/make_sample.py                      # from ../shared/data (or $FASHION_EDGE_DATA)
    python scripts/make_sample.py --data CATALOGUE --per-class 28 --model-dir models/articletype8

Takes a shipped model's test split (``MODEL_DIR/splits.csv``, split == test), and
from each class (``unknown`` included) the ``--per-class`` ids evenly spaced in numeric id order.
The catalogue JPEGs are copied byte for byte, so the sample is a small catalogue of its own:
``images/<id>.jpg`` + ``styles.csv`` (the catalogue's rows for those ids) + ``labels.csv``
(id, the model's label, articleType) + ``README.md`` (source and licence).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

from fashion_edge.training.data import STYLES_FIELDS, DataError, read_splits, read_styles, resolve_catalogue

REPO = Path(__file__).resolve().parent.parent
SPLITS = REPO / "models" / "articletype8" / "splits.csv"
OUT = REPO / "benchmarks" / "sample"

README = """# Embedded sample: {n} catalogue test images

A small real sample so that `fashion-bench MODEL_DIR --quick`, `fashion-label` and the wheel's CI
check run on a fresh clone with no data beside it. It is **not** used for training or for the
published figures (those use the full test split; see benchmarks/RESULTS.md).

- `images/<id>.jpg`: {n} images copied unchanged from the catalogue below, {per} per class of the
  shipped model (`{splits}`, split `test`, ids evenly spaced in id order;
  classes: {classes}).
- `styles.csv`: the catalogue's rows for these ids (same 10 columns), so this folder is a valid
  `--data` catalogue.
- `labels.csv`: id, the shipped model's label (`unknown` = an article type outside its 8 classes)
  and the catalogue's articleType.

Regenerate (deterministic): `python scripts/make_sample.py` (reads `../shared/data` or
`$FASHION_EDGE_DATA`).

## Source and licence

"Fashion Product Images (Small)" by Param Aggarwal, from the Myntra product catalogue
(https://www.kaggle.com/datasets/paramaggarwal/fashion-product-images-small), published on Kaggle
under the MIT licence. The product photos are Myntra's; see the NOTICE file at the repository root.
The copy these images came from went through one extra JPEG re-encode (quality 75).
"""


def pick(rows: list[dict[str, str]], per_class: int) -> list[dict[str, str]]:
    """``per_class`` rows of each label, evenly spaced over the rows sorted by numeric id."""
    chosen = []
    for label in sorted({r["label"] for r in rows}):
        group = sorted((r for r in rows if r["label"] == label), key=lambda r: int(r["id"]))
        n = min(per_class, len(group))
        chosen += [group[(i * len(group)) // n] for i in range(n)]
    return sorted(chosen, key=lambda r: int(r["id"]))


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def make_sample(data: Path | None, out: Path, per_class: int, splits: Path = SPLITS) -> int:
    root = resolve_catalogue(data)
    styles, _malformed = read_styles(root / "styles.csv")
    by_id = {r["id"]: r for r in styles}
    test = [r for r in read_splits(splits) if r["split"] == "test"]
    chosen = pick(test, per_class)
    if out.exists():
        shutil.rmtree(out / "images", ignore_errors=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for r in chosen:
        shutil.copyfile(root / "images" / f"{r['id']}.jpg", out / "images" / f"{r['id']}.jpg")
    with open(out / "styles.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, STYLES_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(by_id[r["id"]] for r in chosen)
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "label", "articleType"])
        w.writerows([r["id"], r["label"], by_id[r["id"]]["articleType"]] for r in chosen)
    classes = ", ".join(sorted({r["label"] for r in chosen}))
    (out / "README.md").write_text(
        README.format(n=len(chosen), per=per_class, classes=classes, splits=_shown(splits)), encoding="utf-8"
    )
    return len(chosen)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="catalogue folder or tarball (default: the shared data)")
    ap.add_argument("--per-class", type=int, default=28, help="images per class (default 28)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    ap.add_argument("--model-dir", type=Path, default=SPLITS.parent, help="model whose test split to sample")
    a = ap.parse_args(argv)
    try:
        n = make_sample(a.data, a.out, a.per_class, a.model_dir / "splits.csv")
    except (DataError, OSError, KeyError) as e:
        print(f"make_sample: {e}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in a.out.rglob("*") if p.is_file())
    print(f"wrote {n} images to {a.out} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
