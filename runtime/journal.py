"""The labeling journal: rows, CSV/JSONL format, escaping, reading, repair and appending.

Format (``.csv``; ``.jsonl`` has the same fields as keys): a header and one row per labelled
file, appended as files are labelled; the last row for a path wins.

- ``path``: the file relative to the labelled folder with ``/`` separators. Bytes of a name
  that are not UTF-8 are written as ``\\xNN`` (``bytes.decode("utf-8", "backslashreplace")``),
  so the journal is always valid UTF-8, and a backslash in a name as ``\\x5c``, so that no two
  names share a key (a name spelt ``a\\xff.jpg`` and the bytes ``a<0xff>.jpg``); resume computes
  the same key for each file on disk. (Older versions wrote a backslash as it is: such a file is
  labelled again once.)
- ``model``: the fingerprint of the model file that made the row (first 16 hex of its SHA-256).
  Rows of another model, and model rows whose confidence is not a number in [0, 1], are labelled
  again on resume; rows a person made (``source=human``) are kept.
- ``size``, ``mtime_ns``: the file's identity when it was labelled (``os.stat``: bytes and
  modification time in ns). A row whose identity differs from the file now on disk is for another
  file under a reused name (a camera's ``IMG_0001.jpg`` of the next day), and the file is
  labelled again. A model row without identity (journals of older versions) is labelled again
  too (the same model gives the same label to an unchanged file); a person's row without
  identity (the app's corrections) is kept.
- CSV cells starting with ``= + - @``, a tab or CR (or ``'``) get a leading ``'`` so that a
  spreadsheet shows them as text (OWASP); reading removes it again. JSONL is not escaped.

Older journals (7 columns, then 8 without the identity) are read, and their header is upgraded
when rows are appended. Journals are read as a stream, line by line (``scan`` keeps only the last
row of the keys asked for), and every journal file is opened through ``runtime.safe_file``: a
FIFO, a device or a symlink to a missing path is refused with one line, never opened blocking.

A journal belongs to one folder and is written by one run at a time: ``runtime.journal_guard``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fashion_edge.runtime.safe_file import UnsafeFileError, check_target, open_for_write, open_regular

FIELDS = [
    "path",
    "label",
    "confidence",
    "top_k",
    "needs_review",
    "error",
    "source",
    "model",
    "size",
    "mtime_ns",
]
MODEL_FIELDS = FIELDS[:8]  # journals written before the identity columns: readable, upgraded on write
LEGACY_FIELDS = FIELDS[:7]  # journals written before the model column: readable, upgraded on write
HEADERS = (FIELDS, MODEL_FIELDS, LEGACY_FIELDS)
MAX_LINE = 1 << 20  # a longer journal line is ignored as malformed (never held in memory whole)
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
    undecodable bytes and backslashes as ``\\xNN`` (one key per name)."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = Path(os.path.relpath(path, root)).as_posix()
    return clean_text(rel.replace("\\", "\\x5c"))


def escape_cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def unescape_cell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


# --- one row -----------------------------------------------------------------------------------


@dataclass(slots=True)
class LabelRecord:
    """One journal row. ``path`` is the key of the file (see ``path_key``); ``size`` and
    ``mtime_ns`` the file's identity when it was labelled (None: not recorded)."""

    path: str
    label: str = ""
    confidence: float = 0.0
    top_k: list[tuple[str, float]] = field(default_factory=list)
    needs_review: bool = False
    error: str = ""
    source: str = "model"
    model: str = ""  # fingerprint of the model file (empty for people's rows and old journals)
    size: int | None = None
    mtime_ns: int | None = None

    @property
    def identity(self) -> tuple[int, int] | None:
        return None if self.size is None or self.mtime_ns is None else (self.size, self.mtime_ns)

    def to_row(self) -> list[str]:
        top = "|".join(f"{name}:{p:.4f}" for name, p in self.top_k)
        conf = f"{self.confidence:.4f}" if not self.error else ""
        cells = [self.path, self.label, conf, top, "1" if self.needs_review else "0", self.error, self.source]
        ident = ["", ""] if self.identity is None else [str(self.size), str(self.mtime_ns)]
        return [escape_cell(clean_text(c)) for c in [*cells, self.model]] + ident

    @classmethod
    def from_row(cls, row: Sequence[str], slim: bool = False) -> LabelRecord:
        """Parse a CSV row (7, 8 or 10 cells); ValueError for anything malformed (e.g. torn by a
        crash). ``slim``: leave ``top_k`` empty (resume does not need it)."""
        if len(row) not in (len(FIELDS), len(MODEL_FIELDS), len(LEGACY_FIELDS)):
            raise ValueError("malformed row")
        cells = [c[1:] if c[:1] == "'" else c for c in row]  # unescape_cell, inline: resume reads millions
        if cells[6] not in SOURCES or cells[4] not in ("0", "1") or not cells[0]:
            raise ValueError("malformed row")
        top = []
        for item in filter(None, cells[3].split("|")) if not slim else ():
            name, _, p = item.rpartition(":")
            top.append((name, float(p)))
        conf = float(cells[2]) if cells[2] else 0.0
        model = cells[7] if len(cells) > 7 else ""
        size, mtime = (_count(cells[8]), _count(cells[9])) if len(cells) > 8 else (None, None)
        return cls(cells[0], cells[1], conf, top, cells[4] == "1", cells[5], cells[6], model, size, mtime)

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
            "size": self.size,
            "mtime_ns": self.mtime_ns,
        }
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str, slim: bool = False) -> LabelRecord:
        """Parse a JSONL line; ValueError for anything malformed (deep nesting included)."""
        try:
            d = json.loads(line)
        except RecursionError:
            raise ValueError("malformed record (nested too deeply)") from None
        if not isinstance(d, dict) or d.get("source") not in SOURCES or not d.get("path"):
            raise ValueError("malformed record")

        def num(v: object) -> float:
            return float("nan") if v is None else float(v)  # type: ignore[arg-type]

        def count(v: object) -> int | None:
            if v is None:
                return None
            if type(v) is not int or v < 0:
                raise ValueError("malformed record")
            return v

        top = [] if slim else [(str(n), num(p)) for n, p in d.get("top_k", [])]
        return cls(
            str(d["path"]), str(d.get("label", "")), num(d.get("confidence", 0.0)), top,
            bool(d.get("needs_review", False)), str(d.get("error", "")), d["source"], str(d.get("model", "")),
            count(d.get("size")), count(d.get("mtime_ns")),
        )  # fmt: skip


