"""Batch-label a folder of images into an append-only journal; resume after any crash; sort files.

The core is a pure function, ``label_paths(clf, paths, root)``: a batch of file paths in, one
``LabelRecord`` per path out (a bad file is a record with ``error`` set, never an exception).
``run_labeling`` adds what a long local run needs around it: parallel decoding, batching, a
journal that is appended, flushed and fsync'ed per batch, resume, cancel and sorting.

Scaling out (millions of images): drive ``label_paths`` from an existing engine instead of
``run_labeling``. With Ray Data, for example::

    import ray
    from fashion_edge.runtime import load
    from fashion_edge.runtime.labeling import label_paths

    class Labeler:
        def __init__(self):
            self.clf = load("models/articletype8/model_int8.onnx", threads=1)

        def __call__(self, batch):  # batch: {"path": np.ndarray of str}
            recs = label_paths(self.clf, list(batch["path"]), root="/data/catalogue")
            return {k: [getattr(r, k) for r in recs] for k in ("path", "label", "confidence", "error")}

    ds = ray.data.from_items([{"path": str(p)} for p in paths])
    ds.map_batches(Labeler, batch_size=256, concurrency=8).write_csv("s3://bucket/labels/")

Each worker loads the model once; the engine handles sharding, retries and output files, and
``label_paths`` needs no shared state, so any batch can be re-run without side effects.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fashion_edge.runtime.classifier import Classifier
from fashion_edge.runtime.preprocess import ImageError, list_images, read_image

FIELDS = ["path", "label", "confidence", "top_k", "needs_review", "error", "source"]
SOURCES = ("model", "human")
REVIEW_FOLDER = "needs_review"
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}


class LabelingError(ValueError):
    """A problem with the folder or the journal file (not with a single image)."""


@dataclass
class LabelRecord:
    """One journal row. ``path`` is relative to the labelled folder, with ``/`` separators."""

    path: str
    label: str = ""
    confidence: float = 0.0
    top_k: list[tuple[str, float]] = field(default_factory=list)
    needs_review: bool = False
    error: str = ""
    source: str = "model"

    def to_row(self) -> list[str]:
        top = "|".join(f"{name}:{p:.4f}" for name, p in self.top_k)
        conf = f"{self.confidence:.4f}" if not self.error else ""
        return [self.path, self.label, conf, top, "1" if self.needs_review else "0", self.error, self.source]

    @classmethod
    def from_row(cls, row: Sequence[str]) -> LabelRecord:
        """Parse a CSV row; ValueError for anything malformed (e.g. a row torn by a crash)."""
        if len(row) != len(FIELDS) or row[6] not in SOURCES or row[4] not in ("0", "1") or not row[0]:
            raise ValueError("malformed row")
        top = []
        for item in filter(None, row[3].split("|")):
            name, _, p = item.rpartition(":")
            top.append((name, float(p)))
        return cls(row[0], row[1], float(row[2]) if row[2] else 0.0, top, row[4] == "1", row[5], row[6])

    def to_json(self) -> str:
        d = {
            "path": self.path,
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "top_k": [[n, round(p, 4)] for n, p in self.top_k],
            "needs_review": self.needs_review,
            "error": self.error,
            "source": self.source,
        }
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> LabelRecord:
        d = json.loads(line)
        if not isinstance(d, dict) or d.get("source") not in SOURCES or not d.get("path"):
            raise ValueError("malformed record")
        top = [(str(n), float(p)) for n, p in d.get("top_k", [])]
        return cls(
            str(d["path"]), str(d.get("label", "")), float(d.get("confidence", 0.0)), top,
            bool(d.get("needs_review", False)), str(d.get("error", "")), d["source"],
        )  # fmt: skip


@dataclass
class LabelSummary:
    """Counts over every image of the folder in the journal after the run."""

    out: Path
    total: int  # images found in the folder
    labelled: int  # images with a row in the journal (this run + earlier runs)
    this_run: int
    resumed: int  # images skipped because an earlier run had labelled them
    errors: int
    needs_review: int
    cancelled: bool
    seconds: float
    sorted_files: int = 0

    @property
    def rate(self) -> float:
        return self.this_run / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = f"labelled {self.labelled} images ({self.errors} errors, {self.needs_review} need review) -> {self.out}"
        if self.resumed:
            text += f" [{self.resumed} from an earlier run]"
        return text


# --- the pure core ---------------------------------------------------------------------------


def relative_key(path: Path, root: Path) -> str:
    """The journal key of a file: its path relative to the labelled folder, POSIX separators."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, root)).as_posix()


