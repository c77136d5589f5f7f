"""``fashion-label`` options for the adapter: --learn-from DIR, --adapter FILE, --save-adapter FILE,
--force-adapter. Kept here so the labeling CLI needs only two calls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fashion_edge.runtime.classifier import Classifier


def add_adapter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("adapter (learn from corrected photos first; see docs/adapter.md)")
    g.add_argument("--learn-from", type=Path, metavar="DIR",
                   help="fit an adapter on DIR/<class>/ photos first (new folder names = new classes)")  # fmt: skip
    g.add_argument("--adapter", type=Path, metavar="FILE", help="label with a saved adapter")
    g.add_argument(
        "--save-adapter", type=Path, metavar="FILE", help="save the adapter fitted by --learn-from"
    )
    g.add_argument("--force-adapter", action="store_true",
                   help="use the adapter even if the safety gate refused it (catalogue drop > 2 points)")  # fmt: skip


def check_adapter_args(args: argparse.Namespace) -> str | None:
    if args.learn_from and args.adapter:
        return "use --learn-from DIR or --adapter FILE, not both"
    if args.save_adapter and not args.learn_from:
        return "--save-adapter needs --learn-from DIR"
    return None


def apply_adapter(args: argparse.Namespace, clf: Classifier, prog: str = "fashion-label") -> Classifier:
    """The classifier to label with: ``clf``, or adapted per the options (AdapterError on refusal)."""
    from fashion_edge.runtime.adapter import AdapterError, adapted, fit_adapter, load_adapter, save_adapter
    from fashion_edge.runtime.adapter_gate import examples_from_folder
    from fashion_edge.runtime.adapter_record import check_save_target

    if args.learn_from:
        if args.save_adapter:  # refused now, not after the fit
            check_save_target(args.save_adapter)
        examples = examples_from_folder(args.learn_from, known=clf.classes)

        def progress(stage: str, done: int, total: int) -> None:
            if done == total:
                print(f"{prog}: {stage}: {total} images", file=sys.stderr)

        ad = fit_adapter(clf, examples, force=args.force_adapter, progress=progress)
        print(f"{prog}: adapter {ad.summary()}", file=sys.stderr)
        if ad.catalogue_acc is not None:
            print(f"{prog}: catalogue check {ad.catalogue_acc:.1%} (was {ad.catalogue_acc_before:.1%}) "
                  f"on {ad.catalogue_n} test images", file=sys.stderr)  # fmt: skip
        for note in ad.notes:
            print(f"{prog}: note: {note}", file=sys.stderr)
        if args.save_adapter and (ad.accepted or args.force_adapter):
            save_adapter(ad, args.save_adapter)
            print(f"{prog}: saved adapter -> {args.save_adapter}", file=sys.stderr)
    elif args.adapter:
        ad = load_adapter(args.adapter, clf)
    else:
        return clf
    if ad.refusal:
        where = args.learn_from or args.adapter
        if not args.force_adapter:
            raise AdapterError(f"{where}: adapter refused: {ad.refusal}; --force-adapter uses it anyway")
        print(f"{prog}: warning: adapter used although {ad.refusal} (--force-adapter)", file=sys.stderr)
    return adapted(clf, ad)
