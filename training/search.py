"""Budgeted hyper-parameter search (Optuna TPE, a Bayesian optimiser) for seed 003's MLP and CNN, and a
soft-voting ensemble of finished runs.

    python -m fashion_edge.training.search search --model mlp --trials 8 --epochs 12
    python -m fashion_edge.training.search ensemble runs/fmnist-mlp runs/fmnist-cnn2-bn --out runs/fmnist-ensemble

The search tunes on the validation split only; the test split is touched once, by the best trial.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from fashion_edge.runtime.classifier import softmax  # noqa: E402
from fashion_edge.training import data as D  # noqa: E402
from fashion_edge.training.models import build_cnn, build_mlp  # noqa: E402
from fashion_edge.training.recipes import fmnist  # noqa: E402
from fashion_edge.training.report import classification_metrics  # noqa: E402
from fashion_edge.training.splits import stratified_split  # noqa: E402


def _space(trial, model: str) -> dict:
    """Seed 003's search space."""
    common = {
        "lr": trial.suggest_categorical("lr", [1e-2, 1e-3]),
        "dropout": trial.suggest_categorical("dropout", [0.1, 0.2, 0.3]),
    }
    if model == "mlp":
        layers = trial.suggest_int("layers", 1, 3)
        units = tuple(trial.suggest_categorical(f"units{i}", [1024, 512, 256]) for i in range(layers))
        return {**common, "units": units, "l2": trial.suggest_categorical("l2", [1e-2, 1e-3])}
    return {
        **common,
        "blocks": trial.suggest_int("blocks", 1, 3),
        "filters": trial.suggest_categorical("filters", [8, 16]),
    }


def _build(model: str, params: dict):
    if model == "mlp":
        return build_mlp((28, 28, 1), 10, units=params["units"], dropout=params["dropout"], l2=params["l2"])
    return build_cnn(
        (28, 28, 1), 10, blocks=params["blocks"], filters=params["filters"], dropout=params["dropout"]
    )


def _fit(model_name: str, params: dict, arrays: dict, epochs: int, seed: int):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = _build(model_name, params)
    steps = int(np.ceil(len(arrays["train"][0]) / 64))
    # SGD with momentum; exponential decay after epoch 10 (seed 003)
    sched = tf.keras.optimizers.schedules.PiecewiseConstantDecay(
        [steps * e for e in range(10, 60, 5)], [params["lr"] * 0.7**i for i in range(11)]
    )
    model.compile(tf.keras.optimizers.SGD(sched, momentum=0.9),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])  # fmt: skip
    (xt, yt), (xv, yv) = arrays["train"], arrays["val"]
    stop = tf.keras.callbacks.EarlyStopping("val_accuracy", patience=15, restore_best_weights=True)
    model.fit(xt.astype("float32"), yt, batch_size=64, epochs=epochs, verbose=0,
              validation_data=(xv.astype("float32"), yv), callbacks=[stop])  # fmt: skip
    return model


def _arrays(seed: int) -> tuple[dict, list[str]]:
    lab = fmnist()
    splits = stratified_split(lab, seed=seed)
    index = {c: i for i, c in enumerate(lab.classes)}
    out = {}
    for k, pairs in splits.items():
        ids = [p[0] for p in pairs]
        out[k] = (D.load_fmnist_images(D.FMNIST_DIR, ids), np.array([index[p[1]] for p in pairs]))
    return out, lab.classes


def search(model_name: str, trials: int, epochs: int, seed: int, out: Path) -> dict:
    import optuna

    arrays, classes = _arrays(seed)
    out.mkdir(parents=True, exist_ok=True)

    def objective(trial):
        model = _fit(model_name, _space(trial, model_name), arrays, epochs, seed)
        xv, yv = arrays["val"]
        return float((model.predict(xv.astype("float32"), verbose=0).argmax(1) == yv).mean())

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, show_progress_bar=True)
    best = _space(optuna.trial.FixedTrial(study.best_params), model_name)
    model = _fit(model_name, best, arrays, epochs, seed)
    xt, yt = arrays["test"]
    metrics = classification_metrics(yt, model.predict(xt.astype("float32"), verbose=0), classes)
    result = {
        "model": model_name, "trials": trials, "epochs": epochs, "best_params": study.best_params,
        "best_val": study.best_value, "test_top1": metrics["top1"], "test_macro_f1": metrics["macro_f1"],
        "shirt_recall": metrics["per_class"]["Shirt"]["recall"],
        "all_trials": [{"params": t.params, "val": t.value} for t in study.trials],
    }  # fmt: skip
    model.save(out / "model.keras")
    (out / "search.json").write_text(json.dumps(result, indent=2))
    print(f"{model_name}: best val {study.best_value:.4f} {study.best_params}; test {metrics['top1']:.4f}")
    return result


def ensemble(runs: list[Path], out: Path) -> dict:
    """Soft voting: mean of the runs' calibrated-free softmax outputs on the shared test split."""
    import tensorflow as tf
    from scipy.stats import kendalltau

    from fashion_edge.runtime.metadata import load_json

    probs, preds, names = [], [], []
    y = classes = None
    for run in runs:
        x, y, _, classes = D.load_split(run, "test")
        model = tf.keras.models.load_model(run / "model.keras", compile=False)
        p = softmax(model.predict(x.astype("float32"), verbose=0))
        probs.append(p)
        preds.append(p.argmax(1))
        names.append(load_json(run / "metadata.json").model)
    mean = np.mean(probs, axis=0)
    metrics = classification_metrics(y, np.log(mean + 1e-12), classes)
    result = {
        "members": names,
        "member_top1": {n: float((p == y).mean()) for n, p in zip(names, preds, strict=True)},
        "ensemble_top1": metrics["top1"], "ensemble_macro_f1": metrics["macro_f1"],
        "kendall_tau": {f"{names[i]}~{names[j]}": float(kendalltau(preds[i], preds[j]).statistic)
                        for i in range(len(names)) for j in range(i + 1, len(names))},
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "ensemble.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fashion_edge.training.search", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("search")
    s.add_argument("--model", choices=["mlp", "cnn"], required=True)
    s.add_argument("--trials", type=int, default=8)
    s.add_argument("--epochs", type=int, default=15)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path)
    e = sub.add_parser("ensemble")
    e.add_argument("runs", nargs="+", type=Path)
    e.add_argument("--out", type=Path, default=D.REPO_ROOT / "runs" / "fmnist-ensemble")
    a = p.parse_args(argv)
    try:
        if a.cmd == "search":
            search(
                a.model,
                a.trials,
                a.epochs,
                a.seed,
                a.out or D.REPO_ROOT / "runs" / f"fmnist-{a.model}-search",
            )
        else:
            ensemble(a.runs, a.out)
    except D.DataError as err:
        print(f"fashion_edge.training.search: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
