"""Batch-label a folder of images into an append-only journal; resume after any crash; sort files.

The core is a pure function, ``label_paths(clf, paths, root)`` (in ``runtime.label_engine``): a
batch of file paths in, one ``LabelRecord`` per path out (a bad file is a record with ``error``
set, never an exception). ``run_labeling`` adds what a long local run needs around it: a lock, parallel decoding,
batching, the journal (``runtime.journal``: format, resume, binding to the folder and model),
cancel, and sorting into class folders (``runtime.placement``: atomic, verified copies/moves).
The default journal is ``<folder>/fashion-labels.csv`` for ``fashion-label`` and the app alike.

Every file of the folder is either labelled (a row, an error row for a file that cannot be read)
or counted and named as skipped in the summary (not an image we read, hidden or not); only the
tool's own files (journal, its record and lock, temporary files) are left out of the count. A row
records the file's identity (size, mtime_ns): a different file under a reused name is labelled
again, never given the old row's label. The guarantees are listed in ``docs/safety.md``.

Scaling out: ``runtime.ray_label`` drives ``label_paths`` from Ray Data (one classifier per
actor) through the same ``run_labeling`` loop, so it writes the same journal and resumes.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fashion_edge.runtime.journal import (
    FIELDS,
    SOURCES,
    JournalWriter,
    LabelingError,
    LabelRecord,
    append_records,
    identity_of,
    is_jsonl,
    is_trusted,
    path_key,
    read_labels,
    repair_journal,
    scan,
)
from fashion_edge.runtime.journal_guard import (
    JournalLock,
    bind_to_folder,
    check_journal_files,
    lock_of,
    model_fingerprint,
    sidecar_of,
)
from fashion_edge.runtime.label_engine import Engine, chunks, label_paths, local_engine
from fashion_edge.runtime.placement import (
    REVIEW_FOLDER,
    TMP_PREFIX,
    Placement,
    PlacementError,
    class_folders,
    place_all,
    sanitize_folder_name,
)
from fashion_edge.runtime.preprocess import choose_workers, is_image_file

__all__ = [
    "FIELDS", "SOURCES", "JOURNAL_NAME", "REVIEW_FOLDER", "LabelingError", "LabelRecord", "LabelSummary",
    "PlacementError", "append_records", "find_images", "is_jsonl", "label_paths", "read_labels",
    "relative_key", "repair_journal", "run_labeling", "sanitize_folder_name", "sort_into",
]  # fmt: skip

JOURNAL_NAME = "fashion-labels.csv"  # the default journal, inside the labelled folder
SHOWN_SKIPPED = 5  # skipped files named in the summary line
relative_key = path_key  # the journal key of a file (kept under its old name)


@dataclass
class LabelSummary:
    """Counts over every image of the folder in the journal after the run."""

    out: Path
    total: int  # images found in the folder
    labelled: int  # images with a row in the journal (this run + earlier runs)
    this_run: int
    resumed: int  # images skipped because an earlier run had labelled them (same model)
    errors: int
    needs_review: int
    cancelled: bool
    seconds: float
    sorted_files: int = 0
    relabelled: int = 0  # earlier rows not trusted (another model, NaN, no identity): labelled again
    ignored_rows: int = 0  # malformed rows in the journal (e.g. edited by hand): kept, not used
    changed: int = 0  # files whose size or time differ from their row (a reused name): labelled again
    skipped: int = 0  # files that are not images we read (not our own journal, lock or temp files)
    skipped_names: tuple[str, ...] = ()  # the first few of them, relative to the folder
    already_sorted: int = 0  # files found in their class folder (left as they are, not counted above)
    unreadable: tuple[str, ...] = ()  # sub-folders that could not be listed ("sub/ (reason)")

    @property
    def rate(self) -> float:
        return self.this_run / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = f"labelled {self.labelled} images ({self.errors} errors, {self.needs_review} need review) -> {self.out}"
        if self.resumed:
            text += f" [{self.resumed} from an earlier run]"
        if self.relabelled:
            text += (
                f" [{self.relabelled} earlier rows of another model, invalid or without the file's size and time"
                " (older journals): labelled again]"
            )
        if self.changed:
            text += f" [{self.changed} files changed since their row (a reused name?): labelled again]"
        if self.ignored_rows:
            text += f" [{self.ignored_rows} malformed journal rows ignored, left in the file]"
        if self.skipped:
            shown = ", ".join(_printable(n) for n in self.skipped_names)
            more = (
                f", and {self.skipped - len(self.skipped_names)} more"
                if self.skipped > len(self.skipped_names)
                else ""
            )
            text += f" [{self.skipped} files skipped, not a supported image: {shown}{more}]"
        if self.already_sorted:
            text += f" [{self.already_sorted} files already sorted, left as they are]"
        if self.unreadable:
            shown = ", ".join(_printable(n) for n in self.unreadable[:SHOWN_SKIPPED])
            more = len(self.unreadable) - SHOWN_SKIPPED
            text += f" [{len(self.unreadable)} folders could not be read: {shown}{f', and {more} more' if more > 0 else ''}]"
        return text


def _printable(name: str) -> str:
    """A file name for the one-line summary: control characters (a newline) as ``\\xNN``."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", name)


