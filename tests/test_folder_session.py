"""Folder mode uses the runtime's review rule and the journal's CSV writer (issue 13, attacks 8, 9)."""

from __future__ import annotations

import csv
import math
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")

from fashion_edge.desktop_app.models.folder_session import FolderSession  # noqa: E402
from fashion_edge.runtime.journal import LabelRecord, read_labels  # noqa: E402
from fashion_edge.runtime.metadata import ModelMetadata  # noqa: E402

META = ModelMetadata(classes=["Tshirts", "Watches", "unknown"], review_threshold=0.9, unknown_class="unknown")


@pytest.fixture
def session(qapp):
    s = FolderSession()
    s.meta = META
    return s


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_a_user_threshold_never_shows_unknown_or_nan_as_fine(session, threshold):
    session.threshold = threshold
    assert session._row(LabelRecord("a.jpg", "unknown", 0.99, [("unknown", 0.99)])).needs_review
    assert session._row(LabelRecord("b.jpg", "Watches", math.nan, [])).needs_review
    assert not session._row(LabelRecord("c.jpg", "Watches", 0.95, [("Watches", 0.95)])).needs_review


def test_export_escapes_formula_cells_and_reads_back(session, tmp_path):
    names = ["=cmd|' /C calc'!A0.jpg", "+1.jpg", "@sum.jpg", "plain.jpg"]
    session.folder = tmp_path
    session.model.reset(tmp_path, names)
    session.model.update_rows(
        [session._row(LabelRecord(n, "Watches", 0.95, [("Watches", 0.95)])) for n in names]
    )
    out = tmp_path / "export.csv"
    assert session.export(out) == 4
    with open(out, newline="", encoding="utf-8") as f:
        cells = [r[0] for r in csv.reader(f)][1:]
    assert all(not c.startswith(("=", "+", "-", "@")) for c in cells)
    assert set(read_labels(out)) == set(names)
