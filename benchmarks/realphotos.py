"""Real photos, not the catalogue: top-1 and the review rule on folders of real item photos.

    python -m fashion_edge.benchmarks.realphotos models/articletype8/model_int8.onnx \
        models/articletype8-lite0/model_int8.onnx --md benchmarks/REALPHOTOS.md

The folder (default ``../shared/data/real-dev/eval``) holds ``<class>/`` sub-folders; a folder named
like a model class is a known item, any other (e.g. ``unknown``) holds items the model does not sell,
which should go to review. Every figure goes through the runtime as ``fashion-label`` would:
``runtime.load(file).predict`` and its ``needs_review`` rule. Nothing here tunes anything.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.classifier import ModelLoadError, load
from fashion_edge.runtime.labeling import label_paths
from fashion_edge.runtime.preprocess import list_images
from fashion_edge.training.data import SHARED_DATA

DEFAULT_FOLDER = SHARED_DATA / "real-dev" / "eval"


def folder_items(root: Path) -> list[tuple[Path, str]]:
    """(image, folder name) for every image under ``root/<name>/``."""
    return [
        (p, sub.name) for sub in sorted(d for d in root.iterdir() if d.is_dir()) for p in list_images(sub)
    ]


def evaluate(model: Path, items: Sequence[tuple[Path, str]], batch: int = 64) -> dict[str, Any]:
    """Top-1 on known classes, auto-accept share and precision, and unknown items auto-accepted,
    from the rows ``fashion-label`` would write (``runtime.labeling.label_paths``; unreadable files skipped)."""
    clf = load(model)
    rows = []
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        records = label_paths(clf, [p for p, _ in chunk], root=chunk[0][0].parent)
        rows += [(truth, r.label, bool(r.needs_review)) for r, (_, truth) in zip(records, chunk, strict=True)
                 if not r.error]  # fmt: skip
    known_classes = set(clf.classes) - {clf.meta.unknown_class}
    known = [r for r in rows if r[0] in known_classes]
    other = [r for r in rows if r[0] not in known_classes]
    accepted = [r for r in known if not r[2]]
    per_class = {
        c: float(np.mean([r[1] == c for r in known if r[0] == c])) for c in sorted({r[0] for r in known})
    }
    return {
        "model": str(model), "known_n": len(known), "other_n": len(other),
        "top1": float(np.mean([r[0] == r[1] for r in known])) if known else float("nan"),
        "per_class": per_class,
        "accepted": len(accepted) / len(known) if known else float("nan"),
        "accepted_right": float(np.mean([r[0] == r[1] for r in accepted])) if accepted else float("nan"),
        "other_accepted": float(np.mean([not r[2] for r in other])) if other else float("nan"),
    }  # fmt: skip


def _pct(v: float) -> str:
    return "–" if v != v else f"{100 * v:.1f} %"


def table(results: Sequence[dict[str, Any]]) -> str:
    classes = sorted({c for r in results for c in r["per_class"]})
    head = [
        "model file",
        "top-1 (known)",
        *classes,
        "auto-accepted",
        "right among them",
        "other items accepted",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        name = "/".join(Path(r["model"]).parts[-2:])
        cells = [name, _pct(r["top1"]), *[_pct(r["per_class"].get(c, float("nan"))) for c in classes],
                 _pct(r["accepted"]), _pct(r["accepted_right"]), _pct(r["other_accepted"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m fashion_edge.benchmarks.realphotos", description=__doc__.splitlines()[0]
    )
    ap.add_argument("models", nargs="+", type=Path, help="model files (.onnx / .tflite)")
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="<class>/ folders of real photos")
    ap.add_argument("--md", type=Path, help="write the table with its command to this Markdown file")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(
            f"realphotos: error: {args.folder}: no such folder (see ../shared/data/README.md)",
            file=sys.stderr,
        )
        return 2
    items = folder_items(args.folder)
    try:
        results = [evaluate(m, items) for m in args.models]
    except ModelLoadError as e:
        print(f"realphotos: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    md = table(results)
    print(md)
    if args.md:
        cmd = shlex.join(
            ["python", "-m", "fashion_edge.benchmarks.realphotos", *map(str, argv or sys.argv[1:])]
        )
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        args.md.write_text(
            f"# Real photos\n\n`{cmd}` — {when}\n\nFolder `{args.folder}`: {results[0]['known_n']} photos of known "
            f"classes, {results[0]['other_n']} of other items. Auto-accepted = not flagged for review by the "
            f"model's own rule.\n\n{md}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
