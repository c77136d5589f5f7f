"""runtime.adapter: the penalty is chosen on held-out accuracy (balanced per class), log-loss breaking ties."""

from __future__ import annotations

import numpy as np

from fashion_edge.runtime.adapter import _selection_score


def test_more_held_out_items_right_beats_a_lower_log_loss():
    y = np.array([0, 0, 0, 1])
    timid = np.array([[0.55, 0.45], [0.55, 0.45], [0.45, 0.55], [0.45, 0.55]])  # 3 of 4 right, low loss
    bold = np.array([[0.99, 0.01], [0.99, 0.01], [0.99, 0.01], [0.02, 0.98]])  # all right
    worse = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])  # class 1 wrong
    assert _selection_score(bold, y) < _selection_score(timid, y) < _selection_score(worse, y)


def test_accuracy_is_balanced_per_class_and_log_loss_breaks_ties():
    y = np.array([0, 0, 0, 0, 1])
    majority_only = np.tile([0.9, 0.1], (5, 1))  # 4 of 5 right, but class 1 never
    acc, _ = _selection_score(majority_only, y)
    assert acc == -0.5
    sure = np.array([[0.9, 0.1]] * 4 + [[0.2, 0.8]])
    unsure = np.array([[0.6, 0.4]] * 4 + [[0.4, 0.6]])
    assert _selection_score(sure, y)[0] == _selection_score(unsure, y)[0] == -1.0
    assert _selection_score(sure, y) < _selection_score(unsure, y)
