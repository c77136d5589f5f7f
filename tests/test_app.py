"""fashion-app under pytest-qt (offscreen): camera mode, folder review, models, settings.

Generated colour images + the tiny colour model from tests/onnx_tiny.py, so these run without the
real data; tests/test_app_realdata.py repeats the key checks on real catalogue images.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from fashion_edge import runtime  # noqa: E402
from fashion_edge.desktop_app.camera import CameraError, OpenCVCamera  # noqa: E402
from fashion_edge.desktop_app.models.folder_session import JOURNAL_NAME  # noqa: E402
from fashion_edge.desktop_app.models.label_table import REVIEW_TEXT, LabelTableModel  # noqa: E402
from fashion_edge.desktop_app.settings import AppSettings  # noqa: E402
from fashion_edge.desktop_app.views.main_window import CAMERA_TAB, FOLDER_TAB  # noqa: E402
from fashion_edge.desktop_app.views.model_info import model_facts  # noqa: E402
from fashion_edge.desktop_app.workers.camera_worker import crop_box  # noqa: E402
from fashion_edge.runtime.journal import FIELDS  # noqa: E402
from fashion_edge.runtime.labeling import read_labels  # noqa: E402
from fashion_edge.runtime.preprocess import camera_view, center_crop_aspect  # noqa: E402
from tests.app_helpers import Rig, SlowClassifier, add_bad_file, colour_frame, open_and_wait, write_rgb  # noqa: E402
from tests.onnx_tiny import DEFAULT_CLASSES, colour_image, make_tiny_models  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_paths() -> dict[str, Path]:
    return make_tiny_models(tflite=False)


@pytest.fixture
def clf(tiny_paths):
    return runtime.load(tiny_paths["onnx_int8"])


@pytest.fixture
def rig_factory(qtbot, tmp_path, clf):
    rigs: list[Rig] = []

    def make(frames=None, classifier=None, **camera_kw) -> Rig:
        rig = Rig(qtbot, tmp_path, classifier or clf, frames, **camera_kw)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


def colour_folder(root: Path, n: int = 9) -> Path:
    """n colour images (red/green/blue in turn, varying strength) and one unreadable file."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_rgb(root / f"item_{i:03d}.png", colour_image(i % 3, 80, 60, 120 + 12 * i % 130))
    add_bad_file(root)
    return root


# --- camera mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_camera_shows_the_classifier_label(rig_factory, clf, channel):
    frame = colour_frame(channel)
    rig = rig_factory([frame])
    view = rig.window.camera
    view.start()
    rig.qtbot.waitUntil(lambda: view.frames_shown >= 3, timeout=10000)
    expected = clf.predict([camera_view(frame, clf.meta)])[0]  # the product's camera path
    assert expected.label == DEFAULT_CLASSES[channel]  # the tiny model's design: one colour per class
    assert not expected.needs_review
    assert view.panel.label.text() == expected.label
    assert view.panel.current_label == expected.label
    assert view.panel.confidence.value() == round(expected.confidence * 100)
    assert [n.text() for n in view.panel.top_names] == [n for n, _ in expected.top_k]
    assert "ms" in view.panel.timing.text()


def test_camera_frame_is_cropped_to_the_framing_guide(rig_factory):
    frame = colour_frame(1)
    rig = rig_factory([frame])
    view = rig.window.camera
    view.start()
    rig.qtbot.waitUntil(lambda: view.last is not None, timeout=10000)
    assert view.last.crop_box == crop_box(frame.shape, 80, 60) == (140, 0, 360, 480)
    assert np.array_equal(view.captured_crop(), center_crop_aspect(frame, 80, 60))
    tall = np.arange(300 * 200 * 3, dtype=np.uint32).reshape(300, 200, 3)  # portrait: trim top and bottom
    x, y, w, h = crop_box(tall.shape, 80, 60)
    assert (x, w) == (0, 200) and y > 0
    assert np.array_equal(tall[y : y + h, x : x + w], center_crop_aspect(tall, 80, 60))


def test_low_confidence_shows_needs_review(rig_factory, clf):
    rig = rig_factory([colour_frame(2)])
    rig.holder.set_threshold(0.9999)
    view = rig.window.camera
    view.start()
    rig.qtbot.waitUntil(lambda: view.frames_shown >= 2, timeout=10000)
    assert view.panel.needs_review
    assert view.panel.current_label == ""
    assert REVIEW_TEXT in view.panel.status.text().lower()
    assert view.preview.guide_color.name() == "#ffb000"


