"""Copy or move labelled files into class folders: atomic, verified, never overwriting or deleting.

Every file reaches its final name whole or not at all. A copy is written to a dot-prefixed
temporary name in the target folder (``.fashion-tmp-<pid>-<token>``), fsync'ed, checked
(size; SHA-256 too when it replaces a move across file systems) and then hard-linked to a free
final name (the link fails instead of overwriting; where a file system has no hard links a
checked ``os.rename`` is used). A move on one file system is a hard link of the source itself.
The source is removed only after that, never because an identical file already sits in the
class folder: two identical photos are kept as ``name.jpg`` and ``name (1).jpg``. Temporary
files of a run that died are removed on the next run. Names are shortened to fit 255 bytes
with their `` (n)`` suffix.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from fashion_edge.runtime.journal import LabelingError, fsync_dir

TMP_PREFIX = ".fashion-tmp-"
MAX_NAME_BYTES = 255
SUFFIX_ROOM = len(" (99999)")
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
NO_LINK = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class PlacementError(LabelingError):
    """A file could not be copied or moved (disk full, read-only target...); one line."""


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


def _shorten(text: str, max_bytes: int) -> str:
    raw = os.fsencode(text)
    if len(raw) <= max_bytes:
        return text
    cut = raw[:max_bytes]
    while cut and (cut[-1] & 0xC0) == 0x80:  # do not split a UTF-8 sequence
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:
        cut = cut[:-1]
    return os.fsdecode(cut)


def candidates(folder: Path, name: str) -> Iterator[Path]:
    """``name``, ``name (1)``, ``name (2)``... each shortened so that it fits 255 bytes."""
    stem, suffix = os.path.splitext(name)
    suffix = suffix if len(os.fsencode(suffix)) <= 16 else ""
    if len(os.fsencode(name)) <= MAX_NAME_BYTES:
        yield folder / name
    else:
        yield folder / f"{_shorten(stem, MAX_NAME_BYTES - len(os.fsencode(suffix)))}{suffix}"
    stem = _shorten(stem, MAX_NAME_BYTES - SUFFIX_ROOM - len(os.fsencode(suffix)))
    n = 1
    while True:
        yield folder / f"{stem} ({n}){suffix}"
        n += 1


def clean_leftovers(folder: Path) -> int:
    """Remove temporary files of runs that are no longer alive; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        if not e.name.startswith(TMP_PREFIX):
            continue
        try:
            pid = int(e.name[len(TMP_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            try:
                os.unlink(e.path)
                removed += 1
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _samefile(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_bytes(src: Path, dst_fd: int) -> None:
    """Copy src into an open file (a seam for tests that simulate a full disk)."""
    with open(src, "rb") as fi, os.fdopen(os.dup(dst_fd), "wb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)
        fo.flush()


def _write_temp(src: Path, folder: Path, verify_hash: bool) -> Path:
    tmp = folder / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        copy_bytes(src, fd)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        shutil.copystat(src, tmp)
        if tmp.stat().st_size != src.stat().st_size or (verify_hash and _sha256(tmp) != _sha256(src)):
            raise OSError(errno.EIO, "copy does not match its source")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _link_free_name(source: Path, folder: Path, name: str) -> Path:
    """Give ``source`` the first free candidate name in ``folder`` without overwriting anything."""
    for dst in candidates(folder, name):
        if os.path.lexists(dst):
            continue
        try:
            os.link(source, dst)
            return dst
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno not in NO_LINK:
                raise
            if os.path.lexists(dst):  # no hard links here: a checked rename (tiny race window)
                continue
            os.rename(source, dst)
            return dst
    raise AssertionError("unreachable")


def place(src: Path, folder: Path, move: bool = False) -> Path:
    """Copy (or move) ``src`` into ``folder`` under a free name; returns the final path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        size = src.stat().st_size
        if move:
            for dst in candidates(folder, src.name):  # linked by a run killed before the unlink
                if not os.path.lexists(dst):
                    break
                if _samefile(src, dst):
                    src.unlink()
                    fsync_dir(src.parent)
                    return dst
            try:
                dst = _link_free_name(src, folder, src.name)
            except OSError as e:
                if e.errno not in NO_LINK:
                    raise
            else:
                if _samefile(src, dst):
                    fsync_dir(folder)
                    src.unlink()
                    fsync_dir(src.parent)
                return dst
        tmp = _write_temp(src, folder, verify_hash=move)
        try:
            dst = _link_free_name(tmp, folder, src.name)
        finally:
            if tmp.exists():
                tmp.unlink()
        fsync_dir(folder)
        if dst.stat().st_size != size:
            raise OSError(errno.EIO, f"{dst}: size differs from its source after the copy")
        if move:
            src.unlink()
            fsync_dir(src.parent)
        return dst
    except PlacementError:
        raise
    except OSError as e:
        where = e.filename or folder
        raise PlacementError(
            f"{where}: cannot {'move' if move else 'copy'} {src.name} ({e.strerror or e})"
        ) from None


def already_copied(src: Path, folder: Path) -> Path | None:
    """An earlier copy of ``src`` in ``folder``: a candidate name with the same bytes."""
    try:
        size = src.stat().st_size
    except OSError:
        return None
    for dst in candidates(folder, src.name):
        if not os.path.lexists(dst):
            return None
        try:
            if dst.stat().st_size == size and _same_bytes(src, dst):
                return dst
        except OSError:
            continue
    return None


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def place_all(
    pairs: Iterable[tuple[Path, Path]], move: bool, cleaned: set[Path], fresh: bool = False
) -> list[tuple[Path, Path]]:
    """Place (source, target folder) pairs; leftovers are cleaned once per folder (``cleaned``).

    A copy is skipped when the folder already holds the same bytes under the file's name (made by
    an earlier run), unless ``fresh`` (files labelled just now: an identical file there is a twin,
    and is kept as ``name (1)``).
    """
    done = []
    for src, folder in pairs:
        if folder not in cleaned:
            clean_leftovers(folder)
            cleaned.add(folder)
        if not move and not fresh:
            prior = already_copied(src, folder)
            if prior is not None:
                done.append((src, prior))
                continue
        done.append((src, place(src, folder, move)))
    return done
