"""Nothing lost, ever (issue 22, sorting and journal half): each test is the attack, run through
the real CLI on small generated images, and checks by SHA-256 that every photo still exists."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import cv2
import pytest

from fashion_edge.runtime.journal import FIELDS, MODEL_FIELDS, LabelRecord, append_records, scan
from fashion_edge.runtime.journal_guard import model_fingerprint
from fashion_edge.runtime.label_cli import main
from fashion_edge.runtime.labeling import JOURNAL_NAME, read_labels, run_labeling, sort_into
from tests.onnx_tiny import colour_image, make_tiny_models

OURS = {JOURNAL_NAME, JOURNAL_NAME + ".meta.json", JOURNAL_NAME + ".lock"}
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def image(colour: int, suffix: str = ".png", strength: int = 200) -> bytes:
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(colour_image(colour, strength=strength), cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def photos(folder: Path, n: int = 5) -> Path:
    """n different images, colours 0, 1, 2, 0, 1... (Tshirts, Watches, Casual Shoes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"IMG_{i:04d}.png").write_bytes(image(i % 3, strength=150 + i))
    return folder


def digests(root: Path) -> Counter[str]:
    """SHA-256 of every regular file under root (symlinks not followed), the tool's own files aside."""
    out: Counter[str] = Counter()
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            if name not in OURS and not p.is_symlink() and p.is_file():
                out[hashlib.sha256(p.read_bytes()).hexdigest()] += 1
    return out


def files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name not in OURS
    )


def cli(model: Path, *args: object) -> int:
    return main([*(str(a) for a in args), "--model", str(model)])


# --- 1. re-sorting a sorted folder with --move keeps every file -----------------------------------


def test_re_sorting_the_review_pile_with_move_keeps_every_file(model, tmp_path, capsys):
    src, out = photos(tmp_path / "src"), tmp_path / "sorted"
    before = digests(src)
    assert cli(model, src, "--sort-into", out, "--move", "--review-below", "1.0") == 0  # all to review
    assert len(files(out / "needs_review")) == 5
    # the review pile again: still for review (already there), then, as after learning, its classes
    for journal, review_below in (("first.csv", "1.0"), ("second.csv", "0.0")):
        capsys.readouterr()
        args = ("--move", "--review-below", review_below, "--out", tmp_path / journal)
        assert cli(model, out / "needs_review", "--sort-into", out, *args) == 0
        assert digests(src) + digests(out) == before
    assert "moved 5 files" in capsys.readouterr().out
    assert files(out / "needs_review") == []
    assert len(files(out)) == 5


@pytest.mark.parametrize("mode", ["--move", "--copy"])
def test_re_sorting_a_class_folder_into_its_own_parent_keeps_it_as_it_is(model, tmp_path, capsys, mode):
    src, out = photos(tmp_path / "src"), tmp_path / "sorted"
    assert cli(model, src, "--sort-into", out, "--move") == 0
    before, layout = digests(tmp_path), files(out)
    for _ in range(3):  # --copy into its own folder used to grow it 5 -> 10 -> 20
        assert cli(model, out / "Watches", "--sort-into", out, mode) == 0
        assert digests(tmp_path) == before and files(out) == layout
    assert f"{'moved' if mode == '--move' else 'copied'} 0 files" in capsys.readouterr().out


def test_a_class_folder_that_is_a_symlink_to_the_source_loses_nothing(model, tmp_path):
    src, out = photos(tmp_path / "src"), tmp_path / "sorted"
    out.mkdir()
    for name in ("Tshirts", "Watches", "Casual Shoes"):
        os.symlink(src, out / name)  # every class folder is the source folder itself
    before = digests(src)
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert digests(src) == before and len(files(src)) == 5


# --- 2. a symlink in the destination never stands for the file -----------------------------------


def test_a_symlink_to_the_source_in_the_class_folder_does_not_delete_it(model, tmp_path):
    src, out = tmp_path / "src", tmp_path / "sorted"
    src.mkdir()
    (src / "x.png").write_bytes(image(1))  # a watch
    (out / "Watches").mkdir(parents=True)
    os.symlink(src / "x.png", out / "Watches" / "x.png")
    before = digests(tmp_path)
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert digests(tmp_path) == before  # the bytes are in a regular file somewhere
    assert not (out / "Watches" / "x (1).png").is_symlink()
    assert (out / "Watches" / "x (1).png").read_bytes() == image(1)


