"""How much of a person's work the learner saves over a stream of items (no TensorFlow).

    python -m fashion_edge.benchmarks.site_stream ../shared/data/real-site/eval \\
        --md benchmarks/STREAM.md --plot benchmarks/stream.png

A labelled folder (``<class>/`` sub-folders; ``--catalogue`` takes the model's catalogue test split
instead) is labelled in batches of ``--batch`` items in a fixed shuffled order (``--seed``), as a
site would work through its inbox:

- each item is predicted by the learner of the moment (the model alone at first, then the model with
  the adapter fitted so far) through the runtime's own review rule (``Classifier.predictions`` /
  ``AdaptedClassifier.decide``);
- an item sent to review takes its true label (the folder name) and counts as a **touch**;
- a share ``--spot-check`` of the would-be auto-accepted items (seeded) also goes to a person, as a
  spot check: a touch too, and an unbiased sample of auto-accepted precision;
- every touched item becomes a labelled example; the adapter is refitted on all of them after each
  batch (``runtime.adapter.fit_adapter`` with the catalogue gate, as the app does). A refit the gate
  refuses keeps the previous learner.

Prequential: every item is predicted before its own label is used, so the figures are honest on the
folder itself (run it on ``eval/`` folders; nothing here tunes anything).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_edge.benchmarks.adapter_curve import embedded
from fashion_edge.benchmarks.realphotos import folder_items
from fashion_edge.runtime.adapter import AdapterError, adapted, fit_adapter
from fashion_edge.runtime.adapter_gate import catalogue_for, catalogue_test_rows
from fashion_edge.runtime.classifier import Classifier, ModelLoadError, default_model_path, load


@dataclass
class BatchRow:
    """One batch of the stream: what the learner did before it learned from this batch."""

    batch: int
    seen: int  # items labelled so far, this batch included
    items: int
    touches: int  # reviews + spot checks
    spot_checks: int
    auto: int  # auto-accepted without a look (spot checks excluded)
    auto_wrong: int
    top1: float  # top-1 of the learner's answers in this batch (before it learned from them)
    examples: int  # labelled examples the next learner is fitted on
    refit_s: float | None
    refit_note: str

    @property
    def touches_per_100(self) -> float:
        return 100.0 * self.touches / self.items


def catalogue_items(clf: Classifier) -> list[tuple[Path, str]]:
    """(image, label) of the model's catalogue test split (its ``splits.csv``)."""
    from fashion_edge.training.data import CATALOGUE_DIR, resolve_catalogue

    root = resolve_catalogue(CATALOGUE_DIR)
    rows = catalogue_test_rows(clf.path.parent / "splits.csv", clf.classes)
    return [(root / "images" / f"{r['id']}.jpg", r["label"]) for r in rows]


def run_stream(
    clf: Classifier,
    items: list[tuple[Path, str]],
    tag: str,
    batch: int = 100,
    spot_check: float = 0.05,
    seed: int = 0,
    log=print,
) -> list[BatchRow]:
    """Label ``items`` in shuffled batches with a learner refitted after each; one row a batch."""
    z_all, e_all = embedded(clf, items, tag)
    labels = np.array([lab for _, lab in items])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    catalogue = catalogue_for(clf)
    learner: Classifier = clf
    taught: list[int] = []
    rows: list[BatchRow] = []
    seen = 0
    for b, start in enumerate(range(0, len(order), batch)):
        idx = order[start : start + batch]
        z, e = z_all[idx], e_all[idx]
        preds = learner.decide(z, e, top_k=1)
        guess = np.array([p.label for p in preds])
        review = np.array([p.needs_review for p in preds])
        spot = ~review & (rng.random(len(idx)) < spot_check)
        auto = ~review & ~spot
        right = guess == labels[idx]
        taught += [int(i) for i in idx[review | spot]]
        seen += len(idx)
        refit_s, note = None, "no refit (fewer than 2 examples)"
        if len(taught) >= 2:
            t0 = time.perf_counter()
            try:
                ad = fit_adapter(
                    clf, [(items[i][0], items[i][1]) for i in taught],
                    embeddings=e_all[taught], logits=z_all[taught], catalogue=catalogue, seed=seed,
                )  # fmt: skip
                refit_s = time.perf_counter() - t0
                if ad.accepted:
                    learner = adapted(clf, ad)
                    note = f"threshold {ad.review_threshold:.3f}"
                else:
                    note = f"refused, kept the previous learner ({ad.refusal})"
            except AdapterError as err:
                refit_s = time.perf_counter() - t0
                note = f"not fitted ({err})"
        row = BatchRow(
            batch=b + 1, seen=seen, items=len(idx), touches=int((review | spot).sum()),
            spot_checks=int(spot.sum()), auto=int(auto.sum()), auto_wrong=int((auto & ~right).sum()),
            top1=float(right.mean()), examples=len(taught), refit_s=refit_s, refit_note=note,
        )  # fmt: skip
        rows.append(row)
        log(
            f"[batch {row.batch}] {row.seen} items: touches {row.touches_per_100:.0f}/100, "
            f"auto {row.auto} ({row.auto_wrong} wrong), top-1 {row.top1:.1%}, refit "
            f"{'-' if refit_s is None else f'{refit_s:.2f} s'} ({note})"
        )
    return rows


