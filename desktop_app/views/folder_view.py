"""Folder mode: the labelled grid, filled in the background, reviewed from the keyboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from fashion_edge.desktop_app.models.folder_session import FolderSession
from fashion_edge.desktop_app.models.label_table import LabelTableModel, image_pixmap
from fashion_edge.desktop_app.views.prediction_panel import ERROR_STYLE, PredictionPanel

DIGIT_KEYS = {getattr(Qt.Key, f"Key_{d}"): (d - 1) % 10 for d in range(10)}  # 1..9 -> 0..8, 0 -> 9
PREVIEW = QSize(120, 160)
FILTERS = [
    ("Needs review first", "review_first"),
    ("Only needs review", "review_only"),
    ("All, folder order", "all"),
    ("Auto-accepted, lowest confidence first", "accepted_low_first"),
]
NOTICE_STYLE = "background:#e3eefc; border:1px solid #9bbbe6; padding:4px 8px;"


class ReviewTable(QTableView):
    """Arrow keys move (Qt); digits pick a class, Enter accepts, / searches the class list."""

    class_key = Signal(int)
    accept_key = Signal()
    search_key = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        key = event.key()
        plain = not (
            event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
        )
        if plain and key in DIGIT_KEYS:
            self.class_key.emit(DIGIT_KEYS[key])
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accept_key.emit()
        elif plain and key == Qt.Key.Key_Slash:
            self.search_key.emit()
        else:
            super().keyPressEvent(event)


class FolderView(QWidget):
    """Table of the folder's items + the selected item's preview, classes and actions.

    Emits ``open_requested``, ``sort_requested`` and ``export_requested``; the window owns the dialogs.
    ``new_label_typed(name)``: Enter in the class search with a name no class has (a new class).
    """

    open_requested = Signal()
    sort_requested = Signal()
    export_requested = Signal()
    new_label_typed = Signal(str)

    def __init__(self, session: FolderSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.classes: list[str] = []
        self._shown: Any = None  # the ItemRow the side panel shows
        self._preview_of: Path | None = None  # the photo in the preview
        self._predicting = False  # the folder is being predicted again

        self.open_button = QPushButton("Open folder…")
        self.folder_label = QLabel("Open a folder of photos, or drop one on the window.")
        self.folder_label.setStyleSheet("color:#444;")
        self.filter_box = QComboBox()
        for text, mode in FILTERS:
            self.filter_box.addItem(text, mode)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m labelled")
        self.progress.setMinimumWidth(180)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.folder_label, 1)
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.filter_box)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        # what the last model change did to this folder's suggestions
        self.notice = QLabel("")
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.notice.setWordWrap(True)
        self.notice.setVisible(False)

        self.table = ReviewTable()
        self.table.setModel(session.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(36, 48))
        self.table.verticalHeader().setDefaultSectionSize(52)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(LabelTableModel.ITEM, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(LabelTableModel.TOP3, QHeaderView.ResizeMode.Stretch)
        for col, width in (
            (LabelTableModel.ITEM, 190),
            (LabelTableModel.LABEL, 130),
            (LabelTableModel.CONFIDENCE, 90),
            (LabelTableModel.STATUS, 235),  # room for '… · updated' after a model change
        ):
            self.table.setColumnWidth(col, width)

        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background:#f2f2f2; border:1px solid #ccc;")
        self.item_name = QLabel("")
        self.item_name.setWordWrap(True)
        self.item_name.setStyleSheet("color:#444;")
        self.panel = PredictionPanel(big_points=20, show_timing=False)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Type to find a class  ( / )")
        self.search.setClearButtonEnabled(True)
        self.class_list = QListWidget()
        self.class_list.setMinimumHeight(90)
        self.accept_button = QPushButton("Accept  [Enter]")
        help_text = QLabel(
            "↑ ↓ move · Enter accept · 1–9 set class\n/ find a class · every change is saved at once"
        )
        help_text.setStyleSheet("color:#555;")
        help_text.setWordWrap(True)
        side = QVBoxLayout()
        head = QHBoxLayout()
        head.addWidget(self.preview)
        head.addStretch(1)
        side.addLayout(head)
        side.addWidget(self.item_name)
        side.addWidget(self.panel)
        side.addWidget(QLabel("Set the class:"))
        side.addWidget(self.search)
        side.addWidget(self.class_list, 1)
        side.addWidget(self.accept_button)
        side.addWidget(help_text)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(290)
        side_widget.setMaximumWidth(360)

        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(side_widget)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)

        self.counts = QLabel("")
        counts_font = QFont()
        counts_font.setPointSize(11)
        self.counts.setFont(counts_font)
        self.sort_button = QPushButton("Sort into folders…")
        self.export_button = QPushButton("Export CSV…")
        bottom = QHBoxLayout()
        bottom.addWidget(self.counts, 1)
        bottom.addWidget(self.sort_button)
        bottom.addWidget(self.export_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.notice)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)

        self.open_button.clicked.connect(self.open_requested)
        self.sort_button.clicked.connect(self.sort_requested)
        self.export_button.clicked.connect(self.export_requested)
        self.cancel_button.clicked.connect(lambda: session.cancel())
        self.filter_box.currentIndexChanged.connect(
            lambda _i: session.proxy.set_mode(self.filter_box.currentData())
        )
        self.table.class_key.connect(self._on_class_key)
        self.table.accept_key.connect(self.accept_current)
        self.table.search_key.connect(self._focus_search)
        self.accept_button.clicked.connect(self.accept_current)
        self.search.textChanged.connect(self._filter_classes)
        self.search.returnPressed.connect(self._apply_search)
        self.class_list.itemActivated.connect(self._apply_item)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self.show_current())
        session.started.connect(self._on_started)
        session.progress.connect(self._on_progress)
        session.finished.connect(self._on_finished)
        session.failed.connect(lambda _m: self._on_failed())
        session.relabel_started.connect(self._on_relabel_started)
        session.relabelled.connect(self._on_relabelled)
        session.model.dataChanged.connect(self._on_data_changed)
        session.model.modelReset.connect(self._update_counts)
        self._update_actions()

    # --- classes --------------------------------------------------------------------------
    def set_classes(self, classes: list[str]) -> None:
        self.classes = list(classes)
        self.class_list.clear()
        for i, name in enumerate(self.classes):
            key = f"{(i + 1) % 10}" if i < 10 else " "
            item = QListWidgetItem(f"{key}   {name}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.class_list.addItem(item)
        rows = min(max(len(self.classes), 3), 10)  # show up to 10 classes without scrolling
        row_h = self.class_list.sizeHintForRow(0) if self.classes else 18
        self.class_list.setMinimumHeight(rows * row_h + 2 * self.class_list.frameWidth() + 4)

    def _filter_classes(self, text: str) -> None:
        needle = text.strip().lower()
        first = None
        for i in range(self.class_list.count()):
            item = self.class_list.item(i)
            hide = bool(needle) and needle not in item.data(Qt.ItemDataRole.UserRole).lower()
            item.setHidden(hide)
            if not hide and first is None:
                first = item
        if first is not None:
            self.class_list.setCurrentItem(first)

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def _apply_search(self) -> None:
        item = self.class_list.currentItem()
        if item is not None and not item.isHidden():
            self._apply_item(item)
        elif self.search.text().strip() and self.current_source_row() is not None:
            self.new_label_typed.emit(self.search.text().strip())

    def _apply_item(self, item: QListWidgetItem) -> None:
        self.set_current_label(item.data(Qt.ItemDataRole.UserRole))
        self.search.clear()
        self.table.setFocus()

    def _on_class_key(self, index: int) -> None:
        if index < len(self.classes):
            self.set_current_label(self.classes[index])

    # --- review ---------------------------------------------------------------------------
    def current_source_row(self) -> int | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.session.proxy.mapToSource(index).row()

    def set_current_label(self, label: str) -> None:
        row = self.current_source_row()
        if row is not None and self.session.set_label(row, label):
            self.move_next()

    def accept_current(self) -> None:
        row = self.current_source_row()
        if row is not None and self.session.accept(row):
            self.move_next()

    def move_next(self) -> None:
        index = self.table.currentIndex()
        nxt = self.session.proxy.index(index.row() + 1, 0) if index.isValid() else QModelIndex()
        if nxt.isValid():
            self.table.setCurrentIndex(nxt)
        self.show_current()

    def select_first(self, focus: bool = False) -> None:
        if self.session.proxy.rowCount() and not self.table.currentIndex().isValid():
            self.table.setCurrentIndex(self.session.proxy.index(0, 0))
        if focus:
            self.table.setFocus()

    def show_current(self) -> None:
        row = self.current_source_row()
        if row is None:
            self._shown, self._preview_of = None, None
            self.preview.clear()
            self.item_name.setText("")
            self.panel.show_message("select an item")
            return
        item = self.session.model.rows[row]
        self._shown = item
        self.item_name.setText(item.path)
        absolute = self.session.model.absolute(row)
        if absolute != self._preview_of or item.error:  # the same photo is not decoded again
            self.preview.setPixmap(image_pixmap(absolute, PREVIEW))  # runtime's decode
            self._preview_of = absolute
        if item.error:
            self.preview.setText("unreadable")
            self.panel.show_message(f"✖ unreadable: {item.error}", "—", ERROR_STYLE)
        elif item.pending:
            self.panel.show_message("labelling…")
        else:
            self.panel.show_prediction(_AsPrediction(item))
            if item.source == "human":
                self.panel.status.setText("✔ reviewed by a person")

    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, *_: Any) -> None:
        row = self.current_source_row()
        if row is not None and top_left.row() <= row <= bottom_right.row():
            if self.session.model.rows[row] != self._shown:
                self.show_current()
        self._update_counts()

    # --- progress -------------------------------------------------------------------------
    def _on_started(self, total: int) -> None:
        folder = self.session.folder
        self.folder_label.setText(str(folder) if folder else "")
        self.show_notice("")
        self.progress.setFormat("%v / %m labelled")
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self._update_counts()
        self._update_actions()
        self.select_first(focus=True)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.select_first()

    def _on_finished(self, summary: Any) -> None:
        self._on_stopped()
        self.table.setCurrentIndex(self.session.proxy.index(0, 0))
        self.show_current()
        self.table.setFocus()

    def _on_failed(self) -> None:
        self._on_stopped()
        if self._predicting:  # the window shows the reason; the notice must not promise a result
            self._predicting = False
            self.show_notice("")

    def _on_relabel_started(self, total: int) -> None:
        self._predicting = True
        self.show_notice(
            f"Predicting this folder again with {self.session.relabel_what}… (your labels are kept)"
        )
        self.progress.setFormat("%v / %m predicted again")
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)

    def _on_relabelled(self, changes: Any) -> None:
        self._predicting = False
        self._on_stopped()
        self.session.model.mark_updated(changes.paths)
        what = self.session.relabel_what
        self.show_notice(f"With {what} — {changes.line()}")
        self.show_current()

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _on_stopped(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._update_counts()
        self._update_actions()

    def _update_counts(self, *_: Any) -> None:
        c = self.session.model.counts()
        if not c["total"]:
            self.counts.setText("")
            return
        parts = [f"<b>{c['total']}</b> items"]
        if c["pending"]:
            parts.append(f"{c['pending']} waiting")
        parts.append(f"<span style='background:#ffe08a'>&nbsp;{c['review']} need review&nbsp;</span>")
        if c["errors"]:
            parts.append(f"<span style='background:#f4b4b4'>&nbsp;{c['errors']} unreadable&nbsp;</span>")
        parts.append(f"<span style='background:#cdeccd'>&nbsp;{c['human']} reviewed&nbsp;</span>")
        self.counts.setText("  ·  ".join(parts))

    def _update_actions(self) -> None:
        has = self.session.folder is not None
        self.sort_button.setEnabled(has)
        self.export_button.setEnabled(has)


class _AsPrediction:
    """An ItemRow seen through the Prediction fields PredictionPanel reads."""

    def __init__(self, row: Any) -> None:
        self.label = row.label
        self.confidence = row.confidence
        self.top_k = row.top_k or [(row.label, row.confidence)]
        self.needs_review = row.needs_review and row.source != "human"