def test_a_hard_link_the_user_made_in_the_class_folder_keeps_the_bytes(model, tmp_path):
    src, out = tmp_path / "src", tmp_path / "sorted"
    src.mkdir()
    (src / "x.png").write_bytes(image(1))
    (out / "Watches").mkdir(parents=True)
    os.link(src / "x.png", out / "Watches" / "x.png")  # like a move killed before its unlink
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert files(tmp_path) == ["sorted/Watches/x.png"]
    assert (out / "Watches" / "x.png").read_bytes() == image(1)


# --- 3. related: sources that cannot be removed, symlinked sources, honest counts ---------------


@pytest.mark.parametrize("same_fs", [True, False])
def test_a_source_that_cannot_be_removed_is_not_copied_again_on_every_run(
    model, tmp_path, capsys, monkeypatch, same_fs
):
    src, out = photos(tmp_path / "src", 2), tmp_path / "sorted"
    before = digests(tmp_path)
    real_unlink, real_link, real_rename = os.unlink, os.link, os.rename

    def read_only(path, *a, **kw):  # what a read-only folder does to its photos (root ignores modes)
        if Path(path).parent == src and Path(path).suffix == ".png":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_unlink(path, *a, **kw)

    def other_fs(real):  # no link or rename from the sources' file system
        def call(a, b, *args, **kw):
            if Path(a).parent == src:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(a, b, *args, **kw)

        return call

    monkeypatch.setattr(os, "unlink", read_only)
    if not same_fs:
        monkeypatch.setattr(os, "link", other_fs(real_link))
        monkeypatch.setattr(os, "rename", other_fs(real_rename))
    for _ in range(3):
        assert cli(model, src, "--sort-into", out, "--move") == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("fashion-label")]
        assert len(err) == 1 and "src/IMG_0000.png: cannot move IMG_0000.png (Permission denied)" in err[0]
        assert digests(tmp_path) == before  # no copy left behind, none added
        assert files(src) == ["IMG_0000.png", "IMG_0001.png"]