def test_no_camera_shows_a_message_and_retry_works(rig_factory):
    rig = rig_factory([colour_frame(0)], fail_open="Camera 0 could not be opened: not connected")
    view = rig.window.camera
    view.start()
    rig.qtbot.waitUntil(lambda: view.stack.currentIndex() == 1, timeout=10000)
    assert "could not be opened" in view.message.text()
    assert rig.window.isVisible()
    rig.camera_kw = {}  # plugged in now
    rig.qtbot.mouseClick(view.retry_button, Qt.MouseButton.LeftButton)
    rig.qtbot.waitUntil(lambda: view.frames_shown >= 2, timeout=10000)
    assert view.stack.currentIndex() == 0


def test_camera_unplugged_mid_stream(rig_factory):
    rig = rig_factory([colour_frame(0)], fail_after=5)
    view = rig.window.camera
    view.start()
    rig.qtbot.waitUntil(lambda: view.stack.currentIndex() == 1, timeout=10000)
    assert view.frames_shown >= 1
    assert "unplugged" in view.message.text()
    rig.qtbot.waitUntil(lambda: not view.controller.running, timeout=5000)


def test_opencv_camera_missing_raises_clear_error():
    cam = OpenCVCamera(97)
    with pytest.raises(CameraError, match="could not be opened"):
        cam.open()


def test_space_freezes_and_save_writes_item_with_label(rig_factory, tmp_path):
    rig = rig_factory([colour_frame(1)])
    view = rig.window.camera
    view.start()
    rig.qtbot.waitUntil(lambda: view.frames_shown >= 2, timeout=10000)
    view.setFocus()
    rig.qtbot.keyClick(view, Qt.Key.Key_Space)
    assert view.frozen
    shown = view.frames_shown
    rig.qtbot.wait(200)
    assert view.frames_shown == shown  # the picture stays still
    assert view.capture_label.currentText() == "Watches"
    view.capture_label.setCurrentText("Tshirts")  # the person corrects it before saving
    rig.settings.capture_folder = tmp_path / "captures"
    rig.qtbot.mouseClick(view.save_button, Qt.MouseButton.LeftButton)
    saved = list((tmp_path / "captures" / "Tshirts").glob("*.png"))
    assert len(saved) == 1
    rows = read_labels(tmp_path / "captures" / JOURNAL_NAME)
    (rec,) = rows.values()
    assert rec.label == "Tshirts" and rec.source == "human" and rec.path.startswith("Tshirts/")
    assert not view.frozen  # back to live
    assert view.saved_list.count() == 1 and "Tshirts" in view.saved_list.item(0).text()


# --- folder mode ---------------------------------------------------------------------------


def test_folder_fills_with_labels_and_flags_bad_file(rig_factory, clf, tmp_path):
    folder = colour_folder(tmp_path / "photos")
    rig = rig_factory()
    summary = open_and_wait(rig, folder)
    assert rig.window.tabs.currentIndex() == FOLDER_TAB
    assert summary.total == 10 and summary.errors == 1 and not summary.cancelled
    model = rig.window.session.model
    assert model.rowCount() == 10
    rows = {r.path: r for r in model.rows}
    assert rows["broken.jpg"].error and rows["broken.jpg"].status == "unreadable"
    for name, row in rows.items():
        if name != "broken.jpg":
            assert row.label == clf.predict([folder / name])[0].label
    journal = read_labels(folder / JOURNAL_NAME)  # the same journal as fashion-label
    assert set(journal) == set(rows)
    # flagged rows come first in the default view
    first = rig.window.session.proxy.index(0, 0).data(LabelTableModel.RowRole)
    assert first.flagged
    assert rig.settings.last_folder == folder.resolve()