def _count(cell: str) -> int | None:
    """An identity cell: '' (not recorded) or a non-negative integer; ValueError otherwise."""
    if not cell:
        return None
    if not cell.isdigit():
        raise ValueError("malformed row")
    return int(cell)


def file_identity(st: os.stat_result) -> tuple[int, int]:
    """What a row records to recognise its file later: (size, mtime_ns)."""
    return st.st_size, st.st_mtime_ns


def identity_of(path: str | Path) -> tuple[int, int] | None:
    """A file's identity now (``file_identity``), of the link itself for a dangling symlink; None
    if it is gone. ``fashion-label`` and the app's corrections record the same value."""
    try:
        return file_identity(os.stat(path))
    except OSError:
        try:
            return file_identity(os.lstat(path))
        except OSError:
            return None


def is_trusted(
    rec: LabelRecord, model_id: str, classes: Sequence[str], identity: tuple[int, int] | None = None
) -> bool:
    """May resume keep this row? People's rows yes; model rows only from this model and sane.

    With ``identity`` (the file's now) a row recorded for another identity is not trusted (a
    reused name), nor is a model row without one (older journals: labelled again).
    """
    if (
        identity is not None
        and rec.identity != identity
        and (rec.identity is not None or rec.source != "human")
    ):
        return False
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
    """What a journal file holds: the last valid row of each key (of the keys asked for), how many
    valid rows there are in all, rows ignored (hand-edited or malformed) and, when a crash tore
    the last entry, the byte offset to cut it at."""

    records: dict[str, LabelRecord] = field(default_factory=dict)
    rows: int = 0
    ignored: int = 0
    cut_at: int | None = None
    legacy: bool = False  # a CSV with the header of an older version


class _Lines:
    """The lines of a binary file from ``pos`` as text, recording where the next one starts.

    A line longer than ``MAX_LINE`` is read past in pieces and given as ``"\x00\n"`` (not a row:
    counted as ignored). ``ended`` says whether the last line ended with a newline.
    """

    def __init__(self, f: BinaryIO, pos: int) -> None:
        self.f, self.pos, self.ended = f, pos, True

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.f.readline(MAX_LINE)
        if not line:
            raise StopIteration
        n = len(line)
        if n == MAX_LINE and not line.endswith(b"\n"):
            while (more := self.f.readline(MAX_LINE)) and not more.endswith(b"\n"):
                n += len(more)
            n += len(more)
            self.pos += n
            self.ended = more.endswith(b"\n")
            return "\x00\n"
        self.pos += n
        self.ended = line.endswith((b"\n", b"\r"))
        return line.decode("utf-8", "surrogateescape")


class _Keeper:
    """The last valid record of each kept key, and how many valid rows there are in all."""

    def __init__(self) -> None:
        self.records: dict[str, LabelRecord] = {}
        self.rows = 0

    def add(self, rec: LabelRecord) -> None:
        self.rows += 1
        self.records[rec.path] = rec

    def counted(self) -> None:  # a valid row of a key not kept
        self.rows += 1


