"""The training run behind ``fashion-train`` (arguments: ``training/cli.py``): recipe + model -> a
self-describing run folder (model, splits, metadata, report).

GPU (mixed precision; MirroredStrategy when several) when TensorFlow sees one, else the CPU; a
pretrained model trains in phases (``training/fit.py``). Ctrl-C stops cleanly: the best checkpoint
so far is evaluated and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf-keras (Keras 2): tfmot needs it; before TF import
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from fashion_edge.runtime.metadata import ModelMetadata, save_json  # noqa: E402
from fashion_edge.training import data as D  # noqa: E402
from fashion_edge.training.evaluate import evaluate_run, load_images  # noqa: E402
from fashion_edge.training.fit import (  # noqa: E402
    checkpoint_callback,
    compile_model,
    make_dataset,
    one_hot_ds,
    phases,
    set_phase,
)
from fashion_edge.training.models import REGISTRY  # noqa: E402
from fashion_edge.training.recipes import CATALOGUE_RECIPES, RECIPES, UNKNOWN, Labelled, add_negatives, fmnist  # noqa: E402
from fashion_edge.training.splits import read_split_pairs, stratified_split, write_splits  # noqa: E402


class TrainError(RuntimeError):
    """A user-facing failure: printed as one line, exit 2."""


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("tensorflow", "tf-keras", "numpy", "opencv-python-headless", "scikit-learn"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=D.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def build_labelled(
    recipe: str, data: str | None, seed: int, min_images: int | None = None, negatives: int = 0
) -> tuple[Labelled, dict, str, str]:
    """The recipe's labelled set, data stats, data root and fingerprint."""
    if recipe == "fmnist":
        folder = Path(data) if data else D.FMNIST_DIR
        lab = fmnist(folder, seed=seed)
        return lab, {"images": len(lab.ids)}, str(folder), D.fingerprint(list(folder.glob("*ubyte*")))
    if recipe not in CATALOGUE_RECIPES:
        raise TrainError(f"unknown recipe {recipe!r} (choose from {', '.join(RECIPES)})")
    cat = D.load_catalogue(data)
    kwargs = {}
    if min_images is not None:  # each recipe's own minimum-class-size knob
        kwargs = {"drop_below": min_images} if recipe == "class30" else {"min_images": min_images}
    lab = CATALOGUE_RECIPES[recipe](cat.rows, seed=seed, **kwargs)
    if not lab.ids:
        raise TrainError(f"{cat.root}: recipe {recipe!r} selects no images (classes too small?)")
    if negatives:
        lab = add_negatives(lab, cat.rows, negatives, seed)
    fp = D.fingerprint([cat.root / "styles.csv"]) + f"-{len(cat.rows)}"
    return lab, cat.stats, str(cat.root), fp


RUN_CONTROL = (
    "resume",
    "evaluate",
    "finetune",
    "extra",
    "models",
    "out",
    "threads",
)  # not restored on resume


def _run_folder(args: argparse.Namespace) -> tuple[Path, bool]:
    """The run folder, and whether this is a resume; on resume every saved setting is restored."""
    if args.resume is None:
        run = Path(args.out or D.REPO_ROOT / "runs" / f"{args.recipe}-{args.model}")
        if run.exists() and any(run.iterdir()):
            raise TrainError(f"{run}: run folder exists; use --resume {run} or another --out")
        return run, False
    run = Path(args.resume)
    if not (run / "run_args.json").exists():
        raise TrainError(f"{run}: not a run folder to resume (no run_args.json)")
    saved = json.loads((run / "run_args.json").read_text())
    for k, v in saved.items():
        if k not in RUN_CONTROL:
            setattr(args, k, v)
    return run, True


def _device(tf) -> tuple[object, str]:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    return strategy, (f"{len(gpus)} GPU(s), mixed precision" if gpus else f"CPU ({os.cpu_count()} cores)")


def _splits(args, lab: Labelled, run: Path, resume: bool) -> dict:
    if resume:
        return read_split_pairs(run / "splits.csv")
    splits = stratified_split(lab, seed=args.seed)
    if args.limit:  # a quick smoke run: a stratified fraction of every split
        rng = np.random.default_rng(args.seed)
        splits = {
            k: [v[i] for i in sorted(rng.choice(len(v), min(len(v), args.limit), replace=False))]
            for k, v in splits.items()
        }
    write_splits(splits, run / "splits.csv")
    (run / "run_args.json").write_text(json.dumps(vars(args), indent=2, default=str))
    return splits


def _metadata(
    args, spec, size: tuple[int, int] | None, lab: Labelled, run: Path, data_root: str, fp: str, device: str
) -> ModelMetadata:
    """The record every exported file carries: classes and the model's input contract."""
    h, w, c = spec.input_shape(size)
    return ModelMetadata(
        classes=lab.classes, height=h, width=w, channels=c, color_order="GRAY" if c == 1 else "RGB",
        pad_value=0 if c == 1 else 255, normalization=spec.normalization, recipe=args.recipe,
        model=args.model, source_run=run.name, format="keras", precision="float32",
        unknown_class=UNKNOWN if UNKNOWN in lab.classes else None,
        provenance={"negative_types": lab.notes.get("negative_types"),
                    "heldout_unknown_types": lab.notes.get("heldout_unknown_types"), "data_root": data_root,
                    "data_fingerprint": fp, "seed": args.seed, "versions": _versions(),
                    "git_commit": _git_commit(), "device": device},
    )  # fmt: skip


