"""The export, step by step: check the run, calibrate, convert, gate through the runtime, report.

Files are written to a scratch folder and renamed into place only when complete, so a failure
never leaves a partial file looking finished. Files that fail the gate are kept (complete, for
inspection) and the export exits non-zero.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.export.calibration import (
    TEMPERATURE_BOUNDS,
    accuracy_above,
    choose_review_threshold,
    fit_temperature,
    representative_set,
)
from fashion_edge.export.embedding import cached
from fashion_edge.export.formats import (
    FAMILIES,
    ExportContext,
    ExportFormat,
    embed_metadata,
    present,
    select_formats,
)
from fashion_edge.export.gate import (
    FileResult,
    GateError,
    Scores,
    apply_gate,
    cpu_path,
    evaluate_file,
    goals,
    runtime_outputs,
)
from fashion_edge.export.report import write_report
from fashion_edge.runtime.classifier import softmax
from fashion_edge.runtime.metadata import MetadataError, ModelMetadata, load_json, save_json
from fashion_edge.training.data import load_split, read_splits


class ExportError(RuntimeError):
    """A run or a conversion that cannot be exported; one line naming the file and the problem."""


@dataclass
class ExportOptions:
    run: Path
    out: Path | None = None
    families: tuple[str, ...] = FAMILIES
    int8: bool = False
    int8_io: bool = False
    float16: bool = False
    qat: bool = False
    qat_epochs: int = 2
    max_drop: float = 1.0
    max_class_drop: float = 3.0
    review_precision: float = 0.98
    calib_n: int = 300
    data: Path | None = None
    threads: int | None = None
    command: str = ""
    log: Callable[[str], None] = field(default=lambda msg: print(msg, flush=True))

    def enabled(self) -> list[str]:
        on = [name for name in ("int8", "float16") if getattr(self, name)]
        return on + (["int8_io"] if self.int8_io else [])


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_run(run: Path) -> ModelMetadata:
    """The run's metadata, after checking the folder has everything export needs."""
    if not run.is_dir():
        raise ExportError(f"{run}: run folder not found")
    for name in ("model.keras", "metadata.json", "splits.csv"):
        if not (run / name).exists():
            raise ExportError(f"{run}: incomplete run folder, {name} is missing (did fashion-train finish?)")
    try:
        meta = load_json(run / "metadata.json")
    except (MetadataError, OSError) as e:
        raise ExportError(f"{run / 'metadata.json'}: {e}") from None
    try:
        splits = {r.get("split") for r in read_splits(run / "splits.csv")}
    except (OSError, csv.Error) as e:
        raise ExportError(f"{run / 'splits.csv'}: unreadable ({e})") from None
    missing = {"train", "val", "test"} - splits
    if missing:
        raise ExportError(f"{run / 'splits.csv'}: no rows for split(s) {', '.join(sorted(missing))}")
    return meta


def _load_keras(run: Path, meta: ModelMetadata, threads: int | None) -> Any:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process
            pass
    try:
        model = tf.keras.models.load_model(run / "model.keras", compile=False)
    except Exception as e:  # Keras raises many types for unreadable files
        raise ExportError(f"{run / 'model.keras'}: cannot load ({_first_line(e)})") from None
    out = model.output_shape
    if isinstance(out, list) or out[-1] != meta.num_classes:
        raise ExportError(
            f"{run / 'model.keras'}: model outputs {out} values but metadata.json lists {meta.num_classes} classes"
        )
    if tuple(model.input_shape[1:]) != meta.input_shape:
        raise ExportError(
            f"{run / 'model.keras'}: model input {model.input_shape[1:]} differs from metadata {meta.input_shape}"
        )
    return model


def _keras_logits(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x.astype(np.float32), batch_size=256, verbose=0), np.float64)


def _keras_embeddings(two: Any, x: np.ndarray) -> np.ndarray | None:
    """The float reference's embeddings (None when the model has no embedding output)."""
    if not isinstance(two.output, (list, tuple)):
        return None
    return np.asarray(two.predict(x.astype(np.float32), batch_size=256, verbose=0)[1], np.float64)


def _data_source(data: Path | None, meta: ModelMetadata) -> Path | None:
    """--data, else the catalogue the run recorded in its provenance, else the shared default."""
    if data:
        return data
    for key in ("data", "catalogue", "data_root"):
        p = meta.provenance.get(key)
        if isinstance(p, str) and Path(p).exists():
            return Path(p)
    return None


def _split(run: Path, split: str, data: Path | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        x, y, ids, _ = load_split(run, split, data)
    except (ValueError, OSError, KeyError) as e:
        raise ExportError(f"{run}: cannot load the {split} split ({e})") from None
    return x, y, ids


def _write_test_splits(run: Path, out: Path) -> None:
    rows = [r for r in read_splits(run / "splits.csv") if r["split"] == "test"]
    tmp = out / ".splits.csv.partial"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "label", "split"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out / "splits.csv")


