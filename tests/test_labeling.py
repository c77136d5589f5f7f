"""Batch labeling: bad files become error rows, the journal survives crashes, sorting never overwrites."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from fashion_edge.runtime import load
from fashion_edge.runtime.labeling import (
    FIELDS,
    LabelingError,
    LabelRecord,
    append_records,
    label_paths,
    read_labels,
    run_labeling,
    sanitize_folder_name,
    sort_into,
)
from tests.onnx_tiny import colour_image, make_tiny_models

CLASSES = ["Tshirts", "Watches", "Casual Shoes"]
# files that must decode and be labelled, with the class their colour implies
GOOD = {
    "red.jpg": "Tshirts",
    "green.png": "Watches",
    "blue.bmp": "Casual Shoes",
    "green.webp": "Watches",
    "rgba.png": "Tshirts",
    "gray.png": None,  # any label, but no error
    "deep16.png": "Casual Shoes",
    "large.jpg": "Watches",
    "sub/blue.jpg": "Casual Shoes",
    "чашка 😀 ü.jpg": "Tshirts",
}
BAD = {
    "zero.jpg": "empty file",
    "truncated.jpg": "not a decodable image",
    "text.jpg": "not a decodable image",
    "dangling.jpg": "file not found",  # a link to nothing: unreadable even for root
}


def bgr(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, bgr(rgb))
    assert ok
    path.write_bytes(buf.tobytes())  # unicode-safe, unlike cv2.imwrite on some platforms


def make_bad_corpus(root: Path) -> Path:
    """Good images in many encodings plus genuinely unreadable files."""
    root.mkdir(parents=True, exist_ok=True)
    write_image(root / "red.jpg", colour_image(0))
    write_image(root / "green.png", colour_image(1))
    write_image(root / "blue.bmp", colour_image(2))
    write_image(root / "green.webp", colour_image(1))
    write_image(root / "sub" / "blue.jpg", colour_image(2))
    write_image(root / "чашка 😀 ü.jpg", colour_image(0))
    rgba = np.dstack([bgr(colour_image(0)), np.full((80, 60), 255, np.uint8)])
    rgba[:5, :, 3] = 0  # some transparency
    cv2.imwrite(str(root / "rgba.png"), rgba)
    cv2.imwrite(str(root / "gray.png"), cv2.cvtColor(colour_image(1), cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(root / "deep16.png"), bgr(colour_image(2)).astype(np.uint16) * 257)
    large = cv2.resize(colour_image(1), (3000, 4000), interpolation=cv2.INTER_NEAREST)
    write_image(root / "large.jpg", large)
    (root / "zero.jpg").write_bytes(b"")
    full = (root / "red.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (root / "text.jpg").write_text("this is not an image\n")
    os.symlink(root / "gone.jpg", root / "dangling.jpg")
    (root / "notes.txt").write_text("not an image suffix: ignored")
    return root


@pytest.fixture(scope="module")
def clf():
    return load(make_tiny_models(tflite=False)["onnx_int8"], threads=1)


@pytest.fixture
def corpus(tmp_path) -> Path:
    return make_bad_corpus(tmp_path / "photos")


def rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_bad_corpus_gives_one_error_row_each_and_labels_the_rest(clf, corpus, tmp_path):
    out = tmp_path / "labels.csv"
    summary = run_labeling(corpus, clf, out, recursive=True, batch_size=4, workers=2)
    table = rows(out)
    assert list(table[0].keys()) == FIELDS
    by_path = {r["path"]: r for r in table}
    assert len(table) == len(by_path) == len(GOOD) + len(BAD)
    for name, label in GOOD.items():
        r = by_path[name]
        assert r["error"] == "" and r["source"] == "model", (name, r)
        assert label is None or r["label"] == label, (name, r)
        assert 0 < float(r["confidence"]) <= 1 and len(r["top_k"].split("|")) == 3
    for name, msg in BAD.items():
        r = by_path[name]
        assert msg in r["error"] and r["label"] == "" and "\n" not in r["error"], (name, r)
    assert (summary.total, summary.errors, summary.this_run) == (len(table), len(BAD), len(table))


def test_unreadable_permissions_give_an_error_row(clf, tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    (tmp_path / "d").mkdir()
    write_image(tmp_path / "d" / "locked.jpg", colour_image(0))
    (tmp_path / "d" / "locked.jpg").chmod(0)
    recs = label_paths(clf, [tmp_path / "d" / "locked.jpg"], tmp_path / "d")
    assert recs[0].error == "permission denied"


def test_label_paths_is_pure_and_ordered(clf, corpus):
    paths = [corpus / "blue.bmp", corpus / "zero.jpg", corpus / "red.jpg"]
    a = label_paths(clf, paths, corpus, top_k=1)
    b = label_paths(clf, paths, corpus, top_k=1)
    assert a == b
    assert [r.path for r in a] == ["blue.bmp", "zero.jpg", "red.jpg"]
    assert [r.label for r in a] == ["Casual Shoes", "", "Tshirts"] and len(a[0].top_k) == 1
    assert not (corpus.parent / "labels.csv").exists()  # no side effects
    flagged = label_paths(clf, paths[:1], corpus, review_below=1.01)
    assert flagged[0].needs_review


def test_resume_skips_done_rows_and_repairs_a_torn_last_line(clf, corpus, tmp_path):
    out = tmp_path / "labels.csv"
    first = run_labeling(corpus, clf, out, recursive=True, batch_size=3)
    complete = out.read_text(encoding="utf-8")
    lines = complete.splitlines(keepends=True)
    # as after a kill -9 during a write: 5 complete rows and half of the 6th
    out.write_text("".join(lines[:6]) + lines[6][: len(lines[6]) // 2], encoding="utf-8")
    again = run_labeling(corpus, clf, out, recursive=True, batch_size=3)
    table = rows(out)
    assert sorted(r["path"] for r in table) == sorted({r["path"] for r in table})
    assert len(table) == first.total
    assert (again.resumed, again.this_run) == (5, first.total - 5)
    assert again.errors == first.errors
    nothing = run_labeling(corpus, clf, out, recursive=True)
    assert nothing.this_run == 0 and out.read_text(encoding="utf-8").count("\n") == first.total + 1


@pytest.mark.parametrize("cut", ["mid-row", "no-newline", "in-quoted-field"])
def test_read_labels_ignores_torn_rows(tmp_path, cut):
    out = tmp_path / "j.csv"
    recs = [LabelRecord(f"{i}.jpg", "Watches", 0.9, [("Watches", 0.9)]) for i in range(3)]
    recs.append(LabelRecord('odd, "name".jpg', error="not a decodable image"))
    append_records(out, recs)
    text = out.read_text(encoding="utf-8")
    torn = {
        "mid-row": text + "9.jpg,Tshi",
        "no-newline": text + "9.jpg,Tshirts,0.5000,Tshirts:0.5000,1,,mod",
        "in-quoted-field": text + '"9\n',
    }[cut]
    out.write_text(torn, encoding="utf-8")
    assert set(read_labels(out)) == {r.path for r in recs}
    assert read_labels(out)['odd, "name".jpg'].error == "not a decodable image"


def test_last_row_wins_and_human_corrections_survive_resume(clf, corpus, tmp_path):
    out = tmp_path / "labels.csv"
    run_labeling(corpus, clf, out, recursive=True)
    append_records(out, [LabelRecord("red.jpg", "Watches", 1.0, [("Watches", 1.0)], source="human")])
    run_labeling(corpus, clf, out, recursive=True)
    got = read_labels(out)["red.jpg"]
    assert (got.label, got.source, got.confidence) == ("Watches", "human", 1.0)


def test_jsonl_journal_has_the_same_fields(clf, corpus, tmp_path):
    import json

    out = tmp_path / "labels.jsonl"
    s = run_labeling(corpus, clf, out, recursive=True, batch_size=5)
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == s.total and all(list(r) == FIELDS for r in recs)
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"path": "torn.jpg", "lab')
    assert len(read_labels(out)) == s.total
    assert run_labeling(corpus, clf, out, recursive=True).this_run == 0


def test_foreign_journal_is_refused_not_clobbered(clf, corpus, tmp_path):
    out = tmp_path / "mine.csv"
    out.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LabelingError, match="not a fashion-label journal"):
        run_labeling(corpus, clf, out)
    assert out.read_text() == "a,b,c\n1,2,3\n"


def test_cancel_finishes_the_current_batch(clf, corpus, tmp_path):
    out = tmp_path / "labels.csv"
    cancel = threading.Event()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 4:
            cancel.set()

    s = run_labeling(corpus, clf, out, recursive=True, batch_size=4, progress=progress, cancel=cancel)
    assert s.cancelled and s.this_run == 4 and len(rows(out)) == 4
    s2 = run_labeling(corpus, clf, out, recursive=True, batch_size=4)
    assert not s2.cancelled and s2.resumed == 4 and len(rows(out)) == s2.total


def test_sorting_twice_overwrites_nothing(clf, corpus, tmp_path):
    dest = tmp_path / "sorted"
    recs = label_paths(clf, [corpus / "red.jpg", corpus / "green.png", corpus / "zero.jpg"], corpus)
    first = sort_into(recs, corpus, dest)
    assert {d.relative_to(dest).as_posix() for _, d in first} == {"Tshirts/red.jpg", "Watches/green.png"}
    assert sort_into(recs, corpus, dest) == [(s, d) for s, d in first]  # identical copies reused
    # a different file with the same name gets a suffix; the earlier file stays untouched
    other = tmp_path / "other"
    write_image(other / "red.jpg", colour_image(0, strength=120))
    before = (dest / "Tshirts" / "red.jpg").read_bytes()
    moved = sort_into(label_paths(clf, [other / "red.jpg"], other), other, dest, move=True)
    assert moved[0][1] == dest / "Tshirts" / "red (1).jpg"
    assert (dest / "Tshirts" / "red.jpg").read_bytes() == before
    assert not (other / "red.jpg").exists() and (corpus / "red.jpg").exists()
    assert not list(dest.rglob(".*partial"))


def test_review_rows_go_to_needs_review_and_errors_are_not_sorted(clf, corpus, tmp_path):
    dest = tmp_path / "sorted"
    recs = label_paths(clf, [corpus / "red.jpg", corpus / "text.jpg"], corpus, review_below=1.01)
    done = sort_into(recs, corpus, dest)
    assert [d.relative_to(dest).as_posix() for _, d in done] == ["needs_review/red.jpg"]


@pytest.mark.parametrize(
    "label",
    [
        "../../etc",
        "a/b\\c",
        "CON",
        "com1.txt",
        "Lpt9",
        "trailing. ",
        "..",
        "",
        "tab\there",
        ".hidden",
        "x" * 300,
    ],
)
def test_sanitised_folder_names_stay_inside(label, tmp_path):
    name = sanitize_folder_name(label)
    assert name and "/" not in name and "\\" not in name and name not in (".", "..")
    assert not name.startswith(".") and not name.endswith((".", " ")) and len(name) <= 100
    assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT9"}
    assert all(ord(c) >= 32 for c in name)
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_run_labeling_sorts_after_writing_and_resumes_sorting(clf, corpus, tmp_path):
    out, dest = tmp_path / "labels.csv", tmp_path / "sorted"
    s = run_labeling(corpus, clf, out, recursive=True, sort_dest=dest, move=True)
    assert s.sorted_files == len(GOOD)
    assert (dest / "Casual Shoes" / "blue.bmp").exists() and not (corpus / "blue.bmp").exists()
    assert (dest / "Casual Shoes" / "blue.jpg").exists()  # from sub/, no clash with blue.bmp
    assert set(read_labels(out)) >= set(GOOD) | set(BAD)
    assert (corpus / "zero.jpg").exists()  # error rows stay where they are
    dest_in_folder = corpus / "sorted"
    s2 = run_labeling(corpus, clf, tmp_path / "again.csv", recursive=True, sort_dest=dest_in_folder)
    assert s2.total == len(BAD)  # the moved files are gone; the destination is not labelled itself


def test_a_missing_folder_is_a_clear_error(clf, tmp_path):
    with pytest.raises(LabelingError, match="not a folder"):
        run_labeling(tmp_path / "nope", clf, tmp_path / "l.csv")


def test_a_torn_header_is_repaired(clf, corpus, tmp_path):
    out = tmp_path / "labels.csv"
    out.write_text("path,lab")  # killed while creating the journal
    s = run_labeling(corpus, clf, out, recursive=True)
    assert s.this_run == len(GOOD) + len(BAD) == len(rows(out))


@pytest.mark.parametrize("move", [False, True])
def test_fsync_every_batch_only_before_moving(clf, corpus, tmp_path, monkeypatch, move):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell the journal's fsync from the copies' fsync")
    calls = []
    real = os.fsync
    out = tmp_path / "labels.csv"

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") == str(out):
            calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    run_labeling(corpus, clf, out, recursive=True, batch_size=2, sort_dest=tmp_path / "s", move=move)
    batches = -(-(len(GOOD) + len(BAD)) // 2)
    assert (len(calls) >= batches) if move else (len(calls) < batches)
