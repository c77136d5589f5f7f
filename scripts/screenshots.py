"""Screenshots of fashion-app's two modes with real catalogue images (offscreen, no display needed).

    python scripts/screenshots.py [--model models/articletype8/model_int8.onnx] [--out docs/screenshots]

Camera mode is fed by FakeCamera with a catalogue photo on a plain background; folder mode labels
~30 catalogue photos plus one unreadable file in a temporary folder. Settings go to a temp file.
after-refit.png: a second folder labelled by the plain model, then learned from (Jeans taught),
showing the folder predicted again by the learned model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QThreadPool  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from fashion_edge import runtime  # noqa: E402
from fashion_edge.desktop_app.camera import FakeCamera, on_background  # noqa: E402
from fashion_edge.desktop_app.model_holder import ModelHolder  # noqa: E402
from fashion_edge.desktop_app.settings import AppSettings  # noqa: E402
from fashion_edge.desktop_app.views.main_window import MainWindow  # noqa: E402
from fashion_edge.runtime.preprocess import read_image  # noqa: E402
from fashion_edge.training.data import load_catalogue  # noqa: E402

SIZE = (1280, 800)


def wait(app: QApplication, condition, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def pick_images(classes: list[str], n: int, skip: int = 0) -> list[tuple[Path, str]]:
    """n catalogue photos, round-robin over the model's classes (others too if it has few)."""
    cat = load_catalogue()
    by_type: dict[str, list[Path]] = {}
    for row in cat.rows:
        by_type.setdefault(row["articleType"], []).append(cat.image_path(row["id"]))
    names = [c for c in classes if c in by_type] or sorted(by_type, key=lambda t: -len(by_type[t]))[:8]
    out: list[tuple[Path, str]] = []
    i = skip
    while len(out) < n:
        for t in names:
            if len(out) < n and i < len(by_type[t]):
                out.append((by_type[t][i], t))
        i += 1
    return out


def learning_shot(app: QApplication, window: MainWindow, clf, out: Path) -> None:
    """After learning from 90 corrections, then Jeans taught from 10 photos: the learning bar."""
    if not clf.meta.embedding_output:
        print(f"{out / 'learning.png'}: skipped, {clf.path.name} has no embedding output (re-export it)")
        return
    session, ctl = window.session, window.learning
    truth = {p.name: t for p, t in pick_images(list(clf.classes), 30)}
    for i, row in enumerate(session.model.rows):  # the person labels every readable item
        if not row.error and row.path in truth:
            session.set_label(i, truth[row.path])
    for p, t in pick_images(list(clf.classes), 60, skip=40):  # and saved 60 camera items earlier
        ctl.record(p, t, "capture")
    ctl.learn()
    wait(app, lambda: ctl.job is not None and ctl.job.done.is_set() and not ctl.panel.running, 300)
    jeans = [p for p, _ in pick_images(["Jeans"], 10, skip=5)]
    ctl.dialogs.teach_class = lambda *_a: ("Jeans", jeans)
    ctl.teach()  # then a new class from 10 photos
    wait(app, lambda: ctl.job is not None and ctl.job.done.is_set() and not ctl.panel.running, 300)
    session.proxy.refresh()
    window.folder.show_current()
    for _ in range(20):
        app.processEvents()
    shot = out / "learning.png"
    window.grab().save(str(shot))
    alert = ctl.panel.alert.text()
    print(f"{shot}: {ctl.panel.summary.text()}{' | ' + alert if alert else ''}")


