"""The camera loop: read a frame, crop it to the model's aspect, classify, report. Never on the UI thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from fashion_edge.desktop_app.camera import CameraError, CameraSource
from fashion_edge.runtime.preprocess import camera_view


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: the full frame, the crop box (x, y, w, h) the model saw, the result."""

    frame: np.ndarray
    crop_box: tuple[int, int, int, int]
    prediction: Any  # runtime.Prediction
    infer_ms: float
    fps: float
    index: int


def crop_box(shape: tuple[int, ...], height: int, width: int) -> tuple[int, int, int, int]:
    """The (x, y, w, h) of ``center_crop_aspect`` on a frame of ``shape``: the framing guide."""
    fh, fw = shape[:2]
    target = width / height
    if fw / fh > target:
        w = max(1, round(fh * target))
        return ((fw - w) // 2, 0, w, fh)
    h = max(1, round(fw / target))
    return (0, (fh - h) // 2, fw, h)


class CameraWorker(QObject):
    """Runs ``run()`` in its own QThread until ``stop()``; frames the UI has not shown yet are dropped.

    Signals: ``opened(name)``, ``frame_ready(FrameResult)``, ``failed(message)``, ``finished()``.
    """

    opened = Signal(str)
    frame_ready = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, source: CameraSource, classifier: Any, threshold: float | None = None) -> None:
        super().__init__()
        self.source = source
        self.classifier = classifier
        self.threshold = threshold
        self._stop = threading.Event()
        self._shown = threading.Event()  # set when the UI has painted the last frame
        self._shown.set()
        self.frames = 0  # frames read and classified
        self.infer_ms_total = 0.0  # crop + predict time summed over all frames
        self.fps = 0.0

    def stop(self) -> None:
        """Ask the loop to end after the current frame (thread-safe)."""
        self._stop.set()

    def frame_shown(self) -> None:
        """The UI calls this once it has drawn a frame, so the next one may be sent."""
        self._shown.set()

    @Slot()
    def run(self) -> None:
        try:
            self._loop()
        except CameraError as e:
            self.failed.emit(str(e))
        except Exception as e:  # a model or driver failure must not kill the app
            self.failed.emit(f"Camera stopped: {type(e).__name__}: {e}")
        finally:
            try:
                self.source.close()
            finally:
                self.finished.emit()

    def _loop(self) -> None:
        self.source.open()
        self.opened.emit(self.source.name)
        meta = self.classifier.meta
        t_last = time.perf_counter()
        while not self._stop.is_set():
            frame = self.source.read()
            box = crop_box(frame.shape, meta.height, meta.width)
            crop = camera_view(frame, meta)
            t0 = time.perf_counter()
            pred = self.classifier.predict([crop], top_k=3, review_threshold=self.threshold)[0]
            t1 = time.perf_counter()
            self.frames += 1
            self.infer_ms_total += (t1 - t0) * 1000.0
            dt = t1 - t_last
            t_last = t1
            if dt > 0:
                self.fps = 1.0 / dt if self.fps == 0 else 0.9 * self.fps + 0.1 / dt
            if self._shown.is_set():
                self._shown.clear()
                self.frame_ready.emit(
                    FrameResult(frame, box, pred, (t1 - t0) * 1000.0, self.fps, self.frames)
                )


class CameraController(QObject):
    """Starts and stops a CameraWorker in a QThread; re-emits its signals on the UI thread."""

    opened = Signal(str)
    frame_ready = Signal(object)
    failed = Signal(str)
    stopped = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: CameraWorker | None = None
        self.thread: QThread | None = None
        self._retired: list[tuple[CameraWorker, QThread]] = []  # kept alive until their thread ends

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start(self, source: CameraSource, classifier: Any, threshold: float | None = None) -> None:
        self.stop()
        worker = CameraWorker(source, classifier, threshold)
        thread = QThread()
        thread.setObjectName("camera")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.opened.connect(self.opened)
        worker.frame_ready.connect(self._on_frame)
        worker.failed.connect(self.failed)
        worker.finished.connect(thread.quit)
        thread.finished.connect(lambda t=thread: self._on_thread_finished(t))
        self.worker, self.thread = worker, thread
        thread.start()

    def set_threshold(self, value: float | None) -> None:
        """A person's threshold, or None for the classifier's own review rule."""
        if self.worker is not None:
            self.worker.threshold = value

    def _on_frame(self, result: FrameResult) -> None:
        self.frame_ready.emit(result)
        if self.worker is not None:
            self.worker.frame_shown()

    def _on_thread_finished(self, thread: QThread) -> None:
        self._retired = [(w, t) for w, t in self._retired if t is not thread]
        if thread is self.thread:  # the loop ended by itself (camera error)
            self.worker, self.thread = None, None
            self.stopped.emit()

    def stop(self, wait_ms: int = 3000) -> None:
        """Stop the loop and wait for the thread (a blocked camera read is given ``wait_ms``)."""
        worker, thread = self.worker, self.thread
        if worker is None or thread is None:
            return
        worker.stop()
        thread.quit()
        if not thread.wait(wait_ms):
            self._retired.append((worker, thread))
        self.worker, self.thread = None, None
        self.stopped.emit()
