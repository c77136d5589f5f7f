"""The window: Camera and Folder tabs, menus, model status line, drag and drop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QThreadPool
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

from fashion_edge.desktop_app.camera import CameraSource, OpenCVCamera
from fashion_edge.desktop_app.model_holder import ModelHolder
from fashion_edge.desktop_app.models.captures import save_capture
from fashion_edge.desktop_app.models.folder_session import JOURNAL_NAME, FolderSession
from fashion_edge.desktop_app.settings import AppSettings
from fashion_edge.desktop_app.views.camera_view import CameraView, default_capture_folder
from fashion_edge.desktop_app.views.dialogs import Dialogs
from fashion_edge.desktop_app.views.folder_view import FolderView
from fashion_edge.desktop_app.views.learning_controller import LearningController
from fashion_edge.desktop_app.views.learning_panel import LearningPanel
from fashion_edge.desktop_app.views.model_info import ModelInfoDialog
from fashion_edge.desktop_app.views.threshold_box import ThresholdBox, rule_text
from fashion_edge.runtime import ModelLoadError

CAMERA_TAB, FOLDER_TAB = 0, 1
MODEL_SUFFIXES = (".onnx", ".tflite")


class MainWindow(QMainWindow):
    """Wires views to the model holder, the folder session and the camera controller."""

    def __init__(
        self,
        settings: AppSettings,
        holder: ModelHolder,
        camera_factory: Callable[[int], CameraSource] = OpenCVCamera,
        dialogs: Dialogs | None = None,
        pool: QThreadPool | None = None,
        cameras: list[tuple[int, str]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.holder = holder
        self.dialogs = dialogs or Dialogs()
        self.setWindowTitle("Fashion sorter")
        self.setAcceptDrops(True)
        self.resize(1180, 760)

        self.session = FolderSession(pool, self)
        self.camera = CameraView(holder, camera_factory, cameras)
        self.camera.select_camera(settings.camera_index)
        self.folder = FolderView(self.session)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.camera, "Camera")
        self.tabs.addTab(self.folder, "Folder")
        self.learning_panel = LearningPanel()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(self.tabs, 1)
        central_layout.addWidget(self.learning_panel)
        self.setCentralWidget(central)
        self.learning = LearningController(
            settings, holder, self.learning_panel, self.dialogs, self.session.pool, self
        )

        self.model_status = QLabel("")
        self.threshold = ThresholdBox()
        self.statusBar().addPermanentWidget(self.threshold)
        self.statusBar().addWidget(self.model_status, 1)
        self._build_menus()

        self.tabs.currentChanged.connect(self._on_tab)
        self.folder.open_requested.connect(self.choose_folder)
        self.folder.sort_requested.connect(self.sort_folder)
        self.folder.export_requested.connect(self.export_csv)
        self.camera.save_requested.connect(self.save_capture)
        self.camera.camera_box.currentIndexChanged.connect(self._remember_camera)
        self.session.failed.connect(lambda m: self.dialogs.error(self, "Folder", m))
        self.session.finished.connect(self._on_labelled)
        self.session.sorted.connect(self._on_sorted)
        self.session.saved.connect(self._on_corrected)
        self.folder.new_label_typed.connect(self._on_new_label_typed)
        self.learning.classes_changed.connect(self._on_classes_changed)
        self.learning.message.connect(lambda m: self.statusBar().showMessage(m, 10000))
        self.learning.model_changed.connect(self._on_learned_model)
        self.session.relabelled.connect(self._on_relabelled)
        holder.changed.connect(self._on_model_changed)
        holder.threshold_changed.connect(self._on_threshold_changed)
        self.threshold.valueChanged.connect(self._on_threshold_edited)
        self._on_model_changed(holder.classifier)
        self.learning.attach()  # the adapter learned on this model, if any

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_folder_action = self._action(
            file_menu, "Open &folder…", QKeySequence.StandardKey.Open, self.choose_folder
        )
        self.open_model_action = self._action(file_menu, "Open &model…", "Ctrl+M", self.choose_model)
        self.export_action = self._action(file_menu, "&Export CSV…", "Ctrl+E", self.export_csv)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "&Camera", "Ctrl+1", lambda: self.tabs.setCurrentIndex(CAMERA_TAB))
        self._action(view_menu, "&Folder", "Ctrl+2", lambda: self.tabs.setCurrentIndex(FOLDER_TAB))
        learn_menu = self.menuBar().addMenu("&Learn")
        self.learn_action = self._action(
            learn_menu, "&Learn from my corrections", "Ctrl+L", lambda: self.learning.learn()
        )
        self._action(learn_menu, "&Teach a new class…", "Ctrl+Shift+N", self.learning.teach)
        self._action(learn_menu, "&Undo learning", "Ctrl+Shift+Z", self.learning.undo)
        self._action(learn_menu, "&Reset to factory model…", "", self.learning.reset)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About the model…", "F1", self.show_model_info)

    def _action(self, menu: Any, text: str, shortcut: Any, slot: Callable[[], Any]) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    # --- model ----------------------------------------------------------------------------
    def choose_model(self) -> None:
        start = self.holder.classifier.path.parent if self.holder.classifier is not None else None
        path = self.dialogs.open_model(self, start)
        if path is not None:
            self.open_model(path)

    def open_model(self, path: str | Path) -> bool:
        """Load a model file; on failure say why and keep the current one."""
        try:
            self.holder.load(path)
        except ModelLoadError as e:
            keep = f"\n\nStill using {self.holder.classifier.path.name}." if self.holder.classifier else ""
            self.dialogs.error(self, "Cannot open model", f"{e}{keep}")
            return False
        self.settings.model_path = Path(path).resolve()
        self.learning.attach()
        self.holder.set_threshold(None)  # a threshold tuned for another model means nothing here
        self.settings.threshold = None
        return True

    def _on_model_changed(self, clf: Any) -> None:
        if clf is None:
            self.model_status.setText("No model loaded — File ▸ Open model…")
            self.folder.set_classes([])
            return
        acc = (clf.meta.metrics or {}).get("test_top1")
        acc_text = f" · test accuracy {acc:.1%}" if isinstance(acc, (int, float)) else ""
        learned = " + learned from your corrections" if self.holder.adapter is not None else ""
        self.model_status.setText(
            f"Model: {clf.path.name} ({clf.format.upper()} {clf.precision}, "
            f"{len(clf.classes)} classes){acc_text}{learned}"
        )
        self._on_classes_changed(self.learning.classes())
        self._show_threshold()

    def _show_threshold(self) -> None:
        """The box says the rule in force: a number, or with an adapter (and no number set) its rule."""
        adapter, base = self.holder.adapter, self.holder.base
        if adapter is not None and base is not None:
            base_thr = float(base.meta.review_threshold)
            self.threshold.set_rule(
                *rule_text(adapter, base_thr, base.meta.unknown_class), first_number=base_thr
            )
        else:
            self.threshold.set_rule(None)
        self.threshold.show_value(
            self.holder.review_override if adapter is not None else self.holder.threshold
        )

    def _on_threshold_edited(self, value: float) -> None:
        chosen = None if self.threshold.on_rule else value
        self.holder.set_threshold(chosen)
        self.settings.threshold = chosen

    def _on_threshold_changed(self, _value: float) -> None:
        self._show_threshold()
        self.session.set_threshold(self.holder.review_override)

    def show_model_info(self) -> None:
        if self.holder.classifier is None:
            self.dialogs.info(self, "About the model", "No model is loaded.")
            return
        ModelInfoDialog(self.holder.classifier, self.threshold_text(), self, self.holder.adapter).exec()

    def threshold_text(self) -> str:
        """The review rule in force, in words (for the model panel)."""
        if self.threshold.on_rule:
            return self.threshold.text()
        return f"review below {self.holder.threshold:.0%} confidence"

    # --- learning -------------------------------------------------------------------------
    def _on_classes_changed(self, classes: list[str]) -> None:
        if classes != self.folder.classes:
            self.folder.set_classes(classes)
        self.camera.add_classes(classes)

    def _on_learned_model(self) -> None:
        """A refit, Undo or Reset changed the model: predict the open folder again (people's rows kept)."""
        if self.session.folder is None or self.holder.classifier is None:
            return
        what = "the learned model" if self.holder.adapter is not None else "the plain model"
        self.session.relabel(self.holder.worker_classifier(), what)

    def _on_relabelled(self, changes: Any) -> None:
        self.statusBar().showMessage(f"With {self.session.relabel_what} — {changes.line()}", 15000)

    def _on_corrected(self, rel: str) -> None:
        """A person set or confirmed a folder item's label: keep it for learning."""
        i = self.session.model.row_of(rel)
        if self.session.folder is not None and i is not None:
            self.learning.record(self.session.folder / rel, self.session.model.rows[i].label, "folder")

    def _on_new_label_typed(self, name: str) -> None:
        """A label typed in the class search that no class has: a new class, after a question."""
        if self.dialogs.confirm(
            self,
            "New class",
            f"Label this item '{name}', a class the model does not know yet?\n"
            "It is learned once it has a few examples (Learn ▸ Learn from my corrections).",
        ):
            self.folder.search.clear()
            self.folder.set_current_label(name)
            self.folder.table.setFocus()

    # --- folder ---------------------------------------------------------------------------
    def choose_folder(self) -> None:
        path = self.dialogs.choose_folder(self, "Open a folder of photos", self.settings.last_folder)
        if path is not None:
            self.open_folder(path)

    def open_folder(self, path: str | Path) -> None:
        """Switch to folder mode and label the folder (resuming its fashion-labels.csv)."""
        if self.holder.classifier is None:
            self.dialogs.error(self, "No model", "Open a model first (File ▸ Open model…).")
            return
        self.tabs.setCurrentIndex(FOLDER_TAB)
        self.settings.last_folder = Path(path).resolve()
        self.session.open(path, self.holder.worker_classifier())
        self.statusBar().showMessage(f"Labels are saved to {Path(path) / JOURNAL_NAME}", 8000)

    def _on_labelled(self, summary: Any) -> None:
        state = "cancelled" if summary.cancelled else "done"
        self.statusBar().showMessage(f"Labelling {state}: {summary.line()}", 15000)

    def sort_folder(self) -> None:
        folder = self.session.folder
        if folder is None:
            return
        dest = self.dialogs.choose_folder(self, "Sort into which folder?", folder.parent)
        if dest is None:
            return
        count = sum(1 for r in self.session.records() if not r.error)
        mode = self.dialogs.sort_mode(self, count, dest)
        if mode is not None:
            self.session.sort(dest, move=mode == "move")

    def _on_sorted(self, pairs: list) -> None:
        self.statusBar().showMessage(f"Sorted {len(pairs)} files into per-label folders.", 15000)

    def export_csv(self) -> None:
        if self.session.folder is None:
            self.dialogs.info(self, "Export CSV", "Open a folder first.")
            return
        path = self.dialogs.save_csv(
            self, self.session.folder.parent / f"{self.session.folder.name}-labels.csv"
        )
        if path is None:
            return
        try:
            n = self.session.export(path)
        except OSError as e:
            self.dialogs.error(self, "Export CSV", f"{path}: {e.strerror or e}")
            return
        self.statusBar().showMessage(f"Exported {n} rows to {path}", 10000)

    # --- camera ---------------------------------------------------------------------------
    def save_capture(self, label: str) -> None:
        folder = self.settings.capture_folder
        if folder is None:
            folder = self.dialogs.choose_folder(
                self, "Save captured items where?", default_capture_folder().parent
            )
            if folder is None:
                return
            self.settings.capture_folder = folder
        crop = self.camera.captured_crop()
        if crop is None:
            return
        pred = self.camera.last.prediction if self.camera.last else None
        try:
            path = save_capture(folder, crop, label, pred)
        except OSError as e:
            self.dialogs.error(self, "Save item", f"{folder}: {e.strerror or e}")
            return
        self.statusBar().showMessage(f"Saved {path}", 8000)
        self.camera.add_saved(path, label)
        self.learning.record(path, label, "capture")
        self.camera.set_frozen(False)

    def _remember_camera(self, _i: int) -> None:
        self.settings.camera_index = self.camera.camera_index

    def _on_tab(self, index: int) -> None:
        if index == CAMERA_TAB:
            self.camera.setFocus()
            if not self.camera.controller.running and self.holder.classifier is not None:
                self.camera.start()
        else:
            self.camera.stop()
            self.folder.table.setFocus()

    # --- window ---------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if any(self._drop_kind(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        for url in event.mimeData().urls():
            path = url.toLocalFile()
            kind = self._drop_kind(path)
            if kind == "folder":
                self.open_folder(path)
            elif kind == "model":
                self.open_model(path)
            if kind:
                event.acceptProposedAction()
                return

    @staticmethod
    def _drop_kind(path: str) -> str:
        p = Path(path) if path else None
        if p is None:
            return ""
        if p.is_dir():
            return "folder"
        return "model" if p.suffix.lower() in MODEL_SUFFIXES else ""

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.camera.shutdown()
        self.session.cancel(wait=True)
        self.learning.cancel(wait=True)
        super().closeEvent(event)
