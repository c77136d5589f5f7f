"""``fashion-label --ray``: a local Ray (2 CPUs) labels 2,000 real catalogue images into the same
journal rows as the single-process run, and resumes a journal a single-process run started."""

from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

import pytest

from fashion_edge.runtime import load
from fashion_edge.runtime.classifier import DEFAULT_MODEL
from fashion_edge.runtime.labeling import run_labeling
from tests.conftest import requires_catalogue

N_IMAGES = 2000

pytestmark = [pytest.mark.slow, requires_catalogue]
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[scale]')")


def rows_by_path(path: Path) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))[1:]
    return {r[0]: r for r in table}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from fashion_edge.training.data import resolve_catalogue

    images = resolve_catalogue() / "images"
    folder = tmp_path_factory.mktemp("ray") / "photos"
    folder.mkdir()
    for src in sorted(images.glob("*.jpg"))[:N_IMAGES]:
        shutil.copyfile(src, folder / src.name)
    return folder


def test_ray_rows_equal_the_single_process_rows_and_resume_works(photos, tmp_path):
    from fashion_edge.runtime.ray_label import ray_engine

    clf = load(DEFAULT_MODEL, threads=2)
    single = run_labeling(photos, clf, tmp_path / "single.csv", batch_size=64)
    assert single.this_run == N_IMAGES

    # a single-process run stopped after ~500 images, then Ray finishes the same journal
    out, cancel = tmp_path / "ray.csv", threading.Event()
    first = run_labeling(
        photos,
        clf,
        out,
        batch_size=64,
        cancel=cancel,
        progress=lambda d, t: cancel.set() if d >= 500 else None,
    )
    assert first.cancelled and 500 <= first.this_run < N_IMAGES
    engine = ray_engine(DEFAULT_MODEL, photos, num_cpus=2, batch_size=64)
    second = run_labeling(photos, clf, out, batch_size=64, engine=engine)
    assert not ray.is_initialized()  # the local instance was shut down
    assert (second.resumed, second.this_run) == (first.this_run, N_IMAGES - first.this_run)

    a, b = rows_by_path(tmp_path / "single.csv"), rows_by_path(out)
    assert len(b) == N_IMAGES and sum(1 for _ in open(out, encoding="utf-8")) == N_IMAGES + 1  # no duplicates
    assert a == b
