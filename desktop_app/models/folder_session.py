"""One opened folder: labels it in the background, takes corrections, sorts and exports.

The journal is ``<folder>/fashion-labels.csv``, the file ``fashion-label <folder>`` writes by
default (``runtime.labeling.JOURNAL_NAME``): reopening a folder resumes, and every correction is
appended (source=human, confidence 1.0, last row wins) and fsync'ed the moment it is made. While
the folder is being labelled the journal's lock is held, so ``fashion-label`` on the same folder
refuses; the review flag of model rows follows ``runtime.review.needs_review``.

When the model changes under an open folder (a refit, *Undo*, *Reset to factory*), ``relabel``
predicts again, in the background, every row no person has set: the same ``run_labeling`` run,
whose rows carry the new model's identity (``fashion-label --adapter`` rows do the same), so the
journal says which model made each suggestion. People's rows are never touched, also not those
set while it runs (``workers.jobs.PeopleFirst``); ``relabelled`` says what changed. The model's
outputs of every file labelled are kept while the folder is open (``models.folder_features``),
so predicting again needs no decoding or inference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from fashion_edge.desktop_app.models.folder_features import FolderFeatures
from fashion_edge.desktop_app.models.label_table import (
    ItemRow,
    LabelTableModel,
    ReviewFilterProxy,
    row_from_record,
)
from fashion_edge.desktop_app.workers.jobs import FunctionJob, LabelingJob, PeopleFirst
from fashion_edge.runtime.journal import identity_of, serialise, write_atomically
from fashion_edge.runtime.labeling import (
    JOURNAL_NAME,
    LabelingError,
    LabelRecord,
    append_records,
    find_images,
    read_labels,
    relative_key,
    sort_into,
)
from fashion_edge.runtime.review import needs_review

REFRESH_S = 0.25  # re-read the journal at most this often while a job runs
QUICK_S = 1.0  # a re-prediction shows its rows at the end unless it runs longer than this


@dataclass
class Changes:
    """What predicting a folder again changed, over the rows the model labels (people's excluded)."""

    predicted: int = 0  # rows the model answered again
    updated: int = 0  # suggestions with another label
    accepted: int = 0  # needed review, now auto-accepted
    review: int = 0  # were auto-accepted, now need review
    labelled: int = 0  # had no label yet
    kept: int = 0  # people's rows (never touched)
    cancelled: bool = False
    paths: set[str] = field(default_factory=set)  # the rows whose suggestion or flag changed

    def line(self) -> str:
        """One line for people, e.g. '40 items predicted again: 14 suggestions updated · 6 now
        auto-accepted · your 3 labels kept'."""
        if self.updated or self.accepted or self.review or self.labelled:
            parts = [
                f"{self.updated} suggestion{'s' * (self.updated != 1)} updated",
                f"{self.accepted} now auto-accepted",
                f"{self.review} now need{'s' * (self.review == 1)} review" if self.review else "",
                f"{self.labelled} labelled" if self.labelled else "",
            ]
            text = " · ".join(p for p in parts if p)
        else:
            text = "no suggestion changed"
        text = f"{self.predicted} item{'s' * (self.predicted != 1)} predicted again: {text}"
        if self.kept:
            text += f" · your {self.kept} label{'s' * (self.kept != 1)} kept"
        return text + (" (stopped early)" if self.cancelled else "")


def changes(before: dict[str, ItemRow], after: list[ItemRow], cancelled: bool = False) -> Changes:
    """Compare the rows before and after a run; rows of people (before or after) are left out."""
    out = Changes(cancelled=cancelled)
    for row in after:
        old = before.get(row.path)
        if row.source == "human":
            out.kept += 1
        if old is None or row.source != "model" or row.error or old.source == "human":
            continue
        out.predicted += 1
        if old.pending:
            out.labelled += 1
            continue
        if old.error:
            continue
        was_review, now_review = old.needs_review, row.needs_review
        if old.label != row.label:
            out.updated += 1
        if was_review and not now_review:
            out.accepted += 1
        elif now_review and not was_review:
            out.review += 1
        if old.label != row.label or was_review != now_review:
            out.paths.add(row.path)
    return out


def record_of(row: ItemRow, identity: tuple[int, int] | None = None) -> LabelRecord:
    """The journal row of a table row; ``identity`` (size, mtime_ns) ties it to the file it was for."""
    size, mtime_ns = identity if identity is not None else (None, None)
    return LabelRecord(
        row.path,
        row.label,
        row.confidence,
        list(row.top_k),
        row.needs_review,
        row.error,
        row.source or "model",
        size=size,
        mtime_ns=mtime_ns,
    )


class FolderSession(QObject):
    """Signals: ``started(total)``, ``progress(done, total)``, ``finished(LabelSummary)``,
    ``failed(message)``, ``sorted(pairs)``, ``saved(path)`` (a correction reached the journal),
    ``relabel_started(total)`` and ``relabelled(Changes)`` (the folder predicted again).
    """

    started = Signal(int)
    relabel_started = Signal(int)
    relabelled = Signal(object)
    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    sorted = Signal(object)
    saved = Signal(str)

    def __init__(self, pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self.model = LabelTableModel(self)
        self.proxy = ReviewFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.folder: Path | None = None
        self.journal: Path | None = None
        self.job: LabelingJob | None = None
        self.sort_job: FunctionJob | None = None
        self.batch_size = 16  # small batches: the grid fills visibly and cancel answers fast
        self.threshold: float | None = None  # None: keep the journal's needs_review flags
        self.meta: Any = None  # the classifier's metadata (unknown class, stored threshold)
        self.people = PeopleFirst()  # rows people set while a job runs: never written over
        self.features = FolderFeatures()  # the model's outputs per file: a re-prediction needs no decoding
        self.relabelling = False  # the running job predicts the folder again (after a model change)
        self.queued: Any = None  # a classifier to predict the folder with once the running job stops
        self.relabel_what = "the learned model"  # said in the notice: which model predicts again
        self._before: dict[str, ItemRow] = {}
        self._last_refresh = 0.0
        self._started = 0.0

    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.done.is_set()

    def open(self, folder: str | Path, classifier: Any) -> None:
        """Show the folder's images, then label those not yet in the journal (in the pool)."""
        self.cancel(wait=True)
        root = Path(folder)
        if not root.is_dir():
            self.failed.emit(f"{root}: not a folder")
            return
        journal = root / JOURNAL_NAME
        try:
            paths = [relative_key(p, root) for p in find_images(root)]
            known = read_labels(journal)
        except (OSError, LabelingError) as e:
            self.failed.emit(str(e) if isinstance(e, LabelingError) else f"{root}: {e.strerror or e}")
            return
        self.folder, self.journal = root, journal
        self.meta = getattr(classifier, "meta", None)
        self.features.clear()
        self.model.reset(root, paths)
        wanted = set(paths)
        self.model.update_rows([self._row(r) for r in known.values() if r.path in wanted])
        self.proxy.refresh()
        self.queued = None
        self.started.emit(len(paths))
        self._start(classifier, relabel=False)

    def relabel(self, classifier: Any, what: str = "the learned model") -> bool:
        """Predict again, in the background, every row of the open folder no person has set.

        A running job is stopped first (it ends within a batch) and this one starts when it has.
        ``what`` names the model for people ("the learned model", "the plain model"). False when
        no folder is open.
        """
        if self.folder is None:
            return False
        self.queued, self.relabel_what = classifier, what
        if self.running:
            assert self.job is not None
            self.job.cancel()  # its finished/failed signal starts the queued run
        else:
            self._start_queued()
        return True

    def _start_queued(self) -> None:
        classifier, self.queued = self.queued, None
        self.meta = getattr(classifier, "meta", None)
        self._before = {r.path: r for r in self.model.rows}
        self.relabel_started.emit(len(self.model.rows))
        self._start(classifier, relabel=True)

    def _start(self, classifier: Any, relabel: bool) -> None:
        assert self.folder is not None and self.journal is not None
        self.relabelling = relabel
        self._started = time.monotonic()
        self.people = PeopleFirst()
        sample = [self.folder / r.path for r in self.model.rows[:16]]
        self.features.use_model(classifier)
        job = LabelingJob(
            self.folder, classifier, self.journal, review_below=self.threshold, people=self.people,
            sample=sample, features=self.features,
        )  # fmt: skip
        job.batch_size = self.batch_size
        # signals of a job replaced by a newer open() are ignored
        job.signals.progress.connect(lambda d, t, j=job: self._on_progress(d, t) if j is self.job else None)
        job.signals.finished.connect(lambda r, j=job: self._on_finished(r) if j is self.job else None)
        job.signals.failed.connect(lambda m, j=job: self._on_failed(m) if j is self.job else None)
        self.job = job
        self.pool.start(job)

    def cancel(self, wait: bool = False) -> None:
        """Stop after the current batch (everything labelled so far stays in the journal)."""
        if self.job is not None:
            self.job.cancel()
            if wait:
                self.job.done.wait(30)

    def refresh(self) -> None:
        """Re-read the journal into the table (rows of this folder only)."""
        if self.journal is None:
            return
        try:
            known = read_labels(self.journal)
        except (OSError, LabelingError):
            return
        self.model.update_rows(
            [self._row(r) for r in known.values() if self.model.row_of(r.path) is not None]
        )
        self._last_refresh = time.monotonic()

    def _row(self, rec: LabelRecord) -> ItemRow:
        row = row_from_record(rec)
        if self.threshold is not None and row.source == "model" and not row.error and self.meta is not None:
            row.needs_review = needs_review(row.label, row.confidence, self.meta, self.threshold)
        return row

    def set_threshold(self, value: float | None) -> None:
        """Re-flag the model's rows with a new review threshold (people's labels are kept)."""
        if value == self.threshold:
            return  # e.g. a model change that keeps the rule: nothing to re-read or re-sort
        self.threshold = value
        self.refresh()
        self.proxy.refresh()

    def _on_progress(self, done: int, total: int) -> None:
        # predicting again from kept outputs ends in a blink: one refresh at the end is enough
        quick = self.relabelling and time.monotonic() - self._started < QUICK_S
        if not quick and (time.monotonic() - self._last_refresh >= REFRESH_S or done >= total):
            self.refresh()
        self.progress.emit(done, total)

    def _on_finished(self, summary: Any) -> None:
        self.refresh()
        if self.queued is not None:  # stopped for a newer model: predict the folder again with it
            self._start_queued()
            return
        self.proxy.refresh()
        if self.relabelling:
            self.relabelling = False
            self.relabelled.emit(changes(self._before, self.model.rows, bool(summary.cancelled)))
        else:
            self.finished.emit(summary)

    def _on_failed(self, message: str) -> None:
        self.refresh()
        self.relabelling = False
        if self.queued is not None:
            self._start_queued()
            return
        self.failed.emit(message)

    # --- review ---------------------------------------------------------------------------
    def set_label(self, row: int, label: str) -> bool:
        """A person's label for a source row: journal first (fsync), then the table."""
        if self.journal is None or not 0 <= row < len(self.model.rows):
            return False
        current = self.model.rows[row]
        if current.error or current.pending or not label:
            return False
        new = self.model.with_label(row, label)
        journal = self.journal
        # the row is for this file: a different photo given the same name later is labelled again
        rec = record_of(new, identity_of(self.folder / new.path) if self.folder is not None else None)
        try:
            self.people.set_by_person(new.path, lambda: append_records(journal, [rec]))
        except OSError as e:
            self.failed.emit(f"{self.journal}: could not save the correction ({e.strerror or e})")
            return False
        self.model.set_row(row, new)
        self.saved.emit(new.path)
        return True

    def accept(self, row: int) -> bool:
        """Confirm the label shown (also for a needs-review item whose guess is right)."""
        if not 0 <= row < len(self.model.rows):
            return False
        return self.set_label(row, self.model.rows[row].label)

    # --- sorting and export ---------------------------------------------------------------
    def records(self) -> list[LabelRecord]:
        """The current label of every labelled item in the folder (last journal row wins)."""
        return [record_of(r) for r in self.model.rows if not r.pending]

    def sort(self, dest: str | Path, move: bool = False) -> FunctionJob | None:
        """Copy (or move) into dest/<label>/ in the pool; ``sorted`` gets the (src, dst) pairs."""
        if self.folder is None:
            return None
        folder, records = self.folder, self.records()
        job = FunctionJob(lambda: sort_into(records, folder, dest, move=move))
        job.signals.finished.connect(self.sorted)
        job.signals.failed.connect(self.failed)
        self.sort_job = job
        self.pool.start(job)
        return job

    def export(self, path: str | Path) -> int:
        """Write the current labels (one row per item) to a CSV in the journal format, through the
        journal's writer (formula cells escaped, names as UTF-8), atomically."""
        out = Path(path)
        records = self.records()
        write_atomically(out, serialise(out, records, header=True).encode("utf-8"))
        return len(records)
