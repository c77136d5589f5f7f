"""Copy or move labelled files into class folders: atomic, verified, never overwriting or deleting.

The rule: **a file is never removed unless its bytes are verified somewhere else that is not
itself.** A source is unlinked only after its bytes are at a new directory entry in another
folder: either a hard link we made there (``os.link``: the same inode under a second name, the
cheap move), or a copy checked against the source (size, and SHA-256 when it replaces the
source). "Somewhere else" is checked with ``lstat``, never through a symlink: a symlink in the
class folder, or the source's own directory entry, never counts as a place the bytes are kept,
and ``os.path.samefile`` (which follows links) is not used at all.

- A file already in its class folder (re-sorting ``sorted/needs_review`` into ``sorted``, or a
  class folder that is a symlink back to the source folder) stays where it is: nothing is copied,
  linked or removed.
- A symlink among the sources is never hard-linked (that would link the link itself, dangling
  when relative): its target's bytes are copied and checked; ``--move`` then removes the link,
  never its target.
- A move whose source cannot be removed (read-only folder) is refused before anything is copied;
  if the unlink still fails, the copy just made is removed again, so reruns never add copies.
- A copy made by an earlier run is recognised (a regular file, not a link to the source, with
  the same bytes under the file's name) and not made again, except for files labelled in this
  run: two identical photos are kept as ``name.jpg`` and ``name (1).jpg``. A hard link found
  under the file's name in the class folder counts as a move finished by a killed run.
- Two different labels never share a folder: ``class_folders`` refuses labels that sanitise to
  the same name (compared case-insensitively, as on macOS/Windows) or to ``needs_review``.

Every file reaches its final name whole or not at all. A copy is written to a dot-prefixed
temporary name in the target folder (``.fashion-tmp-<pid>-<token>``), fsync'ed, checked and then
hard-linked to a free final name (the link fails instead of overwriting; where a file system has
no hard links, e.g. FAT or exFAT, the name is reserved with an empty file made with ``O_EXCL`` and
the file renamed onto that reservation, so two runs never replace each other's files; a kill
between the two leaves that empty file). A moved source that changed after its copy was checked
(a writer still appending) is kept, and the copy removed. Temporary files of a run that died are
removed on the next run. Names are shortened to fit 255 bytes with their `` (n)`` suffix.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fashion_edge.runtime.journal import LabelingError, fsync_dir
from fashion_edge.runtime.safe_file import UnsafeFileError, open_regular

TMP_PREFIX = ".fashion-tmp-"
MAX_NAME_BYTES = 255
SUFFIX_ROOM = len(" (99999)")
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
NO_LINK = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}
REVIEW_FOLDER = "needs_review"
_TMP_NAME = re.compile(re.escape(TMP_PREFIX) + r"(\d{1,10})-[0-9a-f]{8}")


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


def _folder_key(name: str) -> str:
    """Names a case-insensitive or normalising file system (macOS, Windows) treats as one."""
    return unicodedata.normalize("NFC", name).casefold()


def class_folders(labels: Iterable[str]) -> dict[str, str]:
    """{label: folder name} for sorting; PlacementError (one line) when two labels would share a
    folder after sanitising (``Watches`` and ``Watches.``; ``Bags`` and ``bags``) or a label would
    land in the review folder (``needs_review.``)."""
    folders: dict[str, str] = {}
    owner = {_folder_key(REVIEW_FOLDER): None}
    for label in dict.fromkeys(labels):
        name = sanitize_folder_name(label)
        key = _folder_key(name)
        if key in owner:
            other = owner[key]
            whose = "the review pile" if other is None else repr(other)
            raise PlacementError(
                f"labels {label!r} and {whose} would share the folder {name!r}: "
                "rename one of them (e.g. in the adapter) to sort"
            )
        owner[key] = label
        folders[label] = name
    return folders


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
        m = _TMP_NAME.fullmatch(e.name)  # exactly the names _write_temp makes, plain files only
        if m is None or not e.is_file(follow_symlinks=False):
            continue
        pid = int(m.group(1))
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


def _open_source(path: Path) -> BinaryIO:
    """A file placement reads (a source, a copy), through the one safe-open helper: a FIFO or
    device swapped in after the checks is refused (OSError) instead of blocking the run."""
    try:
        return open_regular(path)
    except UnsafeFileError as e:
        raise OSError(errno.EINVAL, str(e), str(path)) from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with _open_source(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _inode(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def same_folder(a: Path, b: Path) -> bool:
    """Are two paths the same folder (through symlinks too)? False when either is missing."""
    try:
        return _inode(os.stat(a)) == _inode(os.stat(b))
    except OSError:
        return False


def copy_bytes(src: Path, dst_fd: int) -> None:
    """Copy src into an open file (a seam for tests that simulate a full disk)."""
    with _open_source(src) as fi, os.fdopen(os.dup(dst_fd), "wb") as fo:
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
            if e.errno not in NO_LINK or e.errno == errno.EXDEV:
                raise
            if _rename_onto_reserved(source, dst):  # no hard links on this file system
                return dst
    raise AssertionError("unreachable")


def _rename_onto_reserved(source: Path, dst: Path) -> bool:
    """Rename ``source`` to ``dst`` without replacing anything: the name is first reserved with
    an empty file (``O_EXCL``: fails if taken, also by another run at the same moment), then the
    rename replaces only that reservation. False when the name is taken."""
    try:
        os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        return False
    try:
        os.rename(source, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            if os.lstat(dst).st_size == 0:  # still our empty reservation
                os.unlink(dst)
        raise
    return True


@dataclass(frozen=True)
class Placement:
    """Where a file ended up; ``made`` is False when nothing was copied or moved (it was already
    in its folder, or an earlier run's copy was found)."""

    src: Path
    dst: Path
    made: bool


def _unlink_source(
    src: Path, dst: Path, folder: Path, made_from: os.stat_result | None, copied: bool = False
) -> None:
    """Remove ``src`` now that its bytes are at ``dst``. If that fails, remove ``dst`` again when
    this call made it (``made_from``: the source's ``lstat`` then) and the source is still that
    entry, holding the bytes, so that a rerun finds no duplicate. A source gone meanwhile (another
    run on the same folder moved it, perhaps trusting ``dst`` as a killed run's link) or replaced
    by another file keeps ``dst``: it may be the only place of the bytes. A ``copied`` source
    (not a link of ``dst``) that changed since ``made_from`` (a writer appended to it after the
    copy was checked) is not removed: the copy is, and the error says to run again."""
    fsync_dir(folder)
    try:
        if copied and made_from is not None and not _unchanged(src, made_from):
            raise OSError(errno.EAGAIN, "it changed while it was copied; run again to move it", str(src))
        src.unlink()
    except FileNotFoundError:  # moved by another run meanwhile: the bytes are at dst
        return
    except OSError:
        if made_from is not None and _same_entry(src, made_from):
            dst.unlink(missing_ok=True)
        raise
    fsync_dir(src.parent)


def _unchanged(path: Path, then: os.stat_result) -> bool:
    """Is ``path`` still the entry ``then`` was taken of, with the same size and time?"""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    return _inode(now) == _inode(then) and (now.st_size, now.st_mtime_ns) == (then.st_size, then.st_mtime_ns)


def _same_entry(path: Path, then: os.stat_result) -> bool:
    """Is ``path`` still the directory entry ``then`` was taken of (same inode, not a new file)?"""
    try:
        return _inode(os.lstat(path)) == _inode(then)
    except OSError:
        return False


def _check_removable(src: Path) -> None:
    if not os.access(src.parent, os.W_OK):
        raise OSError(errno.EACCES, "its folder is read-only; use --copy", str(src))


def _moved_by_killed_run(src_st: os.stat_result, folder: Path, name: str) -> Path | None:
    """A hard link of the source under the file's name in ``folder``: a move whose unlink a kill
    interrupted. Only a regular file (not a symlink) with the source's inode counts."""
    for dst in candidates(folder, name):
        try:
            st = os.lstat(dst)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(st.st_mode) and _inode(st) == _inode(src_st):
            return dst
    return None


def place(src: Path, folder: Path, move: bool = False) -> Path:
    """Copy (or move) ``src`` into ``folder`` under a free name; returns the final path
    (``src`` itself when it already is in ``folder``)."""
    placed = _place(src, folder, move)
    if placed is None:
        raise PlacementError(f"{src}: cannot {'move' if move else 'copy'} it (file not found)")
    return placed.dst


def _place(src: Path, folder: Path, move: bool, in_place: bool | None = None) -> Placement | None:
    """None when ``src`` is gone (moved away by a person or another run since it was listed).
    ``in_place``: whether ``src`` already sits in ``folder`` (``same_folder``), when the caller knows."""
    try:
        if in_place is None:
            in_place = same_folder(src.parent, folder)
        folder.mkdir(parents=True, exist_ok=True)
        if in_place:  # already sorted: leave it where it is
            return Placement(src, src, False)
        try:
            lst = os.lstat(src)
        except FileNotFoundError:
            return None
        is_link = stat.S_ISLNK(lst.st_mode)
        st = os.stat(src) if is_link else lst
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(src))
        if move:
            _check_removable(src)
        if move and not is_link:
            done = _moved_by_killed_run(lst, folder, src.name)
            if done is not None:
                _unlink_source(src, done, folder, None)
                return Placement(src, done, True)
            try:
                dst = _link_free_name(src, folder, src.name)
            except OSError as e:
                if e.errno not in NO_LINK:
                    raise
            else:
                if os.path.lexists(src):  # linked (not renamed): the same inode, a new entry
                    new = os.lstat(dst)
                    if not (stat.S_ISREG(new.st_mode) and _inode(new) == _inode(lst)):
                        raise OSError(errno.EIO, "the new link is not the source", str(dst))
                    _unlink_source(src, dst, folder, lst)
                else:
                    fsync_dir(folder)
                    fsync_dir(src.parent)
                return Placement(src, dst, True)
        tmp = _write_temp(src, folder, verify_hash=move)
        try:
            dst = _link_free_name(tmp, folder, src.name)
        finally:
            if tmp.exists():
                tmp.unlink()
        fsync_dir(folder)
        new = os.lstat(dst)
        if not stat.S_ISREG(new.st_mode) or new.st_size != st.st_size or _inode(new) == _inode(st):
            raise OSError(errno.EIO, "the copy differs from its source", str(dst))
        if move:
            _unlink_source(src, dst, folder, lst, copied=True)
        return Placement(src, dst, True)
    except PlacementError:
        raise
    except OSError as e:
        where = e.filename or folder
        raise PlacementError(
            f"{where}: cannot {'move' if move else 'copy'} {src.name} ({e.strerror or e})"
        ) from None


