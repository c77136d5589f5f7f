"""``fashion-train``: recipe + model -> a self-describing run folder (model, splits, metadata, report).

    fashion-train --recipe articletype8 --model compact            # the shipped default
    fashion-train --resume runs/articletype8-compact                 # continue after a stop
    fashion-train --evaluate runs/articletype8-compact               # re-evaluate on its test split
    fashion-train --models                                           # list the registry

GPU (mixed precision; MirroredStrategy when several) when TensorFlow sees one, else the CPU.
Ctrl-C stops cleanly: the best checkpoint so far is evaluated and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf-keras (Keras 2): tfmot needs it; before TF import
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from fashion_edge.runtime.metadata import ModelMetadata, load_json, save_json  # noqa: E402
from fashion_edge.training import data as D  # noqa: E402
from fashion_edge.training.models import REGISTRY, listing  # noqa: E402
from fashion_edge.training.recipes import CATALOGUE_RECIPES, RECIPES, UNKNOWN, Labelled, add_negatives, fmnist  # noqa: E402
from fashion_edge.training.report import (  # noqa: E402
    classification_metrics,
    plot_confusion,
    plot_curves,
    plot_feature_maps,
    plot_most_wrong,
    softmax,
    write_report,
)
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


def load_images(recipe: str, data_root: str, ids: list[str], meta: ModelMetadata) -> np.ndarray:
    if recipe == "fmnist":
        return D.load_fmnist_images(Path(data_root), ids)
    return D.load_catalogue_images(Path(data_root), ids, meta.height, meta.width, meta.fit)


def make_dataset(
    x, y, batch: int, training: bool, augment: tuple[str, ...], seed: int, webcam_p: float = 0.0
):
    """tf.data: in-memory uint8 arrays (decoded once, in parallel, by runtime.preprocess) -> shuffle ->
    batch -> on-the-fly augmentation -> prefetch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch, drop_remainder=False)
    if training and webcam_p > 0:
        from fashion_edge.training.webcam import augment_batch

        rng = np.random.default_rng(seed)

        def _webcam(xb):
            return augment_batch(xb, rng, p=webcam_p)

        def _map_webcam(xb, yb):
            out = tf.numpy_function(_webcam, [xb], tf.uint8)
            out.set_shape(xb.shape)
            return out, yb

        ds = ds.map(_map_webcam, num_parallel_calls=1)
    ds = ds.map(lambda xb, yb: (tf.cast(xb, tf.float32), yb), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        L = tf.keras.layers
        layers = []
        if "flip" in augment:
            layers.append(L.RandomFlip("horizontal", seed=seed))
        if "shift" in augment:
            layers.append(L.RandomTranslation(0.08, 0.08, fill_mode="constant", fill_value=255.0, seed=seed))
        if "zoom" in augment:
            layers.append(L.RandomZoom((-0.1, 0.15), fill_mode="constant", fill_value=255.0, seed=seed))
        if "light" in augment:
            layers.append(L.RandomBrightness(0.15, value_range=(0, 255), seed=seed))
            layers.append(L.RandomContrast(0.15, seed=seed))
        aug = tf.keras.Sequential(layers)
        ds = ds.map(
            lambda xb, yb: (tf.clip_by_value(aug(xb, training=True), 0.0, 255.0), yb),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_model(model, spec, steps_per_epoch: int, epochs: int, lr: float):
    import tensorflow as tf

    if spec.optimizer == "adamw":
        schedule = tf.keras.optimizers.schedules.CosineDecay(
            lr * 0.1, decay_steps=max(1, steps_per_epoch * epochs), alpha=0.01,
            warmup_target=lr, warmup_steps=steps_per_epoch,
        )  # fmt: skip
        opt = tf.keras.optimizers.AdamW(schedule, weight_decay=spec.weight_decay)
    elif spec.optimizer == "sgd":
        opt = tf.keras.optimizers.SGD(lr, momentum=0.9)
    else:
        opt = tf.keras.optimizers.Adam(lr)
    model.compile(
        optimizer=opt,
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=spec.label_smoothing),
        metrics=["accuracy"],
    )


def _one_hot_ds(ds, k: int):
    import tensorflow as tf

    return ds.map(lambda xb, yb: (xb, tf.one_hot(yb, k)))


def predict_logits(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.asarray(model.predict(x.astype(np.float32), batch_size=batch, verbose=0), dtype=np.float32)


def evaluate_run(run: Path, data: str | None = None, extra: dict | None = None) -> dict:
    """Evaluate the run's best model on its val and test splits; write metadata.json and report.md."""
    import tensorflow as tf

    meta = load_json(run / "metadata.json")
    model = tf.keras.models.load_model(run / "model.keras", compile=False)
    data_root = data or meta.provenance.get("data_root")
    pairs = read_split_pairs(run / "splits.csv")
    index = {c: i for i, c in enumerate(meta.classes)}
    results, arrays = {}, {}
    for split in ("val", "test"):
        ids = [p[0] for p in pairs[split]]
        x = load_images(meta.recipe, data_root, ids, meta)
        y = np.array([index[p[1]] for p in pairs[split]])
        logits = predict_logits(model, x)
        results[split] = classification_metrics(y, logits, meta.classes)
        arrays[split] = (x, y, logits)
    x, y, logits = arrays["test"]
    plot_confusion(y, logits.argmax(1), meta.classes, run / "confusion.png")
    plot_curves(run / "history.csv", run / "curves.png")
    plot_most_wrong(x, y, softmax(logits), meta.classes, run / "most_wrong.png")
    if meta.recipe == "fmnist" and any("conv" in layer.name for layer in model.layers):
        picks = [
            int(np.where(y == meta.classes.index(c))[0][0]) for c in ("Pullover", "Bag") if c in meta.classes
        ]
        plot_feature_maps(model, x[picks], [meta.classes[y[i]] for i in picks], run / "feature_maps.png")
    meta.metrics = {
        "test_top1": round(results["test"]["top1"], 4),
        "test_macro_f1": round(results["test"]["macro_f1"], 4),
        "val_top1": round(results["val"]["top1"], 4),
        "test_n": results["test"]["n"],
    }
    save_json(meta, run / "metadata.json")
    prev = json.loads((run / "report.json").read_text()) if (run / "report.json").exists() else {}
    info = {**prev, **(extra or {}), "val": results["val"], "test": results["test"]}
    info.update(model=meta.model, recipe=meta.recipe, params=int(model.count_params()))
    write_report(run, info)
    return info


def train(args: argparse.Namespace) -> Path:
    import tensorflow as tf

    spec = REGISTRY.get(args.model)
    if spec is None:
        raise TrainError(f"unknown model {args.model!r}; see fashion-train --models")
    run = Path(args.out or D.REPO_ROOT / "runs" / f"{args.recipe}-{args.model}")
    resume = args.resume is not None
    if resume:
        run = Path(args.resume)
        if not (run / "run_args.json").exists():
            raise TrainError(f"{run}: not a run folder to resume (no run_args.json)")
        saved = json.loads((run / "run_args.json").read_text())
        for k in (
            "recipe",
            "model",
            "epochs",
            "batch",
            "seed",
            "data",
            "lr",
            "limit",
            "webcam_aug",
            "min_images",
        ):
            setattr(args, k, saved.get(k))
        spec = REGISTRY[args.model]
    elif run.exists() and any(run.iterdir()):
        raise TrainError(f"{run}: run folder exists; use --resume {run} or another --out")
    run.mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    epochs = args.epochs or spec.epochs
    batch = args.batch or spec.batch
    lr = args.lr or spec.lr
    if args.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        except RuntimeError:  # TF already initialised in this process (tests): keep its setting
            pass

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    device = f"{len(gpus)} GPU(s), mixed precision" if gpus else f"CPU ({os.cpu_count()} cores)"
    tf.keras.utils.set_random_seed(args.seed)

    lab, stats, data_root, fp = build_labelled(
        args.recipe, args.data, args.seed, args.min_images, args.negatives
    )
    if resume:
        splits = read_split_pairs(run / "splits.csv")
    else:
        splits = stratified_split(lab, seed=args.seed)
        if args.limit:  # a quick smoke run: a stratified fraction of every split
            rng = np.random.default_rng(args.seed)
            splits = {
                k: [v[i] for i in sorted(rng.choice(len(v), min(len(v), args.limit), replace=False))]
                for k, v in splits.items()
            }
        write_splits(splits, run / "splits.csv")
        (run / "run_args.json").write_text(json.dumps(vars(args), indent=2, default=str))
    h, w, c = (28, 28, 1) if spec.input_kind == "fmnist" else (80, 60, 3)
    meta = ModelMetadata(
        classes=lab.classes, height=h, width=w, channels=c, color_order="GRAY" if c == 1 else "RGB",
        pad_value=0 if c == 1 else 255, recipe=args.recipe, model=args.model, source_run=run.name,
        format="keras", precision="float32", unknown_class=UNKNOWN if UNKNOWN in lab.classes else None,
        provenance={"negative_types": lab.notes.get("negative_types"),
                    "heldout_unknown_types": lab.notes.get("heldout_unknown_types"),"data_root": data_root, "data_fingerprint": fp, "seed": args.seed, "versions": _versions(),
                    "git_commit": _git_commit(), "device": device},
    )  # fmt: skip
    save_json(meta, run / "metadata.json")
    index = {cl: i for i, cl in enumerate(lab.classes)}
    t0 = time.time()
    arr = {}
    for split in ("train", "val"):
        ids = [p[0] for p in splits[split]]
        arr[split] = (
            load_images(args.recipe, data_root, ids, meta),
            np.array([index[p[1]] for p in splits[split]]),
        )
    print(
        f"data: {len(arr['train'][0])} train / {len(arr['val'][0])} val images decoded in {time.time() - t0:.1f}s"
    )
    k = len(lab.classes)
    train_ds = _one_hot_ds(
        make_dataset(*arr["train"], batch, True, spec.augment, args.seed, args.webcam_aug or 0), k
    )
    val_ds = _one_hot_ds(make_dataset(*arr["val"], 256, False, (), args.seed), k)
    steps = int(np.ceil(len(arr["train"][0]) / batch))

    last = run / "checkpoints" / "last.keras"
    state_path = run / "checkpoints" / "state.json"
    initial_epoch = 0
    with strategy.scope():
        if resume and last.exists():
            model = tf.keras.models.load_model(last)
            initial_epoch = json.loads(state_path.read_text())["epoch"]
            print(f"resuming {run} at epoch {initial_epoch}")
        else:
            model = spec.build((h, w, c), k)
            compile_model(model, spec, steps, epochs, lr)
    best_val = json.loads(state_path.read_text()).get("best_val", 0.0) if state_path.exists() else 0.0

    class Checkpoint(tf.keras.callbacks.Callback):
        """Every epoch: last.keras + state.json (for --resume); model.keras when val accuracy improves."""

        def __init__(self):
            super().__init__()
            self.best = best_val
            self.wait = 0

        def on_epoch_end(self, epoch, logs=None):
            val = float((logs or {}).get("val_accuracy", 0.0))
            if val > self.best:
                self.best, self.wait = val, 0
                self.model.save(run / "model.keras.tmp.keras")
                os.replace(run / "model.keras.tmp.keras", run / "model.keras")
            else:
                self.wait += 1
            self.model.save(run / "checkpoints" / "last.tmp.keras")
            os.replace(run / "checkpoints" / "last.tmp.keras", last)
            state_path.write_text(json.dumps({"epoch": epoch + 1, "best_val": self.best}))
            if self.wait >= spec.patience:
                print(f"early stop: no val improvement for {spec.patience} epochs")
                self.model.stop_training = True

    callbacks = [Checkpoint(), tf.keras.callbacks.CSVLogger(str(run / "history.csv"), append=resume)]
    if spec.optimizer in ("adam", "sgd"):
        callbacks.append(tf.keras.callbacks.ReduceLROnPlateau(factor=0.2, patience=2, min_lr=1e-6, verbose=1))
    verbose = 1 if sys.stdout.isatty() else 2
    t0 = time.time()
    stopped = "completed"
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=verbose)  # fmt: skip
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
                     "webcam_aug": args.webcam_aug, "patience": spec.patience, "limit": args.limit},
    }  # fmt: skip
    info = evaluate_run(run, data_root, extra)
    t = info["test"]
    print(f"{args.model} on {args.recipe}: test top-1 {t['top1']:.4f}, macro-F1 {t['macro_f1']:.4f} -> {run}")
    return run


