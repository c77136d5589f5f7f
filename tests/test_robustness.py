"""fashion_edge.benchmarks.robustness on a tiny colour model with an "unknown" class: figures, accept rule, files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fashion_edge.benchmarks.robustness import main
from fashion_edge.runtime.metadata import save_json
from fashion_edge.runtime.preprocess import autocrop_foreground
from fashion_edge.training.data import STYLES_FIELDS
from tests.onnx_tiny import _onnx_int8, colour_image, onnx_float_model, tiny_metadata

# the tiny model answers class 0 for red, 1 for green, 2 for blue: class 0 is the unknown class
CLASSES = ("unknown", "Watches", "Casual Shoes")
RED, GREEN, BLUE = 0, 1, 2
# (articleType, colour, count, split label or None when the item is not in splits.csv)
ITEMS = [
    ("Watches", GREEN, 6, "Watches"),
    ("Casual Shoes", BLUE, 6, "Casual Shoes"),
    ("Watches", RED, 2, "Watches"),  # known items the model calls "unknown": wrong, never accepted
    ("Belts", RED, 2, "unknown"),  # a training negative in the test split: not a known item
    ("Sunglasses", RED, 4, None),  # held-out unknown type, predicted "unknown" with high confidence
    ("Ties", GREEN, 4, None),  # held-out unknown type, confidently called Watches
    ("Belts", GREEN, 3, None),  # a negative type: excluded from the unknown set
    ("Kurtis", GREEN, 3, None),  # a near-duplicate type: excluded too
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> tuple[Path, Path]:
    """An exported-style folder (float + int8 ONNX, metadata, splits) and its catalogue."""
    root = tmp_path_factory.mktemp("robust")
    cat = root / "catalogue"
    (cat / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    styles, splits, item = [], [], 1000
    for kind, colour, count, label in ITEMS:
        for _ in range(count):
            item += 1
            img = colour_image(colour, strength=int(rng.integers(170, 230)))
            cv2.imwrite(str(cat / "images" / f"{item}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            styles.append(
                [str(item), "Men", "Accessories", "x", kind, "Red", "Summer", "2012", "Casual", kind]
            )
            if label:
                splits.append([str(item), label, "test"])
    with open(cat / "styles.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([STYLES_FIELDS, *styles])
    d = root / "model"
    d.mkdir()
    meta = tiny_metadata(CLASSES, 80, 60, "onnx", "float32").replace(
        unknown_class="unknown", provenance={"negative_types": ["Belts"], "heldout_unknown_types": ["Ties"]}
    )
    onnx_float_model(d / "model_float32.onnx", meta)
    _onnx_int8(d / "model_float32.onnx", d / "model_int8.onnx", meta.replace(precision="int8"))
    save_json(meta, d / "metadata.json")
    with open(d / "splits.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "label", "split"], *splits])
    return d, cat


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("fashion_edge.training.data.CACHE_DIR", tmp_path / "cache")


def test_figures_table_and_unknown_class_rule(model_dir, tmp_path, capsys) -> None:
    d, cat = model_dir
    md = tmp_path / "ROBUSTNESS.md"
    rc = main([str(d), "--data", str(cat), "--out", str(tmp_path / "out"), "--md", str(md),
               "--webcam-set", str(tmp_path / "web")])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads((tmp_path / "out" / "robustness.json").read_text())
    sets = result["sets"]
    assert (sets["n_clean"], sets["n_webcam"], sets["n_unknown"]) == (14, 14, 8)
    assert sets["unknown_types"] == ["Sunglasses", "Ties"]
    assert (tmp_path / "web" / "labels.csv").exists()  # made where --webcam-set points
    rows = {r["file"]: r for r in result["rows"]}
    assert set(rows) == {"model_float32.onnx", "model_int8.onnx"}
    for r in rows.values():
        assert r["error"] is None
        figures = [*r["clean"].values(), *r["webcam"].values(), r["open_set"]["auroc"]]
        figures += [
            r["open_set"][k] for k in ("known_accepted", "unknown_accepted", "accepted_known_accuracy")
        ]
        assert all(0.0 <= v <= 1.0 for v in figures if isinstance(v, float) and not math.isnan(v))
    f = rows["model_float32.onnx"]
    # the two red Watches are predicted "unknown": wrong and, though confident, not accepted
    assert f["clean"]["top1"] == pytest.approx(12 / 14)
    assert f["clean"]["predicted_unknown"] == pytest.approx(2 / 14)
    assert f["open_set"]["known_accepted"] == pytest.approx(12 / 14)
    assert f["open_set"]["accepted_known_accuracy"] == 1.0
    # red Sunglasses -> "unknown" (needs review); green Ties -> Watches (wrongly auto-accepted)
    assert f["open_set"]["unknown_accepted"] == pytest.approx(0.5)
    assert f["open_set"]["unknown_accepted_by_type"] == {"Ties": 1.0, "Sunglasses": 0.0}
    header = "| File | Precision | Clean top-1 | Webcam top-1 | Webcam + auto-crop | Gap | AUROC | Known accepted |"
    assert header in captured.out and "| model_int8.onnx | onnx int8 | " in captured.out
    assert header in md.read_text() and header in (tmp_path / "out" / "robustness.md").read_text()
    assert "85.71%" in md.read_text() and "50.00%" in md.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "not a folder"),
        (["{d}", "--files", "model_nope.onnx"], "no such model file"),
        (["{d}", "--unknown-n", "-1"], "--unknown-n"),
    ],
)
def test_bad_input_is_one_line(model_dir, tmp_path, capsys, args, message) -> None:
    d, cat = model_dir
    argv = [a.format(d=d, missing=tmp_path / "nope") for a in args] + ["--data", str(cat)]
    rc = main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_broken_model_file_is_reported_and_the_rest_measured(model_dir, tmp_path, capsys) -> None:
    d, cat = model_dir
    broken = tmp_path / "model"
    broken.mkdir()
    for name in ("metadata.json", "splits.csv", "model_float32.onnx"):
        (broken / name).write_bytes((d / name).read_bytes())
    (broken / "model_int8.onnx").write_bytes(b"not a model")
    rc = main(
        [str(broken), "--data", str(cat), "--out", str(tmp_path / "out"), "--webcam-set", str(tmp_path / "w")]
    )
    captured = capsys.readouterr()
    assert rc == 1
    rows = {r["file"]: r for r in json.loads((tmp_path / "out" / "robustness.json").read_text())["rows"]}
    assert rows["model_float32.onnx"]["error"] is None
    assert rows["model_int8.onnx"]["error"] and "Traceback" not in captured.err
    assert "| model_int8.onnx | — | error:" in captured.out


def textured_frame(h: int = 160, w: int = 120, seed: int = 0) -> np.ndarray:
    """A wood-grain-like brown frame with fine noise (a table seen by a webcam)."""
    rng = np.random.default_rng(seed)
    grain = 0.85 + 0.1 * np.sin(np.arange(w) * 0.4)[None, :, None] + rng.normal(0, 0.03, (h, w, 1))
    return np.clip(np.array([150, 105, 65]) * grain, 0, 255).astype(np.uint8)


def test_autocrop_frames_the_object_with_the_frame_aspect() -> None:
    frame = textured_frame()
    frame[20:60, 70:105] = (30, 90, 200)  # a blue item, off-centre, top right
    crop = autocrop_foreground(frame)
    h, w = crop.shape[:2]
    assert h < 100 and abs(w / h - 120 / 160) < 0.04  # zoomed in, still 3:4
    blue = (crop[..., 2] > 150) & (crop[..., 0] < 80)
    assert blue.sum() == 40 * 35  # the whole item is inside the crop
    assert blue.mean() > 0.3  # and fills a good part of it


def test_autocrop_leaves_studio_shots_and_empty_or_full_frames_alone() -> None:
    studio = np.full((80, 60, 3), 255, np.uint8)
    studio[30:50, 20:40] = (200, 30, 30)
    assert autocrop_foreground(studio) is studio
    empty = textured_frame()
    assert autocrop_foreground(empty) is empty
    full = textured_frame()
    full[4:-4, 4:-4] = (30, 90, 200)  # the item fills the frame: nothing to gain
    assert autocrop_foreground(full) is full