def test_folder_labeling_can_be_cancelled_and_resumes(rig_factory, clf, tmp_path):
    folder = tmp_path / "many"
    for i in range(40):
        write_rgb(folder / f"img_{i:03d}.png", colour_image(i % 3, 80, 60))
    rig = rig_factory(classifier=SlowClassifier(clf, 0.15))
    rig.window.session.batch_size = 4
    summaries = []
    rig.window.session.finished.connect(summaries.append)
    rig.window.open_folder(folder)
    assert rig.window.folder.cancel_button.isVisible()
    rig.qtbot.waitUntil(lambda: rig.window.folder.progress.value() >= 4, timeout=10000)
    rig.qtbot.mouseClick(rig.window.folder.cancel_button, Qt.MouseButton.LeftButton)
    rig.qtbot.waitUntil(lambda: bool(summaries), timeout=10000)
    assert summaries[0].cancelled
    assert 4 <= summaries[0].labelled < 40
    labelled = len(read_labels(folder / JOURNAL_NAME))
    assert labelled == summaries[0].labelled
    assert rig.window.session.model.counts()["pending"] == 40 - labelled
    assert not rig.window.folder.cancel_button.isVisible()
    # reopening resumes: only the rest is labelled
    rig.holder.set_classifier(clf)
    second = open_and_wait(rig, folder)
    assert second.resumed == labelled and second.labelled == 40 and not second.cancelled


def test_keyboard_review_saves_to_the_csv_at_once(rig_factory, tmp_path):
    folder = colour_folder(tmp_path / "photos", n=6)
    rig = rig_factory()
    open_and_wait(rig, folder)
    view, session = rig.window.folder, rig.window.session
    view.filter_box.setCurrentIndex(2)  # all, folder order
    table = view.table
    table.setFocus()
    table.setCurrentIndex(session.proxy.index(0, 0))
    rig.qtbot.keyClick(table, Qt.Key.Key_Down)  # arrow keys move
    assert view.current_source_row() == 1
    path1 = session.model.rows[1].path
    rig.qtbot.keyClick(table, Qt.Key.Key_3)  # class 3 = Casual Shoes
    rec = read_labels(folder / JOURNAL_NAME)[path1]  # on disk straight away (fsync'd)
    assert (rec.label, rec.source, rec.confidence, rec.needs_review) == ("Casual Shoes", "human", 1.0, False)
    assert view.current_source_row() == 2  # moved on
    path2, label2 = session.model.rows[2].path, session.model.rows[2].label
    rig.qtbot.keyClick(table, Qt.Key.Key_Return)  # accept the shown label
    rec2 = read_labels(folder / JOURNAL_NAME)[path2]
    assert (rec2.label, rec2.source) == (label2, "human")
    # searchable list: "/" then type, Enter
    path3 = session.model.rows[3].path
    rig.qtbot.keyClick(table, Qt.Key.Key_Slash)
    assert view.search.hasFocus()
    rig.qtbot.keyClicks(view.search, "watc")
    rig.qtbot.keyClick(view.search, Qt.Key.Key_Return)
    assert read_labels(folder / JOURNAL_NAME)[path3].label == "Watches"
    assert table.hasFocus()
    # the unreadable file cannot be given a label
    bad = session.model.row_of("broken.jpg")
    assert not session.set_label(bad, "Tshirts")
    # a fresh session on the folder shows the people's labels (resume after a crash)
    rig2 = rig_factory()
    open_and_wait(rig2, folder)
    rows = {r.path: r for r in rig2.window.session.model.rows}
    assert rows[path1].label == "Casual Shoes" and rows[path1].source == "human"
    assert rows[path3].label == "Watches"


def test_sort_copies_without_overwriting_and_move_asks(rig_factory, tmp_path):
    folder = colour_folder(tmp_path / "photos", n=6)
    rig = rig_factory()
    open_and_wait(rig, folder)
    session = rig.window.session
    rig.holder.set_threshold(0.0)  # nothing needs review: every item goes to its label folder
    first = next(r for r in session.model.rows if not r.error)
    dest = tmp_path / "sorted"
    clash = dest / first.label / first.path
    clash.parent.mkdir(parents=True)
    clash.write_bytes(b"someone else's file")
    rig.dialogs.folder, rig.dialogs.sort_answer = dest, "copy"
    done = []
    session.sorted.connect(done.append)
    rig.window.sort_folder()
    rig.qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert len(done[0]) == 6  # the unreadable file is not sorted
    assert clash.read_bytes() == b"someone else's file"
    assert (clash.parent / f"{Path(first.path).stem} (1){Path(first.path).suffix}").exists()
    assert len(list(folder.glob("item_*.png"))) == 6  # copied, originals stay
    rig.dialogs.sort_answer = None  # move declined at the confirmation
    rig.window.sort_folder()
    rig.qtbot.wait(100)
    assert len(list(folder.glob("item_*.png"))) == 6


