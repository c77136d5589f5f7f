"""The adapter as a record and a file: what it learned from, how it scored, its parameters.

``save_adapter`` writes an .npz of arrays plus one JSON record atomically; ``load_adapter`` refuses,
in one line, a missing, corrupt or foreign file (fitted on another model). Loading is bounded: the
file is read through ``safe_file`` (regular files only, at most ``MAX_ADAPTER_BYTES``), each
member's shape and dtype are read from its npy header and checked before it is inflated, and every
field of the JSON record is type-checked.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.adapter_head import DEFAULT_L2, Head
from fashion_edge.runtime.classifier import Classifier
from fashion_edge.runtime.metadata import class_name_problem
from fashion_edge.runtime.safe_file import UnsafeFileError, check_target, read_bounded

FORMAT = "fashion-edge-adapter/1"
MAX_ADAPTER_BYTES = 64 * 2**20  # the file (an adapter of 200 classes on 1,280-d embeddings: ~2 MB)
MAX_MEMBER_BYTES = 64 * 2**20  # each array once inflated, from its npy header
MAX_INFO_CHARS = 2**20  # the JSON record
# np.savez's members: name -> (allowed dtype kinds, number of dimensions)
MEMBERS = {"W.npy": ("f", 2), "b.npy": ("f", 1), "info.npy": ("U", 0)}


class AdapterError(ValueError):
    """Bad corrections or a bad adapter file; the message is one line naming the file and the problem."""


@dataclass
class Adapter:
    """A fitted adapter: what it learned from, how it scored, and its parameters."""

    classes: list[str]
    new_classes: list[str]
    model_fingerprint: str
    n_examples: int
    conflicts: int
    created: str
    heldout_acc: float | None
    heldout_acc_before: float | None
    catalogue_acc: float | None
    catalogue_acc_before: float | None
    accepted: bool
    refusal: str | None
    review_threshold: float
    threshold_note: str
    heldout_n: int = 0
    catalogue_n: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # examples per class
    skipped: int = 0  # unreadable images left out
    notes: list[str] = field(default_factory=list)
    model_file: str = ""
    l2: float = DEFAULT_L2
    forced: bool = False
    W: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    b: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    alpha: float = 1.0
    # the model's classes whose sure answers are still auto-accepted (``adapter.fallback_classes``);
    # None: a file from before this field (all classes without new ones, none with them)
    fallback_classes: list[str] | None = None

    @property
    def head(self) -> Head:
        return Head(self.W, self.b, self.alpha, len(self.classes) - len(self.new_classes))

    def summary(self) -> str:
        """One line for people: 'learned from N items · held-out accuracy X % (was Y %)'."""
        if self.heldout_acc is None or self.heldout_acc_before is None:
            acc = "too few examples per class for a held-out accuracy"
        else:
            acc = (
                f"accuracy on your held-out items {self.heldout_acc:.0%} (was {self.heldout_acc_before:.0%})"
            )
        new = f" · new classes: {', '.join(self.new_classes)}" if self.new_classes else ""
        return f"learned from {self.n_examples} items · {acc}{new}"

    def info(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("W", "b"):
            d.pop(k)
        return d


def model_fingerprint(path: str | Path) -> str:
    """sha256 of the model file's bytes (first 16 hex digits; cached per path, size and mtime)."""
    from fashion_edge.runtime.journal_guard import model_fingerprint as file_fingerprint

    fp = file_fingerprint(path)
    if not fp:
        raise AdapterError(f"{path}: model file cannot be read")
    return fp


def save_adapter(adapter: Adapter, path: Path) -> None:
    """Write atomically: a temp file in the same folder, fsync, os.replace (old file kept on a crash).
    AdapterError if ``path`` is a device, FIFO, folder or a symlink to a missing path."""
    path = Path(path)
    check_save_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = json.dumps({"format": FORMAT, **adapter.info()})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, W=adapter.W, b=adapter.b, info=np.array(info))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def check_save_target(path: Path) -> None:
    """AdapterError unless ``path`` is free or an existing regular file (``safe_file.check_target``)."""
    try:
        check_target(path)
    except UnsafeFileError as e:
        raise AdapterError(f"{path}: cannot save the adapter there ({e})") from None


