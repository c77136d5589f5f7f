"""Shared pieces for the desktop app tests: answers for dialogs, tiny model, a window factory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QThreadPool

from fashion_edge.desktop_app.camera import FakeCamera, on_background
from fashion_edge.desktop_app.model_holder import ModelHolder
from fashion_edge.desktop_app.settings import AppSettings
from fashion_edge.desktop_app.views.main_window import MainWindow
from fashion_edge.runtime.preprocess import list_images
from tests.onnx_tiny import colour_image


def colour_frame(channel: int) -> np.ndarray:
    """A 640x480 camera frame: a coloured item on a plain background."""
    return on_background(colour_image(channel, 160, 120), 480, 640, grey=235)


class FakeDialogs:
    """Records what the app would show; returns preset answers instead of blocking on a modal."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.infos: list[tuple[str, str]] = []
        self.folder: Path | None = None
        self.model: Path | None = None
        self.csv: Path | None = None
        self.sort_answer: str | None = "copy"
        self.confirm_answer = True

    def error(self, parent: Any, title: str, text: str) -> None:
        self.errors.append((title, text))

    def info(self, parent: Any, title: str, text: str) -> None:
        self.infos.append((title, text))

    def confirm(self, parent: Any, title: str, text: str) -> bool:
        return self.confirm_answer

    def choose_folder(self, parent: Any, title: str, start: Path | None = None) -> Path | None:
        return self.folder

    def open_model(self, parent: Any, start: Path | None = None) -> Path | None:
        return self.model

    def save_csv(self, parent: Any, start: Path | None = None) -> Path | None:
        return self.csv

    def sort_mode(self, parent: Any, count: int, dest: Path) -> str | None:
        return self.sort_answer


class SlowClassifier:
    """Delegates to a real Classifier but sleeps per batch, so a labelling run can be cancelled."""

    def __init__(self, clf: Any, delay_s: float = 0.05) -> None:
        self._clf = clf
        self.delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clf, name)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)
        return self._clf.probabilities(x)

    def predict_prepared(self, x: np.ndarray, *args: Any, **kwargs: Any) -> list:
        """The labelling loop's one call per batch (runtime.Classifier.predict_prepared)."""
        time.sleep(self.delay_s)
        return self._clf.predict_prepared(x, *args, **kwargs)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def add_bad_file(folder: Path, name: str = "broken.jpg") -> Path:
    """A file with an image suffix that is not an image."""
    p = folder / name
    p.write_bytes(b"\xff\xd8 this is not really a jpeg")
    return p


def real_images(n: int, classes: list[str] | None = None) -> list[tuple[Path, str]]:
    """(image path, articleType) for n catalogue images, spread over classes, in a fixed order."""
    from fashion_edge.training.data import load_catalogue

    cat = load_catalogue()
    wanted = set(classes) if classes else None
    by_class: dict[str, list[Path]] = {}
    for row in cat.rows:
        t = row["articleType"]
        if wanted is None or t in wanted:
            by_class.setdefault(t, []).append(cat.image_path(row["id"]))
    names = sorted(by_class, key=lambda t: -len(by_class[t]))[: (len(wanted) if wanted else 8)]
    out: list[tuple[Path, str]] = []
    i = 0
    while len(out) < n and any(i < len(by_class[t]) for t in names):
        for t in names:
            if i < len(by_class[t]) and len(out) < n:
                out.append((by_class[t][i], t))
        i += 1
    return out


def image_count(folder: Path) -> int:
    return len(list_images(folder))


class Rig:
    """A MainWindow with injected camera frames, dialogs, settings and thread pool."""

    def __init__(self, qtbot, tmp_path: Path, clf, frames=None, **camera_kw) -> None:
        self.qtbot = qtbot
        self.frames = frames if frames is not None else [colour_frame(0)]
        self.camera_kw = camera_kw
        self.settings = AppSettings.at(tmp_path / "settings.ini")
        self.holder = ModelHolder()
        self.holder.set_classifier(clf)
        self.dialogs = FakeDialogs()
        self.pool = QThreadPool()
        self.window = MainWindow(
            self.settings,
            self.holder,
            camera_factory=self.make_camera,
            dialogs=self.dialogs,
            pool=self.pool,
            cameras=[(0, "fake 0"), (1, "fake 1")],
        )
        qtbot.addWidget(self.window)
        self.window.show()

    def make_camera(self, index: int) -> FakeCamera:
        return FakeCamera(self.frames, **self.camera_kw)

    def close(self) -> None:
        self.window.close()
        self.pool.waitForDone(10000)


def open_and_wait(rig: Rig, folder: Path, timeout: int = 20000):
    summaries = []
    rig.window.session.finished.connect(summaries.append)
    rig.window.open_folder(folder)
    rig.qtbot.waitUntil(lambda: bool(summaries), timeout=timeout)
    return summaries[0]