def test_a_read_only_source_folder_is_refused_before_copying(model, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root ignores folder modes (the monkeypatched test above covers it)")
    src, out = photos(tmp_path / "src", 2), tmp_path / "sorted"
    src.chmod(0o555)
    try:
        assert cli(model, src, "--sort-into", out, "--move", "--out", tmp_path / "j.csv") == 2
        assert "read-only" in capsys.readouterr().err and files(out) == []
    finally:
        src.chmod(0o755)


@pytest.mark.parametrize("mode", ["--move", "--copy"])
def test_a_relative_symlink_source_gives_a_real_file_and_keeps_its_target(model, tmp_path, mode):
    src, out, elsewhere = tmp_path / "src", tmp_path / "sorted", tmp_path / "elsewhere"
    src.mkdir()
    elsewhere.mkdir()
    (elsewhere / "real.png").write_bytes(image(1))
    os.symlink("../elsewhere/real.png", src / "link.png")
    assert cli(model, src, "--sort-into", out, mode) == 0
    placed = out / "Watches" / "link.png"
    assert not placed.is_symlink() and placed.read_bytes() == image(1)
    assert (elsewhere / "real.png").read_bytes() == image(1)
    assert (src / "link.png").is_symlink() == (mode == "--copy")  # --move removes the link, not its target


def test_a_symlink_in_the_class_folder_is_not_an_earlier_copy(model, tmp_path, capsys):
    src, out = photos(tmp_path / "src", 2), tmp_path / "sorted"
    assert cli(model, src, "--sort-into", out) == 0
    (out / "Watches" / "IMG_0001.png").unlink()
    os.symlink(src / "IMG_0001.png", out / "Watches" / "IMG_0001.png")  # a link, not a copy
    capsys.readouterr()
    assert cli(model, src, "--sort-into", out) == 0
    assert "copied 1 files" in capsys.readouterr().out
    copy = out / "Watches" / "IMG_0001 (1).png"
    assert not copy.is_symlink() and copy.read_bytes() == (src / "IMG_0001.png").read_bytes()


def test_a_second_copy_run_says_it_copied_nothing(model, tmp_path, capsys):
    src, out = photos(tmp_path / "src", 4), tmp_path / "sorted"
    assert cli(model, src, "--sort-into", out) == 0
    assert "copied 4 files" in capsys.readouterr().out
    assert cli(model, src, "--sort-into", out) == 0
    text = capsys.readouterr().out
    assert "copied 0 files" in text and "4 files already sorted" in text
    assert len(files(out)) == 4


def test_a_journal_row_naming_a_file_outside_the_folder_never_moves_it(tmp_path):
    src, out = photos(tmp_path / "src", 1), tmp_path / "sorted"
    outside = tmp_path / "outside.png"
    outside.write_bytes(image(1))
    rows = [
        LabelRecord(key, "Watches", 0.99, source="human")
        for key in ("../outside.png", "\\x2e\\x2e/outside.png", str(outside))
    ]
    rows.append(LabelRecord("IMG_0000.png", "Tshirts", 0.99, source="human"))
    assert sort_into(rows, src, out, move=True) == [(src / "IMG_0000.png", out / "Tshirts" / "IMG_0000.png")]
    assert outside.read_bytes() == image(1) and files(out) == ["Tshirts/IMG_0000.png"]


def test_only_our_own_temporary_files_are_cleaned_from_a_class_folder(model, tmp_path):
    src, out = photos(tmp_path / "src", 1), tmp_path / "sorted"
    (out / "Tshirts").mkdir(parents=True)
    mine = {".fashion-tmp-999999999-my photo.jpg": b"a person's", ".fashion-tmp-notes": b"also kept"}
    for name, data in mine.items():
        (out / "Tshirts" / name).write_bytes(data)
    (out / "Tshirts" / ".fashion-tmp-999999999-deadbeef").write_bytes(b"partial")  # a dead run's
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert sorted(os.listdir(out / "Tshirts")) == sorted([*mine, "IMG_0000.png"])


# --- 4. a reused name is labelled again -----------------------------------------------------------


def test_a_reused_name_in_a_daily_inbox_is_labelled_again(model, tmp_path, capsys):
    inbox, out = tmp_path / "inbox", tmp_path / "sorted"
    inbox.mkdir()
    photo = inbox / "IMG_0001.bmp"  # BMP: the next photo has exactly the same size
    photo.write_bytes(image(1, ".bmp"))  # day 1: a watch
    assert cli(model, inbox, "--sort-into", out, "--move") == 0
    assert files(out) == ["Watches/IMG_0001.bmp"]
    photo.write_bytes(image(0, ".bmp"))  # day 2: a T-shirt under the same name, the same size
    st = photo.stat()
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    capsys.readouterr()
    assert cli(model, inbox, "--sort-into", out, "--move") == 0
    text = capsys.readouterr().out
    assert "from an earlier run" not in text and "1 files changed since their row" in text
    assert files(out) == ["Tshirts/IMG_0001.bmp", "Watches/IMG_0001.bmp"]
    assert (out / "Tshirts" / "IMG_0001.bmp").read_bytes() == image(0, ".bmp")
    row = read_labels(inbox / JOURNAL_NAME)["IMG_0001.bmp"]
    assert row.label == "Tshirts" and row.identity == (st.st_size, st.st_mtime_ns + 10**9)


def test_an_unchanged_file_is_still_resumed(clf, tmp_path):
    src = photos(tmp_path / "src", 3)
    assert run_labeling(src, clf).this_run == 3
    s = run_labeling(src, clf)
    assert (s.resumed, s.this_run, s.changed) == (3, 0, 0)


def test_an_old_journal_without_identity_is_read_and_its_model_rows_labelled_again(clf, model, tmp_path):
    src = photos(tmp_path / "src", 3)
    fp = model_fingerprint(model)
    with open(src / JOURNAL_NAME, "w", newline="", encoding="utf-8") as f:  # as version 8-column wrote it
        w = csv.writer(f, lineterminator="\n")
        w.writerow(MODEL_FIELDS)
        w.writerow(["IMG_0000.png", "Watches", "0.9", "Watches:0.9", "0", "", "model", fp])
        w.writerow(["IMG_0001.png", "Casual Shoes", "1.0", "", "0", "", "human", ""])  # a person's: kept
    s = run_labeling(src, clf)
    assert (s.resumed, s.this_run) == (1, 2)
    with open(src / JOURNAL_NAME, newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == FIELDS  # header upgraded, old rows kept as they were
    got = read_labels(src / JOURNAL_NAME)
    assert got["IMG_0000.png"].label == "Tshirts" and got["IMG_0000.png"].identity is not None
    assert got["IMG_0001.png"].source == "human"


# --- 6. every file is labelled or named as skipped ------------------------------------------------


def test_files_that_are_not_images_are_named_counted_and_left_in_place(model, tmp_path, capsys):
    src, out = photos(tmp_path / "src", 1), tmp_path / "sorted"
    others = ["IMG_0002.heic", "b.avif", "c.jfif", "d.gif", "noext", "notes.txt", ".DS_Store"]
    for name in others:
        (src / name).write_bytes(b"not decodable here")
    (src / "IMG_0003").write_bytes(image(1))  # no suffix, but an image: labelled and sorted
    before = digests(src)
    assert cli(model, src, "--sort-into", out, "--move") in (0, 1)  # 1: error rows, once HEIC etc. are read
    text = capsys.readouterr().out
    rows = read_labels(src / JOURNAL_NAME)
    skipped = sorted(n for n in others if n not in rows)  # every file: a row, or named as skipped
    assert {"noext", "notes.txt", ".DS_Store"} <= set(skipped)
    assert f"[{len(skipped)} files skipped, not a supported image: {', '.join(skipped[:5])}" in text
    assert all((src / n).exists() for n in skipped)  # not moved
    assert rows["IMG_0003"].label == "Watches" and (out / "Watches" / "IMG_0003").exists()
    assert digests(src) + digests(out) == before
    capsys.readouterr()
    assert cli(model, src) in (0, 1)  # the journal, its record and lock are ours: not counted
    assert f"[{len(skipped)} files skipped" in capsys.readouterr().out


def test_the_summary_names_the_first_few_skipped_files_and_counts_the_rest(clf, tmp_path):
    src = photos(tmp_path / "src", 1)
    (src / "a\nb.txt").write_text("a newline in the name")
    for i in range(8):
        (src / f"note{i}.txt").write_text("x")
    s = run_labeling(src, clf)
    assert s.skipped == 9 and s.skipped_names == ("a\nb.txt", *(f"note{i}.txt" for i in range(4)))
    assert "[9 files skipped, not a supported image: a\\x0ab.txt, note0.txt" in s.line()
    assert "and 4 more]" in s.line() and "\n" not in s.line()


# --- 7. two labels never share a folder -----------------------------------------------------------


@pytest.mark.parametrize(
    ("classes", "clash"),
    [
        (("Watches", "Watches.", "Casual Shoes"), "'Watches.' and 'Watches'"),
        (("Tshirts", "needs_review.", "Casual Shoes"), "'needs_review.' and the review pile"),
    ],
)
def test_labels_that_collapse_to_one_folder_are_refused_before_sorting(tmp_path, capsys, classes, clash):
    m = make_tiny_models(classes=classes, tflite=False)["onnx_int8"]
    src, out = photos(tmp_path / "src", 3), tmp_path / "sorted"
    before = digests(src)
    assert cli(m, src, "--sort-into", out, "--move") == 2
    err = capsys.readouterr().err.strip()
    assert clash in err and "would share the folder" in err and len(err.splitlines()) == 1
    assert digests(src) == before and files(out) == []
    assert cli(m, src) == 0  # labelling alone is fine


def test_a_person_s_label_differing_only_in_case_is_refused_before_sorting(model, tmp_path, capsys):
    src, out = photos(tmp_path / "src", 2), tmp_path / "sorted"
    append_records(src / JOURNAL_NAME, [LabelRecord("IMG_0000.png", "watches", 1.0, [], source="human")])
    err = _refused(model, capsys, src, "--sort-into", out, "--move")
    assert "'watches' and 'Watches'" in err and "would share the folder" in err  # one folder on macOS/Windows
    assert files(out) == [] and len(files(src)) == 2


# --- 8, 9, 13. journal files that are not regular files -------------------------------------------


def _refused(model: Path, capsys, *args: object) -> str:
    assert cli(model, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@needs_fifo
@pytest.mark.timeout(20)
@pytest.mark.parametrize("which", ["journal", "record", "lock"])
def test_a_fifo_as_the_journal_its_record_or_its_lock_is_refused_without_blocking(
    model, tmp_path, capsys, which
):
    src = photos(tmp_path / "src", 1)
    journal = tmp_path / "elsewhere" / "j.csv"
    journal.parent.mkdir()
    target = {"journal": journal, "record": Path(f"{journal}.meta.json"), "lock": Path(f"{journal}.lock")}[
        which
    ]
    os.mkfifo(target)
    err = _refused(model, capsys, src, "--out", journal)
    assert str(target) in err and "FIFO" in err


@needs_fifo
@pytest.mark.timeout(20)
def test_a_fifo_as_the_default_journal_in_the_folder_is_refused(model, tmp_path, capsys):
    src = photos(tmp_path / "src", 1)
    os.mkfifo(src / JOURNAL_NAME)
    assert "FIFO" in _refused(model, capsys, src)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["in the folder", "--out"])
def test_dev_zero_as_the_journal_is_refused_without_reading(model, tmp_path, where):
    """In a child process with 3 GB of address space: reading /dev/zero fails there, not here."""
    src = photos(tmp_path / "src", 1)
    link = src / JOURNAL_NAME if where == "in the folder" else tmp_path / "j.jsonl"
    os.symlink("/dev/zero", link)
    cmd = [sys.executable, "-m", "fashion_edge.runtime.label_cli", str(src), "--model", str(model)]
    cmd += [] if where == "in the folder" else ["--out", str(link)]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=25, preexec_fn=limit, cwd=tmp_path)
    err = res.stderr.strip()
    assert res.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"fashion-label: error: {link}:") and "character device" in err


