"""QThreadPool jobs with result signals: folder labeling (the fashion-label code) and small file tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal


class JobSignals(QObject):
    """``progress(done, total)``, ``finished(result)``, ``failed(message)``; delivered on the UI thread."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)


class LabelingJob(QRunnable):
    """Labels a folder with ``runtime.labeling.run_labeling``: same code and CSV as ``fashion-label``.

    Resumable (valid rows already in the journal are skipped), holds the journal's lock while it
    runs, and cancellable through ``cancel()``: ``done`` is set within a fraction of a second even
    when a file blocks its reader (decoding threads never keep the job alive).
    """

    def __init__(
        self,
        folder: Path,
        classifier: Any,
        out_csv: Path,
        review_below: float | None = None,
        recursive: bool = False,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = JobSignals()
        self.folder = folder
        self.classifier = classifier
        self.out_csv = out_csv
        self.review_below = review_below
        self.recursive = recursive
        self.batch_size = 16
        self.cancel_event = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        from fashion_edge.runtime.journal import one_line
        from fashion_edge.runtime.labeling import run_labeling

        try:
            summary = run_labeling(
                self.folder,
                self.classifier,
                self.out_csv,
                recursive=self.recursive,
                top_k=3,
                review_below=self.review_below,
                batch_size=self.batch_size,
                progress=lambda done, total: self.signals.progress.emit(int(done), int(total)),
                cancel=self.cancel_event,
            )
        except Exception as e:  # OSError (read-only folder), ValueError...: one line, never a traceback
            self.signals.failed.emit(one_line(str(e)) if str(e) else type(e).__name__)
        else:
            self.signals.finished.emit(summary)
        finally:
            self.done.set()


class FunctionJob(QRunnable):
    """Runs ``fn()`` on the pool; its return value comes back through ``signals.finished``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = JobSignals()
        self.fn = fn
        self.done = threading.Event()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as e:
            self.signals.failed.emit(str(e) or type(e).__name__)
        else:
            self.signals.finished.emit(result)
        finally:
            self.done.set()
