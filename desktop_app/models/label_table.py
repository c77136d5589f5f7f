"""The folder's items as a QAbstractTableModel, and a proxy that puts "needs review" first or alone,
or lists the auto-accepted items lowest confidence first (a spot check)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap

from fashion_edge.runtime.preprocess import ImageError, read_image

REVIEW_TEXT = "unknown / needs review"
REVIEW_BG = QColor("#ffe08a")  # amber: look at this one
ERROR_BG = QColor("#f4b4b4")  # red: could not be read
HUMAN_BG = QColor("#cdeccd")  # green: checked by a person
THUMB = QSize(48, 64)

Index = QModelIndex | QPersistentModelIndex


def image_pixmap(path: Path, box: QSize) -> QPixmap:
    """An image file shrunk to fit ``box`` (aspect kept), through the runtime's decode: regular
    files only, bombs refused, JPEGs decoded at reduced size, EXIF applied. Empty if unreadable."""
    try:
        rgb = read_image(path, min_size=(box.height(), box.width()))
    except ImageError:
        return QPixmap()
    h, w = rgb.shape[:2]
    scale = min(box.height() / h, box.width() / w, 1.0)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy())


@dataclass
class ItemRow:
    """One image of the folder and its current (last-row-wins) label."""

    path: str  # relative to the folder, POSIX
    label: str = ""
    confidence: float = 0.0
    top_k: list[tuple[str, float]] = field(default_factory=list)
    needs_review: bool = False
    error: str = ""
    source: str = ""  # "" (not labelled yet) | "model" | "human"

    @property
    def pending(self) -> bool:
        return not self.source and not self.error

    @property
    def flagged(self) -> bool:
        """Needs a person: low confidence or unreadable (and not yet reviewed)."""
        return bool(self.error) or (self.needs_review and self.source != "human")

    @property
    def auto_accepted(self) -> bool:
        """The model's label stands without a person (not flagged, not reviewed, not unreadable)."""
        return self.source == "model" and not self.error and not self.needs_review

    @property
    def status(self) -> str:
        if self.error:
            return "unreadable"
        if self.pending:
            return "…"
        if self.source == "human":
            return "reviewed"
        return REVIEW_TEXT if self.needs_review else "ok"


def parse_top_k(value: Any) -> list[tuple[str, float]]:
    """Accept the record's list of (label, p) or the CSV text "A:0.91|B:0.05"."""
    if not value:
        return []
    if isinstance(value, str):
        out = []
        for part in value.split("|"):
            name, _, p = part.rpartition(":")
            try:
                out.append((name, float(p)))
            except ValueError:
                continue
        return out
    return [(str(n), float(p)) for n, p in value]


def row_from_record(rec: Any) -> ItemRow:
    """A runtime.labeling LabelRecord (or anything with its fields) -> ItemRow."""
    return ItemRow(
        path=str(rec.path),
        label=rec.label or "",
        confidence=float(rec.confidence or 0.0),
        top_k=parse_top_k(rec.top_k),
        needs_review=bool(int(rec.needs_review))
        if isinstance(rec.needs_review, str)
        else bool(rec.needs_review),
        error=rec.error or "",
        source=rec.source or "model",
    )


