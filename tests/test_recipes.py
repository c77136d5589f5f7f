"""Class recipes and splits: counts, rules, determinism, disjoint splits."""

from __future__ import annotations

from collections import Counter

import pytest

from fashion_edge.training import data as D
from fashion_edge.training.recipes import articletype8, class30, master, normalised_entropy, subcategory
from fashion_edge.training.splits import read_split_pairs, stratified_split, write_splits
from tests.conftest import requires_catalogue


def _rows(spec: dict[tuple[str, str, str], int], names: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Rows from {(master, sub, article): count}."""
    rows, i = [], 0
    for (m, s, a), n in spec.items():
        for _ in range(n):
            i += 1
            rows.append({"id": str(i), "masterCategory": m, "subCategory": s, "articleType": a,
                         "productDisplayName": (names or {}).get(a, f"Brand {a}")})  # fmt: skip
    return rows


def test_articletype8_threshold_and_cap_are_seeded():
    rows = _rows({("A", "T", "Big"): 30, ("A", "T", "Mid"): 12, ("A", "T", "Small"): 5})
    lab = articletype8(rows, seed=1, min_images=10, cap=20)
    assert lab.counts() == {"Big": 20, "Mid": 12}
    assert lab.ids == articletype8(rows, seed=1, min_images=10, cap=20).ids
    assert lab.ids != articletype8(rows, seed=2, min_images=10, cap=20).ids


def test_class30_rules_and_free_items_relabel():
    rows = _rows(
        {
            ("Apparel", "Topwear", "Tshirts"): 10,
            ("Apparel", "Topwear", "Shirts"): 10,
            ("Apparel", "Topwear", "Tops"): 120,  # Topwear > 105 -> its own class
            ("Footwear", "Sandal", "Sandals"): 20,  # Sandal <= 105 -> masterCategory Footwear
            ("Home", "Home Furnishing", "Cushion"): 3,  # < 5 -> dropped
            ("Free Items", "Free Gifts", "Free Gifts"): 4,
        },
        names={"Free Gifts": "Puma Unisex Footwear Gift"},
    )
    lab = class30(rows, sub_min=105, drop_below=5)
    assert set(lab.classes) == {"Tshirts", "Shirts", "Topwear", "Footwear"}
    assert lab.notes["dropped_under_min"] == {"Home": 3, "Free Items": 4}
    assert 0 < lab.notes["normalised_entropy"] <= 1


def test_class30_free_items_go_to_most_similar_class():
    rows = _rows({("Apparel", "Topwear", "Tshirts"): 10, ("Footwear", "Shoes", "Casual Shoes"): 200,
                  ("Free Items", "Free Gifts", "Free Gifts"): 6}, names={"Free Gifts": "Nike Men Shoes Gift"})  # fmt: skip
    lab = class30(rows)
    assert "Free Items" not in lab.classes
    assert lab.notes["free_items_relabelled"] == {"Shoes": 6}


def test_master_drops_small_classes_and_says_so():
    rows = _rows({("Apparel", "T", "a"): 600, ("Footwear", "S", "b"): 500, ("Home", "H", "c"): 1})
    lab = master(rows)
    assert lab.classes == ["Apparel", "Footwear"]
    assert lab.notes["dropped_under_min"] == {"Home": 1}


def test_subcategory_min_size():
    lab = subcategory(_rows({("A", "Topwear", "x"): 150, ("A", "Socks", "y"): 50}))
    assert lab.classes == ["Topwear"]


def test_normalised_entropy_bounds():
    assert normalised_entropy(["a", "b"] * 5) == pytest.approx(1.0)
    assert normalised_entropy(["a"] * 99 + ["b"]) < 0.1


def test_splits_are_stratified_deterministic_and_disjoint(tiny_catalogue, tmp_path):
    cat = D.load_catalogue(tiny_catalogue)
    lab = articletype8(cat.rows, min_images=10)
    s1, s2 = stratified_split(lab, seed=3), stratified_split(lab, seed=3)
    assert s1 == s2
    ids = {k: {i for i, _ in v} for k, v in s1.items()}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    assert sum(len(v) for v in ids.values()) == 90
    assert Counter(label for _, label in s1["test"]) == {"Tshirts": 3, "Watches": 3, "Casual Shoes": 3}
    write_splits(s1, tmp_path / "splits.csv")
    back = read_split_pairs(tmp_path / "splits.csv")
    assert {k: sorted(v) for k, v in back.items()} == {k: sorted(v) for k, v in s1.items()}


@requires_catalogue
@pytest.mark.realdata
def test_real_recipes_match_the_seeds():
    cat = D.load_catalogue()
    a8 = articletype8(cat.rows)
    assert a8.classes == sorted(["Sports Shoes", "Kurtas", "Tops", "Handbags", "Watches", "Shirts", "Tshirts",
                                 "Casual Shoes"])  # fmt: skip
    assert max(a8.counts().values()) == 2500 and min(a8.counts().values()) == 1759
    c30 = class30(cat.rows)
    assert len(c30.classes) == 30 and "Free Items" not in c30.classes
    assert sorted(master(cat.rows).classes) == ["Accessories", "Apparel", "Footwear", "Personal Care"]


def test_negatives_come_from_other_types_and_hold_some_types_out():
    from fashion_edge.training.recipes import UNKNOWN, add_negatives

    rows = _rows({("A", "T", "Tshirts"): 40, ("F", "S", "Heels"): 30, ("A", "B", "Belts"): 25,
                  ("A", "W", "Wallets"): 20, ("A", "K", "Kurtis"): 10})  # fmt: skip
    base = articletype8(rows, min_images=35)
    lab = add_negatives(base, rows, n=12, seed=0)
    assert lab.classes == ["Tshirts", UNKNOWN]
    by_id = {r["id"]: r["articleType"] for r in rows}
    neg_types = {by_id[i] for i, label in zip(lab.ids, lab.labels, strict=True) if label == UNKNOWN}
    assert lab.notes["negatives"] == 12
    assert neg_types <= set(lab.notes["negative_types"])
    assert set(lab.notes["negative_types"]).isdisjoint(lab.notes["heldout_unknown_types"])
    assert (
        "Kurtis" not in lab.notes["negative_types"] + lab.notes["heldout_unknown_types"]
    )  # a near-duplicate
    assert lab.ids == add_negatives(base, rows, n=12, seed=0).ids