def summary(rows: list[BatchRow], after: int = 300) -> dict[str, float]:
    """Totals over the whole stream and over the items after the first ``after``."""
    late = [r for r in rows if r.seen - r.items >= after]

    def agg(rs: list[BatchRow]) -> dict[str, float]:
        n = sum(r.items for r in rs)
        auto = sum(r.auto for r in rs)
        wrong = sum(r.auto_wrong for r in rs)
        return {
            "items": n,
            "touches_per_100": 100.0 * sum(r.touches for r in rs) / n if n else float("nan"),
            "auto_share": auto / n if n else float("nan"),
            "auto_precision": 1 - wrong / auto if auto else float("nan"),
            "top1": sum(r.top1 * r.items for r in rs) / n if n else float("nan"),
        }

    return {"all": agg(rows), f"after_{after}": agg(late)}  # type: ignore[dict-item]


def markdown(name: str, rows: list[BatchRow], command: str, after: int = 300) -> str:
    """One table per stream: a row a batch, then the totals."""
    lines = [
        f"### {name}",
        "",
        f"`{command}`",
        "",
        "| batch | items so far | touches / 100 | auto-accepted | wrong among auto | top-1 | examples | refit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        refit = "–" if r.refit_s is None else f"{r.refit_s:.2f}"
        lines.append(
            f"| {r.batch} | {r.seen} | {r.touches_per_100:.0f} | {r.auto / r.items:.0%} | {r.auto_wrong} | "
            f"{r.top1:.1%} | {r.examples} | {refit} |"
        )
    s = summary(rows, after)
    lines.append("")
    for key, v in s.items():
        what = "whole stream" if key == "all" else f"after the first {after} items"
        if not v["items"]:
            continue
        lines.append(
            f"- {what} ({v['items']:.0f} items): touches {v['touches_per_100']:.1f} per 100, "
            f"auto-accepted {v['auto_share']:.1%}, right among auto-accepted "
            f"{'–' if np.isnan(v['auto_precision']) else format(v['auto_precision'], '.1%')}, "
            f"top-1 {v['top1']:.1%}"
        )
    return "\n".join(lines) + "\n"


def plot(streams: dict[str, list[BatchRow]], out: Path) -> None:
    """Touches per 100 and top-1 per batch, one line per stream."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, rows in streams.items():
        x = [r.seen for r in rows]
        a.plot(x, [r.touches_per_100 for r in rows], marker=".", label=name)
        b.plot(x, [100 * r.top1 for r in rows], marker=".", label=name)
    a.set(xlabel="items labelled", ylabel="touches per 100 items", ylim=(0, 105), title="a person's work")
    b.set(xlabel="items labelled", ylabel="top-1 %", ylim=(0, 100), title="learner's top-1 (before learning)")
    a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m fashion_edge.benchmarks.site_stream", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("folders", nargs="*", type=Path, help="labelled folders of <class>/ sub-folders")
    p.add_argument("--catalogue", action="store_true", help="also stream the model's catalogue test split")
    p.add_argument("--model", type=Path, default=None, help=f"model file (default: {default_model_path()})")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--spot-check", type=float, default=0.05, help="share of would-be auto-accepts checked")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="at most this many items per stream (shuffled)")
    p.add_argument("--md", type=Path, default=None, help="write the tables here")
    p.add_argument("--plot", type=Path, default=None, help="write the plot here (PNG)")
    args = p.parse_args(argv)
    if not args.folders and not args.catalogue:
        p.error("give a folder or --catalogue")
    if not 1 <= args.batch <= 10_000 or not 0.0 <= args.spot_check <= 1.0:
        p.error("--batch must be 1..10000 and --spot-check 0..1")
    try:
        clf = load(args.model)
    except ModelLoadError as e:
        print(f"site_stream: {e}", file=sys.stderr)
        return 2
    sources: dict[str, list[tuple[Path, str]]] = {}
    for folder in args.folders:
        if not folder.is_dir():
            print(f"site_stream: {folder}: not a folder", file=sys.stderr)
            return 2
        sources[f"{folder.parent.name}/{folder.name}"] = folder_items(folder)
    if args.catalogue:
        sources["catalogue test split"] = catalogue_items(clf)
    command = "python -m fashion_edge.benchmarks.site_stream " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    streams: dict[str, list[BatchRow]] = {}
    parts = [f"Model `{clf.path.name}` ({clf.path.parent.name}); batches of {args.batch}, spot checks "
             f"{args.spot_check:.0%}, seed {args.seed}.\n"]  # fmt: skip
    for name, items in sources.items():
        if args.limit:
            keep = np.random.default_rng(args.seed).permutation(len(items))[: args.limit]
            items = [items[i] for i in sorted(keep)]
        print(f"== {name}: {len(items)} items, {len({lab for _, lab in items})} classes")
        tag = "stream_" + "".join(c if c.isalnum() else "_" for c in name)
        streams[name] = run_stream(clf, items, tag, args.batch, args.spot_check, args.seed)
        parts.append(markdown(name, streams[name], command))
        print(summary(streams[name]))
    if args.md:
        args.md.write_text("\n".join(parts), encoding="utf-8")
        print(f"wrote {args.md}")
    if args.plot:
        plot(streams, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
