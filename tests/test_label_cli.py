"""`fashion-label` end to end: exit codes, kill -9 + resume, Ctrl-C, sorting, model errors."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import pytest

from fashion_edge.runtime.label_cli import main
from tests.onnx_tiny import colour_image
from tests.test_labeling import BAD, GOOD, make_bad_corpus

REPO = Path(__file__).resolve().parent.parent


def journal_paths(out: Path) -> list[str]:
    with open(out, newline="", encoding="utf-8") as f:
        return [r["path"] for r in csv.DictReader(f)]


def test_cli_labels_reports_and_exits_1_on_bad_files(model, tmp_path, capsys):
    corpus = make_bad_corpus(tmp_path / "photos")
    out = tmp_path / "labels.csv"
    rc = main([str(corpus), "--model", str(model), "--out", str(out), "--recursive", "--top-k", "2"])
    text = capsys.readouterr().out
    assert rc == 1
    n = len(GOOD) + len(BAD)
    assert f"labelled {n} images ({len(BAD)} errors" in text and str(out) in text
    assert Counter(journal_paths(out)) == Counter({p: 1 for p in (*GOOD, *BAD)})
    rc = main([str(corpus), "--model", str(model), "--out", str(out), "--recursive"])
    assert rc == 1 and f"[{n} from an earlier run]" in capsys.readouterr().out
    assert len(journal_paths(out)) == n


def test_cli_clean_folder_exits_0_and_sorts(model, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(colour_image(i % 3), cv2.COLOR_RGB2BGR))
    out, dest = tmp_path / "l.jsonl", tmp_path / "sorted"
    args = [str(folder), "--model", str(model), "--out", str(out), "--sort-into", str(dest)]
    assert main(args) == 0
    assert "copied 6 files" in capsys.readouterr().out
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.png")) == [
        "Casual Shoes/2.png", "Casual Shoes/5.png", "Tshirts/0.png", "Tshirts/3.png",
        "Watches/1.png", "Watches/4.png",
    ]  # fmt: skip
    assert main(args) == 0  # sorting again adds nothing and overwrites nothing
    assert len(list(dest.rglob("*.png"))) == 6 and len(list(folder.glob("*.png"))) == 6
    assert main([*args, "--review-below", "1.0", "--out", str(tmp_path / "strict.csv"), "--move"]) == 0
    assert len(list((dest / "needs_review").glob("*.png"))) == 6 and not list(folder.glob("*.png"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{tmp}/missing.onnx"], "file not found"),
        (["--model", "{tmp}/junk.onnx"], "corrupt ONNX file"),
        (["--out", "{tmp}/labels.txt"], "must end in .csv or .jsonl"),
        (["--top-k", "0"], "at least 1"),
        (["--review-below", "2"], "between 0 and 1"),
    ],
)
def test_cli_usage_and_model_errors_exit_2(model, tmp_path, capsys, args, message):
    (tmp_path / "junk.onnx").write_bytes(b"nope")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    full = [str(tmp_path), *(["--model", str(model)] if "--model" not in args else []), *args]
    assert main(full) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("fashion-label: error:") and "Traceback" not in err


def test_cli_missing_folder_exits_2(model, tmp_path, capsys):
    assert main([str(tmp_path / "nowhere"), "--model", str(model), "--out", str(tmp_path / "l.csv")]) == 2
    assert "not a folder" in capsys.readouterr().err


def make_slow_folder(folder: Path, n: int) -> None:
    """n large-ish JPEGs (decoding each takes about a millisecond), written fast by reusing bytes."""
    folder.mkdir()
    blobs = []
    for c in range(3):
        img = cv2.resize(colour_image(c), (600, 800), interpolation=cv2.INTER_LINEAR)
        blobs.append(cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes())
    for i in range(n):
        (folder / f"img{i:05d}.jpg").write_bytes(blobs[i % 3])


def start_cli(folder: Path, model: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fashion_edge.runtime.label_cli", str(folder), "--model", str(model), "--out", str(out),
           "--batch-size", "4", "--workers", "1", "--threads", "1", *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(proc: subprocess.Popen, out: Path, rows: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if out.exists() and out.read_bytes().count(b"\n") > rows:
            return
        if proc.poll() is not None:
            pytest.fail(f"finished before it could be interrupted: {proc.stderr.read()[-500:]}")
        time.sleep(0.005)
    pytest.fail("no progress")


def test_kill_9_then_resume_labels_every_image_exactly_once(model, tmp_path):
    folder, out = tmp_path / "many", tmp_path / "labels.csv"
    make_slow_folder(folder, 1500)
    names = sorted(p.name for p in folder.iterdir())
    for stop_after in (100, 400):  # two hard kills at different points
        proc = start_cli(folder, model, out)
        wait_for_rows(proc, out, stop_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert len(set(journal_paths(out))) < len(names)
    proc = start_cli(folder, model, out)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-1000:]
    assert "earlier run" in stdout
    got = journal_paths(out)
    assert Counter(got) == Counter(names)  # every image exactly once


def test_ctrl_c_stops_cleanly_with_130_and_resumes(model, tmp_path):
    folder, out = tmp_path / "many", tmp_path / "labels.csv"
    make_slow_folder(folder, 600)
    proc = start_cli(folder, model, out)
    wait_for_rows(proc, out, 40)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-1000:]
    assert "run the same command again" in stderr and "Traceback" not in stderr
    text = out.read_text(encoding="utf-8")
    assert text.endswith("\n")  # the interrupted batch was finished, not torn
    done = journal_paths(out)
    assert 40 <= len(done) < 600 and len(done) % 4 == 0
    proc = start_cli(folder, model, out)
    proc.communicate(timeout=300)
    assert proc.returncode == 0 and Counter(journal_paths(out)) == Counter(p.name for p in folder.iterdir())


def test_kill_9_during_a_nested_move_keeps_every_file_twins_included(model, tmp_path):
    folder, out, dest = tmp_path / "many", tmp_path / "labels.csv", tmp_path / "sorted"
    make_slow_folder(folder, 600)
    for year in ("2023", "2024"):  # identical twins under the same names in two sub-folders
        (folder / year).mkdir()
        for p in sorted(folder.glob("img000[0-9]*.jpg"))[:100]:
            (folder / year / p.name).write_bytes(p.read_bytes())
    total = sum(1 for p in folder.rglob("*.jpg"))
    args = ("--recursive", "--move", "--sort-into", str(dest))
    for stop_after in (60, 300):
        proc = start_cli(folder, model, out, *args)
        wait_for_rows(proc, out, stop_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    proc = start_cli(folder, model, out, *args)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-1000:]
    moved = [p for p in dest.rglob("*") if p.is_file()]
    assert len(moved) == total and not list(folder.rglob("*.jpg"))  # 800 files in, 800 out
    assert not [p for p in moved if p.name.startswith(".")]  # no temporary files left