# --- finding images ------------------------------------------------------------------------------


@dataclass
class Listing:
    """The files of a folder: images to label, and every other file (relative names) skipped."""

    images: list[Path]
    skipped: list[str]
    unreadable: list[str] = field(default_factory=list)  # sub-folders that could not be listed


def list_folder(
    folder: str | Path, recursive: bool = False, skip: Iterable[Path] = (), ours: Iterable[Path] = ()
) -> Listing:
    """Images and every other file, skipped; both sorted.

    Images: ``preprocess.is_image_file`` (a suffix of ``IMAGE_SUFFIXES``, or no suffix and the
    first bytes of an image); special files with an image suffix are listed (they become error
    rows). Hidden files are skipped. The tool's own files (``ours``, files named like the default
    journal or its record/lock, temporary files) are in neither list. Sub-folders without
    recursion limits; hidden and symlinked folders not entered, folders in ``skip`` left out.
    A sub-folder that cannot be listed (permission denied) is named in ``unreadable`` with the
    reason, never passed over in silence.
    """
    root = Path(folder)
    skipped_dirs = {_resolved(str(s)) for s in skip}
    own = {_resolved(str(p)) for p in ours}
    found: list[Path] = []
    other: list[Path] = []
    unreadable: list[str] = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError as e:
            if d == root:
                raise
            unreadable.append(f"{path_key(d, root)}/ ({e.strerror or e})")
            continue
        for e in entries:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if e.name.startswith("."):
                    continue
                if (
                    recursive
                    and not e.is_symlink()
                    and not (skipped_dirs and _resolved(e.path) in skipped_dirs)
                ):
                    stack.append(Path(e.path))
            elif not e.name.startswith(".") and is_image_file(e.path):
                found.append(Path(e.path))
            elif not _is_ours(e.name) and not (own and _resolved(e.path) in own):
                other.append(Path(e.path))
    order = lambda p: os.fsencode(p)  # noqa: E731
    skipped = [path_key(p, root) for p in sorted(other, key=order)]
    return Listing(sorted(found, key=order), skipped, sorted(unreadable))


_OURS = (JOURNAL_NAME, sidecar_of(Path(JOURNAL_NAME)).name, lock_of(Path(JOURNAL_NAME)).name)


def _is_ours(name: str) -> bool:
    """The default journal, its record and lock, and temporary files the tool writes."""
    return name in _OURS or name.startswith(TMP_PREFIX) or bool(re.fullmatch(r"\..+\.tmp-\d+", name))


def find_images(folder: str | Path, recursive: bool = False, skip: Iterable[Path] = ()) -> list[Path]:
    """The images ``list_folder`` finds (sorted; hidden names, sub-folders as there)."""
    return list_folder(folder, recursive, skip).images


