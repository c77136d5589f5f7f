"""The adapted review rule trusts the plain model's sure answers only where the site's examples allow.

Issue 20: with classes of its own taught, auto-accepted answers were only 83-86 % right, all of them
from the fallback "the plain model's own auto-accepted answer". A tiny model (mean colour -> logits,
embedding = mean colour) is sure that orange items are "Tshirts"; the site calls them "Hats".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fashion_edge import runtime
from fashion_edge.runtime.adapted import adapted, fallback_open
from fashion_edge.runtime.adapter import fit_adapter
from tests.onnx_tiny import DEFAULT_CLASSES, colour_image, onnx_float_model, tiny_metadata


@pytest.fixture(scope="module")
def clf(tmp_path_factory) -> runtime.Classifier:
    path = tmp_path_factory.mktemp("fallback") / "model.onnx"
    meta = tiny_metadata(DEFAULT_CLASSES, 80, 60, "onnx", "float32").replace(
        logits_output="logits", embedding_output="embedding", embedding_size=3
    )
    onnx_float_model(path, meta)
    return runtime.load(path)


def orange(i: int, green: int = 120, spread: int = 40) -> np.ndarray:
    """A "Hats" item: red with some green, which the plain model calls "Tshirts" with confidence."""
    img = colour_image(0, strength=200)
    img[img[..., 0] == 255, 1] = green + (i * 7) % spread
    return img


def red(i: int) -> np.ndarray:
    return colour_image(0, strength=150 + (i * 11) % 100)


def green(i: int) -> np.ndarray:
    return colour_image(1, strength=150 + (i * 13) % 100)


def auto_precision(model, items: list[tuple[np.ndarray, str]]) -> tuple[float, int]:
    preds = model.predict([img for img, _ in items])
    auto = [(p.label, lab) for p, (_, lab) in zip(preds, items, strict=True) if not p.needs_review]
    return (sum(a == b for a, b in auto) / len(auto) if auto else 1.0), len(auto)


def test_the_plain_model_is_sure_that_hats_are_tshirts(clf):
    preds = clf.predict([orange(i) for i in range(10)])
    assert all(p.label == "Tshirts" and not p.needs_review for p in preds)  # the trap is real


def test_with_a_new_class_the_plain_models_sure_answers_need_evidence(clf):
    teach = [(orange(i), "Hats") for i in range(6)] + [(red(i), "Tshirts") for i in range(6)]
    teach += [(green(i), "Watches") for i in range(6)]
    ad = fit_adapter(clf, teach, catalogue=None)
    assert ad.new_classes == ["Hats"]
    assert fallback_open(ad) == frozenset()  # 6 examples per class prove nothing at 97 %
    # hats the site did not show (more green than its examples): the learner half knows them
    unseen = [(orange(i, 155, 45), "Hats") for i in range(40, 80)] + [
        (red(i), "Tshirts") for i in range(40, 80)
    ]

    precision, n_auto = auto_precision(adapted(clf, ad), unseen)

    assert precision >= 0.97
    ad.fallback_classes = list(clf.classes)  # the old rule: every sure answer of the plain model
    old_precision, old_auto = auto_precision(adapted(clf, ad), unseen)
    assert old_auto > n_auto and old_precision < 0.97  # what this rule stops


def test_enough_right_examples_open_a_class_again(clf):
    teach = [(orange(i), "Hats") for i in range(6)] + [(green(i), "Watches") for i in range(70)]
    ad = fit_adapter(clf, teach, catalogue=None)
    assert "Watches" in fallback_open(ad)  # 70 sure "Watches", all right: proved >= 97 %
    assert "Tshirts" not in fallback_open(ad)  # its sure answers were Hats


def test_without_new_classes_a_class_closes_only_when_the_examples_show_it_wrong(clf):
    teach = [(red(i), "Tshirts") for i in range(5)] + [(green(i), "Watches") for i in range(5)]
    ad = fit_adapter(clf, teach, catalogue=None)
    assert {"Tshirts", "Watches", "Casual Shoes"} <= fallback_open(ad)

    teach += [(orange(0), "Watches")]  # a person says the plain model's sure "Tshirts" was wrong
    ad = fit_adapter(clf, teach, catalogue=None)
    assert "Tshirts" not in fallback_open(ad) and "Watches" in fallback_open(ad)


def test_the_evidence_travels_in_the_adapter_file(clf, tmp_path: Path):
    from fashion_edge.runtime.adapter_record import load_adapter, save_adapter

    teach = [(orange(i), "Hats") for i in range(4)] + [(green(i), "Watches") for i in range(4)]
    ad = fit_adapter(clf, teach, catalogue=None)
    save_adapter(ad, tmp_path / "a.npz")
    assert load_adapter(tmp_path / "a.npz", clf).fallback_classes == ad.fallback_classes == []
