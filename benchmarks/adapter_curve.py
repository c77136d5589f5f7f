"""The adapter's learning curve on real photos, from one model file (no TensorFlow unless --keras).

    python -m fashion_edge.benchmarks.adapter_curve models/articletype8/model_int8.onnx \\
        --md benchmarks/ADAPTER.md

k photos per class drawn (seeded) from ``real-dev/learn/`` are the corrections; figures are on
``real-dev/eval/`` (never used for fitting or for any choice): top-1 on the model's known classes,
share of those auto-accepted and how many of them are right, and ``unknown/`` items auto-accepted.
Also: refit time for 200 corrections (fit alone; decode + embed + fit), a new class taught from 10
catalogue images, and ``--write-corrections K DIR`` (the same draw, as ``DIR/<class>/`` links for
``fashion-train --finetune``). ``--keras RUN`` scores a fine-tuned run's model.keras the same way.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np

from fashion_edge.benchmarks.realphotos import folder_items
from fashion_edge.runtime.adapter import (
    adapted,
    adapter_probs,
    embed_examples,
    fit_adapter,
    model_fingerprint,
)
from fashion_edge.runtime.adapter_gate import catalogue_for, catalogue_test_rows
from fashion_edge.runtime.classifier import Classifier, load
from fashion_edge.training.data import CACHE_DIR, SHARED_DATA

REAL_DEV = SHARED_DATA / "real-dev"
KS = (0, 5, 20, 50)
UNKNOWN_FOLDER = "unknown"


def embedded(clf: Classifier, items: list[tuple[Path, str]], tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(logits, embeddings) of items, cached on disk per model file and item list."""
    import hashlib

    key = hashlib.sha256("|".join(str(p) for p, _ in items).encode()).hexdigest()[:12]
    cache = CACHE_DIR / "adapter_curve" / f"{model_fingerprint(clf.path)}_{tag}_{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["logits"], z["emb"]
    logits, emb, ok = embed_examples(clf, [p for p, _ in items])
    if not ok.all():
        raise SystemExit(f"{items[int(np.flatnonzero(~ok)[0])][0]}: unreadable image")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, logits=logits, emb=emb)
    return logits, emb


def draw(labels: list[str], k: int, seed: int, classes: list[str]) -> np.ndarray:
    """k indices per class present in ``classes`` (seeded), in a stable order."""
    rng = np.random.default_rng(seed)
    pick = []
    for c in sorted(set(labels)):
        if c not in classes:
            continue
        idx = np.flatnonzero(np.array(labels) == c)
        pick += list(rng.choice(idx, min(k, len(idx)), replace=False))
    return np.array(sorted(pick), int)


def score(preds: list, labels: list[str], known: list[str]) -> dict[str, float]:
    """Top-1 on known-class items, auto-accepted share and precision, unknown items auto-accepted."""
    is_known = np.array([lab in known for lab in labels])
    right = np.array([p.label == lab for p, lab in zip(preds, labels, strict=True)])
    auto = np.array([not p.needs_review for p in preds])
    kn = is_known
    unk = np.array([lab == UNKNOWN_FOLDER for lab in labels])
    return {
        "top1": float(right[kn].mean()),
        "auto": float(auto[kn].mean()),
        "auto_right": float(right[kn & auto].mean()) if (kn & auto).any() else float("nan"),
        "unknown_auto": float(auto[unk].mean()) if unk.any() else float("nan"),
        "n_known": int(kn.sum()),
        "n_unknown": int(unk.sum()),
    }


