"""Camera mode: live preview with the 3:4 framing guide, the answer in large type, freeze and save."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from fashion_edge.desktop_app.camera import CameraSource, list_cameras
from fashion_edge.desktop_app.model_holder import ModelHolder
from fashion_edge.desktop_app.views.prediction_panel import REVIEW_STYLE, PredictionPanel
from fashion_edge.desktop_app.workers.camera_worker import CameraController, FrameResult

GUIDE_OK = QColor("#2ecc71")
GUIDE_REVIEW = QColor("#ffb000")
GUIDE_IDLE = QColor("#ffffff")


def to_qimage(rgb: np.ndarray) -> QImage:
    """An HxWx3 uint8 RGB array -> a QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class PreviewWidget(QWidget):
    """Draws the frame scaled to fit, darkens what the model does not see, outlines the guide."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.box: tuple[int, int, int, int] | None = None
        self.guide_color = GUIDE_IDLE
        self.overlay_text = ""
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_frame(self, image: QImage, box: tuple[int, int, int, int], color: QColor) -> None:
        self.image, self.box, self.guide_color = image, box, color
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#202020"))
        if self.image is None:
            p.setPen(QColor("#bbbbbb"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No picture")
            return
        iw, ih = self.image.width(), self.image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        x0, y0 = (self.width() - w) / 2, (self.height() - h) / 2
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(QRectF(x0, y0, w, h), self.image)
        if self.box is not None:
            bx, by, bw, bh = self.box
            guide = QRectF(x0 + bx * scale, y0 + by * scale, bw * scale, bh * scale)
            shade = QColor(0, 0, 0, 130)
            p.fillRect(QRectF(x0, y0, guide.left() - x0, h), shade)
            p.fillRect(QRectF(guide.right(), y0, x0 + w - guide.right(), h), shade)
            p.fillRect(QRectF(guide.left(), y0, guide.width(), guide.top() - y0), shade)
            p.fillRect(QRectF(guide.left(), guide.bottom(), guide.width(), y0 + h - guide.bottom()), shade)
            pen = QPen(self.guide_color, 4)
            p.setPen(pen)
            p.drawRect(guide.adjusted(2, 2, -2, -2))
        if self.overlay_text:
            font = QFont()
            font.setPointSize(16)
            font.setBold(True)
            p.setFont(font)
            band = QRectF(0, self.height() - 44, self.width(), 44)
            p.fillRect(band, QColor(0, 0, 0, 170))
            p.setPen(QColor("white"))
            p.drawText(band, Qt.AlignmentFlag.AlignCenter, self.overlay_text)


class CameraView(QWidget):
    """Pick a camera, see the answer live; Space freezes the item so it can be saved with its label.

    ``camera_factory(index)`` returns a CameraSource (OpenCV in the app, FakeCamera in tests).
    ``save_requested(label)`` is emitted by the Save button; the window asks where and saves.
    """

    save_requested = Signal(str)

    def __init__(
        self,
        holder: ModelHolder,
        camera_factory: Callable[[int], CameraSource],
        cameras: list[tuple[int, str]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.holder = holder
        self.camera_factory = camera_factory
        self.controller = CameraController(self)
        self.last: FrameResult | None = None
        self.frozen = False
        self.frames_shown = 0

        self.camera_box = QComboBox()
        for idx, name in cameras if cameras is not None else list_cameras():
            self.camera_box.addItem(name, idx)
        self.start_button = QPushButton("Start camera")
        self.stop_button = QPushButton("Stop")
        self.freeze_button = QPushButton("Freeze  [Space]")
        for b in (self.start_button, self.stop_button, self.freeze_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        top = QHBoxLayout()
        top.addWidget(QLabel("Camera:"))
        top.addWidget(self.camera_box, 1)
        top.addWidget(self.start_button)
        top.addWidget(self.stop_button)
        top.addWidget(self.freeze_button)

        self.preview = PreviewWidget()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        msg_font = QFont()
        msg_font.setPointSize(15)
        self.message.setFont(msg_font)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setMinimumHeight(40)
        error_page = QWidget()
        el = QVBoxLayout(error_page)
        el.addStretch(1)
        el.addWidget(self.message)
        el.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignCenter)
        el.addStretch(1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.preview)
        self.stack.addWidget(error_page)

        self.panel = PredictionPanel()
        self.capture_label = QComboBox()
        self.capture_label.setEditable(False)
        self.save_button = QPushButton("Save item with label")
        capture = QVBoxLayout()
        hint = QLabel("Space: freeze the item, pick or confirm its label, then save.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color:#555;")
        capture.addWidget(hint)
        row = QHBoxLayout()
        row.addWidget(self.capture_label, 1)
        row.addWidget(self.save_button)
        capture.addLayout(row)
        self.saved_title = QLabel("Saved items: 0")
        self.saved_title.setStyleSheet("color:#555; margin-top:6px;")
        self.saved_list = QListWidget()
        self.saved_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.saved_list.setMaximumHeight(170)
        capture.addWidget(self.saved_title)
        capture.addWidget(self.saved_list)
        side = QVBoxLayout()
        side.addWidget(self.panel)
        side.addStretch(1)
        side.addLayout(capture)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(300)
        side_widget.setMaximumWidth(380)

        body = QHBoxLayout()
        body.addWidget(self.stack, 1)
        body.addWidget(side_widget)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(body, 1)

        self.start_button.clicked.connect(self.start)
        self.retry_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.freeze_button.clicked.connect(self.toggle_freeze)
        self.save_button.clicked.connect(self._emit_save)
        self.camera_box.activated.connect(lambda _i: self.start())
        self.controller.opened.connect(self._on_opened)
        self.controller.frame_ready.connect(self._on_frame)
        self.controller.failed.connect(self._on_failed)
        self.controller.stopped.connect(self._update_buttons)
        holder.changed.connect(self._on_model_changed)
        # only a person's number overrides the classifier's own rule (an adapter's is not one number)
        holder.threshold_changed.connect(lambda _v: self.controller.set_threshold(holder.review_override))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # so Space reaches the view after a tab switch
        self.space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self.space.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.space.activated.connect(self.toggle_freeze)
        self._on_model_changed(holder.classifier)
        self._update_buttons()

    # --- camera ---------------------------------------------------------------------------
    @property
    def camera_index(self) -> int:
        data = self.camera_box.currentData()
        return int(data) if data is not None else 0

    def select_camera(self, index: int) -> None:
        i = self.camera_box.findData(index)
        if i >= 0:
            self.camera_box.setCurrentIndex(i)

    def start(self) -> None:
        """(Re)open the selected camera in the worker thread."""
        clf = self.holder.classifier
        if clf is None:
            self.show_error("No model loaded. Use File ▸ Open model… to choose one.")
            return
        self.set_frozen(False)
        self.stack.setCurrentIndex(0)
        self.preview.overlay_text = "Opening camera…"
        self.preview.update()
        try:
            source = self.camera_factory(self.camera_index)
        except Exception as e:  # a factory that cannot even build a source
            self.show_error(f"Camera unavailable: {e}")
            return
        self.controller.start(source, clf, self.holder.review_override)
        self._update_buttons()

    def stop(self) -> None:
        self.controller.stop()
        self.preview.overlay_text = "Camera stopped"
        self.preview.update()
        self._update_buttons()

    def show_error(self, text: str) -> None:
        self.message.setText(f"{text}\n\nCheck the cable or close the other program using it, then retry.")
        self.stack.setCurrentIndex(1)
        self.panel.show_message("no picture", "—")
        self._update_buttons()

    def _on_opened(self, name: str) -> None:
        self.preview.overlay_text = ""
        self.stack.setCurrentIndex(0)

    def _on_failed(self, message: str) -> None:
        self.show_error(message)

    def _on_frame(self, result: FrameResult) -> None:
        if self.frozen:
            return
        self.last = result
        self.frames_shown += 1
        color = GUIDE_REVIEW if result.prediction.needs_review else GUIDE_OK
        self.preview.set_frame(to_qimage(result.frame), result.crop_box, color)
        self.panel.show_prediction(result.prediction, result.infer_ms, result.fps)
        if self.capture_label.currentText() != result.prediction.label:  # what Save would use
            i = self.capture_label.findText(result.prediction.label)
            if i >= 0:
                self.capture_label.setCurrentIndex(i)

    def _on_model_changed(self, clf: Any) -> None:
        self.capture_label.clear()
        if clf is not None:
            self.capture_label.addItems(list(clf.classes))
            if self.controller.running:
                self.start()

    def add_classes(self, classes: list[str]) -> None:
        """Offer these labels too when saving (classes taught from corrections, not learned yet)."""
        for name in classes:
            if self.capture_label.findText(name) < 0:
                self.capture_label.addItem(name)

    def _update_buttons(self) -> None:
        running = self.controller.running
        self.start_button.setText("Restart camera" if running else "Start camera")
        self.stop_button.setEnabled(running)
        self.freeze_button.setEnabled(running or self.frozen)
        self.save_button.setEnabled(self.frozen and self.last is not None)
        self.capture_label.setEnabled(self.frozen)

    # --- freeze and save ------------------------------------------------------------------
    def toggle_freeze(self) -> None:
        self.set_frozen(not self.frozen)

    def set_frozen(self, frozen: bool) -> None:
        if frozen and self.last is None:
            return
        self.frozen = frozen
        self.freeze_button.setText("Resume  [Space]" if frozen else "Freeze  [Space]")
        self.preview.overlay_text = "FROZEN — Space to resume" if frozen else ""
        self.preview.update()
        if frozen and self.last is not None:
            i = self.capture_label.findText(self.last.prediction.label)
            if i >= 0:
                self.capture_label.setCurrentIndex(i)
            if self.last.prediction.needs_review:
                self.capture_label.setStyleSheet(REVIEW_STYLE)
            else:
                self.capture_label.setStyleSheet("")
        self._update_buttons()

    def captured_crop(self) -> np.ndarray | None:
        """The part of the frozen frame inside the guide (what the model classified)."""
        if self.last is None:
            return None
        x, y, w, h = self.last.crop_box
        return self.last.frame[y : y + h, x : x + w]

    def _emit_save(self) -> None:
        if self.frozen and self.last is not None:
            self.save_requested.emit(self.capture_label.currentText())

    def add_saved(self, path: Path, label: str) -> None:
        """List a saved item, newest first."""
        self.saved_list.insertItem(0, f"{label}  —  {path.name}")
        self.saved_title.setText(f"Saved items: {self.saved_list.count()}")
        self.saved_title.setToolTip(str(path.parent.parent))

    def shutdown(self) -> None:
        self.controller.stop()


def default_capture_folder() -> Path:
    return Path.home() / "Pictures" / "fashion-captures"