def after_refit_shot(app: QApplication, window: MainWindow, clf, out: Path, tmp: Path) -> None:
    """A folder labelled by the plain model (Jeans among the items); the person marks 3 Jeans; after
    *Learn from my corrections* the folder's other rows are predicted again by the learned model."""
    if not clf.meta.embedding_output:
        return
    session, ctl, view = window.session, window.learning, window.folder
    ctl.dialogs.confirm = lambda *_a: True
    ctl.reset()  # start from the plain model
    folder = tmp / "Table 4"
    folder.mkdir()
    jeans = pick_images(["Jeans"], 16, skip=40)
    for p, _ in pick_images(list(clf.classes), 28, skip=80) + jeans:
        shutil.copy2(p, folder / p.name)
    done: list[object] = []
    session.finished.connect(done.append)
    window.open_folder(folder)
    wait(app, lambda: bool(done))
    for p, _ in jeans[:3]:  # the person types the new class for three of them
        session.set_label(session.model.row_of(p.name), "Jeans")
    for p, t in pick_images(list(clf.classes), 60, skip=40):  # camera items saved earlier
        ctl.record(p, t, "capture")
    for p, _ in pick_images(["Jeans"], 10, skip=5):
        ctl.record(p, "Jeans", "taught")
    got: list[object] = []
    session.relabelled.connect(got.append)
    ctl.learn()
    wait(app, lambda: bool(got), 300)
    view.filter_box.setCurrentIndex(0)  # needs review first
    view.table.setFocus()
    row = next((i for i in range(session.proxy.rowCount())
                if session.proxy.mapToSource(session.proxy.index(i, 0)).row() == session.model.row_of(jeans[5][0].name)), 0)  # fmt: skip
    view.table.setCurrentIndex(session.proxy.index(row, 0))
    view.show_current()
    window.statusBar().clearMessage()
    for _ in range(20):
        app.processEvents()
    shot = out / "after-refit.png"
    window.grab().save(str(shot))
    print(f"{shot}: {view.notice.text()} | {window.threshold.text()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="model file (default: the shipped int8 model)")
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--camera-class", default="Tshirts", help="articleType of the item held to the camera")
    args = ap.parse_args(argv)
    try:
        clf = runtime.load(args.model)
    except runtime.ModelLoadError as e:
        print(f"screenshots: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    tmp = Path(tempfile.mkdtemp(prefix="fashion-shots-"))
    try:
        holder = ModelHolder()
        holder.set_classifier(clf)
        cls = args.camera_class if args.camera_class in clf.classes else clf.classes[0]
        item_path = next(
            p for p, t in pick_images([cls], 40, skip=25) if t == cls and clf.predict([p])[0].label == cls
        )
        frame = on_background(read_image(item_path), 480, 640, grey=236, fill=0.97)
        settings = AppSettings.at(tmp / "settings.ini")
        settings.q.setValue("learning/refit_every", 0)  # learning.png: refits only when asked
        window = MainWindow(
            settings,
            holder,
            camera_factory=lambda _i: FakeCamera([frame], fps=30.0, name="USB camera"),
            pool=QThreadPool(),
            cameras=[(0, "USB camera (#0)"), (1, "Integrated camera (#1)")],
        )
        window.resize(*SIZE)
        window.show()
        window.camera.start()
        wait(app, lambda: window.camera.frames_shown >= 20)
        window.settings.capture_folder = tmp / "captures"  # one item already saved, as in real use
        window.camera.set_frozen(True)
        window.save_capture(window.camera.capture_label.currentText())
        shown = window.camera.frames_shown
        wait(app, lambda: window.camera.frames_shown >= shown + 10)
        window.statusBar().clearMessage()
        shot = args.out / "camera.png"
        window.grab().save(str(shot))
        print(f"{shot}: {cls} photo {item_path.name} -> {window.camera.panel.label.text()}")
        window.camera.stop()

        folder = tmp / "Photos from table 3"
        folder.mkdir()
        for p, _ in pick_images(list(clf.classes), 30):
            shutil.copy2(p, folder / p.name)
        (folder / "IMG_0412.jpg").write_bytes(b"\xff\xd8 half-copied file")
        done: list[object] = []
        window.session.finished.connect(done.append)
        window.open_folder(folder)
        wait(app, lambda: bool(done))
        session, view = window.session, window.folder
        flagged = [i for i, r in enumerate(session.model.rows) if r.flagged and not r.error]
        for i in flagged[:2]:  # a person has already checked two unsure items
            session.set_label(i, session.model.rows[i].top_k[0][0])
        session.proxy.refresh()
        view.table.setFocus()
        view.table.setCurrentIndex(session.proxy.index(1, 0))
        view.show_current()
        for _ in range(20):
            app.processEvents()
        shot = args.out / "folder.png"
        window.grab().save(str(shot))
        c = session.model.counts()
        print(
            f"{shot}: {c['total']} items, {c['review']} need review, {c['errors']} unreadable, {c['human']} reviewed"
        )
        learning_shot(app, window, clf, args.out)
        after_refit_shot(app, window, clf, args.out, tmp)
        window.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
