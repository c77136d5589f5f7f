"""The labeling journal: rows, CSV/JSONL format, escaping, reading, repair and appending.

Format (``.csv``; ``.jsonl`` has the same fields as keys): a header and one row per labelled
file, appended as files are labelled; the last row for a path wins.

- ``path``: the file relative to the labelled folder with ``/`` separators. Bytes of a name
  that are not UTF-8 are written as ``\\xNN`` (``bytes.decode("utf-8", "backslashreplace")``),
  so the journal is always valid UTF-8; resume computes the same key for each file on disk.
- ``model``: the fingerprint of the model file that made the row (first 16 hex of its SHA-256).
  Rows of another model, and model rows whose confidence is not a number in [0, 1], are labelled
  again on resume; rows a person made (``source=human``) are kept.
- CSV cells starting with ``= + - @``, a tab or CR (or ``'``) get a leading ``'`` so that a
  spreadsheet shows them as text (OWASP); reading removes it again. JSONL is not escaped.

A journal belongs to one folder and is written by one run at a time: ``runtime.journal_guard``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ["path", "label", "confidence", "top_k", "needs_review", "error", "source", "model"]
LEGACY_FIELDS = FIELDS[:7]  # journals written before the model column: readable, upgraded on write
SOURCES = ("model", "human")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")  # "'" too, so that un-escaping is exact


class LabelingError(ValueError):
    """A problem with the folder or the journal file (not with a single image)."""


# --- text cells --------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8 text: undecodable file-name bytes become ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")  # os.fsdecode'd names
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("ascii")
        return raw.decode("utf-8", "backslashreplace")


def one_line(message: str) -> str:
    return clean_text(" ".join(str(message).split())) or "unknown error"


def path_key(path: Path, root: Path) -> str:
    """The journal key of a file: its path relative to the labelled folder, ``/`` separators,
    undecodable bytes as ``\\xNN``."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = Path(os.path.relpath(path, root)).as_posix()
    return clean_text(rel)


def escape_cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def unescape_cell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


# --- one row -----------------------------------------------------------------------------------


@dataclass
class LabelRecord:
    """One journal row. ``path`` is the key of the file (see ``path_key``)."""

    path: str
    label: str = ""
    confidence: float = 0.0
    top_k: list[tuple[str, float]] = field(default_factory=list)
    needs_review: bool = False
    error: str = ""
    source: str = "model"
    model: str = ""  # fingerprint of the model file (empty for people's rows and old journals)

    def to_row(self) -> list[str]:
        top = "|".join(f"{name}:{p:.4f}" for name, p in self.top_k)
        conf = f"{self.confidence:.4f}" if not self.error else ""
        cells = [self.path, self.label, conf, top, "1" if self.needs_review else "0", self.error, self.source]
        return [escape_cell(clean_text(c)) for c in [*cells, self.model]]

    @classmethod
    def from_row(cls, row: Sequence[str]) -> LabelRecord:
        """Parse a CSV row (7 or 8 cells); ValueError for anything malformed (e.g. torn by a crash)."""
        if len(row) not in (len(FIELDS), len(LEGACY_FIELDS)):
            raise ValueError("malformed row")
        cells = [unescape_cell(c) for c in row]
        if cells[6] not in SOURCES or cells[4] not in ("0", "1") or not cells[0]:
            raise ValueError("malformed row")
        top = []
        for item in filter(None, cells[3].split("|")):
            name, _, p = item.rpartition(":")
            top.append((name, float(p)))
        conf = float(cells[2]) if cells[2] else 0.0
        model = cells[7] if len(cells) > 7 else ""
        return cls(cells[0], cells[1], conf, top, cells[4] == "1", cells[5], cells[6], model)

    def to_json(self) -> str:
        d = {
            "path": clean_text(self.path),
            "label": clean_text(self.label),
            "confidence": round(self.confidence, 4) if math.isfinite(self.confidence) else None,
            "top_k": [[clean_text(n), round(p, 4) if math.isfinite(p) else None] for n, p in self.top_k],
            "needs_review": self.needs_review,
            "error": clean_text(self.error),
            "source": self.source,
            "model": self.model,
        }
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> LabelRecord:
        d = json.loads(line)
        if not isinstance(d, dict) or d.get("source") not in SOURCES or not d.get("path"):
            raise ValueError("malformed record")

        def num(v: object) -> float:
            return float("nan") if v is None else float(v)  # type: ignore[arg-type]

        top = [(str(n), num(p)) for n, p in d.get("top_k", [])]
        return cls(
            str(d["path"]), str(d.get("label", "")), num(d.get("confidence", 0.0)), top,
            bool(d.get("needs_review", False)), str(d.get("error", "")), d["source"], str(d.get("model", "")),
        )  # fmt: skip


def is_trusted(rec: LabelRecord, model_id: str, classes: Sequence[str]) -> bool:
    """May resume keep this row? People's rows yes; model rows only from this model and sane."""
    if rec.source == "human":
        return bool(rec.label)
    if rec.model != model_id:
        return False
    if rec.error:
        return True
    return rec.label in classes and math.isfinite(rec.confidence) and 0.0 <= rec.confidence <= 1.0


# --- reading and repairing -----------------------------------------------------------------------


