"""The journal knows what it labels (issue 13 attacks 1, 4, 5, 8, 9, 10, 12): folder binding,
model fingerprint, NaN rows, non-UTF-8 names, foreign files, formula cells, lock, repair, BOM."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import pytest

from fashion_edge.runtime import load
from fashion_edge.runtime.journal import (
    FIELDS,
    LabelRecord,
    append_records,
    read_labels,
)
from fashion_edge.runtime.journal_guard import JournalLock, model_fingerprint, sidecar_of
from fashion_edge.runtime.label_cli import main
from fashion_edge.runtime.labeling import JOURNAL_NAME, LabelingError, run_labeling
from tests.onnx_tiny import colour_image


def folder_of(root: Path, names: dict[str, int]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, colour in names.items():
        ok, buf = cv2.imencode(".png", cv2.cvtColor(colour_image(colour), cv2.COLOR_RGB2BGR))
        (root / name).write_bytes(buf.tobytes())
    return root


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- 1. a journal is tied to its folder and model ---------------------------------------------


def test_default_journal_is_in_the_folder(model, tmp_path, monkeypatch, capsys):
    a = folder_of(tmp_path / "A", {"IMG_0001.png": 0})
    monkeypatch.chdir(tmp_path)
    assert main([str(a), "--model", str(model)]) == 0
    assert (a / JOURNAL_NAME).exists() and not (tmp_path / "labels.csv").exists()
    assert str(a / JOURNAL_NAME) in capsys.readouterr().out


def test_a_journal_of_another_folder_is_refused(model, tmp_path, capsys):
    a = folder_of(tmp_path / "A", {"IMG_0001.png": 1})  # a watch
    b = folder_of(tmp_path / "B", {"IMG_0001.png": 0})  # a T-shirt with the same name
    out, dest = tmp_path / "labels.csv", tmp_path / "S"
    assert main([str(a), "--model", str(model), "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main([str(b), "--model", str(model), "--out", str(out), "--sort-into", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "journal of another folder" in err and err.count("\n") == 1 and "Traceback" not in err
    assert out.read_bytes() == before and not dest.exists()


def test_a_deleted_journal_frees_its_name_for_another_folder(clf, tmp_path):
    a = folder_of(tmp_path / "A", {"x.png": 0})
    b = folder_of(tmp_path / "B", {"y.png": 1})
    out = tmp_path / "labels.csv"
    run_labeling(a, clf, out)
    out.unlink()  # the sidecar stays behind
    assert run_labeling(b, clf, out).this_run == 1
    assert json.loads(sidecar_of(out).read_text(encoding="utf-8"))["folder"] == str(b.resolve())
    with pytest.raises(LabelingError, match="journal of another folder"):
        run_labeling(a, clf, out)


def test_an_old_journal_without_a_folder_record_is_refused_outside_the_folder(clf, tmp_path):
    a = folder_of(tmp_path / "A", {"x.png": 0})
    out = tmp_path / "labels.csv"
    out.write_text(
        ",".join(FIELDS[:7]) + "\nx.png,Watches,0.9900,Watches:0.9900,0,,model\n", encoding="utf-8"
    )
    with pytest.raises(LabelingError, match="no record of its folder"):
        run_labeling(a, clf, out)


def test_a_folder_moved_with_its_journal_still_resumes(clf, tmp_path):
    a = folder_of(tmp_path / "A", {"x.png": 0, "y.png": 1})
    run_labeling(a, clf)
    moved = tmp_path / "moved"
    a.rename(moved)
    s = run_labeling(moved, clf)
    assert (s.resumed, s.this_run) == (2, 0)


def test_rows_of_another_model_or_with_nan_are_labelled_again(clf, model, tmp_path):
    a = folder_of(tmp_path / "A", {"a.png": 0, "b.png": 1, "c.png": 2, "d.png": 0})
    fp = model_fingerprint(model)
    assert len(fp) == 16
    st = (a / "d.png").stat()
    append_records(a / JOURNAL_NAME, [
        LabelRecord("a.png", "Watches", 0.99, [("Watches", 0.99)], model="0123456789abcdef"),  # other model
        LabelRecord("b.png", "Watches", float("nan"), [("Watches", float("nan"))], model=fp),  # broken
        LabelRecord("c.png", "Watches", 1.0, [], source="human"),  # a person's label: kept
        LabelRecord("d.png", "Tshirts", 0.9, [("Tshirts", 0.9)], model=fp, size=st.st_size, mtime_ns=st.st_mtime_ns),
    ])  # fmt: skip
    s = run_labeling(a, clf)
    assert (s.resumed, s.this_run, s.relabelled) == (2, 2, 2)
    got = read_labels(a / JOURNAL_NAME)
    assert got["a.png"].label == "Tshirts" and got["a.png"].model == fp
    assert got["b.png"].label == "Watches" and got["b.png"].confidence == got["b.png"].confidence  # not NaN
    assert got["c.png"].source == "human"


def test_nan_confidences_are_never_auto_accepted_or_sorted(model, tmp_path):
    clf = load(model, threads=1)
    clf.meta = clf.meta.replace(temperature=1e-40)  # logits / 1e-40 -> inf - inf = NaN
    a = folder_of(tmp_path / "A", {"a.png": 0, "b.png": 1})
    dest = tmp_path / "S"
    s = run_labeling(a, clf, sort_dest=dest)
    assert s.needs_review == 2
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.png")) == [
        "needs_review/a.png", "needs_review/b.png"
    ]  # fmt: skip
    assert all(r["needs_review"] == "1" for r in rows(a / JOURNAL_NAME))


# --- 4. names of any bytes ---------------------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="POSIX file names are bytes")
def test_a_non_utf8_file_name_is_labelled_resumed_and_sorted(clf, tmp_path):
    a = folder_of(tmp_path / "A", {"ok.png": 0})
    raw = os.fsencode(a) + b"/caf\xe9-\xff.png"
    with open(raw, "wb") as f:
        f.write((a / "ok.png").read_bytes())
    dest = tmp_path / "S"
    s = run_labeling(a, clf, sort_dest=dest)
    assert (s.total, s.errors, s.this_run) == (2, 0, 2)
    text = (a / JOURNAL_NAME).read_bytes().decode("utf-8")  # valid UTF-8
    assert "caf\\xe9-\\xff.png" in text
    assert os.path.exists(os.fsencode(dest) + b"/Tshirts/caf\xe9-\xff.png")
    again = run_labeling(a, clf, sort_dest=dest)
    assert (again.resumed, again.this_run) == (2, 0)
    assert len(list((dest / "Tshirts").iterdir())) == 2  # not copied twice


def test_a_non_utf8_name_gives_no_traceback_in_the_cli(model, tmp_path, capsys):
    a = folder_of(tmp_path / "A", {"ok.png": 0})
    with open(os.fsencode(a) + b"/\xff\xfe.png", "wb") as f:
        f.write(b"not an image")
    assert main([str(a), "--model", str(model), "--out", str(tmp_path / "j.jsonl")]) == 1
    recs = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["path"] for r in recs} == {"ok.png", "\\xff\\xfe.png"}


# --- 5. a foreign file is never overwritten ------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ['{"event": "login", "user": 1}\n{"event": "logout"}\n', '{"event": "login"}', "plain text\n"],
)
def test_an_unrelated_jsonl_file_is_refused_not_overwritten(clf, tmp_path, content):
    a = folder_of(tmp_path / "A", {"x.png": 0})
    out = tmp_path / "important.jsonl"
    out.write_text(content, encoding="utf-8")
    with pytest.raises(LabelingError, match="not a fashion-label journal"):
        run_labeling(a, clf, out)
    assert out.read_text(encoding="utf-8") == content


# --- 9. formula injection ------------------------------------------------------------------------


def test_cells_that_start_a_formula_are_escaped_and_resume_round_trips(clf, tmp_path):
    names = {"=HYPERLINK(1).png": 0, "+1.png": 1, "-x.png": 2, "@a.png": 0, "\tt.png": 1, "'q.png": 2}
    a = folder_of(tmp_path / "A", names)
    run_labeling(a, clf)
    with open(a / JOURNAL_NAME, newline="", encoding="utf-8") as f:
        cells = [r[0] for r in csv.reader(f)][1:]
    assert sorted(cells) == sorted("'" + n for n in names)
    assert all(not c.startswith(("=", "+", "-", "@", "\t")) for c in cells)
    assert set(read_labels(a / JOURNAL_NAME)) == set(names)
    assert run_labeling(a, clf).this_run == 0


# --- 10. one run per journal ---------------------------------------------------------------------


def test_a_second_run_on_the_same_journal_refuses_with_one_line(model, clf, tmp_path, capsys):
    a = folder_of(tmp_path / "A", {"x.png": 0})
    out = a / JOURNAL_NAME
    with JournalLock(out):
        with pytest.raises(LabelingError, match="in use by another"):
            run_labeling(a, clf)
        assert main([str(a), "--model", str(model)]) == 2
        err = capsys.readouterr().err
        assert "in use by another" in err and err.count("\n") == 1
    assert not out.exists() or rows(out) == []
    assert run_labeling(a, clf).this_run == 1  # released: the next run works


# --- 12. repair keeps people's rows; a BOM is fine ---------------------------------------------


def test_repair_cuts_only_the_torn_tail_and_keeps_a_hand_edited_row(clf, tmp_path):
    a = folder_of(tmp_path / "A", {"x.png": 0, "y.png": 1})
    run_labeling(a, clf)
    j = a / JOURNAL_NAME
    text = j.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    edited = "x.png,Watches  # checked by Ann\n"  # malformed, but a person wrote it
    j.write_text(lines[0] + edited + "".join(lines[1:]) + "y.png,Tshi", encoding="utf-8")
    s = run_labeling(a, clf)
    after = j.read_text(encoding="utf-8")
    assert edited in after and "Tshi\n" not in after and after.endswith("\n")
    assert s.ignored_rows == 1 and s.this_run == 0


def test_a_journal_with_a_utf8_bom_is_read(clf, tmp_path):
    a = folder_of(tmp_path / "A", {"x.png": 0, "y.png": 1})
    run_labeling(a, clf)
    j = a / JOURNAL_NAME
    j.write_bytes(b"\xef\xbb\xbf" + j.read_bytes())  # saved by a spreadsheet
    s = run_labeling(a, clf)
    assert (s.resumed, s.this_run) == (2, 0)


def test_an_old_seven_column_journal_in_the_folder_is_upgraded(clf, tmp_path):
    a = folder_of(tmp_path / "A", {"x.png": 0, "y.png": 1})
    j = a / JOURNAL_NAME
    j.write_text(",".join(FIELDS[:7]) + "\nx.png,Watches,1.0000,,0,,human\n", encoding="utf-8")
    s = run_labeling(a, clf)
    assert (s.resumed, s.this_run) == (1, 1)
    assert rows(j)[0]["source"] == "human" and list(rows(j)[0]) == FIELDS
    assert sidecar_of(j).exists()


def test_a_read_only_folder_says_to_use_out(model, tmp_path, capsys, monkeypatch):
    import filelock

    a = folder_of(tmp_path / "A", {"x.png": 0})
    real = filelock.FileLock.acquire

    def acquire(self, *args, **kw):  # what a read-only folder does to the lock file (root ignores modes)
        if Path(self.lock_file).parent == a:
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kw)

    monkeypatch.setattr(filelock.FileLock, "acquire", acquire)
    assert main([str(a), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "choose a journal elsewhere with --out" in err and err.count("\n") == 1
    assert main([str(a), "--model", str(model), "--out", str(tmp_path / "j.csv")]) == 0


def test_a_ray_actor_refuses_a_different_model_file_on_its_node(model, tmp_path):
    from fashion_edge.runtime.ray_label import ClassifierActor

    with pytest.raises(RuntimeError, match="not the driver's model file"):
        ClassifierActor(str(model), str(tmp_path), "0" * 16, 3, None)
    actor = ClassifierActor(str(model), str(tmp_path), model_fingerprint(model), 3, None)
    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", colour_image(0))[1].tobytes())
    import numpy as np

    out = actor(
        {"key": np.array(["a.png"]), "path": np.array([os.fsencode(tmp_path / "a.png")], dtype=object)}
    )
    rec = LabelRecord.from_json(str(out["record"][0]))
    assert rec.path == "a.png" and rec.model == model_fingerprint(model) and not rec.error
