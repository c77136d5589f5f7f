"""About the model: what it knows (classes), what it is (format, precision) and how good it was."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget


def model_facts(
    clf: Any, threshold: float | str | None = None, adapter: Any | None = None
) -> list[tuple[str, str]]:
    """(name, value) rows for the panel, read from the metadata inside the file (and the adapter)."""
    meta = clf.meta
    metrics = meta.metrics or {}
    acc = metrics.get("test_top1")
    f1 = metrics.get("test_macro_f1")
    rows = [
        ("File", str(clf.path)),
        ("Format", f"{clf.format.upper()} · {clf.precision}"),
        ("Model", " / ".join(x for x in (meta.recipe, meta.model) if x) or "—"),
        ("Test accuracy", f"{acc:.1%}" if isinstance(acc, (int, float)) else "not stored in the file"),
    ]
    if isinstance(f1, (int, float)):
        rows.append(("Test macro F1", f"{f1:.3f}"))
    rows += [
        ("Input", f"{meta.width}×{meta.height} {meta.color_order}, fit: {meta.fit}"),
        (
            "Review",
            threshold
            if isinstance(threshold, str)
            else f"below {(threshold if threshold is not None else meta.review_threshold):.0%} confidence",
        ),
        ("Calibration", f"temperature {meta.temperature:.2f}"),
        (f"Classes ({len(meta.classes)})", ", ".join(meta.classes)),
    ]
    if meta.source_run:
        rows.append(("Trained in", meta.source_run))
    if adapter is not None:
        from fashion_edge.desktop_app.views.learning_panel import adapter_details, summary_text

        rows.append(("Learned on site", summary_text(adapter)))
        rows.append(("Learning check", adapter_details(adapter)))
    return rows


class ModelInfoDialog(QDialog):
    def __init__(
        self,
        clf: Any,
        threshold: float | str | None = None,
        parent: QWidget | None = None,
        adapter: Any | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About the model")
        form = QFormLayout()
        for name, value in model_facts(clf, threshold, adapter):
            label = QLabel(value)
            label.setWordWrap(True)
            label.setMinimumWidth(360)
            form.addRow(f"<b>{name}</b>", label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