def _quantization_choice(opts: ExportOptions, choices: dict[str, Any]) -> dict[str, Any]:
    if opts.qat:
        method = choices.get("int8_method", "QAT")
        trials = choices.get("int8_trials", {})
        measured = ", ".join(
            f"{m} val top-1 {t['val_top1']:.2%} / agreement {t['val_agreement']:.2%}"
            for m, t in trials.items()
        )
        why = (
            f"--qat asked for quantization-aware fine-tuning ({opts.qat_epochs} epoch(s)); both were converted and "
            f"measured on the validation split ({measured or 'no TFLite int8 file selected'}) and {method} kept "
            "(ties keep QAT). This applies to the TFLite int8 files; ONNX int8 stays onnxruntime PTQ (tf2onnx on "
            "a QAT model gives float weights, not an int8 model)"
        )
        return {"method": method, "why": why, "epochs": opts.qat_epochs, "trials": trials}
    why = (
        "post-training full-integer quantization is the default; re-run with --qat if the gate or goals fail"
    )
    return {"method": "PTQ", "why": why}


def export_run(opts: ExportOptions) -> dict[str, Any]:
    """Run the whole export; returns the report. Raises ExportError / GateError (files kept)."""
    run = opts.run
    out = opts.out or run / "export"
    log = opts.log
    log(f"[1/6] checking run {run}")
    meta = check_run(run)
    formats = select_formats(opts.families, opts.enabled())
    if not formats:
        raise ExportError("no formats selected (check --formats)")
    data = _data_source(opts.data, meta)
    model = _load_keras(run, meta, opts.threads)

    log("[2/6] calibrating confidence on the validation split")
    val_x, val_y, _ = _split(run, "val", data)
    test_x, test_y, test_ids = _split(run, "test", data)
    val_logits, test_logits = _keras_logits(model, val_x), _keras_logits(model, test_x)
    temperature = fit_temperature(val_logits, val_y)
    unknown = meta.classes.index(meta.unknown_class) if meta.unknown_class in meta.classes else None
    try:
        thr = choose_review_threshold(softmax(val_logits, temperature), val_y, opts.review_precision, unknown)
    except ValueError as e:
        raise ExportError(f"{run}: {e}") from None
    test_cov, test_acc = accuracy_above(softmax(test_logits, temperature), test_y, thr.threshold, unknown)
    ref_pred = test_logits.argmax(1)
    ref = Scores.of(ref_pred, test_y, meta.num_classes)

    calib = np.zeros((0, *meta.input_shape), np.uint8)
    qat_model = None
    if any(f.precision == "int8" for f in formats):
        log(f"[3/6] picking {opts.calib_n} stratified calibration images from the train split")
        try:
            calib = representative_set(run, opts.calib_n, data)
        except ValueError as e:
            raise ExportError(f"{run}: {e}") from None
        if opts.qat:
            from fashion_edge.export.qat import finetune

            log(f"      quantization-aware fine-tuning, {opts.qat_epochs} epoch(s)")
            train_x, train_y, _ = _split(run, "train", data)
            try:
                qat_model = finetune(model, train_x, train_y, epochs=opts.qat_epochs)
            except Exception as e:  # tfmot raises plain ValueErrors/TypeErrors on unsupported models
                raise ExportError(
                    f"{run / 'model.keras'}: quantization-aware training failed ({_first_line(e)})"
                ) from None

    base = meta.replace(
        temperature=temperature,
        review_threshold=thr.threshold,
        source_run=run.resolve().name,
        outputs="logits",
        metrics={"test_top1": ref.top1 / 100, "test_macro_f1": ref.macro_f1 / 100, "test_n": ref.n,
                 "test_review_coverage": test_cov, "test_accuracy_above_threshold": test_acc},
        provenance={**meta.provenance, "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "export_command": opts.command},
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    results: list[FileResult] = []
    try:
        ctx = ExportContext(model, base, calib, val_x, val_y, work, qat_model, opts.threads)
        ref_emb = _keras_embeddings(cached(ctx, "float", model), test_x)
        for i, fmt in enumerate(formats, 1):
            log(f"[4/6] ({i}/{len(formats)}) writing {fmt.filename}")
            results.append(_write_one(fmt, ctx, out, test_x, test_y, ref_pred, ref, opts.threads, ref_emb))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    log("[5/6] parity gate")
    failures = apply_gate(results, meta.classes, opts.max_drop, opts.max_class_drop)
    log("[6/6] writing metadata.json, splits.csv and export_report.md/.json")
    save_json(base.replace(format="keras", precision="float32"), out / ".metadata.json.partial")
    os.replace(out / ".metadata.json.partial", out / "metadata.json")
    _write_test_splits(run, out)
    rep = {
        "run": str(run),
        "run_name": run.resolve().name,
        "out": str(out),
        "command": opts.command,
        "classes": meta.classes,
        "recipe": meta.recipe,
        "calibration": {
            "temperature": temperature,
            "temperature_at_bound": bool(np.isclose(temperature, TEMPERATURE_BOUNDS, rtol=1e-3).any()),
            "review_precision_target": opts.review_precision,
            "review_threshold": thr.threshold,
            "val_precision": thr.precision,
            "val_precision_lower_90": thr.precision_lower,
            "val_coverage": thr.coverage,
            "val_n": len(val_y),
            "test_coverage": test_cov,
            "test_accuracy_above": test_acc,
        },
        "quantization": {**_quantization_choice(opts, ctx.choices), "calibration_images": len(calib)},
        "reference": {"model": "model.keras", "scores": ref.__dict__, "test_ids": test_ids, "pred": ref_pred.tolist()},
        "files": [r.to_dict() for r in results],
        "goals": goals(results),
        "gate": {"max_drop": opts.max_drop, "max_class_drop": opts.max_class_drop, "passed": not failures,
                 "failures": failures, "cpu": cpu_path()},
    }  # fmt: skip
    write_report(out, rep)
    if failures:
        raise GateError("export gate failed: " + "; ".join(failures))
    return rep


def _write_one(
    fmt: ExportFormat,
    ctx: ExportContext,
    out: Path,
    test_x: np.ndarray,
    test_y: np.ndarray,
    ref_pred: np.ndarray,
    ref: Scores,
    threads: int | None,
    ref_emb: np.ndarray | None = None,
) -> FileResult:
    """Convert, evaluate through the runtime, embed the file's own test metrics, rename into place."""
    try:
        art = fmt.resolve_writer()(ctx)
    except Exception as e:  # converters raise anything from ConverterError to RuntimeError
        raise ExportError(f"{fmt.filename}: converter failed ({_first_line(e)})") from None
    meta = ctx.meta.replace(format=fmt.family, precision=fmt.precision, **art.meta_changes)
    scratch = ctx.workdir / fmt.filename
    scratch.write_bytes(embed_metadata(fmt, art.raw, meta))
    res = evaluate_file(
        scratch, fmt, test_x, test_y, ref_pred, ref, classes=meta.classes,
        temperature=meta.temperature, threshold=meta.review_threshold, threads=threads, ref_emb=ref_emb,
    )  # fmt: skip
    res.notes = art.notes
    metrics = {**meta.metrics, "test_top1": res.scores.top1 / 100, "test_macro_f1": res.scores.macro_f1 / 100,
               "test_agreement_with_float": res.agreement / 100, "test_review_coverage": res.coverage,
               "test_accuracy_above_threshold": res.accuracy_above, "reference_test_top1": ref.top1 / 100}  # fmt: skip
    final = embed_metadata(fmt, art.raw, meta.replace(metrics=metrics))
    partial = out / f".{fmt.filename}.partial"
    partial.write_bytes(final)
    os.replace(partial, out / fmt.filename)
    res.size_bytes = len(final)
    return res


def verify_folder(
    model_dir: Path,
    data: Path | None = None,
    max_drop: float = 1.0,
    max_class_drop: float = 3.0,
    threads: int | None = None,
) -> tuple[list[FileResult], list[str]]:
    """Re-run the gate on an exported folder (no TensorFlow): the reference comes from its report."""
    import json

    report = model_dir / "export_report.json"
    if not report.exists():
        raise ExportError(f"{model_dir}: no export_report.json (not made by fashion-export?)")
    rep = json.loads(report.read_text(encoding="utf-8"))
    meta = load_json(model_dir / "metadata.json")
    x, y, ids = _split(model_dir, "test", _data_source(data, meta))
    if ids != rep["reference"]["test_ids"]:
        raise ExportError(f"{model_dir / 'splits.csv'}: test rows differ from those in export_report.json")
    ref_pred = np.asarray(rep["reference"]["pred"])
    ref = Scores(**rep["reference"]["scores"])
    files = present(model_dir)
    if not files:
        raise ExportError(f"{model_dir}: no model files found")
    results = []
    ref_emb = None  # embeddings: compared with the float32 ONNX file's (the Keras model is not here)
    if (model_dir / "model_float32.onnx").is_file():
        try:
            ref_emb = runtime_outputs(model_dir / "model_float32.onnx", x, threads)[1]
        except ValueError:  # a damaged float file: the loop below reports it
            ref_emb = None
    for fmt, path in files:
        try:
            results.append(evaluate_file(path, fmt, x, y, ref_pred, ref, classes=meta.classes, temperature=meta.temperature,
                                         threshold=meta.review_threshold, threads=threads, ref_emb=ref_emb))  # fmt: skip
        except ValueError as e:  # runtime.ModelLoadError: damaged file or metadata
            raise GateError(f"export gate failed: {e}") from None
    return results, apply_gate(results, meta.classes, max_drop, max_class_drop)
