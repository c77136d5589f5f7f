"""Class recipes: named, tested functions from catalogue rows to (id, label) pairs.

Each recipe returns a ``Labelled`` set with what it dropped and why, so the run's report can say it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fashion_edge.training.data import FMNIST_CLASSES, load_fmnist


@dataclass
class Labelled:
    """A recipe's result: ids and labels in the same order, the class list, and notes for the report."""

    ids: list[str]
    labels: list[str]
    classes: list[str]
    notes: dict[str, object] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        c = Counter(self.labels)
        return {k: c[k] for k in self.classes}


def normalised_entropy(labels: list[str]) -> float:
    """Shannon entropy of the label distribution divided by log(K): 1.0 = perfectly balanced."""
    counts = np.array(list(Counter(labels).values()), dtype=float)
    if len(counts) < 2:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(len(counts)))


def _finish(pairs: list[tuple[str, str]], notes: dict[str, object]) -> Labelled:
    pairs = sorted(pairs, key=lambda p: int(p[0]) if p[0].isdigit() else p[0])
    ids = [p[0] for p in pairs]
    labels = [p[1] for p in pairs]
    classes = sorted(set(labels))
    notes["normalised_entropy"] = round(normalised_entropy(labels), 4)
    return Labelled(ids, labels, classes, notes)


def articletype8(
    rows: list[dict[str, str]], seed: int = 0, min_images: int = 1700, cap: int = 2500
) -> Labelled:
    """Seed 000: articleTypes with >= 1,700 images, each capped at 2,500 by a seeded sample."""
    by_type: dict[str, list[str]] = {}
    for r in rows:
        by_type.setdefault(r["articleType"], []).append(r["id"])
    rng = np.random.default_rng(seed)
    pairs, capped = [], {}
    for art in sorted(by_type):
        ids = sorted(by_type[art], key=int)
        if len(ids) < min_images:
            continue
        if len(ids) > cap:
            capped[art] = len(ids)
            ids = sorted(rng.choice(ids, cap, replace=False).tolist(), key=int)
        pairs += [(i, art) for i in ids]
    return _finish(
        pairs, {"rule": f"articleType with >= {min_images} images, capped at {cap}", "capped": capped}
    )


