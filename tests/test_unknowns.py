"""fashion_edge.training.unknowns: picking never-taught items, and open-set metrics on hand-made examples."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fashion_edge.training.data import Catalogue, load_catalogue
from fashion_edge.training.unknowns import (
    max_confidence,
    open_set_metrics,
    split_unknowns,
    threshold_for_known_acceptance,
    threshold_for_unknown_acceptance,
    unknown_ids,
)
from tests.conftest import requires_catalogue

KNOWN = ["Tshirts", "Watches"]
SIZES = {"Tshirts": 40, "Watches": 30, "Jeans": 50, "Belts": 20, "Heels": 5, "Socks": 1}


def _catalogue() -> Catalogue:
    rows, next_id = [], 100
    for kind, n in SIZES.items():
        for _ in range(n):
            rows.append({"id": str(next_id), "articleType": kind, "masterCategory": "Apparel"})
            next_id += 1
    return Catalogue(root=Path("."), rows=rows)


def test_unknown_ids_never_pick_known_classes_and_are_deterministic() -> None:
    cat = _catalogue()
    picked = unknown_ids(cat, KNOWN, n=1000)
    assert {t for _, t in picked} == {"Jeans", "Belts", "Heels", "Socks"}
    assert len(picked) == 50 + 20 + 5 + 1 and len({i for i, _ in picked}) == len(picked)
    rows = {r["id"]: r["articleType"] for r in cat.rows}
    assert all(rows[i] == t for i, t in picked)  # labels are the items' own types
    assert unknown_ids(cat, KNOWN, n=30, seed=1) == unknown_ids(cat, KNOWN, n=30, seed=1)
    assert unknown_ids(cat, KNOWN, n=30, seed=1) != unknown_ids(cat, KNOWN, n=30, seed=2)


def test_unknown_ids_are_stratified_capped_and_exclude() -> None:
    cat = _catalogue()
    counts = Counter(t for _, t in unknown_ids(cat, KNOWN, n=30))
    assert counts["Heels"] == 5 and counts["Socks"] == 1  # small types are not drowned
    assert abs(counts["Jeans"] - counts["Belts"]) <= 1 and sum(counts.values()) == 30
    capped = Counter(t for _, t in unknown_ids(cat, KNOWN, n=1000, per_type_cap=10))
    assert max(capped.values()) == 10
    assert "Socks" not in dict(unknown_ids(cat, KNOWN, min_per_type=2)).values()
    excluded = {str(i) for i in range(200, 260)}
    picked = unknown_ids(cat, KNOWN, exclude_ids=excluded, exclude_types=["Belts"])
    assert not excluded & {i for i, _ in picked}
    assert "Belts" not in {t for _, t in picked}


@pytest.mark.parametrize("by_type", [False, True])
def test_split_unknowns_never_overlap(by_type: bool) -> None:
    items = unknown_ids(_catalogue(), KNOWN, n=1000)
    train, evaluation = split_unknowns(items, eval_fraction=0.5, seed=0, by_type=by_type)
    assert not {i for i, _ in train} & {i for i, _ in evaluation}
    assert sorted(train + evaluation) == sorted(items)
    train_types, eval_types = {t for _, t in train}, {t for _, t in evaluation}
    if by_type:
        assert not train_types & eval_types and train_types and eval_types
    else:
        assert eval_types == {t for _, t in items}  # every type is evaluated
        assert abs(sum(t == "Jeans" for _, t in evaluation) - 25) <= 1
    assert split_unknowns(items, 0.5, seed=0, by_type=by_type) == (train, evaluation)
    with pytest.raises(ValueError):
        split_unknowns(items, eval_fraction=1.0)


def test_open_set_metrics_hand_made() -> None:
    known = [0.9, 0.8, 0.4, 0.95]
    unknown = [0.3, 0.85, 0.1]
    m = open_set_metrics(known, unknown, threshold=0.8, known_correct=[True, False, True, True])
    assert m["known_accepted"] == pytest.approx(3 / 4)
    assert m["known_review"] == pytest.approx(1 / 4)
    assert m["unknown_accepted"] == pytest.approx(1 / 3)
    assert m["accepted_known_accuracy"] == pytest.approx(2 / 3)
    assert m["known_accuracy"] == pytest.approx(3 / 4)
    # (known, unknown) pairs where the known item scores higher: 3 + 2 + 2 + 3 of 12
    assert m["auroc"] == pytest.approx(10 / 12)
    assert m["n_known"] == 4 and m["n_unknown"] == 3


def test_open_set_metrics_extremes() -> None:
    assert open_set_metrics([0.9, 0.8], [0.2, 0.1], 0.5)["auroc"] == 1.0
    assert open_set_metrics([0.2, 0.1], [0.9, 0.8], 0.5)["auroc"] == 0.0
    assert open_set_metrics([0.5, 0.5], [0.5, 0.5], 0.5)["auroc"] == 0.5
    perfect = open_set_metrics([0.9, 0.8], [0.2, 0.1], 0.5)
    assert perfect["known_accepted"] == 1.0 and perfect["unknown_accepted"] == 0.0
    assert perfect["fpr_at_95_tpr"] == 0.0
    empty = open_set_metrics([0.9], [], 0.5)
    assert math.isnan(empty["auroc"]) and math.isnan(empty["unknown_accepted"])
    none_accepted = open_set_metrics([0.1], [0.2], 0.5, known_correct=[True])
    assert math.isnan(none_accepted["accepted_known_accuracy"])
    with pytest.raises(ValueError, match="known_correct"):
        open_set_metrics([0.9, 0.8], [0.1], 0.5, known_correct=[True])


def test_thresholds_meet_their_targets() -> None:
    rng = np.random.default_rng(0)
    known, unknown = rng.uniform(0.4, 1.0, 200), rng.uniform(0.0, 0.8, 150)
    for rate in (0.5, 0.9, 0.95, 1.0):
        t = threshold_for_known_acceptance(known, rate)
        assert np.mean(known >= t) >= rate
        assert np.mean(known >= np.nextafter(t, 2)) < rate or t == known.max()  # highest such
    for rate in (0.0, 0.05, 0.2):
        t = threshold_for_unknown_acceptance(unknown, rate)
        assert np.mean(unknown >= t) <= rate
        assert np.mean(unknown >= np.nextafter(t, -1)) > rate  # lowest such
    assert threshold_for_unknown_acceptance(unknown, 1.0) == 0.0
    np.testing.assert_allclose(max_confidence(np.array([[0.2, 0.8], [0.6, 0.4]])), [0.8, 0.6])


@requires_catalogue
def test_unknown_ids_on_the_real_catalogue() -> None:
    cat = load_catalogue()
    known = ["Tshirts", "Shirts", "Casual Shoes", "Watches", "Sports Shoes", "Kurtas", "Tops", "Handbags"]
    picked = unknown_ids(cat, known, n=1500, per_type_cap=60, min_per_type=20)
    kinds = Counter(t for _, t in picked)
    assert len(picked) == 1500 and not set(kinds) & set(known)
    assert {"Jeans", "Heels", "Sunglasses", "Belts", "Wallets"} <= set(kinds)
    assert max(kinds.values()) <= 60 and len(kinds) >= 30