def curve(
    clf: Classifier, real: Path, ks: list[int], seeds: list[int], log=print, teach_all: bool = False
) -> list[dict]:
    """One row per k and seed. ``teach_all``: the site teaches every folder type (new classes too),
    and top-1 / auto-accept figures cover every eval item, as at a site with its own taxonomy."""
    learn, evals = folder_items(real / "learn"), folder_items(real / "eval")
    lz, le = embedded(clf, learn, "learn")
    ez, ee = embedded(clf, evals, "eval")
    llab, elab = [lab for _, lab in learn], [lab for _, lab in evals]
    known = [c for c in sorted(set(elab)) if c in clf.classes and c != clf.meta.unknown_class]
    teach = known + ([clf.meta.unknown_class] if clf.meta.unknown_class else [])
    if teach_all:
        known = teach = sorted(set(llab) | set(elab))
    rows = []
    for k in ks:
        for seed in seeds if k else seeds[:1]:
            if k == 0:
                row = score(clf.predictions(clf.calibrated(ez), top_k=1), elab, known)
                row.update(k=0, seed=seed, heldout=None, heldout_before=None, cat=None, cat_before=None,
                           accepted=True, thr=clf.meta.review_threshold, n=0)  # fmt: skip
            else:
                idx = draw(llab, k, seed, teach)
                ex = [(learn[i][0], llab[i]) for i in idx]
                t0 = time.perf_counter()
                ad = fit_adapter(clf, ex, embeddings=le[idx], logits=lz[idx], seed=seed)
                fit_s = time.perf_counter() - t0
                row = score(adapted(clf, ad).decide(ez, ee, top_k=1), elab, known)
                row.update(k=k, seed=seed, heldout=ad.heldout_acc, heldout_before=ad.heldout_acc_before,
                           cat=ad.catalogue_acc, cat_before=ad.catalogue_acc_before, accepted=ad.accepted,
                           thr=ad.review_threshold, n=ad.n_examples, fit_s=fit_s)  # fmt: skip
            rows.append(row)
            log(_line(row))
    return rows


def _pct(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.1%}"


def _line(r: dict) -> str:
    return (f"k={r['k']:>2} seed={r['seed']}: top-1 {_pct(r['top1'])}, auto {_pct(r['auto'])} "
            f"({_pct(r['auto_right'])} right), unknown auto {_pct(r['unknown_auto'])}, held-out "
            f"{_pct(r['heldout'])} (was {_pct(r['heldout_before'])}), catalogue {_pct(r['cat'])} "
            f"(was {_pct(r['cat_before'])}), thr {r['thr']:.3f}")  # fmt: skip


