"""Make the real-photo set that fine-tunes the shipped lite0 model: ``<out>/<class>/`` links into
``../shared/data/real-dev/learn`` (never copies: those photos must not enter the project).

    python scripts/real_dev_learn_set.py .cache/real-dev-learn

Every known-class photo of ``learn/`` is used. Of ``learn/unknown`` only the CAD photos are: CAD is
upper-body clothing (sweaters, suits, outerwear); the CCP crops there include boots, heels and
sandals, and teaching "a real shoe photo is unknown" would fight the two shoe classes.
``eval/`` is never touched.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fashion_edge.training.data import SHARED_DATA

LEARN = SHARED_DATA / "real-dev" / "learn"


def main(out: Path) -> int:
    if not LEARN.is_dir():
        print(
            f"real_dev_learn_set: error: {LEARN}: not found (see ../shared/data/README.md)", file=sys.stderr
        )
        return 2
    n = 0
    for sub in sorted(p for p in LEARN.iterdir() if p.is_dir()):
        (out / sub.name).mkdir(parents=True, exist_ok=True)
        for img in sorted(sub.glob("*.jpg")):
            if sub.name == "unknown" and not img.name.startswith("cad_"):
                continue
            link = out / sub.name / img.name
            if not link.exists():
                link.symlink_to(img.resolve())
            n += 1
    print(f"{n} links -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".cache/real-dev-learn")))
