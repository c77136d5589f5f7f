"""fashion-export: calibration maths, the gate, bad input, and a full export of a tiny trained model."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fashion_edge.export.calibration import (
    CalibrationError,
    accuracy_above,
    choose_review_threshold,
    fit_temperature,
    stratified_indices,
)
from fashion_edge.export.cli import main
from fashion_edge.export.formats import FORMATS, by_filename, present, select_formats
from fashion_edge.export.gate import FileResult, Scores, apply_gate
from fashion_edge.runtime.classifier import softmax
from fashion_edge.runtime.metadata import ModelMetadata, read_metadata, tflite_with_metadata
from fashion_edge.runtime.review import wilson_lower

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models" / "articletype8"
SHIPPED_DIRS = [REPO / "models" / "articletype8", REPO / "models" / "articletype8-lite0"]


# --- calibration maths (no TensorFlow) -------------------------------------------------------


def test_stratified_indices_keep_class_shares_and_every_class() -> None:
    y = np.array([0] * 700 + [1] * 250 + [2] * 50)
    idx = stratified_indices(y, 100, seed=1)
    counts = np.bincount(y[idx], minlength=3)
    assert len(set(idx.tolist())) == 100
    assert abs(counts[0] - 70) <= 1 and abs(counts[1] - 25) <= 1 and counts[2] >= 4
    rare = np.array([0] * 999 + [1])
    assert 1 in rare[stratified_indices(rare, 10)]


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(4000, 5))
    true_t = 2.5
    y = np.array([rng.choice(5, p=p) for p in softmax(logits, true_t)])
    assert fit_temperature(logits, y) == pytest.approx(true_t, rel=0.15)


def test_review_threshold_is_lowest_confidence_meeting_the_precision_with_confidence() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.34, 1.0, 2000)
    probs = np.stack([conf, (1 - conf) / 2, (1 - conf) / 2], axis=1)
    y = np.where(rng.uniform(size=2000) < conf, 0, 1)  # right with probability = confidence
    choice = choose_review_threshold(probs, y, 0.95)
    cov, acc = accuracy_above(probs, y, choice.threshold)
    n = round(cov * len(y))
    assert acc >= choice.precision_lower >= 0.95 and cov == pytest.approx(choice.coverage)
    assert wilson_lower(np.array(acc * n), np.array(n)) == pytest.approx(choice.precision_lower)
    lower = conf[conf < choice.threshold].max()  # one step lower misses the target
    cov2, acc2 = accuracy_above(probs, y, lower)
    assert wilson_lower(np.array(acc2 * round(cov2 * len(y))), np.array(round(cov2 * len(y)))) < 0.95


def test_few_validation_items_cannot_support_a_high_target() -> None:
    probs = np.tile([0.99, 0.01], (18, 1))
    y = np.zeros(18, int)  # all right, but only 18 of them
    assert choose_review_threshold(probs, y, 0.9).coverage == 1.0
    with pytest.raises(CalibrationError, match="with 90% confidence"):
        choose_review_threshold(probs, y, 0.98)


def test_review_threshold_impossible_raises() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    with pytest.raises(CalibrationError, match="no review threshold"):
        choose_review_threshold(probs, np.array([1, 0, 0]), 0.98)  # the most confident one is wrong


# --- format table and gate rules -------------------------------------------------------------


def test_format_table_selection() -> None:
    names = {f.name for f in select_formats(["tflite", "onnx"], [])}
    assert names == {"tflite-float32", "onnx-float32"}
    names = {f.name for f in select_formats(["onnx"], ["int8", "float16"])}
    assert names == {"onnx-float32", "onnx-int8"}
    assert all(f.filename.endswith(f.suffix) for f in FORMATS)
    assert by_filename("model_int8.onnx").precision == "int8"


def _result(name: str, top1: float, recall: list[float], ref: Scores) -> FileResult:
    s = Scores(top1, top1, recall, 100)
    return FileResult(name, "onnx", "int8", "float32", 1, s, 99.0,
                      [a - b for a, b in zip(recall, ref.recall, strict=True)], top1 - ref.top1)  # fmt: skip


def test_gate_rules_on_accuracy_and_class_recall() -> None:
    ref = Scores(90.0, 90.0, [90.0, 90.0], 100)
    ok = _result("model_int8.onnx", 89.5, [89.0, 90.0], ref)
    drop = _result("model_int8.tflite", 88.6, [88.0, 89.2], ref)
    cls = _result("model_b.onnx", 90.0, [86.0, 94.0], ref)
    failures = apply_gate([ok, drop, cls], ["A", "B"], max_drop=1.0, max_class_drop=3.0)
    assert failures == [
        "model_int8.tflite lost 1.4 points (max 1)",
        "model_b.onnx lost 4.0 points of recall on 'A' (max 3)",
    ]
    assert not ok.failures


def test_gate_fails_int8_onnx_weights_that_saturate_without_vnni() -> None:
    ref = Scores(90.0, 90.0, [90.0, 90.0], 100)
    wide, narrow = (
        _result("wide.onnx", 90.0, [90.0, 90.0], ref),
        _result("narrow.onnx", 90.0, [90.0, 90.0], ref),
    )
    wide.int8_weight_range, narrow.int8_weight_range = [-127, 120], [-64, 64]
    failures = apply_gate([wide, narrow], ["A", "B"])
    assert len(failures) == 1 and failures[0].startswith("wide.onnx has int8 weights in [-127, 120]")
    assert not narrow.failures


def test_bias_correction_moves_the_int8_mean_output_to_the_float_one(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from fashion_edge.export.onnx_export import bias_corrected

    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 1, (16, 32)).astype(np.float32), rng.normal(0, 0.1, 16).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["act"]), helper.make_node("Gemm", ["act", "W", "B"], ["out"], transB=1)],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 16])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "f.onnx"))
    x = (rng.normal(0.5, 1, (64, 32)) * 4).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter({"input": x[i : i + 8]} for i in range(0, 64, 8))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    reduce_range=True)  # fmt: skip
    assert bias_corrected(tmp_path / "q.onnx", tmp_path / "f.onnx", x, tmp_path / "bc.onnx") == 1

    def mean_out(name: str) -> np.ndarray:
        sess = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        return sess.run(None, {"input": x})[0].mean(axis=0)

    ref = mean_out("f.onnx")
    before, after = np.abs(mean_out("q.onnx") - ref).mean(), np.abs(mean_out("bc.onnx") - ref).mean()
    assert after < 0.5 * before, (before, after)


def test_int8_weight_range_reads_qdq_weights_and_reduce_range_keeps_them_in_7_bits(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from fashion_edge.export.gate import int8_weight_range
    from tests.onnx_tiny import onnx_float_model, tiny_metadata

    float_path = tmp_path / "f.onnx"
    onnx_float_model(float_path, tiny_metadata(("a", "b", "c"), 8, 6, "onnx", "float32"))
    assert int8_weight_range(float_path) is None
    calib = np.random.default_rng(0).integers(0, 256, (8, 8, 6, 3)).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter({"input": x[None]} for x in calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    ranges = {}
    for rr in (False, True):
        out = tmp_path / f"q{int(rr)}.onnx"
        quantize_static(str(float_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, reduce_range=rr)  # fmt: skip
        ranges[rr] = int8_weight_range(out)
    assert max(map(abs, ranges[False])) == 127 and max(map(abs, ranges[True])) <= 64


# --- CLI: bad input, fast paths ----------------------------------------------------------------


def test_help_does_not_import_tensorflow() -> None:
    code = "import sys\nfrom fashion_edge.export.cli import build_parser\nbuild_parser().format_help()\nassert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        (None, "run folder not found"),
        ("model.keras", "model.keras is missing"),
        ("splits.csv", "splits.csv is missing"),
    ],
)
def test_missing_or_incomplete_run_is_one_line(tmp_path, capsys, remove, message) -> None:
    run = tmp_path / "run"
    if remove:
        run.mkdir()
        (run / "metadata.json").write_text(ModelMetadata(classes=["a", "b"]).to_json())
        for name in ("model.keras", "splits.csv"):
            (run / name).write_text("x")
        (run / remove).unlink()
    assert main([str(run), "--int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("fashion-export: error: ")


# --- a real export of a tiny trained model -----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory, tiny_catalogue) -> tuple[Path, Path]:
    from tests.tinymodels import make_tiny_export, make_tiny_run

    tmp = tmp_path_factory.mktemp("tiny")
    run = make_tiny_run(tmp, tiny_catalogue)
    return run, make_tiny_export(tmp, tiny_catalogue, run=run)


READ_BACK = """
import json, sys
sys.modules["tensorflow"] = None  # any TensorFlow import would fail
from fashion_edge.runtime.metadata import read_metadata
print(json.dumps({p: read_metadata(p).to_dict() for p in sys.argv[1:]}))
"""


@pytest.mark.slow
def test_export_writes_every_format_self_describing(tiny_export) -> None:
    run, out = tiny_export
    files = present(out)
    assert {f.name for f, _ in files} == {f.name for f in FORMATS}
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "scratch or partial files left"
    proc = subprocess.run([sys.executable, "-c", READ_BACK, *[str(p) for _, p in files]],
                          check=True, capture_output=True, text=True, cwd=REPO)  # fmt: skip
    metas = json.loads(proc.stdout)
    run_meta = read_metadata(run / "metadata.json")
    report = json.loads((out / "export_report.json").read_text())
    for fmt, path in files:
        m = ModelMetadata.from_dict(metas[str(path)])
        assert m.classes == run_meta.classes and m.input_shape == (80, 60, 3) and m.color_order == "RGB"
        assert (m.format, m.precision, m.outputs) == (fmt.family, fmt.precision, "logits")
        assert m.temperature == pytest.approx(report["calibration"]["temperature"])
        assert 0 < m.review_threshold <= 1 and m.source_run == "tiny" and m.recipe == "tiny"
        assert 0 <= m.metrics["test_top1"] <= 1 and "test_agreement_with_float" in m.metrics
        assert (m.input_quant is not None) == (fmt.io == "uint8")
    assert read_metadata(out / "model_int8_uint8io.tflite").input_quant == {"scale": 1.0, "zero_point": 0}
    assert report["gate"]["passed"] and report["quantization"]["method"] == "PTQ"
    md = (out / "export_report.md").read_text()
    assert "| model_int8.onnx |" in md
    from fashion_edge.benchmarks.sysinfo import cpu_info

    assert report["gate"]["cpu"]["int8_path"] == cpu_info()["int8_path"]  # which CPU path the gate measured
    assert f"int8 path **{cpu_info()['int8_path']}**" in md
    onnx8 = next(f for f in report["files"] if f["file"] == "model_int8.onnx")
    rng = onnx8["int8_weight_range"]
    assert rng is None or max(-rng[0], rng[1]) <= 64  # None: the tiny model's only dense layer stayed float
    assert set(onnx8["notes"]["trials"]) >= {"8bit", "7bit"} and onnx8["notes"]["weights"] != "8bit"
    test_rows = list(csv.DictReader(open(out / "splits.csv", encoding="utf-8")))
    assert test_rows and {r["split"] for r in test_rows} == {"test"}


@pytest.mark.slow
def test_int8_files_agree_with_the_float_model(tiny_export) -> None:
    _, out = tiny_export
    rep = json.loads((out / "export_report.json").read_text())
    by_name = {f["file"]: f for f in rep["files"]}
    for name in ("model_int8.tflite", "model_int8.onnx", "model_float32.tflite", "model_float32.onnx"):
        assert by_name[name]["agreement"] >= 90.0, name
    assert rep["goals"]["model_int8.tflite"]["size_ratio"] < 1.0


@pytest.mark.slow
def test_verify_passes_then_catches_tampered_files(tiny_export, tmp_path, capsys) -> None:
    import onnx
    from onnx import numpy_helper

    _, out = tiny_export
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert main([str(copy), "--verify"]) == 0

    model = onnx.load(copy / "model_int8.onnx")  # scramble the quantized weights, keep the metadata
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.int8 and w.size > 100:
            init.CopyFrom(numpy_helper.from_array(rng.permutation(w.ravel()).reshape(w.shape), init.name))
    onnx.save(model, copy / "model_int8.onnx")
    capsys.readouterr()
    assert main([str(copy), "--verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("fashion-export: export gate failed: model_int8.onnx lost")
        and len(err.splitlines()) == 1
    )

    shutil.copy(out / "model_int8.onnx", copy / "model_int8.onnx")
    flat = (out / "model_int8.tflite").read_bytes()  # same weights, class names in the wrong order
    meta = read_metadata(out / "model_int8.tflite")
    with zipfile.ZipFile(out / "model_int8.tflite") as zf:  # offsets are absolute in the file
        flat = flat[: min(i.header_offset for i in zf.infolist())]
    (copy / "model_int8.tflite").write_bytes(
        tflite_with_metadata(flat, meta.replace(classes=meta.classes[::-1]))
    )
    assert main([str(copy), "--verify"]) == 1
    assert "model_int8.tflite names its classes" in capsys.readouterr().err


def _edit_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


@pytest.mark.slow
def test_impossible_review_threshold_fails_before_writing(tiny_export, tmp_path, capsys) -> None:
    run = _edit_run(tiny_export[0], tmp_path / "run")
    rows = list(csv.DictReader(open(run / "splits.csv", encoding="utf-8")))
    classes = sorted({r["label"] for r in rows})
    for r in rows:  # shift every validation label: the model is now confidently wrong on val
        if r["split"] == "val":
            r["label"] = classes[(classes.index(r["label"]) + 1) % len(classes)]
    with open(run / "splits.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "label", "split"])
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "out"
    assert main([str(run), "--int8", "--review-precision", "0.9", "--out", str(out)]) == 2
    assert "no review threshold reaches 90.0% precision" in capsys.readouterr().err
    assert not list(out.glob("model_*"))


@pytest.mark.slow
def test_metadata_disagreeing_with_model_output(tiny_export, tmp_path, capsys) -> None:
    run = _edit_run(tiny_export[0], tmp_path / "run")
    meta = read_metadata(run / "metadata.json")
    (run / "metadata.json").write_text(meta.replace(classes=[*meta.classes, "Extra"]).to_json())
    assert main([str(run), "--review-precision", "0.9", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.keras: model outputs" in err and "lists 4 classes" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_converter_failure_leaves_no_finished_looking_file(
    tiny_export, tmp_path, capsys, monkeypatch
) -> None:
    from fashion_edge.export import onnx_export

    def broken(ctx):
        raise RuntimeError("simulated converter crash\nwith a long trace")

    monkeypatch.setattr(onnx_export, "write_float32", broken)
    out = tmp_path / "out"
    assert (
        main([str(tiny_export[0]), "--formats", "onnx", "--review-precision", "0.9", "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "fashion-export: error: model_float32.onnx: converter failed (RuntimeError: simulated converter crash)"
    )
    assert not (out / "model_float32.onnx").exists() and not list(out.glob(".*"))


@pytest.mark.slow
def test_qat_measures_ptq_and_qat_and_reports_the_choice(tiny_export, tmp_path) -> None:
    out = tmp_path / "qat"
    assert main([str(tiny_export[0]), "--int8", "--qat", "--qat-epochs", "1", "--formats", "tflite",
                 "--calib-n", "30", "--review-precision", "0.9", "--out", str(out)]) == 0  # fmt: skip
    rep = json.loads((out / "export_report.json").read_text())
    q = rep["quantization"]
    assert set(q["trials"]) == {"PTQ", "QAT"} and q["method"] in q["trials"] and q["method"] in q["why"]
    notes = {f["file"]: f["notes"] for f in rep["files"]}
    assert notes["model_int8.tflite"]["method"] == q["method"]
    assert read_metadata(out / "model_int8.tflite").precision == "int8"


# --- shipped models ------------------------------------------------------------------------------


@pytest.mark.parametrize("shipped", SHIPPED_DIRS, ids=lambda p: p.name)
def test_shipped_models_describe_themselves(shipped: Path) -> None:
    if not shipped.exists():
        pytest.skip(f"{shipped} not shipped yet (run fashion-export --int8 ...)")
    SHIPPED = shipped  # noqa: N806
    files = present(SHIPPED)
    assert {"model_int8.onnx", "model_int8.tflite", "model_float32.onnx", "model_float32.tflite"} <= {
        p.name for _, p in files
    }
    folder = read_metadata(SHIPPED / "metadata.json")
    for fmt, path in files:
        m = read_metadata(path)
        assert m.classes == folder.classes and len(m.classes) >= 2
        assert (m.format, m.precision) == (fmt.family, fmt.precision)
        assert m.temperature > 0 and 0 < m.review_threshold < 1 and m.recipe and m.source_run
        assert 0 < m.metrics["test_top1"] <= 1
    rep = json.loads((SHIPPED / "export_report.json").read_text())
    assert rep["gate"]["passed"]


@pytest.mark.slow
def test_every_file_carries_the_embedding_output(tiny_export) -> None:
    """The input of the Dense 'logits' layer is a second output of every file, named in the metadata."""
    from fashion_edge.runtime import load

    _, out = tiny_export
    rep = json.loads((out / "export_report.json").read_text())
    x = np.random.default_rng(0).integers(0, 256, (5, 80, 60, 3)).astype(np.uint8)
    for _fmt, path in present(out):
        clf = load(path)
        assert (clf.meta.logits_output, clf.meta.embedding_output) == ("logits", "embedding"), path.name
        logits, emb = clf.logits_and_embedding(x)
        assert emb.shape == (5, clf.meta.embedding_size) and clf.meta.embedding_size > 0
        np.testing.assert_allclose(logits, clf.logits(x), rtol=1e-5, atol=1e-5)
    cos = {f["file"]: f["embedding_cosine"] for f in rep["files"]}
    assert cos["model_float32.onnx"]["min"] > 0.9999 and cos["model_int8.onnx"]["mean"] > 0.95
    assert "## Embedding output" in (out / "export_report.md").read_text()