def one_line(message: str) -> str:
    return " ".join(str(message).split()) or "unknown error"


def _decode(clf: Classifier, path: Path) -> np.ndarray | str:
    """Prepared model input, or the error message for this file."""
    try:
        return clf.prepare(read_image(path))
    except ImageError as e:
        return one_line(str(e))
    except (MemoryError, OSError, ValueError) as e:  # e.g. cv2 failing on an absurd image
        return one_line(f"cannot process image ({e})")


def records_from(
    clf: Classifier,
    keys: Sequence[str],
    decoded: Sequence[np.ndarray | str],
    top_k: int = 3,
    review_below: float | None = None,
) -> list[LabelRecord]:
    """Infer the decoded images of a batch in one call and build one record per key."""
    good = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
    preds = {}
    if good:
        probs = clf.probabilities(np.stack([decoded[i] for i in good]))
        preds = dict(zip(good, clf.predictions(probs, top_k, review_below), strict=True))
    out = []
    for i, key in enumerate(keys):
        if i in preds:
            p = preds[i]
            out.append(LabelRecord(key, p.label, p.confidence, p.top_k, p.needs_review))
        else:
            out.append(LabelRecord(key, error=str(decoded[i])))
    return out


def label_paths(
    clf: Classifier,
    paths: Sequence[str | Path],
    root: str | Path,
    top_k: int = 3,
    review_below: float | None = None,
    executor: ThreadPoolExecutor | None = None,
) -> list[LabelRecord]:
    """Pure: a batch of image paths -> one record each (errors as records), in the same order."""
    root_p = Path(root)
    ps = [Path(p) for p in paths]
    decoded = list(executor.map(lambda p: _decode(clf, p), ps) if executor else (_decode(clf, p) for p in ps))
    return records_from(clf, [relative_key(p, root_p) for p in ps], decoded, top_k, review_below)


# --- the journal -----------------------------------------------------------------------------


