"""Refitting the adapter off the UI thread: a QThreadPool job like the labelling job.

The fit runs with one BLAS thread: its matrices are small (a few hundred examples x the embedding
size), and OpenBLAS's second thread only spins against the camera and UI threads. Measured on the
2-core shared VM (load average ~12): a warm 200-correction refit (LearningStore.fit) took 5.5-6.4 s
with 2 BLAS threads and 0.36-0.56 s with 1. threadpoolctl limits only libraries already loaded, so
SciPy's own OpenBLAS is imported first.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

from fashion_edge.desktop_app.models.learning import Cancelled, LearningStore
from fashion_edge.desktop_app.workers.jobs import yield_to_ui


def warm_up(classifier: Any) -> None:
    """What every refit needs and no correction changes, loaded ahead (a pool job started with the
    first correction of a session, while the person goes on correcting): SciPy's optimiser and the
    catalogue check set (``runtime.adapter_gate.catalogue_for``: read from the user's cache, or
    computed and cached there on the model's first-ever use). The refit then pays neither."""
    import scipy.optimize  # noqa: F401
    import threadpoolctl  # noqa: F401

    from fashion_edge.runtime.adapter_gate import catalogue_for

    catalogue_for(classifier)


class LearnSignals(QObject):
    """``progress(stage, done, total)``, ``finished(FitResult)``, ``failed(message)``, ``cancelled()``;
    delivered on the UI thread.
    """

    progress = Signal(str, int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class LearnJob(QRunnable):
    """Embeds new example images (cached) and fits an adapter on the plain model; saves nothing.

    The UI decides what to do with the result (install it, or show the safety gate's refusal).
    """

    def __init__(self, store: LearningStore, classifier: Any, force: bool = False) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = LearnSignals()
        self.store = store
        self.classifier = classifier
        self.force = force
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self.wall_s = 0.0

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        t0 = time.perf_counter()
        yield_to_ui()
        try:
            import scipy.optimize  # noqa: F401  (the fit's BLAS: loaded before the limit is set)
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                result = self.store.fit(
                    self.classifier,
                    force=self.force,
                    progress=lambda s, d, t: self.signals.progress.emit(str(s), int(d), int(t)),
                    cancelled=self.cancel_event.is_set,
                )
        except Cancelled:
            self.wall_s = time.perf_counter() - t0
            self.signals.cancelled.emit()
        except Exception as e:  # AdapterError, LearningError, OSError...: one line, never a traceback
            self.wall_s = time.perf_counter() - t0
            text = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.signals.failed.emit(text)
        else:
            self.wall_s = time.perf_counter() - t0
            self.signals.finished.emit(result)
        finally:
            self.done.set()
