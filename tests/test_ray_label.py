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


def test_ray_with_an_adapter_writes_the_adapted_rows(tmp_path):
    """``fashion-label --ray --learn-from DIR``: a local Ray labels with the driver's adapter, rows
    equal to the single-process adapted run (a new class included)."""
    import cv2
    import numpy as np

    from fashion_edge.runtime.adapter import adapted, fit_adapter
    from fashion_edge.runtime.ray_label import ray_engine

    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    teach = []
    for i in range(24):  # striped "items" of a class the model lacks, on the catalogue's white
        img = np.full((80, 60, 3), 255, np.uint8)
        img[10:70:6, 8:52] = rng.integers(0, 80, 3)
        if i < 12:
            teach.append((img, "Striped"))
        else:
            cv2.imwrite(str(folder / f"s{i}.png"), img)
    clf = load(DEFAULT_MODEL, threads=2)
    ad = fit_adapter(clf, teach + [(img, lab) for img, lab in _catalogue_examples(clf)], catalogue=None)
    single = run_labeling(folder, adapted(clf, ad), tmp_path / "single.csv", batch_size=8)
    engine = ray_engine(DEFAULT_MODEL, folder, num_cpus=2, batch_size=8, adapter=ad)
    ray_run = run_labeling(folder, adapted(clf, ad), tmp_path / "ray.csv", batch_size=8, engine=engine)
    assert single.this_run == ray_run.this_run == 12
    a, b = rows_by_path(tmp_path / "single.csv"), rows_by_path(tmp_path / "ray.csv")
    assert a == b and any(r[1] == "Striped" for r in b.values())


def _catalogue_examples(clf, per_class: int = 4) -> list[tuple]:
    """A few catalogue photos of each known class (their true labels), so the fit has contrast."""
    from fashion_edge.runtime.decode import read_image
    from fashion_edge.training.data import load_catalogue

    cat = load_catalogue()
    out, seen = [], {}
    for r in cat.rows:
        lab = r["articleType"]
        if lab in clf.classes and seen.get(lab, 0) < per_class:
            out.append((read_image(cat.root / "images" / f"{r['id']}.jpg"), lab))
            seen[lab] = seen.get(lab, 0) + 1
    return out