_JSON_KEY = re.compile(r'\{"path": "([^"\\]*)", "label"')


def _scan_jsonl(path: Path, f: BinaryIO, start: int, keep: Container[str] | None, slim: bool) -> Scan:
    lines, kept = _Lines(f, start), _Keeper()
    ignored, first, begin = 0, True, start
    for line in lines:
        if not lines.ended:  # no newline at the end: torn by a crash, or saved by an editor
            if line.strip():
                if first and not line.lstrip().startswith('{"path"'):
                    raise LabelingError(f"{path}: exists but is not a fashion-label journal")
                try:  # a whole record (a person's last edit) is kept; JournalWriter adds the newline
                    kept.add(LabelRecord.from_json(line, slim))
                except (ValueError, TypeError, KeyError):
                    return Scan(kept.records, kept.rows, ignored, begin)
            break
        begin = lines.pos
        if not line.strip():
            continue
        m = _JSON_KEY.match(line) if keep is not None and not first else None
        if m is not None and m.group(1) not in keep:  # type: ignore[operator]
            kept.counted()  # another file's row, as written by us: not parsed
            continue
        try:
            kept.add(LabelRecord.from_json(line, slim))
        except (ValueError, TypeError, KeyError):
            if first:
                raise LabelingError(f"{path}: exists but is not a fashion-label journal") from None
            ignored += 1
        first = False
    return Scan(kept.records, kept.rows, ignored)


def _quotes_odd(f: BinaryIO, start: int) -> bool:
    f.seek(start)
    n = 0
    for chunk in iter(lambda: f.read(1 << 20), b""):
        n += chunk.count(b'"')
    return n % 2 == 1


def _scan_csv(path: Path, f: BinaryIO, bom: int, keep: Container[str] | None, slim: bool) -> Scan:
    first = f.readline(MAX_LINE).decode("utf-8", "surrogateescape")
    if not f.read(1):  # the header is all there is
        for header in HEADERS:
            if (",".join(header) + "\n").startswith(first):  # perhaps torn by a crash
                return Scan(cut_at=0 if not first.endswith("\n") else None, legacy=header is not FIELDS)
    header = next(csv.reader([first]), None)
    if header not in HEADERS:
        shown = ",".join(header or [])[:80]
        raise LabelingError(f"{path}: exists but is not a fashion-label journal (header {shown!r})")
    lines = _Lines(f, bom + len(first.encode("utf-8", "surrogateescape")))
    f.seek(lines.pos)
    reader = csv.reader(lines)
    kept = _Keeper()
    ignored, last_ok, last_start = 0, True, None
    while True:
        start = lines.pos
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:  # e.g. a field larger than csv's limit in a hand-edited row
            ignored, last_ok, last_start = ignored + 1, False, start
            continue
        last_start = start
        if keep is not None and row and unescape_cell(row[0]) not in keep:
            if len(row) in (len(FIELDS), len(MODEL_FIELDS), len(LEGACY_FIELDS)) and row[6] in SOURCES:
                kept.counted()  # another file's row: only its shape is checked
                last_ok = True
            else:
                ignored, last_ok = ignored + 1, False
            continue
        try:
            kept.add(LabelRecord.from_row(row, slim))
            last_ok = True
        except ValueError:
            ignored, last_ok = ignored + 1, False
    legacy = header != FIELDS
    # a last row without its newline is kept when it is a valid row (an editor saved it so; one of
    # ours torn mid-row and still valid lacks its identity or model: labelled again), else cut
    torn = not last_ok and last_start is not None and (not lines.ended or _quotes_odd(f, last_start))
    if not torn or last_start is None:
        return Scan(kept.records, kept.rows, ignored, None, legacy)
    return Scan(kept.records, kept.rows, ignored - 1, last_start, legacy)


def scan(path: str | Path, keep: Container[str] | None = None, slim: bool = False) -> Scan:
    """Read a journal as a stream (UTF-8, a BOM allowed); LabelingError if the file is not a
    journal or not a regular file. ``keep``: store only these keys' rows (others are counted);
    ``slim``: without ``top_k``. A missing journal is an empty one."""
    p = Path(path)
    try:
        os.stat(p)
    except FileNotFoundError:
        return Scan()
    except OSError as e:
        raise LabelingError(f"{p}: cannot read the journal ({e.strerror or e})") from None
    try:
        f = open_regular(p)
    except UnsafeFileError as e:
        raise LabelingError(f"{p}: cannot read the journal ({e})") from None
    try:
        with f:
            bom = 3 if f.read(3) == b"\xef\xbb\xbf" else 0
            f.seek(bom)
            if not f.read(1):
                return Scan()
            f.seek(bom)
            return _scan_jsonl(p, f, bom, keep, slim) if is_jsonl(p) else _scan_csv(p, f, bom, keep, slim)
    except OSError as e:
        raise LabelingError(f"{p}: cannot read the journal ({e.strerror or e})") from None