def is_jsonl(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".jsonl"


def _parse(path: Path) -> tuple[list[LabelRecord], bool]:
    """All valid records and whether the file needs repair (torn or malformed last entry)."""
    data = path.read_bytes()
    if not data:
        return [], False
    text = data.decode("utf-8", errors="replace")
    records: list[LabelRecord] = []
    last_ok = True
    if is_jsonl(path):
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                records.append(LabelRecord.from_json(line))
                last_ok = True
            except (ValueError, TypeError, KeyError):
                last_ok = False
    else:
        if (",".join(FIELDS) + "\n").startswith(text):  # nothing but a header torn by a crash
            return [], not text.endswith("\n")
        rows = csv.reader(io.StringIO(text, newline=""))
        header = next(rows, None)
        if header != FIELDS:
            raise LabelingError(f"{path}: exists but is not a fashion-label journal (header {header})")
        for row in rows:
            try:
                records.append(LabelRecord.from_row(row))
                last_ok = True
            except ValueError:
                last_ok = False
    return records, not (last_ok and text.endswith("\n"))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_durably(path: Path, text: str, mode: str) -> None:
    new = not path.exists()
    with open(path, mode, encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if new or mode == "w":
        _fsync_dir(path.parent.resolve())


def _serialise(path: Path, records: Iterable[LabelRecord], header: bool) -> str:
    if is_jsonl(path):
        return "".join(r.to_json() + "\n" for r in records)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(FIELDS)
    w.writerows(r.to_row() for r in records)
    return buf.getvalue()


def repair_journal(path: str | Path) -> list[LabelRecord]:
    """Read a journal; if a crash left a torn last entry, rewrite it (atomically) without it."""
    p = Path(path)
    if not p.exists():
        return []
    records, torn = _parse(p)
    if torn:
        tmp = p.with_name(p.name + ".repair")
        _write_durably(tmp, _serialise(p, records, header=True), "w")
        os.replace(tmp, p)
        _fsync_dir(p.parent.resolve())
    return records


def append_records(path: str | Path, records: Sequence[LabelRecord]) -> None:
    """Append records in one write, then flush and fsync (a header first for a new CSV)."""
    p = Path(path)
    if not records:
        return
    header = not p.exists() or p.stat().st_size == 0
    _write_durably(p, _serialise(p, records, header), "a")


class JournalWriter:
    """An open journal for one run: each batch is written in one call and flushed at once.

    Flushed rows survive a kill -9. ``fsync`` (needed only against power loss) runs for every
    batch when ``sync_every_batch`` (used before moving files), otherwise at most once per
    ``sync_seconds`` and on close: rows lost to a power cut are simply labelled again on resume.
    """

    def __init__(self, path: str | Path, sync_every_batch: bool = False, sync_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.sync_every_batch, self.sync_seconds = sync_every_batch, sync_seconds
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", encoding="utf-8", newline="")
        if new:
            self._f.write(_serialise(self.path, [], header=True))
            self._sync()
            _fsync_dir(self.path.parent.resolve())
        self._last_sync = time.monotonic()

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._last_sync = time.monotonic()

    def append(self, records: Sequence[LabelRecord]) -> None:
        self._f.write(_serialise(self.path, records, header=False))
        self._f.flush()
        if self.sync_every_batch or time.monotonic() - self._last_sync >= self.sync_seconds:
            self._sync()

    def close(self) -> None:
        if not self._f.closed:
            self._sync()
            self._f.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_labels(path: str | Path) -> dict[str, LabelRecord]:
    """{path: record} from a journal; the last row for a path wins; torn/malformed rows ignored."""
    p = Path(path)
    if not p.exists():
        return {}
    records, _ = _parse(p)
    return {r.path: r for r in records}


# --- sorting into folders --------------------------------------------------------------------


def sanitize_folder_name(label: str) -> str:
    """A label as a safe single folder name on any OS (no separators, '..', control or reserved names)."""
    name = re.sub(r'[\x00-\x1f\x7f<>:"/\\|?*]', "_", label)
    name = name.strip().rstrip(". ").lstrip(" ")
    if name in ("", ".", ".."):
        return "_unnamed"
    if name.startswith("."):
        name = "_" + name[1:]
    if name.split(".")[0].upper() in WINDOWS_RESERVED:
        name = "_" + name
    return name[:100]


def _same_file_content(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def _candidates(folder: Path, name: str) -> Iterable[Path]:
    stem, suffix = Path(name).stem, Path(name).suffix
    yield folder / name
    n = 1
    while True:
        yield folder / f"{stem} ({n}){suffix}"
        n += 1


def _place(src: Path, folder: Path, move: bool) -> Path:
    """Copy/move src into folder under a name no file has; reuse an identical earlier copy."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        for dst in _candidates(folder, src.name):
            if dst.exists() or dst.is_symlink():
                if _same_file_content(src, dst):  # sorted before (e.g. an interrupted run)
                    if move:
                        src.unlink()
                    return dst
                continue
            try:
                if move:
                    os.link(src, dst)  # atomic, fails instead of overwriting
                    src.unlink()
                    return dst
                if tmp is None:
                    tmp = folder / f".{src.name}.partial"
                    shutil.copy2(src, tmp)
                os.link(tmp, dst)
                return dst
            except FileExistsError:
                continue
            except OSError:  # no hard links here (other device, FAT): exclusive-create copy
                with open(src, "rb") as fi, open(dst, "xb") as fo:
                    shutil.copyfileobj(fi, fo)
                shutil.copystat(src, dst)
                if move:
                    src.unlink()
                return dst
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
    raise AssertionError("unreachable")


def sort_into(
    records: Iterable[LabelRecord], folder: str | Path, dest: str | Path, move: bool = False
) -> list[tuple[Path, Path]]:
    """Copy (or move) labelled files into dest/<label>/ (needs_review rows into dest/needs_review/).

    Never overwrites: a clashing name gets " (1)", " (2)"...; a file already sorted with identical
    content is not copied again. Error rows and files no longer present are skipped.
    """
    root, out = Path(folder), Path(dest)
    done = []
    for rec in records:
        if rec.error:
            continue
        src = root / rec.path
        if not src.is_file():
            continue
        sub = REVIEW_FOLDER if rec.needs_review else sanitize_folder_name(rec.label)
        done.append((src, _place(src, out / sub, move)))
    return done


# --- the resumable local run -----------------------------------------------------------------


def _chunks(seq: Sequence[Path], n: int) -> list[Sequence[Path]]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]


def run_labeling(
    folder: str | Path,
    clf: Classifier,
    out_csv: str | Path,
    *,
    recursive: bool = False,
    top_k: int = 3,
    review_below: float | None = None,
    batch_size: int = 64,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    sort_dest: str | Path | None = None,
    move: bool = False,
) -> LabelSummary:
    """Label every image in ``folder`` not yet in the journal ``out_csv`` (.csv or .jsonl).

    Decoding runs in ``workers`` threads while the previous batch is inferred; each batch is
    appended and flushed before it is sorted (``sort_dest``) and before progress is reported
    (and fsync'ed first when files are moved; see ``JournalWriter``).
    ``cancel`` is checked between batches: the current batch is finished and written first.
    """
    start = time.perf_counter()
    root, out = Path(folder), Path(out_csv)
    if not root.is_dir():
        raise LabelingError(f"{root}: not a folder")
    images = list_images(root, recursive)
    if sort_dest is not None:
        dest = Path(sort_dest).resolve()
        images = [p for p in images if dest not in p.resolve().parents]
    keys = [relative_key(p, root) for p in images]
    done = {r.path: r for r in repair_journal(out)}
    todo = [(k, p) for k, p in zip(keys, images, strict=True) if k not in done]
    resumed = len(images) - len(todo)
    sorted_files = 0
    if sort_dest is not None and resumed:  # finish sorting what an earlier run labelled
        sorted_files += len(sort_into([done[k] for k in keys if k in done], root, sort_dest, move))

    this_run, cancelled = 0, False
    if progress:
        progress(resumed, len(images))
    batches = _chunks(todo, max(1, batch_size))  # type: ignore[arg-type]
    workers = max(1, workers)
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="decode") as ex,
        JournalWriter(out, sync_every_batch=sort_dest is not None and move) as journal,
    ):

        def submit(batch: Sequence[tuple[str, Path]]) -> list[Future]:
            parts = _chunks([p for _, p in batch], -(-len(batch) // workers))
            return [ex.submit(lambda ps: [_decode(clf, p) for p in ps], part) for part in parts]

        pending: deque[tuple[Sequence[tuple[str, Path]], list[Future]]] = deque()
        it = iter(batches)
        for batch in it:  # prefetch two batches ahead
            pending.append((batch, submit(batch)))
            if len(pending) >= 2:
                break
        while pending:
            if cancel is not None and cancel.is_set():
                cancelled = True
                for _, futs in pending:
                    for f in futs:
                        f.cancel()
                break
            batch, futs = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, submit(nxt)))
            decoded = [d for f in futs for d in f.result()]
            recs = records_from(clf, [k for k, _ in batch], decoded, top_k, review_below)
            journal.append(recs)
            for r in recs:
                done[r.path] = r
            this_run += len(recs)
            if sort_dest is not None:
                sorted_files += len(sort_into(recs, root, sort_dest, move))
            if progress:
                progress(resumed + this_run, len(images))

    final = [done[k] for k in keys if k in done]
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
        sorted_files=sorted_files,
    )
