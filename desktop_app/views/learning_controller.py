"""Glue between corrections, the learning store, the refit worker, the model holder and the bar.

Every correction (folder mode) and saved capture (camera mode) is recorded; after
``refit_every`` new ones, or on *Learn from my corrections*, a LearnJob refits in the thread pool.
An accepted adapter is installed and used at once; one the safety gate refused is shown with
*Use anyway* (a forced refit from the cached embeddings) and *Keep the current model*.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, QThreadPool, Signal
from PySide6.QtWidgets import QWidget

from fashion_edge.desktop_app.model_holder import ModelHolder
from fashion_edge.desktop_app.models.learning import AUTO_REFIT_EVERY, FitResult, LearningStore
from fashion_edge.desktop_app.settings import AppSettings
from fashion_edge.desktop_app.views.learning_panel import LearningPanel, adapter_details, pct, summary_text
from fashion_edge.desktop_app.workers.jobs import FunctionJob
from fashion_edge.desktop_app.workers.learn_worker import LearnJob, warm_up

REFIT_EVERY_KEY = "learning/refit_every"  # the named setting N: refit after N new corrections (0 = off)
FOLDER_KEY = "learning/folder"


def learning_folder(settings: AppSettings) -> Path:
    """Where the examples and the adapter live: ``learning/folder`` if set, else the app's data folder.

    An ini-file settings (``--settings s.ini``, tests) keeps it beside the file: ``s-data/learning``.
    """
    value = settings.q.value(FOLDER_KEY, "")
    if value:
        return Path(str(value))
    if settings.q.format() == QSettings.Format.IniFormat:
        ini = Path(settings.q.fileName())
        return ini.with_name(f"{ini.stem}-data") / "learning"
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".fashion-app") / "learning"


def refit_every(settings: AppSettings) -> int:
    try:
        return max(0, int(settings.q.value(REFIT_EVERY_KEY, AUTO_REFIT_EVERY)))
    except (TypeError, ValueError):
        return AUTO_REFIT_EVERY


class LearningController(QObject):
    """Signals: ``classes_changed(list)`` (model classes + labels taught but not learned yet),
    ``message(str)`` (a status-bar line), ``fitted(FitResult, float)`` (result, worker wall seconds),
    ``model_changed()`` (a refit was installed, or Undo / Reset changed the model in use: the open
    folder is predicted again).
    """

    classes_changed = Signal(object)
    message = Signal(str)
    fitted = Signal(object, float)
    model_changed = Signal()

    def __init__(
        self,
        settings: AppSettings,
        holder: ModelHolder,
        panel: LearningPanel,
        dialogs: Any,
        pool: QThreadPool,
        window: QWidget,
    ) -> None:
        super().__init__(window)
        self.settings, self.holder, self.panel, self.dialogs, self.pool = (
            settings,
            holder,
            panel,
            dialogs,
            pool,
        )
        self.window = window
        self.store = LearningStore(learning_folder(settings))
        self.refit_every = refit_every(settings)
        self.job: LearnJob | None = None
        self.refused: FitResult | None = None
        self.problem = ""  # why the stored adapter is not in use (one line)
        self._again = False
        self.warm_job: FunctionJob | None = None
        self._warmed: Any = None  # the plain model warm_up ran for
        panel.learn_requested.connect(lambda: self.learn())
        panel.teach_requested.connect(self.teach)
        panel.undo_requested.connect(self.undo)
        panel.reset_requested.connect(self.reset)
        panel.use_anyway_requested.connect(self.use_anyway)
        panel.discard_requested.connect(self.discard)
        panel.cancel_requested.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.done.is_set()

    # --- model ----------------------------------------------------------------------------
    def attach(self) -> None:
        """Load the stored adapter with the model just loaded; one that does not fit is refused in one line."""
        from fashion_edge.runtime.adapter import AdapterError

        self.problem = ""
        self.refused = None
        base = self.holder.base
        if base is not None:
            try:
                adapter = self.store.load(base)
            except (AdapterError, OSError) as e:
                self.problem = str(e).splitlines()[0] if str(e) else type(e).__name__
                adapter = None
            if adapter is not None:
                self._use(adapter)
        self.refresh()

    def _use(self, adapter: Any) -> bool:
        """Predict through ``adapter``; if the runtime rejects it, say why and keep the plain model."""
        try:
            self.holder.set_adapter(adapter)
        except ValueError as e:  # AdapterError: e.g. a class name the metadata rules reject
            self.problem = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.holder.set_adapter(None)
            return False
        return True

    def classes(self) -> list[str]:
        """What the label pickers offer: the classes in use, then labels taught but not learned yet."""
        clf = self.holder.classifier
        known = list(clf.classes) if clf is not None else []
        return known + [c for c in self.store.labels() if c not in known]

    def can_learn(self) -> bool:
        """A model is loaded and its file has the embedding output the adapter learns on."""
        base = self.holder.base
        return base is not None and bool(getattr(base.meta, "embedding_output", None))

    def refresh(self) -> None:
        adapter = self.holder.adapter
        rows = self.store.rows()
        new = self.store.new_since_fit()
        base = self.holder.base
        if self.problem:
            text = f"Learned adapter not used: {self.problem} — using the plain model"
            self.panel.show_state(text, problem=True)
        elif base is not None and not self.can_learn():
            text = (
                f"{base.path.name} cannot learn: it has no embedding output (re-export it with "
                f"fashion-export) · {len({r.path for r in rows})} corrections kept for later"
            )
            self.panel.show_state(text, problem=True)
        else:
            text = summary_text(adapter, len({r.path for r in rows}), new, self.refit_every)
            self.panel.show_state(text, adapter_details(adapter) if adapter is not None else "")
        self.panel.set_buttons(
            can_learn=bool(rows) and self.can_learn(),
            can_undo=self.store.can_undo(),
            has_adapter=adapter is not None,
            new=new,
        )
        self.panel.show_refusal(self._refusal_text() if self.refused else "")
        self.classes_changed.emit(self.classes())

    # --- corrections ----------------------------------------------------------------------
    def record(self, path: str | Path, label: str, source: str = "folder") -> None:
        """A person labelled this image: keep it for learning; refit after ``refit_every`` new ones."""
        try:
            self.store.add(path, label, source)
        except (OSError, ValueError) as e:
            self.message.emit(
                f"Not kept for learning: {self.store.examples_path}: {getattr(e, 'strerror', None) or e}"
            )
            return
        if self.refit_every and self.can_learn() and self.store.new_since_fit() >= self.refit_every:
            self.learn()
        else:
            self.warm_up()
        self.refresh()

    def warm_up(self) -> None:
        """Load what a refit needs ahead, once per model, in the pool (``learn_worker.warm_up``)."""
        base = self.holder.base
        if base is None or base is self._warmed or not self.can_learn():
            return
        self._warmed = base
        self.warm_job = FunctionJob(lambda: warm_up(base))  # a failure here is met again by the refit
        self.pool.start(self.warm_job)

    def teach(self) -> None:
        """Name a new class and pick its photos; they are recorded and learned at once."""
        if not self.can_learn():
            why = self.panel.summary.text() if self.holder.base is not None else "Open a model first."
            self.dialogs.error(self.window, "Teach a new class", why)
            return
        answer = self.dialogs.teach_class(self.window, self.classes())
        if not answer:
            return
        name, paths = answer
        for p in paths:
            self.store.add(p, name, "taught")
        self.message.emit(f"{len(paths)} photos of {name} kept for learning")
        self.refresh()
        self.learn()

    # --- refit ----------------------------------------------------------------------------
    def learn(self, force: bool = False) -> LearnJob | None:
        """Refit in the pool (a second request while one runs refits once more afterwards)."""
        base = self.holder.base
        if base is None or not self.can_learn():
            return None
        if self.running:
            self._again = True
            return self.job
        self._again = False
        job = LearnJob(self.store, base, force=force)
        job.signals.progress.connect(
            lambda s, d, t, j=job: self.panel.set_progress(s, d, t) if j is self.job else None
        )
        job.signals.finished.connect(lambda r, j=job: self._on_fitted(j, r))
        job.signals.failed.connect(lambda m, j=job: self._on_failed(j, m))
        job.signals.cancelled.connect(lambda j=job: self._on_stopped(j, "Learning stopped"))
        self.job = job
        self.panel.set_running(True)
        self.message.emit("Learning from your corrections…")
        self.pool.start(job)
        return job

    def cancel(self, wait: bool = False) -> None:
        if self.job is not None:
            self.job.cancel()
            if wait:
                self.job.done.wait(30)

    def _finish(self, job: LearnJob) -> bool:
        """True when the job is still the current one for the current model."""
        if job is not self.job:
            return False
        self.panel.set_running(False)
        return job.classifier is self.holder.base

    def _on_fitted(self, job: LearnJob, result: FitResult) -> None:
        if not self._finish(job):
            return
        self.fitted.emit(result, job.wall_s)
        adapter = result.adapter
        skipped = f" ({len(result.skipped)} unreadable images left out)" if result.skipped else ""
        if adapter.accepted:
            self.install(result)
            self.message.emit(f"Learned from {adapter.n_examples} items in {job.wall_s:.1f} s{skipped}")
        else:
            self.refused = result
            self.message.emit("The safety gate refused the new adapter; the model in use is unchanged")
            self.refresh()
        self._maybe_again()

    def _on_failed(self, job: LearnJob, message: str) -> None:
        if not self._finish(job):
            return
        self.message.emit(f"Could not learn: {message}")
        self.panel.show_state(f"Could not learn: {message}", problem=True)
        self._maybe_again()

    def _on_stopped(self, job: LearnJob, message: str) -> None:
        if self._finish(job):
            self.message.emit(message)
            self.refresh()

    def _maybe_again(self) -> None:
        if self._again and self.store.new_since_fit():
            self.learn()

    def _refusal_text(self) -> str:
        a = self.refused.adapter if self.refused else None
        if a is None:
            return ""
        held = ""
        if a.heldout_acc is not None:
            held = f"; your held-out items {pct(a.heldout_acc)}, was {pct(a.heldout_acc_before)}"
        return (
            f"⚠ The safety gate refused the new adapter ({a.n_examples} items{held}): {a.refusal}. "
            "The model in use is unchanged."
        )

    def install(self, result: FitResult) -> None:
        try:
            self.store.install(result)
        except OSError as e:
            self.message.emit(f"{self.store.adapter_path}: could not save the adapter ({e.strerror or e})")
            return
        self.refused = None
        self.problem = ""
        self._use(result.adapter)
        self.refresh()
        self.model_changed.emit()

    def use_anyway(self) -> None:
        """Install the refused fit: refit with force (embeddings are cached, so it is quick)."""
        if self.refused is None:
            return
        self.refused = None
        self.panel.show_refusal("")
        self.learn(force=True)

    def discard(self) -> None:
        self.refused = None
        self.refresh()

    # --- undo / reset ---------------------------------------------------------------------
    def _reload(self) -> None:
        self.holder.set_adapter(None)
        self.attach()

    def undo(self) -> None:
        if self.running:
            self.cancel(wait=True)
        if self.store.undo():
            self._reload()
            what = "the previous adapter" if self.holder.adapter is not None else "the plain model"
            self.message.emit(f"Undone: back to {what}")
            self.model_changed.emit()

    def reset(self) -> None:
        if not self.dialogs.confirm(
            self.window,
            "Reset to factory",
            "Forget what was learned from your corrections and use the plain model? (Undo brings it back.)",
        ):
            return
        if self.running:
            self.cancel(wait=True)
        try:
            self.store.reset()
        except OSError as e:
            self.message.emit(f"{self.store.folder}: could not reset ({e.strerror or e})")
            return
        self.refused = None
        self.problem = ""
        self.holder.set_adapter(None)
        self.refresh()
        self.message.emit(f"Reset to factory at {time.strftime('%H:%M')}: using the plain model")
        self.model_changed.emit()
