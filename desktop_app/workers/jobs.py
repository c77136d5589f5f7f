"""QThreadPool jobs with result signals: folder labeling (the fashion-label code) and small file tasks."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

BACKGROUND_NICE = 10  # the pool's jobs yield the CPU to the UI thread (Linux: a per-thread nice value)


def yield_to_ui() -> None:
    """Lower this pool thread's CPU priority, and so that of the decoding threads it starts (they
    inherit it), below the UI thread's: on a busy 2-core machine the table keeps answering while a
    folder is labelled or predicted again. Linux only (elsewhere, or when refused, nothing changes);
    a thread's nice value cannot be raised back without privileges, so pool threads stay at it."""
    native = getattr(threading, "get_native_id", None)
    if native is None or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        tid = native()
        if os.getpriority(os.PRIO_PROCESS, tid) < BACKGROUND_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
    except OSError:
        pass


class JobSignals(QObject):
    """``progress(done, total)``, ``finished(result)``, ``failed(message)``; delivered on the UI thread."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)


class PeopleFirst:
    """Keeps a labelling run from writing over labels people set while it runs.

    ``run_labeling`` decides at its start which rows to label (every row no person has set, and
    every row of another model); a person may still correct one of them before its batch is
    written. ``set_by_person`` records such a correction under the lock, and ``engine`` drops the
    model's record for those files, holding the same lock from that check until the batch is in
    the journal, so the person's row is always the last one.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.paths: set[str] = set()

    def set_by_person(self, path: str, write: Callable[[], None]) -> None:
        """Run ``write`` (the journal append of a person's row) and remember ``path``."""
        with self.lock:
            write()
            self.paths.add(path)

    def engine(
        self, clf: Any, review_below: float | None, sample: Sequence[Path], features: Any = None
    ) -> Callable[..., Any]:
        """``runtime.labeling``'s local decode+infer engine with people's files left out.

        With ``features`` (``models.folder_features.FolderFeatures``), files whose model outputs
        are kept are answered from them, and those decoded have theirs kept.
        """
        from fashion_edge.desktop_app.models.folder_features import RecordingClassifier
        from fashion_edge.runtime.label_engine import local_engine
        from fashion_edge.runtime.preprocess import choose_workers

        workers = choose_workers(list(sample))
        if features is None or not getattr(clf.meta, "embedding_output", None):
            inner = local_engine(clf, 3, review_below, workers)
        else:
            decoding = local_engine(RecordingClassifier(clf, features), 3, review_below, workers)
            inner = features.engine(clf, review_below, decoding)

        def run(batches: Sequence[Any], cancel: threading.Event) -> Iterator[list[Any]]:
            results = inner(batches, cancel)
            try:
                for records in results:
                    with self.lock:  # held until the run has appended this batch and asks for the next
                        yield [r for r in records if r.path not in self.paths]
            finally:
                results.close()

        return run


class LabelingJob(QRunnable):
    """Labels a folder with ``runtime.labeling.run_labeling``: same code and CSV as ``fashion-label``.

    Resumable (valid rows already in the journal are skipped), holds the journal's lock while it
    runs, and cancellable through ``cancel()``: ``done`` is set within a fraction of a second even
    when a file blocks its reader (decoding threads never keep the job alive). With ``people``,
    rows a person sets while it runs are never written over (``PeopleFirst``).
    """

    def __init__(
        self,
        folder: Path,
        classifier: Any,
        out_csv: Path,
        review_below: float | None = None,
        recursive: bool = False,
        people: PeopleFirst | None = None,
        sample: Sequence[Path] = (),
        features: Any = None,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = JobSignals()
        self.folder = folder
        self.classifier = classifier
        self.out_csv = out_csv
        self.review_below = review_below
        self.recursive = recursive
        self.people = people
        self.sample = list(sample)  # a few of the folder's files: how many decoding threads it wants
        self.features = features  # the folder's kept model outputs (models.folder_features)
        self.batch_size = 16
        self.cancel_event = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        from fashion_edge.runtime.journal import one_line
        from fashion_edge.runtime.labeling import run_labeling

        yield_to_ui()
        try:
            engine = (
                self.people.engine(self.classifier, self.review_below, self.sample, self.features)
                if self.people
                else None
            )
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
                engine=engine,
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
        yield_to_ui()
        try:
            result = self.fn()
        except Exception as e:
            self.signals.failed.emit(str(e) or type(e).__name__)
        else:
            self.signals.finished.emit(result)
        finally:
            self.done.set()