def _resolved(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


# --- sorting into folders ------------------------------------------------------------------------


def path_of_key(root: Path, key: str) -> Path:
    """The file a journal key names (``\\xNN`` escapes of non-UTF-8 names and backslashes
    mapped back; a key of an older version, which kept a backslash as it is, names it directly)."""
    direct = root / key
    if "\\x" not in key:
        return direct
    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), key.encode("utf-8"))
    decoded = root / os.fsdecode(raw)
    return decoded if os.path.lexists(decoded) or not os.path.lexists(direct) else direct


def sort_into(
    records: Iterable[LabelRecord],
    folder: str | Path,
    dest: str | Path,
    move: bool = False,
    paths: Mapping[str, Path] | None = None,
    _cleaned: set[Path] | None = None,
    fresh: bool = False,
) -> list[tuple[Path, Path]]:
    """Copy (or move) labelled files into dest/<label>/ (needs_review rows into dest/needs_review/).

    Never overwrites and never deletes a file unless its bytes are verified elsewhere
    (``placement``); a copy already made by an earlier run (same bytes under the file's name) is
    not made again, unless ``fresh`` (rows labelled in this run: identical twins are both copied);
    a file already in its class folder stays. Error rows and files no longer present are skipped.
    ``paths`` maps journal keys to files (without it, keys naming files outside ``folder`` are
    skipped). Labels that would share a folder are refused (PlacementError) before anything is
    placed.
    """
    recs = list(records)
    folders = class_folders(r.label for r in recs if not r.error and not r.needs_review)
    placed = _sort(recs, folder, dest, move, paths, _cleaned, fresh, folders)
    return [(p.src, p.dst) for p in placed]


def _outside(path: Path, root: Path) -> bool:
    """Is ``path`` outside ``root``, judged by its spelling (``..`` parts, absolute keys)?"""
    rel = os.path.relpath(os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root)))
    return rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel)


def _sort(
    records: Iterable[LabelRecord],
    folder: str | Path,
    dest: str | Path,
    move: bool,
    paths: Mapping[str, Path] | None,
    cleaned: set[Path] | None,
    fresh: bool,
    folders: Mapping[str, str],
) -> list[Placement]:
    root, out = Path(folder), Path(dest)
    pairs = []
    for rec in records:
        if rec.error:
            continue
        src = paths.get(rec.path) if paths is not None else path_of_key(root, rec.path)
        if src is None or (paths is None and _outside(src, root)) or not src.is_file():
            continue  # (a hand-edited row may name a file outside the folder: never touched)
        sub = REVIEW_FOLDER if rec.needs_review else folders.get(rec.label) or sanitize_folder_name(rec.label)
        pairs.append((src, out / sub))
    return place_all(pairs, move, cleaned if cleaned is not None else set(), fresh)


# --- the resumable local run ---------------------------------------------------------------------


@contextlib.contextmanager
def _closing(gen: Iterator[Any]) -> Iterator[None]:
    try:
        yield
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()


def _exclusions(root: Path, sort_dest: Path | None, classes: Sequence[str]) -> list[Path]:
    """Folders not to label: the sorting destination (or, when sorting into the folder itself,
    its class folders)."""
    if sort_dest is None:
        return []
    dest, here = sort_dest.resolve(), root.resolve()
    if dest == here:
        return [dest / sanitize_folder_name(c) for c in classes] + [dest / REVIEW_FOLDER]
    return [dest]