def train(args: argparse.Namespace) -> Path:
    import tensorflow as tf

    run, resume = _run_folder(args)  # on resume: the saved settings
    spec = REGISTRY.get(args.model)
    if spec is None:
        where = f"{run}: saved model" if resume else "unknown model"
        raise TrainError(f"{where} {args.model!r} is not in the registry; see fashion-train --models")
    size = parse_size(args.input) if args.input else None  # a bad size fails before any data is read
    run.mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    epochs, batch, lr = args.epochs or spec.epochs, args.batch or spec.batch, args.lr or spec.lr
    if args.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        except RuntimeError:  # TF already initialised in this process (tests): keep its setting
            pass
    strategy, device = _device(tf)
    tf.keras.utils.set_random_seed(args.seed)
    lab, stats, data_root, fp = build_labelled(
        args.recipe, args.data, args.seed, args.min_images, args.negatives
    )
    splits = _splits(args, lab, run, resume)
    meta = _metadata(args, spec, size, lab, run, data_root, fp, device)
    save_json(meta, run / "metadata.json")
    index = {cl: i for i, cl in enumerate(lab.classes)}
    t0 = time.time()
    arr = {s: (load_images(args.recipe, data_root, [p[0] for p in splits[s]], meta),
               np.array([index[p[1]] for p in splits[s]])) for s in ("train", "val")}  # fmt: skip
    print(f"data: {len(arr['train'][0])} train / {len(arr['val'][0])} val images "
          f"({meta.height}x{meta.width}) decoded in {time.time() - t0:.1f}s")  # fmt: skip
    k = len(lab.classes)
    train_ds = one_hot_ds(
        make_dataset(*arr["train"], batch, True, spec.augment, args.seed, args.webcam_aug or 0), k
    )
    val_ds = one_hot_ds(make_dataset(*arr["val"], 256, False, (), args.seed), k)
    steps = int(np.ceil(len(arr["train"][0]) / batch))

    last, state_path = run / "checkpoints" / "last.keras", run / "checkpoints" / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    initial_epoch = state.get("epoch", 0) if resume and last.exists() else 0
    with strategy.scope():
        if initial_epoch:
            model = tf.keras.models.load_model(last)
            print(f"resuming {run} at epoch {initial_epoch}")
        else:
            model = spec.build(meta.input_shape, k)
    callbacks = [checkpoint_callback(run, spec.patience, state.get("best_val", 0.0)),
                 tf.keras.callbacks.CSVLogger(str(run / "history.csv"), append=resume)]  # fmt: skip
    if spec.optimizer in ("adam", "sgd"):
        callbacks.append(tf.keras.callbacks.ReduceLROnPlateau(factor=0.2, patience=2, min_lr=1e-6, verbose=1))
    t0, stopped = time.time(), "completed"
    try:
        for first, end, frozen, phase_lr in phases(spec, epochs, lr):
            if end <= initial_epoch or model.stop_training:
                continue
            if spec.freeze_epochs:  # phases: set what trains, then a fresh optimiser for this phase
                set_phase(model, spec, frozen)
                compile_model(model, spec, steps, end - first, phase_lr, warmup=not frozen)
                print(
                    f"phase: epochs {first + 1}-{end}, backbone {'frozen' if frozen else 'trained'}, lr {phase_lr:g}"
                )
            elif not initial_epoch:
                compile_model(model, spec, steps, epochs, lr)
            model.fit(train_ds, validation_data=val_ds, epochs=end, initial_epoch=max(first, initial_epoch),
                      callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)  # fmt: skip
    except KeyboardInterrupt:
        stopped = "interrupted by Ctrl-C"
        print("\nstopped by Ctrl-C: evaluating the best checkpoint so far")
    train_seconds = time.time() - t0
    if not (run / "model.keras").exists():
        raise TrainError(f"{run}: no checkpoint was written (stopped before the first epoch ended)")
    epochs_run = json.loads(state_path.read_text())["epoch"] if state_path.exists() else 0
    prev = json.loads((run / "report.json").read_text()) if (run / "report.json").exists() else {}
    extra = {
        "data_stats": stats, "recipe_notes": lab.notes, "data_root": data_root, "data_fingerprint": fp,
        "split_sizes": {s: len(v) for s, v in splits.items()}, "device": device, "stopped": stopped,
        "epochs_run": epochs_run, "train_seconds": prev.get("train_seconds", 0) + train_seconds,
        "settings": {"epochs": epochs, "batch": batch, "lr": lr, "seed": args.seed, "optimizer": spec.optimizer,
                     "label_smoothing": spec.label_smoothing, "augment": list(spec.augment),
                     "webcam_aug": args.webcam_aug, "patience": spec.patience, "limit": args.limit,
                     "input": f"{meta.height}x{meta.width}", "negatives": args.negatives,
                     "phases": [list(p) for p in phases(spec, epochs, lr)]},
    }  # fmt: skip
    info = evaluate_run(run, data_root, extra)
    t = info["test"]
    print(f"{args.model} on {args.recipe}: test top-1 {t['top1']:.4f}, macro-F1 {t['macro_f1']:.4f} -> {run}")
    return run


def parse_size(text: str) -> tuple[int, int]:
    """``160x120`` -> (160, 120): height x width."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise TrainError(f"--input {text!r}: expected HEIGHTxWIDTH, e.g. 160x120") from None
    if not (16 <= h <= 1024 and 16 <= w <= 1024):
        raise TrainError(f"--input {text!r}: height and width must be 16..1024 pixels")
    return h, w


# The entry point ``fashion-train`` is training/cli.py: it parses the arguments before TensorFlow
# is imported (``--help`` and bad options answer at once) and names the extra to install.
from fashion_edge.training.cli import main, parse_args  # noqa: E402,F401,I001

if __name__ == "__main__":
    sys.exit(main())