def test_export_csv_one_row_per_item(rig_factory, tmp_path):
    folder = colour_folder(tmp_path / "photos", n=4)
    rig = rig_factory()
    open_and_wait(rig, folder)
    rows = rig.window.session.model.rows
    good = next(i for i, r in enumerate(rows) if not r.error)
    assert rig.window.session.set_label(good, "Watches")
    rig.dialogs.csv = tmp_path / "out.csv"
    rig.window.export_csv()
    text = (tmp_path / "out.csv").read_text().splitlines()
    assert text[0] == ",".join(FIELDS)  # the journal's own header (fashion-label reads it back)
    assert len(text) == 1 + 5
    assert read_labels(tmp_path / "out.csv")[rows[good].path].label == "Watches"


def test_a_persons_label_stays_with_its_photo_not_with_a_reused_name(rig_factory, tmp_path, tiny_paths):
    from fashion_edge.runtime.label_cli import main as label_main

    folder = colour_folder(tmp_path / "photos", n=3)
    rig = rig_factory()
    open_and_wait(rig, folder)
    rows = rig.window.session.model.rows
    good = next(i for i, r in enumerate(rows) if not r.error)
    name = rows[good].path
    assert rig.window.session.set_label(good, "Casual Shoes")
    journal = folder / JOURNAL_NAME
    assert read_labels(journal)[name].identity == (
        os.stat(folder / name).st_size,
        os.stat(folder / name).st_mtime_ns,
    )

    model = str(rig.window.holder.base.path)
    assert label_main([str(folder), "--model", model]) in (0, 1)  # unchanged: the person's label is kept
    assert read_labels(journal)[name].label == "Casual Shoes"
    (folder / name).unlink()  # the next day another photo arrives under the same name
    cv2.imwrite(str(folder / name), colour_image(1, strength=220)[..., ::-1])
    assert label_main([str(folder), "--model", model]) in (0, 1)
    row = read_labels(journal)[name]
    assert row.source == "model" and row.label == "Watches"  # labelled again, not the old label


def test_threshold_reflags_folder_rows_and_is_remembered(rig_factory, tmp_path):
    folder = colour_folder(tmp_path / "photos", n=6)
    rig = rig_factory()
    open_and_wait(rig, folder)
    counts = rig.window.session.model.counts
    rig.window.threshold.setValue(1.0)
    assert counts()["review"] == 6
    rig.window.threshold.setValue(0.0)
    assert counts()["review"] == 0
    assert AppSettings.at(rig.settings.q.fileName()).threshold == 0.0


# --- models and settings ---------------------------------------------------------------------


def test_corrupt_or_foreign_model_keeps_the_old_one(rig_factory, tmp_path, tiny_paths):
    rig = rig_factory()
    before = rig.holder.classifier
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 50)
    rig.dialogs.model = bad
    rig.window.choose_model()
    assert rig.holder.classifier is before
    title, text = rig.dialogs.errors[-1]
    assert "broken.onnx" in text and before.path.name in text
    foreign = tmp_path / "foreign.tflite"
    foreign.write_bytes(b"TFL3" + bytes(100))
    assert not rig.window.open_model(foreign)
    assert rig.holder.classifier is before
    assert rig.settings.model_path is None
    # a good model is taken and remembered
    assert rig.window.open_model(tiny_paths["onnx_float32"])
    assert rig.holder.classifier.path == tiny_paths["onnx_float32"]
    assert rig.settings.model_path == tiny_paths["onnx_float32"].resolve()
    assert "float32" in rig.window.model_status.text()


def test_model_panel_facts(clf):
    facts = dict(model_facts(clf))
    assert facts["Format"] == "ONNX · int8"
    assert facts["Classes (3)"] == ", ".join(DEFAULT_CLASSES)
    assert facts["Test accuracy"] == "not stored in the file"
    meta = clf.meta.replace(metrics={"test_top1": 0.9123})
    clf.meta = meta
    assert dict(model_facts(clf))["Test accuracy"] == "91.2%"