def test_a_journal_symlinked_to_a_missing_path_is_refused_not_created(model, tmp_path, capsys):
    src = photos(tmp_path / "src", 1)
    outside = tmp_path / "outside" / "stolen.csv"
    outside.parent.mkdir()
    os.symlink(outside, src / JOURNAL_NAME)
    assert "symlink to a missing path" in _refused(model, capsys, src)
    assert not outside.exists()


def test_a_lock_symlinked_to_another_file_is_refused_and_the_file_untouched(model, tmp_path, capsys):
    src = photos(tmp_path / "src", 1)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, src / f"{JOURNAL_NAME}.lock")
    assert "it is a symlink" in _refused(model, capsys, src)
    assert victim.read_text() == "keep me" and not (src / JOURNAL_NAME).exists()


@needs_fifo
@pytest.mark.timeout(30)
def test_a_fifo_journal_through_a_subprocess_ends_at_once(model, tmp_path):
    src = photos(tmp_path / "src", 1)
    os.mkfifo(src / JOURNAL_NAME)
    cmd = [sys.executable, "-m", "fashion_edge.runtime.label_cli", str(src), "--model", str(model)]
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=25)
    assert done.returncode == 2 and "FIFO" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - t0 < 25


# --- 11, 12. a big or hostile journal is streamed -------------------------------------------------


