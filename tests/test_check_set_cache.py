"""runtime.check_set_cache: the catalogue check set's logits and embeddings, once per model file."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from fashion_edge.runtime import adapter_gate, check_set_cache, load
from fashion_edge.runtime.adapter import fit_adapter, model_fingerprint
from tests.adapter_tiny import COLOURS, coloured, make_embedding_model


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_catalogue) -> Path:
    """The tiny two-output model with a splits.csv naming the tiny catalogue's images as its test split."""
    d = tmp_path_factory.mktemp("checkset")
    path = make_embedding_model(d / "model.onnx")
    with open(tiny_catalogue / "styles.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if (tiny_catalogue / "images" / f"{r['id']}.jpg").is_file()]
    with open(d / "splits.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "split"])
        w.writerows([r["id"], r["articleType"], "test"] for r in rows)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache folder, and no set left in this process from an earlier test."""
    monkeypatch.setenv("FASHION_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(adapter_gate, "_CACHE", {})
    return tmp_path / "cache"


def no_decoding(monkeypatch) -> None:
    """Any catalogue image decoded from here on fails the test."""
    import fashion_edge.training.data as data

    def refuse(*_a, **_k):
        raise AssertionError("catalogue images decoded again")

    monkeypatch.setattr(data, "load_catalogue_images", refuse)


def same(a, b) -> bool:
    return (
        a.ids == b.ids and np.array_equal(a.y, b.y) and np.array_equal(a.logits, b.logits)
        and np.array_equal(a.emb, b.emb) and a.anchors.ids == b.anchors.ids
        and np.array_equal(a.anchors.emb, b.anchors.emb)
    )  # fmt: skip


def test_check_set_is_computed_once_per_model_file(model, cache, tiny_catalogue, monkeypatch):
    clf = load(model)
    first = adapter_gate.catalogue_for(clf, data=tiny_catalogue)
    assert first is not None and len(first.y) == 45 and first.anchors is not None
    cached = cache / "check-set" / f"{model_fingerprint(model)}-{adapter_gate.CATALOGUE_CAP}.npz"
    assert cached.is_file() and check_set_cache.path_for(model, adapter_gate.CATALOGUE_CAP) == cached
    assert not [p for p in cached.parent.iterdir() if p != cached]  # no temp file left behind

    monkeypatch.setattr(adapter_gate, "_CACHE", {})  # a new process: the app's next start, the next CLI run
    no_decoding(monkeypatch)
    again = adapter_gate.catalogue_for(load(model), data=cache / "no-catalogue-here")
    assert again is not None and same(first, again)


def test_learn_from_uses_the_cached_set(model, cache, tiny_catalogue, monkeypatch):
    """fit_adapter's default (what fashion-label --learn-from and the app call) reads the cache."""
    clf = load(model)
    adapter_gate.catalogue_for(clf, data=tiny_catalogue)
    monkeypatch.setattr(adapter_gate, "_CACHE", {})
    no_decoding(monkeypatch)
    names = {"red": "Tshirts", "green": "Watches", "blue": "Casual Shoes"}
    ex = [(coloured(COLOURS[c], 10 * j + i), names[c]) for j, c in enumerate(names) for i in range(6)]
    ad = fit_adapter(clf, ex)
    assert ad.catalogue_n == 45 and ad.catalogue_acc is not None


def _garbage(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 not an npz at all")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _stale(path: Path) -> None:
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["ids"] = np.array([f"x{i}" for i in range(len(d["ids"]))])  # another splits.csv
    np.savez(path, **d)


def _other_shape(path: Path) -> None:
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["logits"] = d["logits"][:, :2]
    np.savez(path, **d)


def _nan(path: Path) -> None:
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["emb"][0, 0] = np.nan
    np.savez(path, **d)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)  # a read would block forever: refused by read_bounded


@pytest.mark.parametrize("damage", [_garbage, _truncated, _stale, _other_shape, _nan, _fifo])
def test_a_damaged_cache_is_recomputed_never_raised(model, cache, tiny_catalogue, monkeypatch, damage):
    clf = load(model)
    fresh = adapter_gate.catalogue_for(clf, data=tiny_catalogue)
    path = check_set_cache.path_for(model, adapter_gate.CATALOGUE_CAP)
    damage(path)
    monkeypatch.setattr(adapter_gate, "_CACHE", {})
    again = adapter_gate.catalogue_for(clf, data=tiny_catalogue)
    assert again is not None and same(fresh, again)
    assert path.is_file() and check_set_cache.load(path, fresh.ids + fresh.anchors.ids,
        np.concatenate([fresh.y, fresh.anchors.y]), 3, None) is not None  # fmt: skip


def test_a_cache_that_cannot_be_written_only_costs_time(model, tmp_path, tiny_catalogue, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FASHION_EDGE_CACHE", str(blocker))
    monkeypatch.setattr(adapter_gate, "_CACHE", {})
    cat = adapter_gate.catalogue_for(load(model), data=tiny_catalogue)
    assert cat is not None and len(cat.y) == 45 and blocker.read_text() == "not a folder"


def test_oversized_cache_file_is_not_read(model, cache, tiny_catalogue, monkeypatch):
    clf = load(model)
    cat = adapter_gate.catalogue_for(clf, data=tiny_catalogue)
    path = check_set_cache.path_for(model, adapter_gate.CATALOGUE_CAP)
    ids, y = cat.ids + cat.anchors.ids, np.concatenate([cat.y, cat.anchors.y])
    assert check_set_cache.load(path, ids, y, 3, None) is not None
    monkeypatch.setattr(check_set_cache, "MAX_BYTES", 100)  # read_bounded refuses it before reading
    assert check_set_cache.load(path, ids, y, 3, None) is None


def test_cache_folder_default_and_override(monkeypatch, tmp_path):
    monkeypatch.setenv("FASHION_EDGE_CACHE", str(tmp_path / "mine"))
    assert check_set_cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("FASHION_EDGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert check_set_cache.cache_dir() == tmp_path / "xdg" / "fashion-edge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert check_set_cache.cache_dir() == Path.home() / ".cache" / "fashion-edge"
