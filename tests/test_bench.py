"""fashion-bench: quick mode on tiny generated models writes table, JSON and plot with sane values."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fashion_edge.benchmarks import floors
from fashion_edge.benchmarks.accuracy import evaluate
from fashion_edge.benchmarks.bench import main
from fashion_edge.benchmarks.latency import summarize, time_calls
from fashion_edge.benchmarks.sysinfo import cpu_info
from fashion_edge.runtime.metadata import save_json
from fashion_edge.training.data import STYLES_FIELDS
from tests.onnx_tiny import DEFAULT_CLASSES, colour_image, make_tiny_models, tiny_metadata

N_PER_CLASS = 8


@pytest.fixture(scope="module")
def colour_model_dir(tmp_path_factory) -> tuple[Path, Path]:
    """An exported-style folder with the tiny ONNX models, and a catalogue of colour images.

    The tiny model classifies by dominant colour, so its float top-1 on this set must be 1.0.
    """
    root = tmp_path_factory.mktemp("bench")
    cat = root / "catalogue"
    (cat / "images").mkdir(parents=True)
    (cat / "styles.csv").write_text(",".join(STYLES_FIELDS) + "\n", encoding="utf-8")
    rng = np.random.default_rng(0)
    rows = []
    for c, label in enumerate(DEFAULT_CLASSES):
        for i in range(N_PER_CLASS):
            item = f"{c}{i:03d}"
            img = colour_image(c, strength=int(rng.integers(150, 230)))
            cv2.imwrite(str(cat / "images" / f"{item}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            rows.append([item, label, "test"])
    model_dir = root / "model"
    make_tiny_models(model_dir, tflite=False)
    save_json(tiny_metadata(DEFAULT_CLASSES, 80, 60, "onnx", "float32"), model_dir / "metadata.json")
    with open(model_dir / "splits.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "label", "split"], *rows])
    return model_dir, cat


def run_bench(model_dir: Path, cat: Path, out: Path, *extra: str) -> int:
    return main([str(model_dir), "--quick", "--data", str(cat), "--out", str(out), "--label-n", "40", *extra])


def test_quick_bench_writes_table_json_and_plot(colour_model_dir, tmp_path, capsys) -> None:
    model_dir, cat = colour_model_dir
    results_md = tmp_path / "RESULTS.md"
    rc = run_bench(model_dir, cat, tmp_path / "out", "--floor", "top1=0.9", "--results-md", str(results_md))
    printed = capsys.readouterr().out
    assert rc == 0, printed
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = {r["file"]: r for r in result["rows"]}
    assert set(rows) == {"model_float32.onnx", "model_int8.onnx"}
    assert result["reference_file"] == "model_float32.onnx"
    for r in rows.values():
        assert r["error"] is None
        acc, head = r["accuracy"], r["headline"]
        assert acc["n"] == 3 * N_PER_CLASS and acc["finite"]
        assert acc["top1"] >= 0.9 and 0.0 <= acc["macro_f1"] <= 1.0
        assert 0 < head["p50_ms"] <= head["p90_ms"] <= head["p99_ms"] < 1000
        assert (head["batch"], head["threads"]) == (1, 1)
        assert r["best_img_s"] > 0 and 10 < r["rss_mb"] < 4000
        assert r["latency"]["load_s"] > 0
        assert r["latency"]["rss_before_load_mb"] <= r["rss_mb"]
    assert rows["model_float32.onnx"]["accuracy"]["top1"] == 1.0
    assert rows["model_float32.onnx"]["accuracy"]["agreement"] == 1.0
    assert rows["model_int8.onnx"]["size_ratio"] == pytest.approx(
        rows["model_int8.onnx"]["size_bytes"] / rows["model_float32.onnx"]["size_bytes"]
    )
    (up,) = result["speedups"]
    assert up["speedup"] == pytest.approx(up["float_p50_ms"] / up["int8_p50_ms"])
    lab = result["labeling"]
    assert lab["images"] == 40 and lab["errors"] == 0 and lab["img_s"] > 0
    assert result["environment"]["cores"] >= 1 and "numpy" in result["environment"]["packages"]
    assert all(f["ok"] for f in result["floors"]) and len(result["floors"]) == 2

    header = "| Format | Precision | Size | Top-1 | Macro-F1 | Agreement | p50 ms | p99 ms | img/s | RSS |"
    assert header in printed and "| ONNX | float32 |" in printed and "| ONNX | int8 |" in printed
    cpu = result["environment"]["cpu"]
    assert printed.startswith(f"CPU: {cpu['model']}") and "int8 path: " + cpu["int8_path"] in printed
    assert printed.splitlines()[0].endswith("threads: 1") and result["settings"]["threads"] == [1]
    md = (tmp_path / "out" / "results.md").read_text()
    assert header in md and "100.00%" in md and f"- CPU: {cpu['model']}" in md and "threads: 1" in md
    assert ("int8 is not faster than float32 on this CPU" in md) == (up["speedup"] <= 1.0)
    png = (tmp_path / "out" / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert header in results_md.read_text() and results_md.with_suffix(".png").exists()


def test_unmeetable_floor_exits_nonzero(colour_model_dir, tmp_path, capsys) -> None:
    model_dir, cat = colour_model_dir
    rc = run_bench(model_dir, cat, tmp_path / "out", "--floor", "img_s=1e12", "--label-n", "0")
    assert rc == 1
    err = capsys.readouterr().err
    assert "img_s" in err and "below floor" in err and "Traceback" not in err
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["ok"] is False and not any(f["ok"] for f in result["floors"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--floor", "top1"], "expected METRIC=VALUE"),
        (["--floor", "speed=3"], "expected METRIC=VALUE"),
        (["--floor", "top1=93"], "fraction"),
        (["--threads", "one"], "--threads"),
    ],
)
def test_bad_options_one_line(colour_model_dir, tmp_path, capsys, args, message) -> None:
    model_dir, cat = colour_model_dir
    assert run_bench(model_dir, cat, tmp_path / "out", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_model_dir_one_line(tmp_path, capsys) -> None:
    assert main([str(tmp_path / "nope"), "--quick", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(tmp_path / "nope") in err and len(err.splitlines()) == 1


def test_evaluate_agreement_and_recall_changes() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    ref = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 0, 2, 2])  # one class-1 image flips to class 0
    logits = np.eye(3, dtype=np.float32)[pred]
    out = evaluate(logits, y, ["a", "b", "c"], ref)
    assert out["top1"] == pytest.approx(5 / 6)
    assert out["agreement"] == pytest.approx(5 / 6)
    assert out["recall_changes"] == [{"class": "b", "delta": -0.5}]
    with pytest.raises(ValueError, match="shape"):
        evaluate(logits[:, :2], y, ["a", "b", "c"])


def test_floor_check_subjects() -> None:
    result = {
        "rows": [
            {"name": "ONNX float32", "file": "f.onnx", "accuracy": {"top1": 0.95, "agreement": 1.0}},
            {"name": "ONNX int8", "file": "q.onnx", "accuracy": {"top1": 0.92, "agreement": 0.99}},
        ],
        "reference_file": "f.onnx",
        "speedups": [],
        "labeling": None,
    }
    verdicts = floors.check(result, floors.parse(["top1=0.93", "agreement=0.995"], "floor"), [])
    assert [(v["subject"], v["metric"], v["ok"]) for v in verdicts] == [
        ("ONNX float32", "top1", True),
        ("ONNX int8", "top1", False),
        ("ONNX int8", "agreement", False),  # the reference is not checked against itself
    ]
    (missing,) = floors.check(result, [("speedup", 2.5)], [])
    assert missing["ok"] is False  # asked for but not measured: fails


def test_latency_summary_and_run_cap() -> None:
    s = summarize([1_000_000, 2_000_000, 3_000_000, 4_000_000], batch=2)
    assert s["p50_ms"] == pytest.approx(2.5) and s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= 4.0
    assert s["img_s"] == pytest.approx(2 * 1000 / 2.5)
    calls = []
    times = time_calls(lambda: calls.append(1), runs=7, warmup=3, max_seconds=10)
    assert len(times) == 7 and len(calls) == 10


def test_cpu_info_reads_flags(tmp_path) -> None:
    f = tmp_path / "cpuinfo"
    f.write_text("model name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    info = cpu_info(f)
    assert info["model"] == "Test CPU 9000"
    assert info["flags"]["avx512_vnni"] and info["flags"]["avx512f"] and not info["flags"]["amx_int8"]
    assert info["int8_path"].startswith("VNNI")
    f.write_text("model name\t: EPYC 7002\nflags\t\t: fpu avx2 fma\n")
    assert cpu_info(f)["int8_path"].startswith("x86 AVX2 without VNNI")
    f.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\n")  # ARM names them Features
    arm = cpu_info(f)
    assert (
        arm["flags"]["asimddp"] and arm["flags"]["i8mm"] and arm["int8_path"] == "ARM int8 dot product + i8mm"
    )


def test_int8_not_faster_line_names_the_cpu_and_the_slow_settings() -> None:
    from fashion_edge.benchmarks.table import int8_not_faster

    ups = [{"format_label": "TFLite", "batch": 1, "threads": 1, "speedup": 0.95},
           {"format_label": "ONNX", "batch": 1, "threads": 1, "speedup": 1.4}]  # fmt: skip
    env = {"cpu": {"model": "EPYC", "int8_path": "x86 AVX2 without VNNI"}}
    line = int8_not_faster({"speedups": ups, "environment": env})
    assert line == ("int8 is not faster than float32 on this CPU (EPYC, x86 AVX2 without VNNI): "
                    "TFLite 0.95× (batch 1, 1 thread(s)).")  # fmt: skip
    assert int8_not_faster({"speedups": ups[1:], "environment": env}) is None


@pytest.mark.slow
def test_bench_tiny_export_with_keras_and_webcam(tiny_catalogue, tmp_path, capsys) -> None:
    """Every exported format + the Keras reference + the webcam column, on the tiny trained CNN."""
    webcam = pytest.importorskip("fashion_edge.training.webcam")
    from tests.tinymodels import make_tiny_export

    model_dir = make_tiny_export(tmp_path / "export", tiny_catalogue)
    cam = webcam.make_webcam_set(model_dir, tmp_path / "webcam", data=tiny_catalogue)
    run_dir = tmp_path / "export" / "tiny"
    rc = run_bench(
        model_dir, tiny_catalogue, tmp_path / "out", "--keras", str(run_dir), "--webcam-set", str(cam)
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    files = [r["file"] for r in result["rows"]]
    assert files[0] == "model.keras" and result["reference_file"] == "model.keras"
    assert {"model_float32.tflite", "model_int8.tflite", "model_float32.onnx", "model_int8.onnx"} <= set(
        files
    )
    assert all(r["error"] is None and r["accuracy"]["finite"] for r in result["rows"])
    keras_top1 = result["rows"][0]["accuracy"]["top1"]
    for r in result["rows"]:
        assert abs(r["accuracy"]["top1"] - keras_top1) <= 0.2  # exported files track the float model
        assert 0.0 <= r["webcam_top1"] <= 1.0
    assert len({r["name"] for r in result["rows"]}) == len(files)  # every row named apart
    assert {s["format"] for s in result["speedups"]} == {"tflite", "onnx"}
    assert "Webcam top-1" in printed and "| Keras | float32 |" in printed


def test_compare_puts_folders_side_by_side_with_latency_ratios(
    colour_model_dir, tmp_path, capsys, monkeypatch
) -> None:
    """--compare benchmarks a second folder in the same run; ratios are to its int8 ONNX file."""
    from fashion_edge.benchmarks import compare

    model_dir, cat = colour_model_dir
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    (other / "model_float32.onnx").unlink()  # a different folder: its int8 file only
    monkeypatch.setattr(compare, "real_photos", lambda folder: None)  # no real-dev data in this test
    assert run_bench(model_dir, cat, tmp_path / "out", "--compare", str(other)) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    first, second = result["compare"]
    assert Path(second["model_dir"]) == other and {r["file"] for r in second["rows"]} == {"model_int8.onnx"}
    assert "× other/model_int8.onnx" in printed
    ref = second["rows"][0]["p50"]
    line = next(
        ln for ln in printed.splitlines() if ln.startswith(f"| {model_dir.name} | model_float32.onnx")
    )
    assert f"{first['rows'][0]['p50'] / ref:.2f}×" in line or f"{first['rows'][1]['p50'] / ref:.2f}×" in line
    assert "## Models side by side" in (tmp_path / "out" / "results.md").read_text()