def run_labeling(
    folder: str | Path,
    clf: Any,
    out_csv: str | Path | None = None,
    *,
    recursive: bool = False,
    top_k: int = 3,
    review_below: float | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    sort_dest: str | Path | None = None,
    move: bool = False,
    engine: Engine | None = None,
) -> LabelSummary:
    """Label every image in ``folder`` without a valid row in the journal ``out_csv``
    (.csv or .jsonl; default ``<folder>/fashion-labels.csv``).

    The journal's lock is held for the whole run; a journal of another folder is refused.
    Each batch is appended before it is sorted (``sort_dest``) and before progress is reported
    (and fsync'ed first when files are moved). ``cancel`` is checked while waiting for a batch;
    rows written so far stay. ``engine`` replaces the local decode+infer loop (e.g. Ray).
    """
    start = time.perf_counter()
    root = Path(folder)
    if not root.is_dir():
        raise LabelingError(f"{root}: not a folder")
    out = Path(out_csv) if out_csv is not None else root / JOURNAL_NAME
    dest = Path(sort_dest) if sort_dest is not None else None
    cancel = cancel or threading.Event()
    model_id = getattr(clf, "model_id", None) or model_fingerprint(getattr(clf, "path", None))
    check_journal_files(out)
    listing = list_folder(
        root, recursive, _exclusions(root, dest, clf.classes), (out, sidecar_of(out), lock_of(out))
    )
    images = listing.images
    keys = [path_key(p, root) for p in images]
    by_key = dict(zip(keys, images, strict=True))
    idents = {k: identity_of(p) for k, p in by_key.items()}

    with JournalLock(out):
        found = scan(out, keep=by_key, slim=True)
        bind_to_folder(out, root, model_id, has_rows=found.rows > 0 or found.ignored > 0)
        if found.cut_at is not None:
            found = repair_journal(out, keep=by_key, slim=True)
        done, changed = {}, 0
        for k, r in found.records.items():
            if is_trusted(r, model_id, clf.classes, idents.get(k)):
                done[k] = r
            elif r.identity is not None and idents.get(k) not in (None, r.identity):
                changed += 1
        todo = [(k, p) for k, p in zip(keys, images, strict=True) if k not in done]
        resumed = len(images) - len(todo)
        relabelled = sum(1 for k, _ in todo if k in found.records) - changed
        folders: dict[str, str] = {}
        if dest is not None:  # refuse labels that would share a folder before anything is placed
            folders = class_folders([*clf.classes, *(r.label for r in done.values() if r.source == "human")])
        placed: list[Placement] = []
        cleaned: set[Path] = set()
        sort_cut = False
        if dest is not None and resumed:  # finish sorting what an earlier run labelled
            old = [done[k] for k in keys if k in done]
            for part in chunks(old, max(1, batch_size)):
                if cancel.is_set():
                    sort_cut = True
                    break
                placed += _sort(part, root, dest, move, by_key, cleaned, False, folders)

        this_run = 0
        if progress:
            progress(resumed, len(images))
        batches = chunks(todo, max(1, batch_size))
        workers = choose_workers([p for _, p in todo], workers)  # None: from the files' sizes
        run = engine or local_engine(clf, top_k, review_below, workers)
        results = run(batches, cancel)
        with JournalWriter(out, sync_every_batch=dest is not None and move) as journal, _closing(results):
            for recs in results:
                for r in recs:
                    r.size, r.mtime_ns = idents.get(r.path) or (None, None)
                journal.append(recs)
                for r in recs:
                    done[r.path] = r
                this_run += len(recs)
                if dest is not None:
                    placed += _sort(recs, root, dest, move, by_key, cleaned, True, folders)
                if progress:
                    progress(resumed + this_run, len(images))
                if cancel.is_set():
                    break
        cancelled = cancel.is_set() and (sort_cut or resumed + this_run < len(images))

    final = [done[k] for k in keys if k in done]
    made = sum(1 for p in placed if p.made)
    return LabelSummary(
        out=out,
        total=len(images),
        labelled=len(final),
        this_run=this_run,
        resumed=resumed,
        errors=sum(1 for r in final if r.error),
        needs_review=sum(1 for r in final if r.needs_review and not r.error),
        cancelled=cancelled,
        seconds=time.perf_counter() - start,
        sorted_files=made,
        relabelled=relabelled,
        ignored_rows=found.ignored,
        changed=changed,
        skipped=len(listing.skipped),
        skipped_names=tuple(listing.skipped[:SHOWN_SKIPPED]),
        already_sorted=len(placed) - made,
        unreadable=tuple(listing.unreadable),
    )
