"""Shared fixtures: generated tiny data, and a skip for tests that need ../shared/data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from fashion_edge.runtime.classifier import load  # noqa: E402
from fashion_edge.training.data import CATALOGUE_DIR, FMNIST_DIR  # noqa: E402
from tests.fakedata import make_catalogue  # noqa: E402
from tests.onnx_tiny import make_tiny_models  # noqa: E402

requires_catalogue = pytest.mark.skipif(
    not CATALOGUE_DIR.exists(),
    reason=f"needs the full catalogue at {CATALOGUE_DIR}: put 'Fashion Product Images (Small)' there "
    "(styles.csv + images/, or its .tar.gz) or set FASHION_EDGE_DATA (README, Set up)",
)
requires_fmnist = pytest.mark.skipif(
    not FMNIST_DIR.exists(),
    reason=f"needs Fashion-MNIST IDX files at {FMNIST_DIR}, or set FASHION_EDGE_DATA (README, Set up)",
)


@pytest.fixture(scope="session")
def tiny_catalogue(tmp_path_factory):
    """A generated catalogue folder: 3 classes x 30 images, 2 rows without image, 3 malformed rows."""
    return make_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="module")
def model():
    """The tiny int8 ONNX model (``tests/onnx_tiny.py``); modules with a model of their own override it."""
    return make_tiny_models(tflite=False)["onnx_int8"]


@pytest.fixture(scope="module")
def clf(model):
    """``runtime.load(model)`` on one thread."""
    return load(model, threads=1)
