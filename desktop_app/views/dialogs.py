"""Every question the app asks the user, in one replaceable object (tests swap in answers)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

MODEL_FILTER = "fashion-edge models (*.onnx *.tflite);;All files (*)"


class Dialogs:
    """Modal dialogs; ``None`` from a chooser means the user cancelled."""

    def error(self, parent: QWidget | None, title: str, text: str) -> None:
        QMessageBox.critical(parent, title, text)

    def info(self, parent: QWidget | None, title: str, text: str) -> None:
        QMessageBox.information(parent, title, text)

    def confirm(self, parent: QWidget | None, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        )
        return answer == QMessageBox.StandardButton.Yes

    def choose_folder(self, parent: QWidget | None, title: str, start: Path | None = None) -> Path | None:
        path = QFileDialog.getExistingDirectory(parent, title, str(start or Path.home()))
        return Path(path) if path else None

    def open_model(self, parent: QWidget | None, start: Path | None = None) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(parent, "Open model", str(start or Path.home()), MODEL_FILTER)
        return Path(path) if path else None

    def save_csv(self, parent: QWidget | None, start: Path | None = None) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(parent, "Export CSV", str(start or Path.home()), "CSV (*.csv)")
        return Path(path) if path else None

    def teach_class(self, parent: QWidget | None, classes: list[str]) -> tuple[str, list[Path]] | None:
        """A new class name and its photos, or None (cancelled)."""
        from fashion_edge.desktop_app.views.learning_panel import TeachClassDialog

        dialog = TeachClassDialog(classes, parent)
        return dialog.answer() if dialog.exec() == TeachClassDialog.DialogCode.Accepted else None

    def sort_mode(self, parent: QWidget | None, count: int, dest: Path) -> str | None:
        """'copy', 'move' or None (cancelled); moving asks a second time."""
        box = QMessageBox(parent)
        box.setWindowTitle("Sort into folders")
        box.setText(f"Put {count} items into one folder per label under\n{dest}?")
        box.setInformativeText(
            "Nothing is overwritten: a clashing name gets a number. Unsure items go to needs_review/."
        )
        copy = box.addButton("Copy", QMessageBox.ButtonRole.AcceptRole)
        move = box.addButton("Move…", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(copy)
        box.exec()
        if box.clickedButton() is copy:
            return "copy"
        if box.clickedButton() is move and self.confirm(
            parent,
            "Move files?",
            f"Move {count} files out of the folder into {dest}? The originals will be gone.",
        ):
            return "move"
        return None