def test_a_journal_of_many_rows_is_streamed_in_bounded_memory(clf, tmp_path):
    src = photos(tmp_path / "src", 2)
    journal = src / JOURNAL_NAME
    assert run_labeling(src, clf).this_run == 2
    row = (
        "old/IMG_{:07d}.jpg,Watches,0.9000,Watches:0.9000|Tshirts:0.0500,0,,model,0123456789abcdef,12345,1\n"
    )
    with open(journal, "a", encoding="utf-8") as f:
        for start in range(0, 200_000, 10_000):
            f.write("".join(row.format(i) for i in range(start, start + 10_000)))
    size = journal.stat().st_size
    tracemalloc.start()
    try:
        found = scan(journal, keep={"IMG_0000.png", "IMG_0001.png"}, slim=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.rows == 200_002 and set(found.records) == {"IMG_0000.png", "IMG_0001.png"}
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte journal"
    s = run_labeling(src, clf)
    assert (s.resumed, s.this_run) == (2, 0)


def test_a_deeply_nested_or_huge_jsonl_line_is_ignored_without_a_traceback(model, tmp_path, capsys):
    src = photos(tmp_path / "src", 2)
    journal = tmp_path / "j.jsonl"
    assert cli(model, src, "--out", journal) == 0
    with open(journal, "a", encoding="utf-8") as f:
        f.write("[" * 200_000 + "\n")
        f.write('{"path": "' + "x" * (3 << 20) + '"}\n')  # longer than any journal line
    capsys.readouterr()
    assert cli(model, src, "--out", journal) == 0
    assert "[2 malformed journal rows ignored" in capsys.readouterr().out


# --- second hostile round (2026-12-06) ------------------------------------------------------------


def test_two_runs_moving_the_same_folder_at_once_lose_nothing(model, tmp_path, monkeypatch):
    """Run B, on the same folder with its own journal, finds run A's fresh hard link just before
    A unlinks the source and takes it for a killed run's move: B unlinks the source. A's unlink
    then fails, and A used to remove its link again: the last place of the photo."""
    from fashion_edge.runtime import placement

    src, out = photos(tmp_path / "src", 4), tmp_path / "sorted"
    before = digests(src)
    real_link, real_unlink = os.link, os.unlink
    linked: dict[str, Path] = {}

    def link(a, b, *args, **kw):
        real_link(a, b, *args, **kw)
        linked.setdefault(Path(a).name, Path(b))

    def other_run_first(path, *args, **kw):
        name = Path(path).name
        if Path(path).parent == src and name in linked:  # run B gets there just now
            assert placement.place(src / name, linked.pop(name).parent, move=True).parent.parent == out
        return real_unlink(path, *args, **kw)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "unlink", other_run_first)
    assert cli(model, src, "--sort-into", out, "--move", "--out", tmp_path / "a.csv") == 0
    assert linked == {} and files(src) == []
    assert digests(out) == before