def already_copied(src: Path, folder: Path) -> Path | None:
    """An earlier copy of ``src`` in ``folder``: a regular file under a candidate name (not a
    symlink, not the source's own inode) with the same bytes."""
    try:
        st = os.stat(src)
    except OSError:
        return None
    for dst in candidates(folder, src.name):
        try:
            d = os.lstat(dst)
        except FileNotFoundError:
            return None
        except OSError:
            continue
        if not stat.S_ISREG(d.st_mode) or d.st_size != st.st_size or _inode(d) == _inode(st):
            continue
        try:
            if _same_bytes(src, dst):
                return dst
        except OSError:
            continue
    return None


def _earlier_copy(src: Path, folder: Path, move: bool) -> Path | None:
    """An earlier run's copy of ``src`` in ``folder`` (``already_copied``). With ``move`` only a
    copy with the source's modification time counts (copies keep it; a twin from another folder
    is moved beside it), and the source is then removed, unless it changed while it was compared
    (PlacementError, one line)."""
    try:
        then = os.lstat(src)
    except OSError:
        return None
    prior = already_copied(src, folder)
    if prior is None or not move:
        return prior
    try:  # a copy keeps the source's time (copystat); an identical twin from elsewhere is kept
        if os.stat(prior).st_mtime_ns != os.stat(src).st_mtime_ns:
            return None
    except OSError:
        return None
    try:
        _check_removable(src)
        if not _unchanged(src, then):
            raise OSError(errno.EAGAIN, "it changed while it was compared; run again to move it", str(src))
        _unlink_source(src, prior, folder, None)
    except OSError as e:
        raise PlacementError(f"{e.filename or src}: cannot move {src.name} ({e.strerror or e})") from None
    return prior


def _same_bytes(a: Path, b: Path) -> bool:
    with _open_source(a) as fa, _open_source(b) as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def place_all(
    pairs: Iterable[tuple[Path, Path]], move: bool, cleaned: set[Path], fresh: bool = False
) -> list[Placement]:
    """Place (source, target folder) pairs; leftovers are cleaned once per folder (``cleaned``).

    A copy is skipped when the folder already holds the same bytes under the file's name (made by
    an earlier run), unless ``fresh`` (files labelled just now: an identical file there is a twin,
    and is kept as ``name (1)``); a move then only removes the source, whose bytes that copy holds
    (``--copy`` first, ``--move`` later, leaves one file). A file already in its target folder
    stays as it is; one gone since it was listed (moved away meanwhile) is passed over.
    """
    done = []
    for src, folder in pairs:
        if folder not in cleaned:
            clean_leftovers(folder)
            cleaned.add(folder)
        in_place = same_folder(src.parent, folder)
        if not fresh and not in_place:
            prior = _earlier_copy(src, folder, move)
            if prior is not None:  # (a move is made by removing the source: counted as moved)
                done.append(Placement(src, prior, move))
                continue
        placed = _place(src, folder, move, in_place)
        if placed is not None:
            done.append(placed)
    return done