class LabelTableModel(QAbstractTableModel):
    """Rows = images of one folder; columns = item, label, confidence, status, top 3."""

    COLUMNS = ("Item", "Label", "Confidence", "Status", "Top 3 / problem")
    ITEM, LABEL, CONFIDENCE, STATUS, TOP3 = range(5)
    RowRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self.rows: list[ItemRow] = []
        self._by_path: dict[str, int] = {}
        self._thumbs: dict[str, QPixmap] = {}
        self.updated: set[str] = set()  # rows whose suggestion the last model change altered

    # --- filling --------------------------------------------------------------------------
    def reset(self, folder: Path | None, paths: list[str]) -> None:
        """Show these images (relative paths) as not yet labelled."""
        self.beginResetModel()
        self.folder = folder
        self.rows = [ItemRow(p) for p in paths]
        self._by_path = {p: i for i, p in enumerate(paths)}
        self._thumbs.clear()
        self.updated = set()
        self.endResetModel()

    def mark_updated(self, paths: set[str]) -> None:
        """Show these rows as "updated" (their suggestion changed with the model); the others not."""
        rows = [i for p in self.updated | paths if (i := self._by_path.get(p)) is not None]
        self.updated = set(paths)
        if rows:  # one signal for the span (see update_rows)
            self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), len(self.COLUMNS) - 1))

    def update_rows(self, rows: list[ItemRow]) -> int:
        """Replace rows by path (unknown paths are appended); returns how many changed.

        One ``dataChanged`` covers the changed span: a folder predicted again changes hundreds of
        rows at once, and a signal per row cost the UI thread 10-30 ms per refresh (200 rows).
        """
        changed = 0
        first, last = len(self.rows), -1
        new: list[ItemRow] = []
        for row in rows:
            i = self._by_path.get(row.path)
            if i is None:
                new.append(row)
            elif self.rows[i] != row:
                self.rows[i] = row
                changed += 1
                first, last = min(first, i), max(last, i)
        if changed:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(self.COLUMNS) - 1))
        if new:
            start = len(self.rows)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            for row in new:
                self._by_path[row.path] = len(self.rows)
                self.rows.append(row)
            self.endInsertRows()
        return changed + len(new)

    def set_row(self, i: int, row: ItemRow) -> None:
        self.rows[i] = row
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))

    def with_label(self, i: int, label: str) -> ItemRow:
        """The row as a person confirmed it: source human, confidence 1.0."""
        return replace(self.rows[i], label=label, confidence=1.0, needs_review=False, source="human")

    def row_of(self, path: str) -> int | None:
        return self._by_path.get(path)

    def absolute(self, i: int) -> Path:
        assert self.folder is not None
        return self.folder / self.rows[i].path

    def counts(self) -> dict[str, int]:
        c = {"total": len(self.rows), "pending": 0, "review": 0, "errors": 0, "human": 0}
        for r in self.rows:
            c["pending"] += r.pending
            c["errors"] += bool(r.error)
            c["review"] += r.needs_review and r.source == "model" and not r.error
            c["human"] += r.source == "human"
        return c

    # --- Qt model API ---------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, col)
        if role == Qt.ItemDataRole.DecorationRole and col == self.ITEM:
            return self.thumbnail(row.path)
        if role == Qt.ItemDataRole.BackgroundRole:
            if row.error:
                return QBrush(ERROR_BG)
            if row.source == "human":
                return QBrush(HUMAN_BG)
            if row.needs_review:
                return QBrush(REVIEW_BG)
            return None
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and not row.error
            and row.needs_review
            and row.source != "human"
        ):
            return QBrush(QColor("#7a4b00")) if col in (self.LABEL, self.STATUS) else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.error or ", ".join(f"{n} {p:.0%}" for n, p in row.top_k) or row.path
        if role == Qt.ItemDataRole.TextAlignmentRole and col == self.CONFIDENCE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == self.RowRole:
            return row
        return None

    def _text(self, row: ItemRow, col: int) -> str:
        if col == self.ITEM:
            return row.path
        if col == self.LABEL:
            if row.error:
                return "—"
            if row.needs_review and row.source != "human":
                return f"{row.label}?"
            return row.label
        if col == self.CONFIDENCE:
            if row.source == "human":
                return "person"
            return "" if row.pending or row.error else f"{row.confidence:.0%}"
        if col == self.STATUS:
            return (
                f"{row.status} · updated"
                if row.path in self.updated and row.source == "model"
                else row.status
            )
        if row.error:
            return row.error
        return "  ".join(f"{n} {p:.0%}" for n, p in row.top_k[:3])

    def thumbnail(self, rel: str) -> QPixmap | None:
        """A small cached thumbnail, decoded at reduced size (EXIF orientation applied)."""
        if rel in self._thumbs:
            return self._thumbs[rel]
        if self.folder is None:
            return None
        pix = image_pixmap(self.folder / rel, THUMB)
        self._thumbs[rel] = pix
        return pix


class ReviewFilterProxy(QSortFilterProxyModel):
    """Modes: ``all`` (folder order), ``review_first`` (flagged rows on top), ``review_only``,
    ``accepted_low_first`` (only the auto-accepted rows, lowest confidence first: the ones to audit).

    Rows do not jump while a person reviews them: sorting/filtering is re-applied only by
    ``set_mode`` or ``refresh`` (dynamic sort is off).
    """

    MODES = ("review_first", "review_only", "accepted_low_first", "all")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.mode = "review_first"
        self.setDynamicSortFilter(False)

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.refresh()

    def refresh(self) -> None:
        self.invalidate()
        self.sort(0 if self.mode != "all" else -1)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self.mode not in ("review_only", "accepted_low_first"):
            return True
        row: ItemRow = self.sourceModel().rows[source_row]
        if self.mode == "accepted_low_first":
            return row.auto_accepted
        return row.flagged or row.pending

    def lessThan(self, left: Index, right: Index) -> bool:
        # the rows themselves, not data(): a sort makes thousands of these calls on the UI thread
        rows = self.sourceModel().rows
        a, b = rows[left.row()], rows[right.row()]
        if self.mode == "accepted_low_first":
            ka, kb = a.confidence, b.confidence
        else:
            ka, kb = _rank(a), _rank(b)
        return ka < kb if ka != kb else left.row() < right.row()


def _rank(row: ItemRow) -> int:
    """Sort rank for "needs review first": unreadable, flagged, waiting, the rest."""
    return 0 if row.error else 1 if row.flagged else 2 if row.pending else 3