def _other_file_system(monkeypatch, src: Path) -> None:
    """No link or rename from ``src`` to the class folders: a move must copy (like /dev/shm)."""
    real_link, real_rename = os.link, os.rename

    def call(real):
        def other_fs(a, b, *args, **kw):
            if Path(a).parent == src:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(a, b, *args, **kw)

        return other_fs

    monkeypatch.setattr(os, "link", call(real_link))
    monkeypatch.setattr(os, "rename", call(real_rename))


def test_a_photo_still_being_written_is_not_removed_after_its_copy(model, tmp_path, monkeypatch, capsys):
    """A move across file systems copies, checks the copy, then unlinks the source. An uploader
    still appending to the photo after the check lost those bytes with the source."""
    from fashion_edge.runtime import placement

    src, out = photos(tmp_path / "src", 2), tmp_path / "sorted"
    _other_file_system(monkeypatch, src)
    real_fsync_dir = placement.fsync_dir

    def fsync_dir_while_appending(path):  # runs between the checked copy and the unlink
        real_fsync_dir(path)
        if Path(path).parent == out:
            for p in src.glob("*.png"):
                with open(p, "ab") as f:
                    f.write(b"MORE")

    monkeypatch.setattr(placement, "fsync_dir", fsync_dir_while_appending)
    assert cli(model, src, "--sort-into", out, "--move") == 2
    err = capsys.readouterr().err
    assert "IMG_0000.png: cannot move IMG_0000.png (it changed while it was copied; run again" in err
    assert all(p.read_bytes().endswith(b"MORE") for p in src.glob("*.png")) and len(files(src)) == 2
    assert files(out) == []  # the checked copy was removed again: the source holds every byte
    monkeypatch.setattr(placement, "fsync_dir", real_fsync_dir)  # the writer is done: a rerun moves it
    before = digests(src)
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert files(src) == [] and digests(out) == before