def timing(clf: Classifier, real: Path, n: int = 200, repeats: int = 5) -> dict[str, float]:
    """Seconds to refit on n corrections: fit alone (cached embeddings), and decode + embed + fit."""
    learn = folder_items(real / "learn")
    llab = [lab for _, lab in learn]
    teach = [c for c in sorted(set(llab)) if c in clf.classes]
    idx = draw(llab, -(-n // len(teach)), 0, teach)[:n]
    ex = [(learn[i][0], llab[i]) for i in idx]
    lz, le = embedded(clf, learn, "learn")
    cat = catalogue_for(clf)
    fit, full = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit_adapter(clf, ex, embeddings=le[idx], logits=lz[idx], catalogue=None)
        fit.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fit_adapter(clf, ex, catalogue=None)
        full.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    fit_adapter(clf, ex, embeddings=le[idx], logits=lz[idx], catalogue=cat)
    gate = time.perf_counter() - t0
    return {
        "n": len(idx),
        "fit_s": float(np.median(fit)),
        "embed_fit_s": float(np.median(full)),
        "gate_s": gate,
    }


def spare_test_rows(splits: Path, classes: list[str], used: set[str]) -> list[dict[str, str]]:
    """Test rows of ``splits.csv`` with a known label whose id is not in ``used`` (gate + anchors)."""
    return [r for r in catalogue_test_rows(splits, classes) if r["id"] not in used]


def new_class(clf: Classifier, article: str, n_teach: int = 10, per_known: int = 10, seed: int = 0) -> dict:
    """Teach ``article`` from n_teach catalogue images, with per_known catalogue corrections of each
    known class; recall on the other images of that type, old classes on the gate's test images.

    The known-class corrections are test ids that neither the gate scores nor anchor the fit (a
    site's corrections are new photos, never the gate's own images), so the gate and the old-class
    figure judge the same untouched images.
    """
    from fashion_edge.training.data import CATALOGUE_DIR, load_catalogue, load_catalogue_images

    cat = load_catalogue(CATALOGUE_DIR)
    ids = [r["id"] for r in cat.rows if r["articleType"] == article]
    rng = np.random.default_rng(seed)
    ids = [ids[i] for i in rng.permutation(len(ids))]
    x_new = load_catalogue_images(cat.root, ids, clf.meta.height, clf.meta.width, clf.meta.fit)
    z_new, e_new = _outputs(clf, x_new)
    gate = catalogue_for(clf)
    if gate is None:
        raise SystemExit("catalogue test images not found (splits.csv next to the model + the catalogue)")
    used = set(gate.ids) | set(gate.anchors.ids if gate.anchors else [])
    spare = spare_test_rows(clf.path.parent / "splits.csv", clf.classes, used)
    teach_old = [spare[i] for i in draw([r["label"] for r in spare], per_known, seed, clf.classes)]
    x_old = load_catalogue_images(cat.root, [r["id"] for r in teach_old], clf.meta.height, clf.meta.width,
                                  clf.meta.fit)  # fmt: skip
    z_old, e_old = _outputs(clf, x_old)
    ex = [(f"new:{i}", article) for i in ids[:n_teach]]
    ex += [(f"cat:{r['id']}", r["label"]) for r in teach_old]
    z = np.concatenate([z_new[:n_teach], z_old])
    e = np.concatenate([e_new[:n_teach], e_old])
    ad = fit_adapter(clf, ex, embeddings=e, logits=z, seed=seed)
    a = adapted(clf, ad)
    p_new = a.predictions(adapter_probs(ad, z_new[n_teach:], e_new[n_teach:], clf), top_k=1)
    p_old = adapter_probs(ad, gate.logits, gate.emb, clf).argmax(1)
    before_new = [clf.classes[i] for i in z_new[n_teach:].argmax(1)]
    return {
        "article": article, "seed": seed, "n_teach": n_teach, "per_known": per_known, "n_eval_new": len(ids) - n_teach,
        "recall": float(np.mean([p.label == article for p in p_new])),
        "auto_share_new": float(np.mean([not p.needs_review for p in p_new])),
        "before_as": max(set(before_new), key=before_new.count),
        "old_before": gate.accuracy(gate.base_pred),
        "old_after": gate.accuracy(p_old), "n_old": len(gate.y),
        "accepted": ad.accepted, "refusal": ad.refusal,
    }  # fmt: skip


def _outputs(clf: Classifier, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [clf.logits_and_embedding(x[i : i + 128]) for i in range(0, len(x), 128)]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def write_corrections(real: Path, k: int, seed: int, out: Path, classes: list[str]) -> int:
    """Symlink the k-per-class draw into out/<class>/ (for fashion-train --finetune --extra)."""
    learn = folder_items(real / "learn")
    llab = [lab for _, lab in learn]
    idx = draw(llab, k, seed, classes)
    for i in idx:
        d = out / llab[i]
        d.mkdir(parents=True, exist_ok=True)
        link = d / learn[i][0].name
        if not link.exists():
            os.symlink(learn[i][0].resolve(), link)
    return len(idx)


def keras_curve(run: Path, real: Path) -> dict:
    """Score a (fine-tuned) run's model.keras on eval/ with its own calibration-free softmax."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    from fashion_edge.runtime.metadata import load_json
    from fashion_edge.runtime.preprocess import prepare, read_image

    meta = load_json(run / "metadata.json")
    model = tf.keras.models.load_model(run / "model.keras", compile=False)
    evals = folder_items(real / "eval")
    x = np.stack([prepare(read_image(p), meta) for p, _ in evals]).astype(np.float32)
    logits = np.asarray(model.predict(x, batch_size=128, verbose=0))
    pred = [meta.classes[i] for i in logits.argmax(1)]
    labels = [lab for _, lab in evals]
    known = [c for c in sorted(set(labels)) if c in meta.classes and c != meta.unknown_class]
    kn = np.array([lab in known for lab in labels])
    return {"run": str(run), "top1": float(np.mean(np.array(pred)[kn] == np.array(labels)[kn]))}


def markdown(clf: Classifier, rows: list[dict], tim: dict | None, news: list[dict], command: str) -> str:
    lines = [f"## {clf.path} ({len(clf.classes)} classes, embedding {clf.meta.embedding_size})", "",
             f"Command: `{command}`", "",
             "| k per class | seed | top-1 (known classes) | auto-accepted | of those right | unknown/ auto-accepted "
             "| held-out acc. (was) | catalogue acc. (was) | gate | review thr. |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['k']} | {r['seed']} | {_pct(r['top1'])} | {_pct(r['auto'])} | {_pct(r['auto_right'])} | "
            f"{_pct(r['unknown_auto'])} | {_pct(r['heldout'])} ({_pct(r['heldout_before'])}) | {_pct(r['cat'])} "
            f"({_pct(r['cat_before'])}) | {'ok' if r['accepted'] else 'REFUSED'} | {r['thr']:.3f} |"
        )
    n_known, n_unk = rows[0]["n_known"], rows[0]["n_unknown"]
    lines += ["", f"eval/: {n_known} items of the known classes, {n_unk} in unknown/."]
    if tim:
        lines += ["", f"Refit on {tim['n']} corrections (median of 5, one process): fit alone {tim['fit_s']:.2f} s; "
                  f"decode + embed + fit {tim['embed_fit_s']:.2f} s; with the catalogue gate (embeddings cached) "
                  f"{tim['gate_s']:.2f} s."]  # fmt: skip
    for nc in news:
        lines += ["", f"New class **{nc['article']}** (seed {nc['seed']}) from {nc['n_teach']} catalogue images (+ {nc['per_known']} "
                  f"catalogue corrections per known class): recall {_pct(nc['recall'])} on its other "
                  f"{nc['n_eval_new']} images ({_pct(nc['auto_share_new'])} auto-accepted; the model alone called "
                  f"most of them {nc['before_as']}); old classes {_pct(nc['old_before'])} -> {_pct(nc['old_after'])} "
                  f"on the gate's {nc['n_old']} catalogue test images; gate {'ok' if nc['accepted'] else nc['refusal']}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="adapter_curve", description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, nargs="?")
    p.add_argument("--real", type=Path, default=REAL_DEV)
    p.add_argument("--k", type=int, nargs="+", default=list(KS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--new-class", nargs="*", default=["Jeans", "Sunglasses"])
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--md", type=Path, help="append the table to this Markdown file")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--l2", default=None, help="adapter l2: a number or 'auto' (default: the adapter's)")
    p.add_argument("--write-corrections", nargs=2, metavar=("K", "DIR"))
    p.add_argument("--keras", type=Path, help="score RUN/model.keras on eval/ (TensorFlow)")
    p.add_argument(
        "--teach-all",
        action="store_true",
        help="teach every type of --real (a site's own classes), score all",
    )
    args = p.parse_args(argv)
    if not args.real.is_dir():
        print(f"adapter_curve: {args.real}: real-dev photos not found", file=sys.stderr)
        return 2
    if args.keras:
        print(keras_curve(args.keras, args.real))
        return 0
    clf = load(args.model, threads=args.threads)
    if args.l2 is not None:
        global fit_adapter
        fit_adapter = functools.partial(fit_adapter, l2=args.l2 if args.l2 == "auto" else float(args.l2))
    if args.write_corrections:
        k, out = int(args.write_corrections[0]), Path(args.write_corrections[1])
        print(f"linked {write_corrections(args.real, k, args.seeds[0], out, clf.classes)} photos into {out}")
        return 0
    rows = curve(clf, args.real, args.k, args.seeds, teach_all=args.teach_all)
    tim = None if args.no_timing else timing(clf, args.real)
    if tim:
        print(tim)
    news = [new_class(clf, a, seed=s) for a in args.new_class for s in args.seeds]
    for nc in news:
        print(nc)
    md = markdown(
        clf,
        rows,
        tim,
        news,
        "python -m fashion_edge.benchmarks.adapter_curve " + " ".join(argv or sys.argv[1:]),
    )
    print(md)
    if args.md:
        with open(args.md, "a", encoding="utf-8") as f:
            f.write("\n" + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