def test_settings_roundtrip(tmp_path):
    s = AppSettings.at(tmp_path / "s.ini")
    assert s.last_folder is None and s.threshold is None and s.camera_index == 0
    s.last_folder, s.camera_index, s.threshold, s.model_path = tmp_path, 2, 0.4, tmp_path / "m.onnx"
    t = AppSettings.at(tmp_path / "s.ini")
    assert (t.last_folder, t.camera_index, t.threshold, t.model_path) == (
        tmp_path,
        2,
        0.4,
        tmp_path / "m.onnx",
    )
    t.threshold = None
    assert AppSettings.at(tmp_path / "s.ini").threshold is None


def test_camera_choice_is_remembered(rig_factory):
    rig = rig_factory()
    rig.window.camera.select_camera(1)
    assert rig.settings.camera_index == 1
    assert rig.window.tabs.currentIndex() == CAMERA_TAB


def test_fashion_app_cli_runs_to_first_prediction(tmp_path, tiny_paths):
    img = write_rgb(tmp_path / "red.png", colour_frame(0))
    out = subprocess.run(
        [sys.executable, "-m", "fashion_edge.desktop_app.main", "--model", str(tiny_paths["onnx_int8"]), "--fake-camera", str(img),
         "--settings", str(tmp_path / "s.ini"), "--exit-after-first-prediction"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "first-prediction Tshirts" in out.stdout


def test_fashion_app_cli_bad_fake_camera_image(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "fashion_edge.desktop_app.main", "--fake-camera", str(tmp_path / "nope.png")],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    assert out.returncode == 2
    assert "nope.png: image not found" in out.stderr and "Traceback" not in out.stderr


def test_long_sessions_do_not_exhaust_none_or_true_references():
    """PySide6 6.12.0 on CPython 3.11 drops a None reference per void call and a True per emit;
    without desktop_app's guard this loop aborts the interpreter (none_dealloc/bool_dealloc)."""
    code = (
        "import fashion_edge.desktop_app\n"
        "from PySide6.QtCore import QObject, Signal\n"
        "class P(QObject):\n    s = Signal()\n"
        "p = P()\n"
        "for _ in range(100_000):\n    p.setObjectName('x'); p.s.emit()\n"
        "print('alive')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-500:]
    assert "alive" in out.stdout


def test_dropping_a_folder_opens_it_and_a_model_file_loads_it(rig_factory, tmp_path, tiny_paths):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    folder = colour_folder(tmp_path / "dropped", n=3)
    rig = rig_factory()
    done = []
    rig.window.session.finished.connect(done.append)

    def drop(path: Path) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        event = QDropEvent(
            QPointF(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        )
        rig.window.dropEvent(event)

    drop(folder)
    rig.qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert rig.window.session.folder == folder and done[0].total == 4
    drop(tiny_paths["onnx_float32"])
    assert rig.holder.classifier.path == tiny_paths["onnx_float32"]
    drop(tmp_path / "notes.txt")  # neither: ignored
    assert rig.dialogs.errors == []


def test_foreign_csv_in_folder_is_reported_not_overwritten(rig_factory, tmp_path):
    folder = colour_folder(tmp_path / "photos", n=2)
    (folder / JOURNAL_NAME).write_text("sku,price\n1,2\n")
    rig = rig_factory()
    rig.window.open_folder(folder)
    assert rig.dialogs.errors and JOURNAL_NAME in rig.dialogs.errors[-1][1]
    assert (folder / JOURNAL_NAME).read_text() == "sku,price\n1,2\n"
    assert rig.window.session.job is None


def test_fashion_app_without_display_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run(
        [sys.executable, "-m", "fashion_edge.desktop_app.main", "--settings", str(tmp_path / "s.ini")],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
    )  # fmt: skip
    assert out.returncode == 2
    assert "no display found" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_tflite_model_opens_and_drives_the_camera(rig_factory):
    paths = make_tiny_models(tflite=True)  # first call converts with TensorFlow (cached after)
    rig = rig_factory([colour_frame(1)])
    assert rig.window.open_model(paths["tflite_int8"])
    clf = rig.holder.classifier
    assert clf.format == "tflite" and clf.precision == "int8"
    view = rig.window.camera
    view.start()
    rig.qtbot.waitUntil(lambda: view.frames_shown >= 3, timeout=10000)
    assert (
        view.panel.label.text().rstrip("?")
        == clf.predict([center_crop_aspect(colour_frame(1), 80, 60)])[0].label
    )
    assert "TFLITE int8" in rig.window.model_status.text()