def test_two_runs_on_a_file_system_without_hard_links_never_replace_each_other(model, tmp_path, monkeypatch):
    """On FAT or exFAT (no hard links) a file reached its name by ``os.rename``, which replaces:
    another run placing a photo of the same name between the check and the rename lost it."""
    from fashion_edge.runtime import placement

    src, other = photos(tmp_path / "src", 1), tmp_path / "other"
    other.mkdir()
    (other / "IMG_0000.png").write_bytes(image(0, strength=99))  # another photo, the same name
    out = tmp_path / "sorted"
    before = digests(src) + digests(other)
    real_rename = os.rename

    def no_hard_links(*args, **kw):
        raise OSError(errno.EPERM, "Operation not permitted")

    def other_run_first(a, b, *args, **kw):  # the other run gets its photo there just now
        if Path(a).parent == src:
            placement.place(other / "IMG_0000.png", Path(b).parent, move=True)
        return real_rename(a, b, *args, **kw)

    monkeypatch.setattr(os, "link", no_hard_links)
    monkeypatch.setattr(os, "rename", other_run_first)
    assert cli(model, src, "--sort-into", out, "--move", "--review-below", "1.0") == 0
    assert files(out) == ["needs_review/IMG_0000 (1).png", "needs_review/IMG_0000.png"]
    assert digests(out) == before


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_correction_saved_without_a_final_newline_is_kept(model, tmp_path, suffix):
    """A person corrects the last row in an editor that saves without a final newline (VS Code's
    default): the row was taken for one torn by a crash and cut off, and the file relabelled."""
    src, journal = photos(tmp_path / "src", 3), tmp_path / f"j{suffix}"
    assert cli(model, src, "--out", journal) == 0
    last = list(read_labels(journal).values())[-1]
    last.label, last.source, last.model, last.needs_review = (
        "Watches" if last.label != "Watches" else "Tshirts",
        "human",
        "",
        False,
    )
    text = journal.read_text(encoding="utf-8").rstrip("\n").rsplit("\n", 1)[0] + "\n"
    edited = last.to_json() if suffix == ".jsonl" else ",".join(last.to_row())
    journal.write_text(text + edited, encoding="utf-8")  # no newline at the end
    (src / "IMG_0009.png").write_bytes(image(2))  # a new photo: rows are appended after it
    assert cli(model, src, "--out", journal) == 0
    rows = read_labels(journal)
    assert rows[last.path].label == last.label and rows[last.path].source == "human"
    assert set(rows) == {f"IMG_{i:04d}.png" for i in (0, 1, 2, 9)}
    assert journal.read_text(encoding="utf-8").count("\n") == (5 if suffix == ".csv" else 4)


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="names must be any bytes")
def test_a_name_spelt_like_an_escaped_one_keeps_its_own_row_and_label(model, tmp_path, capsys):
    """``a<0xff>.png`` is written ``a\\xff.png`` in the journal; a second file literally named
    ``a\\xff.png`` had the same key: one file was moved with the other's label, the other never
    sorted, and the run ended with an error."""
    src, out = tmp_path / "src", tmp_path / "sorted"
    src.mkdir()
    Path(os.fsdecode(os.fsencode(src) + b"/a\xff.png")).write_bytes(image(0))  # a T-shirt
    (src / "a\\xff.png").write_bytes(image(1))  # a watch
    before = digests(src)
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert capsys.readouterr().err.count("error") == 0
    assert files(src) == [] and digests(out) == before
    assert (out / "Watches" / "a\\xff.png").read_bytes() == image(1)
    assert Path(os.fsdecode(os.fsencode(out) + b"/Tshirts/a\xff.png")).read_bytes() == image(0)
    assert len(read_labels(src / JOURNAL_NAME)) == 2


@needs_fifo
@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["--copy", "--move"])
def test_a_fifo_swapped_in_for_a_photo_while_it_is_copied_does_not_block(
    model, tmp_path, monkeypatch, capsys, mode
):
    """Between placement's checks and its copy, another process renames the photo away and puts a
    FIFO under its name: the copy opened it with a plain open() and waited forever."""
    src, out = photos(tmp_path / "src", 1), tmp_path / "sorted"
    _other_file_system(monkeypatch, src)  # so that --move copies too
    photo = src / "IMG_0000.png"
    real_open = os.open

    def swap_when_copying(path, flags, *args, **kw):
        if Path(path).name.startswith(".fashion-tmp-") and not photo.is_fifo():
            os.replace(photo, tmp_path / "kept.png")  # (os.rename is the other file system here)
            os.mkfifo(photo)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", swap_when_copying)
    assert cli(model, src, "--sort-into", out, mode) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "IMG_0000.png" in err and "not a regular file (a FIFO)" in err
    assert (tmp_path / "kept.png").read_bytes() == image(0, strength=150)
    assert files(out) == [] and photo.is_fifo()


