"""Model registry: every entry builds, emits logits of the right shape, and matches its seed's size."""

from __future__ import annotations

import numpy as np
import pytest

from fashion_edge.training.models import REGISTRY, count_params


@pytest.mark.parametrize("name", list(REGISTRY))
def test_registry_builds_with_logit_output(name):
    spec = REGISTRY[name]
    shape, k = ((28, 28, 1), 10) if spec.input_kind == "fmnist" else ((80, 60, 3), 8)
    model = spec.build(shape, k)
    out = model(np.full((2, *shape), 255.0, np.float32), training=False).numpy()
    assert out.shape == (2, k)
    assert np.isfinite(out).all()
    assert model.layers[-1].get_config().get("activation") in (None, "linear")  # logits, not softmax


def test_parameter_counts():
    assert count_params("s000") == 2_895_768  # seed 000's published count
    assert count_params("compact") <= 2_000_000
    assert 9_800_000 < count_params("s001") < 10_000_000  # seed 001: ~9.9 M
