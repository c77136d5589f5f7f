"""Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format into numpy, without torch.

The legacy file is a run of pickles: magic number, protocol version, system info, the state dict
(whose tensors point at storages by key), the list of storage keys, then each storage's raw bytes
(an int64 element count and the little-endian data). Only what a state dict of float tensors needs
is supported; anything else is a ``LegacyFormatError`` with one line.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class LegacyFormatError(ValueError):
    """Not a readable legacy PyTorch file; the message says why."""


class _Storage:
    def __init__(self, dtype: type, numel: int) -> None:
        self.dtype, self.numel, self.data = np.dtype(dtype), numel, None


class _TensorRef:
    """A tensor waiting for its storage's bytes."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        flat = self.storage.data
        if not self.size:
            return flat[self.offset].copy()
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=[s * item for s in self.stride]
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    return _TensorRef(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict[str, _Storage]) -> None:
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise LegacyFormatError(f"unsupported object {module}.{name} in the file")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel, *_view = pid
        if kind != "storage" or dtype not in _DTYPES.values():
            raise LegacyFormatError(f"unsupported storage {pid[:2]!r}")
        return self.storages.setdefault(str(key), _Storage(dtype, int(numel)))


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a legacy PyTorch ``.pth`` state dict; LegacyFormatError if unreadable."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            try:
                if pickle.load(f) != MAGIC:
                    raise LegacyFormatError(f"{p}: not a legacy PyTorch file (bad magic number)")
                if pickle.load(f) != PROTOCOL:
                    raise LegacyFormatError(f"{p}: unsupported PyTorch protocol version")
                pickle.load(f)  # system info
                storages: dict[str, _Storage] = {}
                state = _Unpickler(f, storages).load()
                keys = pickle.load(f)
            except LegacyFormatError:
                raise
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
                raise LegacyFormatError(f"{p}: corrupt or not a PyTorch file ({type(e).__name__})") from None
            for key in keys:
                st = storages[str(key)]
                head = f.read(8)
                if len(head) < 8:
                    raise LegacyFormatError(f"{p}: truncated (storage {key} missing)")
                (numel,) = struct.unpack("<q", head)
                raw = f.read(numel * st.dtype.itemsize)
                if numel != st.numel or len(raw) != numel * st.dtype.itemsize:
                    raise LegacyFormatError(f"{p}: truncated or corrupt storage {key}")
                st.data = np.frombuffer(raw, dtype=st.dtype.newbyteorder("<"))
    except OSError as e:
        raise LegacyFormatError(f"{p}: cannot read ({e.strerror or e})") from None
    if not isinstance(state, dict):
        raise LegacyFormatError(f"{p}: not a state dict")
    return {k: v.array() for k, v in state.items() if isinstance(v, _TensorRef)}