def open_for_writing(path: Path, flags: int) -> int:
    """A file descriptor on a journal file to write: a regular file or a new one, never a FIFO,
    a device or a file created through a symlink to a missing path (LabelingError, one line)."""
    try:
        return open_for_write(path, flags)
    except UnsafeFileError as e:
        raise LabelingError(f"{path}: cannot write the journal: {e}") from None
    except OSError as e:
        raise LabelingError(f"{path}: cannot write the journal ({e.strerror or e})") from None


def repair_journal(path: str | Path, keep: Container[str] | None = None, slim: bool = False) -> Scan:
    """Scan a journal and cut off an entry torn by a crash (only that: rows a person edited by
    hand stay in the file, ignored). Returns the scan (``keep``, ``slim``: as for ``scan``)."""
    p = Path(path)
    s = scan(p, keep, slim)
    if s.cut_at is not None:
        fd = open_for_writing(p, os.O_WRONLY)
        try:
            os.ftruncate(fd, s.cut_at)
            os.fsync(fd)
        finally:
            os.close(fd)
        s.cut_at = None
    return s


def read_labels(path: str | Path) -> dict[str, LabelRecord]:
    """{path: record} from a journal; the last row for a path wins; torn/malformed rows ignored."""
    return scan(path).records


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
    """Journal lines for ``records`` (and the header). CSV lines end in ``\\n``; a cell with a
    carriage return (a file name, a person's label) is quoted like one with a newline, so that
    every row reads back (csv quotes only the characters of its line terminator)."""
    if is_jsonl(path):
        return "".join(r.to_json() + "\n" for r in records)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(FIELDS)
    for r in records:
        row = r.to_row()
        if any("\r" in c for c in row):
            cr = io.StringIO()
            csv.writer(cr, lineterminator="\r\n").writerow(row)  # quotes every cell holding a CR
            buf.write(cr.getvalue()[:-2] + "\n")
        else:
            w.writerow(row)
    return buf.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write a whole file through a temporary name, fsync, rename (never a half file).

    LabelingError (one line) when ``path`` is a FIFO, a device, a folder or a symlink to a
    missing path.
    """
    _write_through_temp(path, lambda fd: _write_all(fd, data))


def _write_through_temp(path: Path, write: Callable[[int], None]) -> None:
    try:
        check_target(path)
    except UnsafeFileError as e:
        raise LabelingError(f"{path}: cannot replace it: {e}") from None
    target = path.resolve() if path.is_symlink() else path  # replace the file, not the link
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)  # ours (by name and pid), left by an interrupted write
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            write(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
    fsync_dir(target.parent.resolve())


def _old_header(path: Path) -> bool:
    """Does this CSV start with the header of an older version? (reads its first line only)"""
    try:
        with open_regular(path) as f:
            first = f.readline(4096)
    except UnsafeFileError as e:
        raise LabelingError(f"{path}: cannot read the journal ({e})") from None
    line = first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    return line in (",".join(MODEL_FIELDS).encode(), ",".join(LEGACY_FIELDS).encode())


def _upgrade_header(path: Path) -> None:
    """Give an older CSV journal the current header; its rows are copied as they are (streamed)."""

    def write(fd: int) -> None:
        with open_regular(path) as f:
            bom = f.read(3)
            if bom != b"\xef\xbb\xbf":
                bom = b""
            f.seek(len(bom))
            while (part := f.readline(MAX_LINE)) and not part.endswith(b"\n"):
                pass  # the old header line
            _write_all(fd, bom + (",".join(FIELDS) + "\n").encode())
            for chunk in iter(lambda: f.read(1 << 20), b""):
                _write_all(fd, chunk)

    try:
        _write_through_temp(path, write)
    except UnsafeFileError as e:
        raise LabelingError(f"{path}: cannot read the journal ({e})") from None


def _last_byte(path: Path) -> bytes:
    """The last byte of a journal (b"" when empty)."""
    try:
        with open_regular(path) as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return b""
            f.seek(-1, os.SEEK_END)
            return f.read(1)
    except UnsafeFileError as e:
        raise LabelingError(f"{path}: cannot read the journal ({e})") from None


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
        if not new and not is_jsonl(self.path) and _old_header(self.path):
            _upgrade_header(self.path)
        unterminated = not new and _last_byte(self.path) not in (b"\n", b"")
        self._fd = open_for_writing(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        if unterminated:  # a last row an editor saved without its newline: ours start on a new line
            _write_all(self._fd, b"\n")
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
