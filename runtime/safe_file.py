"""Open the files the tool reads and replaces safely: the one rule for every path a user hands us.

Every file ``fashion-label``, the app and the runtime read (images, journals and their sidecars,
models, adapters, learn-from photos) goes through ``open_regular`` / ``read_bounded``:

- only regular files (symlinks followed): FIFOs, devices, sockets and folders are refused before
  they are opened, the open is non-blocking and ``fstat`` checks the opened file again, so a FIFO
  swapped in between cannot block and ``/dev/zero`` cannot be read;
- at most ``max_bytes``: the size is checked before reading, and a file that grows while it is read
  is refused instead of filling memory.

``check_target`` is the matching rule for files the tool writes or replaces: a device, a FIFO, a
folder or a symlink to a missing path is refused, never created or written through.
Errors are ``UnsafeFileError`` with a one-line reason that does not repeat the path: callers name it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class UnsafeFileError(ValueError):
    """A path that is not a readable regular file of a sane size; the message is one line."""


def kind(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO", "a character device", ...)."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def _refusal(mode: int) -> str:
    return "is a folder" if stat.S_ISDIR(mode) else f"not a regular file ({kind(mode)})"


def _size_text(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n:,} bytes"


def open_regular(path: str | Path, max_bytes: int | None = None) -> BinaryIO:
    """A binary file object on a regular file, opened without blocking; UnsafeFileError otherwise.

    With ``max_bytes`` a file larger than that is refused before anything is read.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(_refusal(st.st_mode))
        fd = os.open(path, _OPEN_FLAGS)
    except PermissionError:
        raise UnsafeFileError("permission denied") from None
    except FileNotFoundError:
        raise UnsafeFileError("file not found") from None
    except IsADirectoryError:
        raise UnsafeFileError("is a folder") from None
    except OSError as e:
        raise UnsafeFileError(f"cannot read file ({e.strerror or e})") from None
    try:
        st = _checked_regular(fd)
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafeFileError(f"file too large ({_size_text(st.st_size)}, limit {_size_text(max_bytes)})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _checked_regular(fd: int) -> os.stat_result:
    """``fstat`` of a descriptor opened without blocking: UnsafeFileError unless it is a regular
    file (a FIFO or device swapped in after the path was checked); then blocking I/O as usual."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(_refusal(st.st_mode))
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return st


def open_for_write(path: str | Path, flags: int) -> int:
    """A descriptor to write ``path`` (``flags``: e.g. ``O_WRONLY | O_APPEND | O_CREAT``): only a
    regular file or a new one (``check_target``), opened without blocking and checked again;
    UnsafeFileError for what ``check_target`` refuses, OSError from the open itself."""
    check_target(path)
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        _checked_regular(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(
    path: str | Path,
    max_bytes: int,
    head: Callable[[bytes], None] | None = None,
    head_bytes: int = 64 * 2**10,
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; UnsafeFileError otherwise.

    ``head``: a check (raising its own error) run on the first ``head_bytes`` of a file larger
    than that before the rest is read, so that a large file of the wrong kind costs one small read.
    """
    f = open_regular(path, max_bytes)
    try:
        with f:
            size = os.fstat(f.fileno()).st_size
            if head is not None and size > head_bytes:
                data = f.read(head_bytes)
                head(data)
                data += f.read(size + 1 - len(data))
            else:
                data = f.read(size + 1)  # never a max_bytes buffer for a small file
            if len(data) > size:  # it grew since fstat
                data += f.read(max_bytes + 1 - len(data))
    except OSError as e:
        raise UnsafeFileError(f"cannot read file ({e.strerror or e})") from None
    if len(data) > max_bytes:
        raise UnsafeFileError(f"file too large (more than {_size_text(max_bytes)})")
    return data


def check_target(path: str | Path) -> None:
    """Refuse a path the tool would create or replace if it is not a regular file or a free name.

    A missing path is fine (it will be created), and so is an existing regular file (symlinks to one
    followed). A folder, FIFO, device or socket, or a symlink whose target is missing (writing would
    create a file somewhere else), raises UnsafeFileError.
    """
    p = Path(path)
    try:
        lst = os.lstat(p)
    except FileNotFoundError:
        return
    except OSError as e:
        raise UnsafeFileError(f"cannot check ({e.strerror or e})") from None
    if stat.S_ISLNK(lst.st_mode):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise UnsafeFileError(
                "is a symlink to a missing path (refusing to create a file through it)"
            ) from None
        except OSError as e:
            raise UnsafeFileError(f"cannot follow symlink ({e.strerror or e})") from None
    else:
        st = lst
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(_refusal(st.st_mode))