def _read_members(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """The npz's arrays, each checked from its npy header (dtype, dimensions, size) before inflating."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(zf.namelist())
        if names != sorted(MEMBERS):
            raise AdapterError(
                f"{path}: not a fashion-edge adapter (members {', '.join(names[:5]) or 'none'})"
            )
        out = {}
        for name, (kinds, ndim) in MEMBERS.items():
            info = zf.getinfo(name)
            if info.file_size > MAX_MEMBER_BYTES + 4096:
                raise AdapterError(
                    f"{path}: member {name} inflates to {info.file_size:,} bytes (limit {MAX_MEMBER_BYTES:,})"
                )
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(f, max_header_size=10_000)
                size = math.prod(shape) * dtype.itemsize
                if dtype.kind not in kinds or len(shape) != ndim or dtype.hasobject:
                    raise AdapterError(f"{path}: member {name} has the wrong type ({dtype}, {len(shape)}-d)")
                if size > MAX_MEMBER_BYTES:
                    raise AdapterError(
                        f"{path}: member {name} would take {size:,} bytes (limit {MAX_MEMBER_BYTES:,})"
                    )
            with zf.open(info) as f:  # checked: now read it (read_array reads the header again)
                arr = np.lib.format.read_array(f, allow_pickle=False, max_header_size=10_000)
            out[name[:-4]] = arr
    return out


_NUMBER_OR_NONE = ("heldout_acc", "heldout_acc_before", "catalogue_acc", "catalogue_acc_before")
_COUNTS = ("n_examples", "conflicts", "heldout_n", "catalogue_n", "skipped")
_TEXTS = ("model_fingerprint", "created", "threshold_note", "model_file")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _record_problem(info: dict[str, Any]) -> str:
    """The first field of an adapter record with the wrong type, in words, or ""."""
    for name in ("classes", "new_classes", "notes"):
        v = info.get(name, [])
        if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
            return f"'{name}' is not a list of names"
    for c in info.get("classes", []):
        if class_name_problem(c):
            return f"class name {c!r} {class_name_problem(c)}"
    fallback = info.get("fallback_classes")
    if fallback is not None and (
        not isinstance(fallback, list) or not all(c in info.get("classes", []) for c in fallback)
    ):
        return "'fallback_classes' is not a list of its classes"
    classes, new = info.get("classes", []), info.get("new_classes", [])
    if len({c.casefold() for c in classes}) != len(classes) or (new and classes[-len(new) :] != new):
        return "'classes' repeats a name or does not end with 'new_classes'"
    for name in _NUMBER_OR_NONE:
        v = info.get(name)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            return f"'{name}' is not a number"
    for name in _COUNTS:
        v = info.get(name, 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return f"'{name}' is not a count"
    for name in _TEXTS:
        if not isinstance(info.get(name, ""), str):
            return f"'{name}' is not text"
    if info.get("refusal") is not None and not isinstance(info["refusal"], str):
        return "'refusal' is not text"
    for name in ("accepted", "forced"):
        if not isinstance(info.get(name, False), bool):
            return f"'{name}' is not true or false"
    thr = info.get("review_threshold", 0.0)
    if not _is_number(thr) or not 0.0 <= thr <= 1.0:
        return "'review_threshold' is not a number in [0, 1]"
    for name in ("alpha", "l2"):
        if not _is_number(info.get(name, 1.0)):
            return f"'{name}' is not a finite number"
    counts = info.get("counts", {})
    if not isinstance(counts, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counts.values()
    ):
        return "'counts' is not an object of counts"
    return ""


def load_adapter(path: Path, clf: Classifier) -> Adapter:
    """Read an adapter file; AdapterError if it is missing, unsafe (a FIFO, a device, too large),
    corrupt, of the wrong shape or field types, or was fitted on another model."""
    path = Path(path)
    try:
        data = read_bounded(path, MAX_ADAPTER_BYTES)
    except UnsafeFileError as e:
        raise AdapterError(
            f"{path}: {'adapter file not found' if str(e) == 'file not found' else e}"
        ) from None
    try:
        arrays = _read_members(path, data)
        text = str(arrays["info"])
        if len(text) > MAX_INFO_CHARS:
            raise AdapterError(f"{path}: adapter record too large ({len(text):,} characters)")
        info = json.loads(text)
    except AdapterError:
        raise
    except RecursionError:
        raise AdapterError(f"{path}: adapter record is nested too deeply") from None
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise AdapterError(f"{path}: not a readable adapter file ({type(e).__name__})") from None
    except Exception as e:  # zipfile.BadZipFile and friends from a truncated file
        raise AdapterError(f"{path}: corrupt adapter file ({type(e).__name__})") from None
    if not isinstance(info, dict):
        raise AdapterError(f"{path}: not a fashion-edge adapter (its record is not an object)")
    if info.get("format") != FORMAT:
        raise AdapterError(f"{path}: not a fashion-edge adapter (format {info.get('format')!r})")
    problem = _record_problem(info)
    if problem:
        raise AdapterError(f"{path}: damaged adapter record ({problem})")
    fp = model_fingerprint(clf.path)
    if info.get("model_fingerprint") != fp:
        raise AdapterError(
            f"{path}: adapter was fitted on another model ({info.get('model_file') or '?'}, "
            f"fingerprint {info.get('model_fingerprint')}), not {clf.path.name} ({fp}); refit it"
        )
    info.pop("format")
    try:
        ad = Adapter(**info, W=arrays["W"], b=arrays["b"])
    except TypeError as e:
        raise AdapterError(f"{path}: adapter record is incomplete ({e})") from None
    c, k = len(ad.classes), len(ad.classes) - len(ad.new_classes)
    if ad.W.ndim != 2 or ad.W.shape[1] != c or ad.b.shape != (c,) or ad.classes[:k] != list(clf.classes):
        raise AdapterError(f"{path}: adapter parameters do not match its classes (damaged file)")
    if not (np.isfinite(ad.W).all() and np.isfinite(ad.b).all()):
        raise AdapterError(f"{path}: adapter parameters are not all finite numbers (damaged file)")
    if clf.meta.embedding_size and ad.W.shape[0] != clf.meta.embedding_size:
        raise AdapterError(
            f"{path}: adapter expects {ad.W.shape[0]}-d embeddings, model gives {clf.meta.embedding_size}"
        )
    return ad