@pytest.mark.parametrize("where", ["in the folder", "--out"])
def test_a_journal_record_symlinked_to_a_person_s_file_never_replaces_it(model, tmp_path, capsys, where):
    """A shared folder (an unpacked zip) carries ``fashion-labels.csv.meta.json`` as a symlink to a
    person's document: the first run replaced the document with the journal's JSON record."""
    src = photos(tmp_path / "src", 1)
    victim = tmp_path / "thesis.txt"
    victim.write_text("years of work")
    journal = src / JOURNAL_NAME if where == "in the folder" else tmp_path / "j.csv"
    os.symlink(victim, journal.with_name(journal.name + ".meta.json"))
    args = () if where == "in the folder" else ("--out", journal)
    assert "cannot use this as the journal record: it is a symlink" in _refused(model, capsys, src, *args)
    assert victim.read_text() == "years of work" and not journal.exists()


def test_a_photo_moved_away_by_hand_while_its_batch_is_sorted_is_passed_over(
    model, tmp_path, monkeypatch, capsys
):
    """A person drags one photo out of the folder after it was labelled, just before it is placed:
    the run stopped with an error, leaving the rest of the folder unsorted."""
    from fashion_edge.runtime import placement

    src, out, away = photos(tmp_path / "src", 4), tmp_path / "sorted", tmp_path / "desk"
    away.mkdir()
    before = digests(src)
    real_clean = placement.clean_leftovers

    def drag_one_away(folder):  # runs once per class folder, when its first file is placed
        if (src / "IMG_0003.png").exists():
            os.replace(src / "IMG_0003.png", away / "IMG_0003.png")
        return real_clean(folder)

    monkeypatch.setattr(placement, "clean_leftovers", drag_one_away)
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert "moved 3 files" in capsys.readouterr().out
    assert files(src) == [] and files(away) == ["IMG_0003.png"]
    assert digests(out) + digests(away) == before


@pytest.mark.skipif(sys.platform == "win32", reason="names must be any bytes")
def test_a_name_with_a_carriage_return_is_resumed_and_copied_once(model, tmp_path, capsys):
    """``a\\rb.png``: the CSV writer leaves a CR unquoted, the row could not be read back, so the
    file was labelled again on every run and ``--copy`` added ``a\\rb (1).png``, ``(2)``..."""
    src, out = tmp_path / "src", tmp_path / "sorted"
    src.mkdir()
    (src / "a\rb.png").write_bytes(image(1))
    (src / "a\nb.png").write_bytes(image(0))
    for _ in range(3):
        assert cli(model, src, "--sort-into", out, "--copy") == 0
    printed = capsys.readouterr().out
    assert "malformed" not in printed and printed.count("[2 from an earlier run]") == 2
    assert len(files(out)) == 2
    # a person's label pasted with a CR (the app appends it as it is) reads back too
    append_records(src / JOURNAL_NAME, [LabelRecord("a\rb.png", "Bags\r", source="human")])
    assert read_labels(src / JOURNAL_NAME)["a\rb.png"].label == "Bags\r"


def test_copy_first_then_move_leaves_one_file_per_photo(model, tmp_path, capsys):
    """A careful user copies first, checks the class folders, then moves: every photo ended up
    twice, ``x.png`` (the copy) and ``x (1).png`` (the moved file)."""
    src, out = photos(tmp_path / "src", 4), tmp_path / "sorted"
    before = digests(src)
    assert cli(model, src, "--sort-into", out, "--copy") == 0
    layout = files(out)
    capsys.readouterr()
    assert cli(model, src, "--sort-into", out, "--move") == 0
    assert "moved 4 files" in capsys.readouterr().out  # onto the copies: only the sources removed
    assert files(src) == [] and files(out) == layout and digests(out) == before
