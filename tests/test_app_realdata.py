"""fashion-app on real catalogue photos: the camera shows the right label, folder mode end to end.

Needs ../shared/data (``requires_catalogue``). The camera test also needs the shipped model
(models/articletype8/model_int8.onnx); folder mechanics run on it when present, else on the tiny
model (they do not depend on how good the labels are).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from fashion_edge import runtime  # noqa: E402
from fashion_edge.desktop_app.camera import on_background  # noqa: E402
from fashion_edge.desktop_app.models.folder_session import JOURNAL_NAME  # noqa: E402
from fashion_edge.runtime.labeling import read_labels  # noqa: E402
from fashion_edge.runtime.preprocess import center_crop_aspect, read_image  # noqa: E402
from tests.app_helpers import Rig, SlowClassifier, add_bad_file, open_and_wait, real_images  # noqa: E402
from tests.conftest import requires_catalogue  # noqa: E402
from tests.onnx_tiny import make_tiny_models  # noqa: E402

SHIPPED = runtime.default_model_path()
requires_shipped_model = pytest.mark.skipif(
    not SHIPPED.exists(), reason=f"shipped model {SHIPPED} not built yet (fashion-export writes it)"
)

pytestmark = requires_catalogue


def held_out_ids(model_dir: Path) -> set[str]:
    """Image ids of the model's test split (never seen in training), if the folder lists them."""
    splits = model_dir / "splits.csv"
    if not splits.exists():
        return set()
    with open(splits, newline="", encoding="utf-8") as f:
        return {r["id"] for r in csv.DictReader(f) if r.get("split") == "test"}


@requires_shipped_model
def test_camera_shows_the_right_label_for_real_items(qtbot, tmp_path):
    from fashion_edge.training.data import load_catalogue

    clf = runtime.load(SHIPPED)
    cat = load_catalogue()
    held_out = held_out_ids(SHIPPED.parent)
    picks: dict[str, Path] = {}
    for row in cat.rows:  # per class: the first held-out photo the model gets right on its own
        t = row["articleType"]
        if t in clf.classes and t not in picks and (not held_out or row["id"] in held_out):
            path = cat.image_path(row["id"])
            pred = clf.predict([path])[0]
            if pred.label == t and not pred.needs_review:
                picks[t] = path
        if len(picks) == len(clf.classes):
            break
    assert len(picks) >= len(clf.classes) - 1, f"too few confidently right photos: {sorted(picks)}"
    right = 0
    for truth, path in picks.items():
        frame = on_background(read_image(path), 480, 640, grey=236)  # held up in front of a plain wall
        rig = Rig(qtbot, tmp_path, clf, [frame])
        view = rig.window.camera
        view.start()
        qtbot.waitUntil(lambda v=view: v.frames_shown >= 3, timeout=10000)
        expected = clf.predict([center_crop_aspect(frame, clf.meta.height, clf.meta.width)])[0]
        assert view.panel.label.text().rstrip("?") == expected.label  # the app shows the model's answer
        right += view.panel.label.text().rstrip("?") == truth  # "?" marks a needs-review guess
        rig.close()
    assert right >= len(picks) - 1, f"right label shown for {right} of {len(picks)} real items"


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """24 real catalogue photos of 8 article types plus one unreadable file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path, _ in real_images(24):
        shutil.copy2(path, folder / path.name)
    add_bad_file(folder, "IMG_0001.jpg")
    return folder


@pytest.fixture
def folder_clf():
    if SHIPPED.exists():
        return runtime.load(SHIPPED)
    return runtime.load(make_tiny_models(tflite=False)["onnx_int8"])


def test_real_folder_fills_cancels_corrects_and_sorts(qtbot, tmp_path, photo_folder, folder_clf):
    # cancel part-way (slowed down so the cancel lands between batches)
    rig = Rig(qtbot, tmp_path, SlowClassifier(folder_clf, 0.2))
    rig.window.session.batch_size = 4
    done = []
    rig.window.session.finished.connect(done.append)
    rig.window.open_folder(photo_folder)
    qtbot.waitUntil(lambda: rig.window.folder.progress.value() >= 4, timeout=15000)
    rig.window.session.cancel()
    qtbot.waitUntil(lambda: bool(done), timeout=15000)
    assert done[0].cancelled and done[0].labelled < 25
    rig.close()

    # reopen: resumes and fills every row; the bad file is a flagged row, not a dialog
    rig = Rig(qtbot, tmp_path, folder_clf)
    summary = open_and_wait(rig, photo_folder)
    assert summary.labelled == 25 and summary.errors == 1 and summary.resumed == done[0].labelled
    assert rig.dialogs.errors == []
    session, view = rig.window.session, rig.window.folder
    rows = {r.path: r for r in session.model.rows}
    assert rows["IMG_0001.jpg"].error
    some = next(p for p, r in rows.items() if not r.error)
    assert rows[some].label == folder_clf.predict([photo_folder / some])[0].label

    # keyboard correction lands in the CSV at once
    view.filter_box.setCurrentIndex(2)
    view.table.setFocus()
    row = session.model.row_of(some)
    view.table.setCurrentIndex(session.proxy.mapFromSource(session.model.index(row, 0)))
    new_label = next(c for c in folder_clf.classes if c != rows[some].label)
    rig.qtbot.keyClick(view.table, getattr(Qt.Key, f"Key_{folder_clf.classes.index(new_label) + 1}"))
    rec = read_labels(photo_folder / JOURNAL_NAME)[some]
    assert (rec.label, rec.source, rec.confidence) == (new_label, "human", 1.0)

    # sort: copies, never overwrites an existing file, corrected item lands in its new folder
    dest = tmp_path / "sorted"
    (dest / new_label).mkdir(parents=True)
    (dest / new_label / some).write_bytes(b"already here")
    rig.dialogs.folder, rig.dialogs.sort_answer = dest, "copy"
    sorted_pairs = []
    session.sorted.connect(sorted_pairs.append)
    rig.window.sort_folder()
    qtbot.waitUntil(lambda: bool(sorted_pairs), timeout=15000)
    assert len(sorted_pairs[0]) == 24
    assert (dest / new_label / some).read_bytes() == b"already here"
    stem, suffix = Path(some).stem, Path(some).suffix
    assert (dest / new_label / f"{stem} (1){suffix}").read_bytes() == (photo_folder / some).read_bytes()
    assert len(list(photo_folder.glob("*.jpg"))) == 25  # originals stay
    rig.close()
