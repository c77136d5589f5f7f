"""The answer at a glance: label in large type, confidence, top 3, review flag, timing."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from fashion_edge.desktop_app.models.label_table import REVIEW_TEXT

OK_STYLE = "background:#1f7a3a; color:white; border-radius:6px; padding:4px 10px;"
REVIEW_STYLE = "background:#ffb000; color:#2b1a00; border-radius:6px; padding:4px 10px; font-weight:bold;"
ERROR_STYLE = "background:#c0392b; color:white; border-radius:6px; padding:4px 10px;"
IDLE_STYLE = "background:#d8d8d8; color:#333; border-radius:6px; padding:4px 10px;"


class PredictionPanel(QWidget):
    """Shows one Prediction; ``current_label`` is what the big text says the item is ("" if unsure)."""

    def __init__(self, big_points: int = 34, show_timing: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current_label = ""
        self.needs_review = False
        self.label = QLabel("—")
        font = QFont()
        font.setPointSize(big_points)
        font.setBold(True)
        self.label.setFont(font)
        self.label.setWordWrap(True)
        self.label.setMinimumHeight(int(big_points * 1.9))
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.status = QLabel("waiting for an item")
        self.status.setStyleSheet(IDLE_STYLE)
        status_font = QFont()
        status_font.setPointSize(12)
        self.status.setFont(status_font)
        self.confidence_text = QLabel("")
        conf_font = QFont()
        conf_font.setPointSize(14)
        self.confidence_text.setFont(conf_font)
        self.confidence = QProgressBar()
        self.confidence.setRange(0, 100)
        self.confidence.setTextVisible(False)
        self.confidence.setMaximumHeight(10)
        self.top_names: list[QLabel] = []
        self.top_bars: list[QProgressBar] = []
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        for i in range(3):
            name, bar = QLabel(""), QProgressBar()
            bar.setRange(0, 100)
            bar.setFormat("%p%")
            bar.setMaximumHeight(16)
            grid.addWidget(name, i, 0)
            grid.addWidget(bar, i, 1)
            self.top_names.append(name)
            self.top_bars.append(bar)
        self.timing = QLabel("")
        self.timing.setStyleSheet("color:#555;")
        self.timing.setVisible(show_timing)
        top_title = QLabel("Top 3")
        top_title.setStyleSheet("color:#555; margin-top:8px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.label)
        layout.addWidget(self.confidence_text)
        layout.addWidget(self.confidence)
        layout.addWidget(top_title)
        layout.addLayout(grid)
        layout.addWidget(self.timing)

    def show_prediction(self, pred: Any, infer_ms: float | None = None, fps: float | None = None) -> None:
        """Display a runtime Prediction (label, confidence, top_k, needs_review)."""
        self.needs_review = bool(pred.needs_review)
        if self.needs_review:
            self.current_label = ""
            self.label.setText(f"{pred.label}?")
            self.label.setStyleSheet("color:#9a5b00;")
            self.status.setText(f"⚠ {REVIEW_TEXT.capitalize()}")
            self.status.setStyleSheet(REVIEW_STYLE)
        else:
            self.current_label = pred.label
            self.label.setText(pred.label)
            self.label.setStyleSheet("color:#111;")
            self.status.setText("✔ confident")
            self.status.setStyleSheet(OK_STYLE)
        self.confidence.setValue(round(pred.confidence * 100))
        self.confidence_text.setText(f"{pred.confidence:.0%} confident")
        for i in range(3):
            if i < len(pred.top_k):
                name, p = pred.top_k[i]
                self.top_names[i].setText(name)
                self.top_bars[i].setValue(round(p * 100))
                self.top_bars[i].setVisible(True)
            else:
                self.top_names[i].setText("")
                self.top_bars[i].setVisible(False)
        if infer_ms is not None:
            text = f"inference {infer_ms:.1f} ms"
            if fps:
                text += f"  ·  {fps:.0f} frames/s"
            self.timing.setText(text)

    def show_message(self, status: str, big: str = "—", style: str = IDLE_STYLE) -> None:
        """No prediction (unreadable image, waiting, no model)."""
        self.current_label = ""
        self.needs_review = False
        self.label.setText(big)
        self.label.setStyleSheet("color:#666;")
        self.status.setText(status)
        self.status.setStyleSheet(style)
        self.confidence.setValue(0)
        self.confidence_text.setText("")
        for name, bar in zip(self.top_names, self.top_bars, strict=True):
            name.setText("")
            bar.setValue(0)
        self.timing.setText("")
