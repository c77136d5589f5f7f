"""The review threshold in the status bar: a number, or, with a learned adapter, the learned rule.

With an adapter in use the model has no single threshold: an item is auto-accepted when the
learned model is sure enough by the threshold proved on held-out corrections, or when the plain
model's own auto-accepted answer is the same (``runtime.adapted.AdaptedClassifier.decide``). Until
enough corrections prove a threshold the adapter's is 1.0, which the box used to show as
"review below 1.00" although most items were still auto-accepted. The box's bottom value is now
that rule, in words; any number a person sets replaces it for every item, and stepping back
down to the bottom returns to the rule.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDoubleSpinBox, QWidget

from fashion_edge.runtime.adapted import fallback_open

RULE = -0.01  # the box's bottom value while an adapter is in use: no number, the learned rule
PLAIN_TIP = "Items with a lower confidence are shown as 'unknown / needs review'"


def rule_text(adapter: Any, base_threshold: float, unknown_class: str | None = None) -> tuple[str, str]:
    """(short text for the box, tooltip) saying which rule the learned model reviews by."""
    known = [
        c for c in adapter.classes[: len(adapter.classes) - len(adapter.new_classes)] if c != unknown_class
    ]
    n_open = len(fallback_open(adapter) & set(known))
    plain = f"plain model ≥ {base_threshold:.2f} and agrees"
    if n_open < len(known):
        plain += f" ({n_open} of {len(known)} classes)"
    proved = adapter.review_threshold < 1.0
    if n_open == 0:
        short = (
            f"auto-accept: learned ≥ {adapter.review_threshold:.2f}" if proved else "auto-accept: none yet"
        )
    else:
        short = (
            f"auto-accept: learned ≥ {adapter.review_threshold:.2f} or {plain}"
            if proved
            else f"auto-accept: {plain}"
        )
    first = (
        f"Auto-accepted: items the learned model gives {adapter.review_threshold:.2f} or more (a threshold "
        "your held-out corrections proved 97 % right)"
        if proved
        else "The learned model has not proved a threshold of its own yet (it needs more corrections "
        "to hold out)"
    )
    plain_tip = (
        f"items where the plain model was sure ({base_threshold:.2f} or more) and the learned model "
        "gives the same label"
        + (
            f", for the {n_open} of {len(known)} classes where your examples do not show the plain "
            "model wrong (with classes of your own, where they prove it 97 % right)"
            if n_open < len(known)
            else ""
        )
    )
    tip = (
        f"{first}, and {plain_tip}. Everything else needs review; so does 'unknown'.\n"
        "Set a number to review everything below it instead; step down to the bottom to come back "
        "to this rule."
    )
    return short, tip


class ThresholdBox(QDoubleSpinBox):
    """``review below X``; with ``set_rule(text)``, its bottom value stands for the learned rule."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(0.0, 1.0)
        self.setSingleStep(0.05)
        self.setDecimals(2)
        self.setPrefix("review below ")
        self.setToolTip(PLAIN_TIP)
        self.first_number = 0.5  # where the arrows start from the rule: the plain model's threshold

    @property
    def has_rule(self) -> bool:
        return self.minimum() < 0.0

    @property
    def on_rule(self) -> bool:
        return self.has_rule and self.value() <= RULE + 1e-9

    def set_rule(self, text: str | None, tooltip: str = "", first_number: float = 0.5) -> None:
        """Offer the learned rule (``text``) as the bottom value, or only numbers (None)."""
        self.first_number = first_number
        self.blockSignals(True)  # a minimum that clamps the value is not a person's choice
        self.setSpecialValueText(text or "")
        self.setMinimum(RULE if text else 0.0)
        self.blockSignals(False)
        self.setToolTip(tooltip if text else PLAIN_TIP)
        self.updateGeometry()

    def show_value(self, value: float | None) -> None:
        """Show a number, or the rule (None), without emitting ``valueChanged``."""
        self.blockSignals(True)
        self.setValue(RULE if value is None and self.has_rule else (value or 0.0))
        self.blockSignals(False)

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt API)
        if self.on_rule and steps > 0:
            self.setValue(self.first_number)  # the first number is the plain model's own threshold
            return
        super().stepBy(steps)