def read_extra(extra: Path, classes: list[str]) -> list[tuple[Path, str]]:
    """(image, label) pairs from the sorting table: the app's journal (rows a person set or confirmed,
    source=human, last row per path wins) plus images in ``<label>/`` sub-folders (captures)."""
    from fashion_edge.runtime.labeling import read_labels
    from fashion_edge.runtime.preprocess import list_images

    if not extra.is_dir():
        raise TrainError(f"{extra}: not a folder of corrections")
    pairs: dict[Path, str] = {}
    for journal in sorted(extra.rglob("fashion-labels.csv")):
        for rel, rec in read_labels(journal).items():
            if rec.source == "human" and not rec.error and rec.label in classes:
                pairs[(journal.parent / rel).resolve()] = rec.label
    for sub in sorted(p for p in extra.iterdir() if p.is_dir() and p.name in classes):
        for img in list_images(sub):
            pairs.setdefault(img.resolve(), sub.name)
    if not pairs:
        raise TrainError(
            f"{extra}: no labelled images (a fashion-labels.csv with corrections, or <class>/ folders)"
        )
    return sorted(pairs.items())


def finetune(args: argparse.Namespace) -> Path:
    """Fine-tune a run's model on sorting-table images mixed with its own training data (no forgetting)."""
    import tensorflow as tf
    from fashion_edge.runtime.preprocess import ImageError, load_for_model

    src = Path(args.finetune)
    if not (src / "model.keras").exists():
        raise TrainError(f"{src}: not a trained run (no model.keras)")
    meta = load_json(src / "metadata.json")
    pairs = read_extra(Path(args.extra), meta.classes)
    run = Path(args.out or f"{src}-ft")
    if run.exists() and any(run.iterdir()):
        raise TrainError(f"{run}: run folder exists; choose another --out")
    run.mkdir(parents=True, exist_ok=True)
    index = {c: i for i, c in enumerate(meta.classes)}
    xs, ys, bad = [], [], 0
    for path, label in pairs:
        try:
            xs.append(load_for_model(path, meta))
            ys.append(index[label])
        except ImageError as e:
            bad += 1
            print(f"skipping {path}: {e}", file=sys.stderr)
    x_extra, y_extra = np.stack(xs), np.array(ys)
    splits = read_split_pairs(src / "splits.csv")
    data_root = args.data or meta.provenance.get("data_root")
    rng = np.random.default_rng(args.seed)
    n_old = min(len(splits["train"]), max(2000, 4 * len(x_extra)))
    old = [splits["train"][i] for i in sorted(rng.choice(len(splits["train"]), n_old, replace=False))]
    x_old = load_images(meta.recipe, data_root, [p[0] for p in old], meta)
    y_old = np.array([index[p[1]] for p in old])
    reps = max(1, n_old // (4 * len(x_extra)))  # extra images make up about a fifth of each epoch
    x = np.concatenate([x_old, np.repeat(x_extra, reps, axis=0)])
    y = np.concatenate([y_old, np.repeat(y_extra, reps)])
    val_ids = [p[0] for p in splits["val"]]
    xv = load_images(meta.recipe, data_root, val_ids, meta)
    yv = np.array([index[p[1]] for p in splits["val"]])
    k = len(meta.classes)
    saved = json.loads((src / "run_args.json").read_text()) if (src / "run_args.json").exists() else {}
    spec = REGISTRY.get(meta.model, REGISTRY["compact"])
    ds = _one_hot_ds(make_dataset(x, y, 64, True, spec.augment, args.seed, saved.get("webcam_aug") or 0), k)
    model = tf.keras.models.load_model(src / "model.keras", compile=False)
    model.compile(
        tf.keras.optimizers.Adam(args.lr or 1e-4),
        tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=spec.label_smoothing),
        metrics=["accuracy"],
    )
    epochs = args.epochs or 3
    t0 = time.time()
    model.fit(ds, validation_data=_one_hot_ds(make_dataset(xv, yv, 256, False, (), 0), k), epochs=epochs,
              callbacks=[tf.keras.callbacks.CSVLogger(str(run / "history.csv"))],
              verbose=1 if sys.stdout.isatty() else 2)  # fmt: skip
    model.save(run / "model.keras")
    shutil.copy(src / "splits.csv", run / "splits.csv")
    if (src / "run_args.json").exists():
        shutil.copy(src / "run_args.json", run / "run_args.json")
    meta.source_run = run.name
    meta.provenance = {**meta.provenance, "finetuned_from": str(src), "extra": str(args.extra),
                       "extra_images": len(x_extra), "extra_unreadable": bad}  # fmt: skip
    save_json(meta, run / "metadata.json")
    extra = {"device": "CPU" if not tf.config.list_physical_devices("GPU") else "GPU",
             "train_seconds": time.time() - t0, "epochs_run": epochs, "data_root": data_root,
             "settings": {"finetune_from": str(src), "extra": str(args.extra), "extra_images": len(x_extra),
                          "old_train_images": n_old, "repeats": reps, "lr": args.lr or 1e-4, "epochs": epochs}}  # fmt: skip
    info = evaluate_run(run, data_root, extra)
    print(f"fine-tuned on {len(x_extra)} images: test top-1 {info['test']['top1']:.4f} -> {run}")
    return run


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="fashion-train", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--data", help="catalogue folder or tarball (default ../shared/data/...)")
    p.add_argument("--recipe", default="articletype8", choices=RECIPES)
    p.add_argument("--model", default="compact", help="a registry name (see --models)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
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
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.models:
            print(listing())
            return 0
        if args.evaluate:
            run = Path(args.evaluate)
            if not (run / "model.keras").exists() or not (run / "metadata.json").exists():
                raise TrainError(f"{run}: not a trained run (needs model.keras and metadata.json)")
            info = evaluate_run(run, args.data)
            print(f"{run}: test top-1 {info['test']['top1']:.4f}, macro-F1 {info['test']['macro_f1']:.4f}")
            return 0
        if args.finetune:
            if not args.extra:
                raise TrainError("--finetune needs --extra DIR")
            finetune(args)
            return 0
        train(args)
        return 0
    except (TrainError, D.DataError, FileNotFoundError) as e:
        print(f"fashion-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fashion-train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
