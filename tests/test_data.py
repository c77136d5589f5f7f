"""Catalogue and IDX readers on generated data (and the real files when present)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from fashion_edge.training import data as D
from tests.conftest import requires_catalogue, requires_fmnist


def test_catalogue_counts_missing_and_malformed(tiny_catalogue):
    cat = D.load_catalogue(tiny_catalogue)
    assert cat.stats["malformed_rows_skipped"] == 3
    assert cat.stats["rows_without_image_skipped"] == 2
    assert cat.stats["rows_used"] == 90 == len(cat.rows)
    assert all(cat.image_path(r["id"]).exists() for r in cat.rows)


def test_bad_header_is_a_clear_error(tmp_path):
    (tmp_path / "styles.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(D.DataError, match="header"):
        D.read_styles(tmp_path / "styles.csv")


def test_missing_catalogue_is_a_clear_error(tmp_path):
    with pytest.raises(D.DataError, match="no styles.csv"):
        D.resolve_catalogue(tmp_path)


def _write_idx(path, arr: np.ndarray, gz: bool) -> None:
    head = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = head + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip_gzipped_or_not(tmp_path, gz):
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    y = np.array([3, 7], np.uint8)
    sfx = ".gz" if gz else ""
    for part in ("train", "t10k"):
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte{sfx}", x, gz)
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte{sfx}", y, gz)
    parts = D.load_fmnist(tmp_path)
    assert parts["train"][0].shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(parts["t10k"][0][..., 0], x)
    np.testing.assert_array_equal(parts["train"][1], y)


def test_truncated_idx_is_rejected(tmp_path):
    p = tmp_path / "bad-idx"
    p.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(D.DataError, match="expected 10"):
        D.read_idx(p)


@requires_catalogue
@pytest.mark.realdata
def test_real_catalogue_matches_its_readme():
    cat = D.load_catalogue()
    assert cat.stats["csv_rows"] == 44_446
    assert cat.stats["rows_without_image_skipped"] == 374
    assert cat.stats["rows_used"] == 44_072


@requires_fmnist
@pytest.mark.realdata
def test_real_fmnist_partial():
    parts = D.load_fmnist()
    assert parts["train"][0].shape == (7000, 28, 28, 1)
    assert len(parts["t10k"][1]) == 1226