def is_jsonl(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".jsonl"


@dataclass
class Scan:
    """What a journal file holds: valid records, rows ignored (hand-edited or malformed) and,
    when a crash tore the last entry, the byte offset to cut it at."""

    records: list[LabelRecord]
    ignored: int = 0
    cut_at: int | None = None
    legacy: bool = False  # a CSV with the 7-column header of older versions


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _scan_jsonl(path: Path, text: str) -> Scan:
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]  # tail: text after the last newline (torn if any)
    records, ignored, first = [], 0, True
    for line in complete:
        if not line.strip():
            continue
        try:
            records.append(LabelRecord.from_json(line))
        except (ValueError, TypeError, KeyError):
            if first:
                raise LabelingError(f"{path}: exists but is not a fashion-label journal") from None
            ignored += 1
        first = False
    if tail.strip():  # no newline at the end: an entry torn by a crash, if the file is ours at all
        if first and not tail.lstrip().startswith('{"path"'):
            raise LabelingError(f"{path}: exists but is not a fashion-label journal")
        return Scan(records, ignored, _byte_len(text) - _byte_len(tail))
    return Scan(records, ignored)


def _scan_csv(path: Path, text: str, bom: int) -> Scan:
    for header in (FIELDS, LEGACY_FIELDS):
        if (",".join(header) + "\n").startswith(text):  # a header torn by a crash
            return Scan([], 0, 0 if not text.endswith("\n") else None, header is LEGACY_FIELDS)
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines)
    header = next(reader, None)
    if header not in (FIELDS, LEGACY_FIELDS):
        shown = ",".join(header or [])[:80]
        raise LabelingError(f"{path}: exists but is not a fashion-label journal (header {shown!r})")
    records: list[LabelRecord] = []
    ignored, last_ok, last_start = 0, True, 0
    while True:
        start = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:  # e.g. a NUL byte in a hand-edited row
            ignored, last_ok, last_start = ignored + 1, False, start
            continue
        try:
            records.append(LabelRecord.from_row(row))
            last_ok, last_start = True, start
        except ValueError:
            ignored, last_ok, last_start = ignored + 1, False, start
    last_raw = "".join(lines[last_start:])
    torn = not text.endswith(("\n", "\r")) or (not last_ok and last_raw.count('"') % 2 == 1)
    if not torn or last_start == 0:
        return Scan(records, ignored, None, header == LEGACY_FIELDS)
    if last_ok:
        records.pop()
    else:
        ignored -= 1
    return Scan(records, ignored, bom + _byte_len("".join(lines[:last_start])), header == LEGACY_FIELDS)


def scan(path: str | Path) -> Scan:
    """Read a journal (UTF-8, a BOM allowed); LabelingError if the file is not a journal."""
    p = Path(path)
    if not p.exists():
        return Scan([])
    raw = p.read_bytes()
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    text = raw[bom:].decode("utf-8", "surrogateescape")
    if not text:
        return Scan([])
    return _scan_jsonl(p, text) if is_jsonl(p) else _scan_csv(p, text, bom)


def repair_journal(path: str | Path) -> Scan:
    """Scan a journal and cut off an entry torn by a crash (only that: rows a person edited by
    hand stay in the file, ignored). Returns the scan."""
    p = Path(path)
    s = scan(p)
    if s.cut_at is not None:
        with open(p, "r+b") as f:
            f.truncate(s.cut_at)
            f.flush()
            os.fsync(f.fileno())
        s.cut_at = None
    return s


def read_labels(path: str | Path) -> dict[str, LabelRecord]:
    """{path: record} from a journal; the last row for a path wins; torn/malformed rows ignored."""
    return {r.path: r for r in scan(path).records}


# --- writing -----------------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
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


def serialise(path: Path, records: Iterable[LabelRecord], header: bool) -> str:
    if is_jsonl(path):
        return "".join(r.to_json() + "\n" for r in records)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(FIELDS)
    w.writerows(r.to_row() for r in records)
    return buf.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write a whole file through a temporary name, fsync, rename (never a half file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent.resolve())


def _legacy_header(path: Path) -> bool:
    """Does this CSV start with the 7-column header of older versions? (reads its first line only)"""
    with open(path, "rb") as f:
        first = f.readline(4096)
    return first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n") == ",".join(LEGACY_FIELDS).encode()


def _upgrade_legacy_header(path: Path) -> None:
    raw = path.read_bytes()
    bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
    rest = raw[len(bom) :].split(b"\n", 1)
    write_atomically(path, bom + (",".join(FIELDS) + "\n").encode() + (rest[1] if len(rest) > 1 else b""))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append_records(path: str | Path, records: Sequence[LabelRecord]) -> None:
    """Append records in one write, then fsync (a header first for a new journal)."""
    if records:
        with JournalWriter(path, sync_every_batch=True) as w:
            w.append(records)


class JournalWriter:
    """An open journal: each batch is one ``write`` (O_APPEND) and reaches the file at once.

    Written rows survive a kill -9. ``fsync`` (needed only against power loss) runs for every
    batch when ``sync_every_batch`` (before files are moved), otherwise at most once per
    ``sync_seconds`` and on close: rows lost to a power cut are simply labelled again on resume.
    """

    def __init__(self, path: str | Path, sync_every_batch: bool = False, sync_seconds: float = 1.0) -> None:
        import time

        self._clock = time.monotonic
        self.path = Path(path)
        self.sync_every_batch, self.sync_seconds = sync_every_batch, sync_seconds
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new and not is_jsonl(self.path) and _legacy_header(self.path):
            _upgrade_legacy_header(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        if new:
            _write_all(self._fd, serialise(self.path, [], header=True).encode())
            os.fsync(self._fd)
            fsync_dir(self.path.parent.resolve())
        self._last_sync = self._clock()

    def append(self, records: Sequence[LabelRecord]) -> None:
        _write_all(self._fd, serialise(self.path, records, header=False).encode("utf-8"))
        if self.sync_every_batch or self._clock() - self._last_sync >= self.sync_seconds:
            os.fsync(self._fd)
            self._last_sync = self._clock()

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
