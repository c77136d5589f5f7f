"""The learning bar under the tabs (what was learned, Learn / Undo / Reset) and the new-class dialog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

IMAGE_FILTER = "Photos (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff);;All files (*)"
MIN_NEW_CLASS_PHOTOS = 5  # fewer is allowed by the adapter but rarely recognised; 10 is better
REFUSED_STYLE = "background:#ffe08a; color:#2b1a00; border-radius:4px; padding:4px 8px;"
PROBLEM_STYLE = "color:#a02a1c;"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def summary_text(adapter: Any | None, collected: int = 0, new: int = 0, refit_every: int = 0) -> str:
    """One line: "learned from N items · accuracy on your held-out items X % (was Y %)" and more."""
    if adapter is None:
        if not collected:
            return "Not learned yet · corrections and saved items are collected for learning"
        auto = f" · learns by itself after {refit_every}" if refit_every else ""
        return f"Not learned yet · {collected} corrections collected{auto}"
    parts = [f"Learned from {adapter.n_examples} items"]
    if adapter.heldout_acc is not None:
        parts.append(
            f"accuracy on your held-out items {pct(adapter.heldout_acc)} (was {pct(adapter.heldout_acc_before)})"
        )
    else:
        parts.append("too few items to hold some out for a score")
    if adapter.new_classes:
        parts.append("new: " + ", ".join(adapter.new_classes))
    if new:
        parts.append(f"{new} new since")
    return " · ".join(parts)


def adapter_details(adapter: Any) -> str:
    """Tooltip / model-info text: catalogue check, conflicts, date, gate."""
    lines = [f"Fitted {adapter.created} on {adapter.n_examples} items ({adapter.conflicts} relabelled)"]
    if adapter.catalogue_acc is not None:
        lines.append(
            f"Catalogue test accuracy {adapter.catalogue_acc:.1%} (plain model {adapter.catalogue_acc_before:.1%})"
        )
    else:
        lines.append("Catalogue test images not present here: checked on your held-out items only")
    if adapter.refusal:
        lines.append(f"Safety gate: {adapter.refusal}")
    return "\n".join(lines)


class LearningPanel(QFrame):
    """Shows the adapter state; buttons emit requests, the LearningController does the work."""

    learn_requested = Signal()
    teach_requested = Signal()
    undo_requested = Signal()
    reset_requested = Signal()
    use_anyway_requested = Signal()
    discard_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.running = False
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFormat("learning…")
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setVisible(False)
        self.learn_button = QPushButton("Learn from my corrections")
        self.learn_button.setToolTip("Refit the model's last layer on your corrections (a few seconds)")
        self.teach_button = QPushButton("Teach a new class…")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Back to the adapter used before the last learning step")
        self.reset_button = QPushButton("Reset to factory")
        self.reset_button.setToolTip("Remove what was learned and use the plain model")
        for b in (
            self.learn_button,
            self.teach_button,
            self.undo_button,
            self.reset_button,
            self.cancel_button,
        ):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row = QHBoxLayout()
        title = QLabel("<b>Learning</b>")
        row.addWidget(title)
        row.addWidget(self.summary, 1)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        row.addWidget(self.learn_button)
        row.addWidget(self.teach_button)
        row.addWidget(self.undo_button)
        row.addWidget(self.reset_button)

        self.alert = QLabel("")
        self.alert.setWordWrap(True)
        self.alert.setStyleSheet(REFUSED_STYLE)
        self.use_anyway_button = QPushButton("Use anyway")
        self.discard_button = QPushButton("Keep the current model")
        alert_row = QHBoxLayout()
        alert_row.addWidget(self.alert, 1)
        alert_row.addWidget(self.use_anyway_button)
        alert_row.addWidget(self.discard_button)
        self.alert_box = QWidget()
        self.alert_box.setLayout(alert_row)
        alert_row.setContentsMargins(0, 0, 0, 0)
        self.alert_box.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(row)
        layout.addWidget(self.alert_box)

        self.learn_button.clicked.connect(self.learn_requested)
        self.teach_button.clicked.connect(self.teach_requested)
        self.undo_button.clicked.connect(self.undo_requested)
        self.reset_button.clicked.connect(self.reset_requested)
        self.use_anyway_button.clicked.connect(self.use_anyway_requested)
        self.discard_button.clicked.connect(self.discard_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)

    def show_state(self, text: str, details: str = "", problem: bool = False) -> None:
        self.summary.setText(text)
        self.summary.setToolTip(details)
        self.summary.setStyleSheet(PROBLEM_STYLE if problem else "")

    def set_running(self, running: bool) -> None:
        self.running = running
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.learn_button.setEnabled(not running)
        self.teach_button.setEnabled(not running)
        if running:
            self.progress.setFormat("learning…")
            self.progress.setRange(0, 0)  # busy until the first progress report

    def set_progress(self, stage: str, done: int, total: int) -> None:
        self.progress.setFormat(f"{stage} %v / %m")
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def set_buttons(self, can_learn: bool, can_undo: bool, has_adapter: bool, new: int) -> None:
        self.learn_button.setText(
            f"Learn from my corrections ({new} new)" if new else "Learn from my corrections"
        )
        self.learn_button.setEnabled(can_learn and not self.running)
        self.undo_button.setEnabled(can_undo)
        self.reset_button.setEnabled(has_adapter or can_learn)

    def show_refusal(self, text: str) -> None:
        self.alert.setText(text)
        self.alert_box.setVisible(bool(text))


class TeachClassDialog(QDialog):
    """Name a class and pick its photos (e.g. "Jeans" from 10 photos)."""

    def __init__(self, classes: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Teach a new class")
        self.classes = classes
        self.paths: list[Path] = []
        self.name = QLineEdit()
        self.name.setPlaceholderText("Class name, e.g. Jeans")
        self.add_button = QPushButton("Add photos…")
        self.files = QListWidget()
        self.count = QLabel("")
        self.count.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Teach and learn")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Name of the class:"))
        layout.addWidget(self.name)
        layout.addWidget(QLabel(f"Photos of it ({MIN_NEW_CLASS_PHOTOS} or more; 10 is better):"))
        layout.addWidget(self.files, 1)
        layout.addWidget(self.add_button)
        layout.addWidget(self.count)
        layout.addWidget(self.buttons)
        self.add_button.clicked.connect(self._pick)
        self.name.textChanged.connect(lambda _t: self._update())
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.resize(460, 420)
        self._update()

    def _pick(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self, "Photos of the new class", str(Path.home()), IMAGE_FILTER
        )
        self.add_paths([Path(n) for n in names])

    def add_paths(self, paths: list[Path]) -> None:
        for p in paths:
            if p not in self.paths:
                self.paths.append(p)
                self.files.addItem(p.name)
        self._update()

    def _update(self) -> None:
        name = self.name.text().strip()
        n = len(self.paths)
        known = " (a class the model knows: these photos are added to it)" if name in self.classes else ""
        self.count.setText(f"{n} photos{known}")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(
            bool(name) and n >= MIN_NEW_CLASS_PHOTOS
        )

    def answer(self) -> tuple[str, list[Path]]:
        return self.name.text().strip(), list(self.paths)
