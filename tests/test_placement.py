"""Copies and moves are atomic and verified (issue 13 attacks 6, 7, 12): no partial file under a
real name, no twin deleted, long names, sorting into the folder itself, deep folders."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from fashion_edge.runtime import placement as pl
from fashion_edge.runtime.label_cli import main
from fashion_edge.runtime.labeling import PlacementError, find_images, run_labeling
from fashion_edge.runtime.placement import TMP_PREFIX, candidates, clean_leftovers, place
from tests.onnx_tiny import colour_image


def png(colour: int, strength: int = 200) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(colour_image(colour, strength=strength), cv2.COLOR_RGB2BGR))
    return buf.tobytes()


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- 6. partial files are never left under the real name ---------------------------------------


def test_disk_full_during_a_copy_leaves_no_partial_file_and_resume_completes(clf, tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(png(0, 150 + i))
    dest = tmp_path / "out"
    real = pl.copy_bytes

    def full_disk(s: Path, fd: int) -> None:
        os.write(fd, s.read_bytes()[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl, "copy_bytes", full_disk)
    with pytest.raises(PlacementError, match=r"out/Tshirts: cannot copy 0\.png \(No space left on device\)"):
        run_labeling(src, clf, sort_dest=dest)
    assert all_files(dest) == []  # neither a 0-byte/partial 0.png nor a temporary file
    monkeypatch.setattr(pl, "copy_bytes", real)
    run_labeling(src, clf, sort_dest=dest)
    assert all_files(dest) == ["Tshirts/0.png", "Tshirts/1.png", "Tshirts/2.png"]  # no "0 (1).png"


def test_the_cli_names_the_destination_not_the_journal_on_disk_full(model, tmp_path, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(png(1))
    monkeypatch.setattr(
        pl, "copy_bytes", lambda s, fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space"))
    )
    assert main([str(src), "--model", str(model), "--sort-into", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "out/Watches: cannot copy a.png (No space)" in err and "journal" not in err


def test_a_move_across_file_systems_killed_mid_copy_leaves_only_whole_files(tmp_path, monkeypatch):
    src, dest = tmp_path / "in", tmp_path / "out" / "Watches"
    src.mkdir()
    files = {f"{i}.png": png(1, 100 + i) for i in range(100)}
    for name, data in files.items():
        (src / name).write_bytes(data)

    def other_fs(real):  # the sources live on another file system: no link or rename from there
        def call(a: os.PathLike, b: os.PathLike) -> None:
            if Path(a).parent == src:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            real(a, b)

        return call

    monkeypatch.setattr(os, "link", other_fs(os.link))
    monkeypatch.setattr(os, "rename", other_fs(os.rename))
    real = pl.copy_bytes
    done = []

    def killed_at_50(s: Path, fd: int) -> None:
        if len(done) == 50:
            os.write(fd, s.read_bytes()[:7])  # what a kill -9 mid-copy leaves behind
            raise SystemExit("killed")
        done.append(s)
        real(s, fd)

    monkeypatch.setattr(pl, "copy_bytes", killed_at_50)
    with pytest.raises(SystemExit):
        for name in sorted(files):
            place(src / name, dest, move=True)
    stale = dest / f"{TMP_PREFIX}999999999-deadbeef"  # a temp file of a run that died
    stale.write_bytes(b"partial")
    monkeypatch.setattr(pl, "copy_bytes", real)
    for name in sorted(p.name for p in src.iterdir()):
        place(src / name, dest, move=True)
    assert clean_leftovers(dest) == 1
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)  # 100 whole files, nothing else
    assert all((dest / n).read_bytes() == d for n, d in files.items()) and not list(src.iterdir())


# --- 7. identical twins are kept ---------------------------------------------------------------


def twin_watches(src: Path) -> Path:
    """src/2023/watch.png and src/2024/watch.png: the same bytes under the same name."""
    for year in ("2023", "2024"):
        (src / year).mkdir(parents=True)
        (src / year / "watch.png").write_bytes(png(1))
    return src


def test_recursive_move_keeps_identical_twins(clf, tmp_path):
    src = twin_watches(tmp_path / "in")
    dest = tmp_path / "out"
    s = run_labeling(src, clf, recursive=True, sort_dest=dest, move=True)
    assert s.sorted_files == 2
    assert all_files(dest) == ["Watches/watch (1).png", "Watches/watch.png"]
    assert find_images(src, recursive=True) == []


def test_recursive_copy_keeps_identical_twins_and_a_rerun_copies_nothing(clf, tmp_path):
    src = twin_watches(tmp_path / "in")
    dest = tmp_path / "out"
    assert run_labeling(src, clf, recursive=True, sort_dest=dest).sorted_files == 2
    again = run_labeling(src, clf, recursive=True, sort_dest=dest)
    assert (again.sorted_files, again.already_sorted) == (0, 2)  # found, not copied (issue 22, 3)
    assert all_files(dest) == ["Watches/watch (1).png", "Watches/watch.png"]


def test_a_move_interrupted_after_the_link_finishes_without_a_duplicate(tmp_path):
    src, dest = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    dest.mkdir()
    (src / "a.png").write_bytes(png(0))
    os.link(src / "a.png", dest / "a.png")  # killed between the link and the unlink
    assert place(src / "a.png", dest, move=True) == dest / "a.png"
    assert all_files(dest) == ["a.png"] and not (src / "a.png").exists()


# --- 12. smaller ones --------------------------------------------------------------------------


def test_a_251_character_name_that_needs_a_suffix_works_on_every_run(clf, tmp_path):
    src, dest = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    name = "x" * 251 + ".png"
    (src / name).write_bytes(png(0))
    (dest / "Tshirts").mkdir(parents=True)
    (dest / "Tshirts" / name).write_bytes(png(0, 120))  # a different file holds the name
    for made in (1, 0):  # the second run finds its copy
        s = run_labeling(src, clf, sort_dest=dest)
        assert (s.sorted_files, s.already_sorted) == (made, 1 - made)
    names = sorted(p.name for p in (dest / "Tshirts").iterdir())
    assert len(names) == 2 and all(len(os.fsencode(n)) <= 255 for n in names)
    assert any(n.endswith(" (1).png") for n in names)


def test_candidates_fit_255_bytes_without_splitting_characters(tmp_path):
    name = "é" * 200 + ".jpeg"
    for c, _ in zip(candidates(tmp_path, name), range(3), strict=False):
        raw = os.fsencode(c.name)
        assert len(raw) <= 255 and c.name.endswith(".jpeg")
        raw.decode("utf-8")


def test_sorting_into_the_folder_itself_labels_and_sorts(model, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(png(i))
    assert main([str(src), "--model", str(model), "--sort-into", str(src), "--move"]) == 0
    out = capsys.readouterr().out
    assert "labelled 3 images" in out and "moved 3 files" in out
    assert all_files(src)[:3] == ["Casual Shoes/2.png", "Tshirts/0.png", "Watches/1.png"]
    assert (
        main([str(src), "--model", str(model), "--recursive", "--sort-into", str(src)]) == 0
    )  # nothing again


def test_1200_nested_folders_are_listed_without_recursion_error(tmp_path):
    d = tmp_path / "deep"
    d.mkdir()
    fd = os.open(d, os.O_RDONLY)  # build with relative mkdir: the absolute path would exceed PATH_MAX
    try:
        for _ in range(1200):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with open(os.open("x.jpg", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as f:
            f.write(b"x")
    finally:
        os.close(fd)
    try:
        found = find_images(d, recursive=True)
        assert len(found) == 1 and found[0].name == "x.jpg"
    finally:
        remove_deep(d)


def remove_deep(top: Path) -> None:
    """Delete a chain of nested "d" folders without recursion (shutil.rmtree would overflow)."""
    fds = [os.open(top, os.O_RDONLY)]
    while "d" in os.listdir(fds[-1]):
        fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
    for name in os.listdir(fds[-1]):
        os.unlink(name, dir_fd=fds[-1])
    while len(fds) > 1:
        os.close(fds.pop())
        os.rmdir("d", dir_fd=fds[-1])
    os.close(fds[0])


def test_too_many_threads_are_clamped_to_the_cores(model, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(png(0))
    assert main([str(src), "--model", str(model), "--threads", "1000"]) == 0
    assert f"using {os.cpu_count()}" in capsys.readouterr().err


# --- 3. a FIFO never hangs the run; one Ctrl-C stops it ------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_one_ctrl_c_stops_a_run_stuck_on_a_fifo(model, tmp_path):
    import signal
    import time

    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        (src / f"{i}.png").write_bytes(png(i % 3))
    os.mkfifo(src / "4x.jpg")  # sorts among the images; opening it blocks without a writer
    cmd = [sys.executable, "-m", "fashion_edge.runtime.label_cli", str(src), "--model", str(model),
           "--batch-size", "2", "--workers", "1", "--threads", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        if proc.poll() is None:  # stuck on the FIFO (before the decoder refuses special files)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 130 and time.monotonic() - t0 < 5
        else:  # the FIFO became an error row
            _, err = proc.communicate()
            assert proc.returncode == 1
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
