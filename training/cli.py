"""``fashion-train``: recipe + model -> a self-describing run folder (model, splits, metadata, report).

    fashion-train --recipe articletype8 --model lite0 --webcam-aug 0.5 --negatives 2500   # the default model
    fashion-train --recipe articletype8 --model compact --input 80x60  # the seed-faithful compact CNN
    fashion-train --resume runs/articletype8-compact                 # continue after a stop
    fashion-train --evaluate runs/articletype8-compact               # re-evaluate on its test split
    fashion-train --models                                           # list the registry

GPU (mixed precision; MirroredStrategy when several) when TensorFlow sees one, else the CPU.
Ctrl-C stops cleanly: the best checkpoint so far is evaluated and kept.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fashion_edge.runtime.quiet import native_stderr_silenced, quiet_environment
from fashion_edge.training.recipes import RECIPES

TRAIN_EXTRA = "pip install 'fashion-edge[train]'"


def missing_modules(names: Sequence[str]) -> list[str]:
    """The importable names among ``names`` that are not installed."""
    return [n for n in names if importlib.util.find_spec(n) is None]


def needs_train_extra(prog: str, names: Sequence[str] = ("tensorflow", "tf_keras")) -> str | None:
    """One line naming what to install when the ``[train]`` extra is missing, else None."""
    missing = missing_modules(names)
    if not missing:
        return None
    return f"{prog}: error: needs {', '.join(missing)} (not in the base install): {TRAIN_EXTRA}"


def import_tensorflow(verbose: bool) -> None:
    """Import TensorFlow and probe devices once, with its C++ start-up lines (oneDNN, CUDA,
    ``failed call to cuInit``) kept off the terminal unless ``verbose``."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf-keras (Keras 2): tfmot needs it; before TF import
    quiet_environment(verbose)
    with native_stderr_silenced(not verbose):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fashion-train", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--data", help="catalogue folder or tarball (default ../shared/data/...)")
    p.add_argument("--recipe", default="articletype8", choices=RECIPES)
    p.add_argument("--model", default="compact", help="a registry name (see --models)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument(
        "--input", metavar="HxW", help="input size for catalogue models (default: the model's, e.g. 160x120)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default runs/<recipe>-<model>)")
    p.add_argument("--limit", type=int, help="use at most N items per split (smoke tests)")
    p.add_argument(
        "--negatives",
        type=int,
        default=0,
        help="add an 'unknown' class of N items of other articleTypes (outlier exposure)",
    )
    p.add_argument("--min-images", type=int, help="override the recipe's minimum images per class")
    p.add_argument("--threads", type=int, help="TensorFlow intra-op threads")
    p.add_argument(
        "--webcam-aug", type=float, default=0.0, help="share of training images given webcam-like looks"
    )
    p.add_argument("--resume", metavar="RUN", help="continue a stopped run from its last checkpoint")
    p.add_argument("--evaluate", metavar="RUN", help="re-evaluate a run on its test split")
    p.add_argument(
        "--finetune", metavar="RUN", help="fine-tune RUN's model on --extra images (a new run folder)"
    )
    p.add_argument(
        "--extra", metavar="DIR", help="sorting-table images: the app's journal/captures or <class>/ folders"
    )
    p.add_argument("--models", action="store_true", help="list the model registry with parameter counts")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up log lines")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse first (``--help`` and bad options answer without TensorFlow), then train/evaluate/fine-tune."""
    args = parse_args(argv)
    if args.models:
        from fashion_edge.training.models import listing, listing_needs_tensorflow

        if listing_needs_tensorflow():  # a registry entry whose count is not cached: build it
            if line := needs_train_extra("fashion-train"):
                print(line, file=sys.stderr)
                return 2
            import_tensorflow(args.verbose)
        print(listing())
        return 0
    if line := needs_train_extra("fashion-train"):
        print(line, file=sys.stderr)
        return 2
    import_tensorflow(args.verbose)
    from fashion_edge.training import data as D
    from fashion_edge.training import train as T
    from fashion_edge.training.evaluate import evaluate_run
    from fashion_edge.training.finetune import FinetuneError, finetune
    from fashion_edge.training.lite0 import PretrainedError

    try:
        if args.evaluate:
            run = Path(args.evaluate)
            if not (run / "model.keras").exists() or not (run / "metadata.json").exists():
                raise T.TrainError(f"{run}: not a trained run (needs model.keras and metadata.json)")
            info = evaluate_run(run, args.data)
            print(f"{run}: test top-1 {info['test']['top1']:.4f}, macro-F1 {info['test']['macro_f1']:.4f}")
            return 0
        if args.finetune:
            if not args.extra:
                raise T.TrainError("--finetune needs --extra DIR")
            finetune(args)
            return 0
        T.train(args)
        return 0
    except (T.TrainError, FinetuneError, PretrainedError, D.DataError, FileNotFoundError) as e:
        print(f"fashion-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fashion-train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
