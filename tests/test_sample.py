"""The embedded sample: drawn from the shipped model's test split, stratified, reproducible, and
``fashion-bench --quick`` falls back to it (saying so) when no catalogue is found."""

from __future__ import annotations

import csv
import filecmp
import json
from collections import Counter
from pathlib import Path

import pytest

from fashion_edge.benchmarks import sample_set
from fashion_edge.benchmarks.bench import main
from fashion_edge.training import data as D
from fashion_edge.training.data import read_splits
from tests.conftest import requires_catalogue

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models" / "articletype8"


def sample_rows() -> list[dict[str, str]]:
    with open(sample_set.SAMPLE_DIR / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_sample_is_a_stratified_slice_of_the_shipped_test_split() -> None:
    rows = sample_rows()
    test = {r["id"]: r["label"] for r in read_splits(SHIPPED / "splits.csv") if r["split"] == "test"}
    assert 200 <= len(rows) <= 300
    assert all(test.get(r["id"]) == r["label"] for r in rows), "sample ids must be test ids with their label"
    classes = json.loads((SHIPPED / "metadata.json").read_text())["classes"]
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == set(classes) and "unknown" in counts
    assert max(counts.values()) - min(counts.values()) <= 1
    images = sorted(p.stem for p in (sample_set.SAMPLE_DIR / "images").glob("*.jpg"))
    assert images == sorted(r["id"] for r in rows)
    size = sum(p.stat().st_size for p in sample_set.SAMPLE_DIR.rglob("*") if p.is_file())
    assert size < 1.5e6
    styles, malformed = D.read_styles(sample_set.SAMPLE_DIR / "styles.csv")  # a valid --data catalogue
    assert malformed == 0 and sorted(r["id"] for r in styles) == sorted(r["id"] for r in rows)


def test_load_sample_uses_the_model_split_labels() -> None:
    x, y, ids, classes = sample_set.load_sample(SHIPPED)
    assert len(ids) == len(sample_rows()) and x.shape[1:] == (80, 60, 3)
    labels = {r["id"]: r["label"] for r in sample_rows()}
    assert [classes[k] for k in y] == [labels[i] for i in ids]


def test_load_sample_refuses_a_model_whose_test_split_does_not_hold_it(tmp_path) -> None:
    (tmp_path / "metadata.json").write_text((SHIPPED / "metadata.json").read_text())
    (tmp_path / "splits.csv").write_text("id,label,split\n1,Tshirts,test\n")
    with pytest.raises(sample_set.SampleError, match="test split"):
        sample_set.load_sample(tmp_path)


def test_quick_bench_falls_back_to_the_sample_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(D, "CATALOGUE_DIR", tmp_path / "no-data" / "fashion-product-images-small")
    out = tmp_path / "out"
    rc = main([str(SHIPPED), "--quick", "--out", str(out), "--runs", "3", "--warmup", "1", "--label-n", "16"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    notes = [line for line in captured.err.splitlines() if "embedded sample" in line]
    assert len(notes) == 1 and notes[0].startswith("fashion-bench: no catalogue found")
    result = json.loads((out / "results.json").read_text())
    assert result["settings"]["data"] == "embedded sample"
    assert result["settings"]["n_test"] == len(sample_rows())
    onnx_int8 = next(r for r in result["rows"] if r["file"] == "model_int8.onnx")
    assert onnx_int8["accuracy"]["top1"] > 0.8
    assert result["labeling"]["images"] == 16 and result["labeling"]["errors"] == 0


def test_full_bench_and_explicit_data_do_not_fall_back(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(D, "CATALOGUE_DIR", tmp_path / "none")
    assert main([str(SHIPPED), "--out", str(tmp_path / "a")]) == 2
    assert (
        main([str(SHIPPED), "--quick", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "b")]) == 2
    )
    err = capsys.readouterr().err
    assert "using the embedded sample" not in err and err.count("fashion-bench: ") == 2
    assert "README, Set up" in err.splitlines()[0]


@requires_catalogue
def test_make_sample_regenerates_the_same_files(tmp_path) -> None:
    import runpy

    script = runpy.run_path(str(REPO / "scripts" / "make_sample.py"))
    assert script["main"](["--out", str(tmp_path / "s")]) == 0
    cmp = filecmp.dircmp(sample_set.SAMPLE_DIR, tmp_path / "s")
    assert not (cmp.diff_files or cmp.left_only or cmp.right_only), cmp.report()
    sub = cmp.subdirs["images"]
    assert not (sub.left_only or sub.right_only)
    assert all(
        filecmp.cmp(sample_set.SAMPLE_DIR / "images" / n, tmp_path / "s" / "images" / n, shallow=False)
        for n in sub.common_files
    )


def test_bench_defaults_to_the_runtime_default_model_folder(tmp_path, monkeypatch) -> None:
    from fashion_edge.benchmarks.bench import parse_args
    from fashion_edge.runtime.classifier import DEFAULT_MODEL

    monkeypatch.delenv("FASHION_EDGE_MODEL", raising=False)
    assert parse_args(["--quick"]).model_dir == DEFAULT_MODEL.parent
    monkeypatch.setenv("FASHION_EDGE_MODEL", str(tmp_path / "m" / "model.onnx"))
    assert parse_args([]).model_dir == tmp_path / "m"
