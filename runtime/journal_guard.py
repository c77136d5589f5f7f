"""What a journal belongs to and who may write it: the folder, the model fingerprint, the lock.

A journal kept in the folder it labels belongs to it by its place (the folder can be moved with
it). One elsewhere records the folder's resolved path (and the last model) in a sidecar
``<journal>.meta.json``, written atomically, and is refused for any other folder; one with rows
but no sidecar (older versions' ``./labels.csv``) is refused too. A run holds
``<journal>.lock`` (``filelock``): a second run on the same journal refuses with one line.

The journal, its sidecar and its lock are opened through ``runtime.safe_file``
(``check_journal_files``): a FIFO, a device or a symlink to a missing path in their place is
refused with one line before anything is opened, so nothing blocks and nothing is created
outside the folder; the sidecar and the lock are ours and never symlinks (a record written
through a planted link would replace the file it points at).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fashion_edge.runtime.journal import LabelingError, write_atomically
from fashion_edge.runtime.safe_file import UnsafeFileError, check_target, open_regular, read_bounded

SIDECAR_SUFFIX = ".meta.json"
LOCK_SUFFIX = ".lock"
JOURNAL_SCHEMA = "fashion-label-journal/1"
MAX_SIDECAR_BYTES = 1 << 20

# --- binding to a folder and a model, locking --------------------------------------------------

_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def model_fingerprint(path: str | Path | None) -> str:
    """First 16 hex digits of the SHA-256 of a model file ('' when there is no regular file:
    a FIFO or a device is never read)."""
    if path is None:
        return ""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return ""
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FINGERPRINTS:
        h = hashlib.sha256()
        try:
            with open_regular(p) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except (UnsafeFileError, OSError):
            return ""
        _FINGERPRINTS[key] = h.hexdigest()[:16]
    return _FINGERPRINTS[key]


def sidecar_of(journal: Path) -> Path:
    return journal.with_name(journal.name + SIDECAR_SUFFIX)


def lock_of(journal: Path) -> Path:
    return journal.with_name(journal.name + LOCK_SUFFIX)


def check_journal_files(journal: Path) -> None:
    """Refuse a journal, sidecar or lock path that is a FIFO, a device, a folder or a symlink to a
    missing path, and a sidecar or lock that is a symlink at all (LabelingError naming it), before
    any of them is opened."""
    for path, what in (
        (journal, "journal"),
        (sidecar_of(journal), "journal record"),
        (lock_of(journal), "lock"),
    ):
        try:
            check_target(path)
        except UnsafeFileError as e:
            raise LabelingError(f"{path}: cannot use this as the {what}: {e}") from None
    for path, what in ((sidecar_of(journal), "journal record"), (lock_of(journal), "lock")):
        # ours, never a link: a record written through one replaced any file it pointed at (a
        # shared folder's planted link to a person's document); filelock's refusal blamed the folder
        if path.is_symlink():
            raise LabelingError(f"{path}: cannot use this as the {what}: it is a symlink; remove it")


def bind_to_folder(journal: Path, folder: Path, model_id: str, has_rows: bool) -> None:
    """Refuse a journal that belongs to another folder; record this folder (and model) for it.

    A journal inside the folder belongs to it by its place. One elsewhere must name this folder
    in its sidecar; one with rows but no sidecar (older versions, ``./labels.csv``) is refused.
    """
    here = folder.resolve()
    side = sidecar_of(journal)
    inside = journal.parent.resolve() == here
    info = None
    if side.exists() and has_rows:  # a record left beside an emptied or deleted journal binds nothing
        try:
            info = json.loads(read_bounded(side, MAX_SIDECAR_BYTES).decode("utf-8"))
        except (UnsafeFileError, ValueError, RecursionError):
            info = None
        if not isinstance(info, dict) or not isinstance(info.get("folder"), str):
            raise LabelingError(
                f"{side}: unreadable journal record; delete it only if {journal} is for {folder}"
            )
    if not inside:
        if info is not None and info["folder"] != str(here):
            raise LabelingError(f"{journal}: journal of another folder ({info['folder']}); use another --out")
        if info is None and has_rows:
            raise LabelingError(
                f"{journal}: existing journal with no record of its folder; use another --out "
                "(the default is FOLDER/fashion-labels.csv)"
            )
    if info is None or info.get("folder") != str(here) or info.get("model") != model_id:
        record = {"schema": JOURNAL_SCHEMA, "folder": str(here), "model": model_id}
        write_atomically(side, (json.dumps(record, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


class JournalLock:
    """``<journal>.lock`` held for a run; a second run on the same journal gets LabelingError."""

    def __init__(self, journal: Path) -> None:
        from filelock import FileLock

        self.path = lock_of(journal)
        self._lock = FileLock(str(self.path), timeout=0)

    def __enter__(self) -> JournalLock:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:  # (an OSError too: caught first)
            raise LabelingError(
                f"{self.path.with_suffix('')}: in use by another fashion-label run or fashion-app "
                f"(lock {self.path.name}); wait for it to finish"
            ) from None
        except OSError as e:  # e.g. a read-only photo folder holding the default journal
            raise LabelingError(
                f"{self.path}: cannot create the journal's lock ({e.strerror or e}); "
                "if the folder is read-only, choose a journal elsewhere with --out"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