def class30(rows: list[dict[str, str]], seed: int = 0, sub_min: int = 105, drop_below: int = 5) -> Labelled:
    """Seed 001's "Class": subCategory if it has > 105 images, else masterCategory; Tshirts and
    Shirts stay their own classes; classes under 5 images dropped; Free Items relabelled to the
    class whose name is most similar to the productDisplayName (TF-IDF char n-grams + cosine)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    sub_counts = Counter(r["subCategory"] for r in rows)
    lab: dict[str, str] = {}
    for r in rows:
        if r["articleType"] in ("Tshirts", "Shirts"):
            lab[r["id"]] = r["articleType"]
        elif r["masterCategory"] == "Free Items":
            lab[r["id"]] = "Free Items"
        elif sub_counts[r["subCategory"]] > sub_min:
            lab[r["id"]] = r["subCategory"]
        else:
            lab[r["id"]] = r["masterCategory"]
    counts = Counter(lab.values())
    dropped = {c: n for c, n in counts.items() if n < drop_below}
    lab = {i: c for i, c in lab.items() if c not in dropped}
    n_labels_before_relabel = len(set(lab.values()))
    classes = sorted(set(lab.values()) - {"Free Items"})
    free = [r for r in rows if lab.get(r["id"]) == "Free Items"]
    relabelled: Counter[str] = Counter()
    if free:
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True)
        vec.fit([r["productDisplayName"] for r in rows] + classes)
        sim = cosine_similarity(
            vec.transform([r["productDisplayName"] for r in free]), vec.transform(classes)
        )
        for r, j in zip(free, sim.argmax(axis=1), strict=True):
            lab[r["id"]] = classes[j]
            relabelled[classes[j]] += 1
    notes = {
        "rule": f"subCategory if > {sub_min} images else masterCategory; Tshirts/Shirts own classes",
        "dropped_under_min": dropped,
        "labels_before_free_items_relabel": n_labels_before_relabel,
        "free_items_relabelled": dict(relabelled),
    }
    return _finish(list(lab.items()), notes)


def master(rows: list[dict[str, str]], seed: int = 0, min_images: int = 500) -> Labelled:
    """Seed 002: masterCategory. Classes under 500 images are dropped: Free Items (105, a
    promotional bucket of mixed products with no visual identity), Sporting Goods (25), Home (1):
    too few to learn or to measure (a 10 % test split would hold 0-10 of them)."""
    counts = Counter(r["masterCategory"] for r in rows)
    dropped = {c: n for c, n in counts.items() if n < min_images}
    pairs = [(r["id"], r["masterCategory"]) for r in rows if r["masterCategory"] not in dropped]
    return _finish(
        pairs, {"rule": f"masterCategory with >= {min_images} images", "dropped_under_min": dropped}
    )


def subcategory(rows: list[dict[str, str]], seed: int = 0, min_images: int = 100) -> Labelled:
    """subCategory, classes under 100 images dropped (>= 10 test images each in a 10 % split)."""
    counts = Counter(r["subCategory"] for r in rows)
    dropped = {c: n for c, n in counts.items() if n < min_images}
    pairs = [(r["id"], r["subCategory"]) for r in rows if r["subCategory"] not in dropped]
    return _finish(pairs, {"rule": f"subCategory with >= {min_images} images", "dropped_under_min": dropped})


def fmnist(folder=None, seed: int = 0) -> Labelled:
    """Fashion-MNIST: ids 'train:i' / 't10k:i'; the t10k file is the test split."""
    parts = load_fmnist(folder)
    ids, labels = [], []
    for part, (_, y) in parts.items():
        ids += [f"{part}:{i}" for i in range(len(y))]
        labels += [FMNIST_CLASSES[int(v)] for v in y]
    lab = Labelled(ids, labels, list(FMNIST_CLASSES), {"rule": "Fashion-MNIST 10 classes"})
    lab.notes["normalised_entropy"] = round(normalised_entropy(labels), 4)
    return lab


CATALOGUE_RECIPES: dict[str, Callable[..., Labelled]] = {
    "articletype8": articletype8,
    "class30": class30,
    "master": master,
    "subcategory": subcategory,
}
RECIPES = [*CATALOGUE_RECIPES, "fmnist"]


UNKNOWN = "unknown"  # the catch-all class that training negatives are given
# Other names for a known type, or mixed bundles: neither a fair negative nor a fair unknown.
NEAR_DUPLICATES = ("Kurtis", "Tunics", "Kurta Sets", "Lounge Tshirts", "Free Gifts", "Accessory Gift Set")


def add_negatives(lab: Labelled, rows: list[dict[str, str]], n: int, seed: int = 0) -> Labelled:
    """Add an ``unknown`` class of ``n`` items from articleTypes outside the recipe (outlier exposure).

    The other articleTypes are split by type, largest first, alternately into *negative* types (used
    here) and *held-out* types that training never sees, so open-set evaluation on the held-out
    types measures items of a kind the model never met. Both lists go into the notes.
    """
    from fashion_edge.training.data import Catalogue
    from fashion_edge.training.unknowns import unknown_ids

    counts: dict[str, int] = Counter(r["articleType"] for r in rows)
    others = sorted(
        (t for t in counts if t not in lab.classes and t not in NEAR_DUPLICATES),
        key=lambda t: (-counts[t], t),
    )
    negative_types, heldout_types = others[0::2], others[1::2]
    cat = Catalogue(root=None, rows=rows)  # type: ignore[arg-type]
    picked = unknown_ids(cat, lab.classes, seed=seed, n=n, exclude_types=[*heldout_types, *NEAR_DUPLICATES])
    out = _finish(
        list(zip(lab.ids, lab.labels, strict=True)) + [(i, UNKNOWN) for i, _ in picked],
        {
            **lab.notes,
            "negatives": len(picked),
            "negative_types": negative_types,
            "heldout_unknown_types": heldout_types,
        },
    )
    return out
