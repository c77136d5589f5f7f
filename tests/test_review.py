"""The one "needs review" rule: unknown is never auto-accepted, NaN never passes, everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fashion_edge.export.calibration import accuracy_above, choose_review_threshold
from fashion_edge.runtime.metadata import ModelMetadata
from fashion_edge.runtime.review import auto_accepted, needs_review

META = ModelMetadata(classes=["Tshirts", "Watches", "unknown"], review_threshold=0.9, unknown_class="unknown")


@pytest.mark.parametrize("threshold", [None, 0.0, 0.5])
def test_a_user_threshold_never_auto_accepts_unknown(threshold):
    assert needs_review("unknown", 0.999, META, threshold)
    assert not needs_review("Watches", 0.95, META, threshold)


@pytest.mark.parametrize("conf", [math.nan, math.inf, -math.inf, -0.1, 1.5, "high", None])
def test_nan_or_absurd_confidence_always_needs_review(conf):
    assert needs_review("Watches", conf, META, 0.0)


def test_stored_threshold_applies_when_the_user_gives_none():
    assert needs_review("Watches", 0.85, META) and not needs_review("Watches", 0.95, META)


def test_vector_rule_agrees_with_the_scalar_rule():
    probs = np.array([[0.95, 0.04, 0.01], [0.01, 0.01, 0.98], [np.nan] * 3, [0.5, 0.3, 0.2]])
    mask = auto_accepted(probs, 0.9, unknown_index=2)
    scalar = [
        not needs_review(META.classes[int(np.nanargmax(np.nan_to_num(p, nan=-1)))], p.max(), META)
        for p in probs
    ]
    assert mask.tolist() == scalar == [True, False, False, False]


def test_classifier_predictions_use_the_rule(tmp_path):
    from fashion_edge.runtime.classifier import Classifier

    clf = Classifier.__new__(Classifier)
    clf.meta, clf.classes = META, list(META.classes)
    probs = np.array([[0.01, 0.01, 0.98], [np.nan] * 3, [0.97, 0.02, 0.01]], np.float32)
    flags = [p.needs_review for p in clf.predictions(probs, review_threshold=0.1)]
    assert flags == [True, True, False]


def test_calibration_ignores_unknown_predictions_when_choosing_and_scoring():
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 3, n)
    probs = np.full((n, 3), 0.005)
    probs[np.arange(n), y] = 0.99  # confident and right
    probs[y == 2, 2] = 0.999  # the unknown class is the most confident of all
    cov, acc = accuracy_above(probs, y, 0.98, unknown_index=2)
    assert cov == pytest.approx(np.mean(y != 2)) and acc == 1.0
    thr = choose_review_threshold(probs, y, precision=0.95, unknown_index=2)
    assert thr.coverage == pytest.approx(np.mean(y != 2)) and thr.threshold == pytest.approx(0.99)


def test_choose_threshold_never_cuts_inside_a_run_of_equal_confidences():
    import numpy as np

    from fashion_edge.runtime.review import choose_threshold

    # 60 right at 0.99, then 20 tied at 0.9 of which 10 are wrong: a cut inside the tie would
    # claim more than a threshold of 0.9 delivers (it accepts all 20)
    conf = np.array([0.99] * 60 + [0.9] * 20)
    right = np.array([True] * 60 + [True] * 10 + [False] * 10)
    choice = choose_threshold(conf, right, np.ones(80, bool), 0.9)
    assert choice.threshold == 0.99 and choice.count == 60 and choice.coverage == 0.75
    # the unknown class (not acceptable) ranks below every cut, but counts in the coverage
    acceptable = np.array([True] * 70 + [False] * 10)
    choice = choose_threshold(conf, right, acceptable, 0.9)
    assert choice.threshold == 0.9 and choice.count == 70 and choice.total == 80
    none = choose_threshold(conf, np.zeros(80, bool), np.ones(80, bool), 0.9)
    assert none.threshold is None and none.precision_lower < 0.9
