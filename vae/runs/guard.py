"""What a run folder may hold, checked without following links: regular files of bounded size, real folders.

A run folder is untrusted (copied in by hand, unzipped, or planted): a file in it may be a symbolic link to a
secret, a pipe that blocks a reader for ever, a device, or gigabytes. Every read goes through ``read_bytes`` or
``regular_file`` (the name itself is checked with ``lstat`` and opened with ``O_NOFOLLOW | O_NONBLOCK``), every
folder written into through ``real_folder``. Standard library only: the map worker and app.py's first lines
use it before torch loads.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_JSON = 4 * 2**20  # bytes: config, status, control, evaluation (each a few kB)
MAX_JSONL = 256 * 2**20  # metrics.jsonl (a line per 50 steps and per epoch: a few MB for long runs)
MAX_TENSORS = 8 * 2**30  # a safetensors file: weights or resume state
MAX_PICTURE = 64 * 2**20  # a PNG the app shows
MAX_LOG = 2**40  # the training's log: only its tail is ever read, so any size
MAX_PIXELS = 4096 * 4096  # its width × height


class UnsafeFile(ValueError):
    """A file that is a link, a pipe, a device or a folder where a regular file was expected, or too large."""


def _where(path: Path) -> str:
    return f"{path.name} in {path.parent.name}" if path.parent.name else path.name


def regular_file(path: str | Path, cap: int | None = None) -> os.stat_result | None:
    """The file's status when ``path`` is a regular file (not a link) of at most ``cap`` bytes; None when it does
    not exist; ``UnsafeFile`` with a sentence otherwise. Checks the name itself, never what a link points to."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UnsafeFile(f"{_where(path)} cannot be read ({e.strerror}).") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFile(f"{_where(path)} is a symbolic link; links are never followed here.")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(f"{_where(path)} is not a regular file (a folder, pipe or device); it is not read.")
    if cap is not None and st.st_size > cap:
        raise UnsafeFile(f"{_where(path)} is {st.st_size / 2**20:,.0f} MB, more than such a file can hold "
                         f"({cap / 2**20:,.0f} MB); it is not read.")  # fmt: skip
    return st


def real_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder itself (not a link to one); ``UnsafeFile`` if it is a link or a file."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeFile(f"{_where(path)} is {'a symbolic link' if stat.S_ISLNK(st.st_mode) else 'not a folder'}; "
                         "it is never followed or written into.")  # fmt: skip
    return True


def read_bytes(path: str | Path, cap: int, part: int | None = None, from_end: bool = False) -> bytes:
    """The bytes of a regular file of at most ``cap`` bytes, opened without following a link or waiting on a pipe
    (``FileNotFoundError`` when missing, ``UnsafeFile`` for anything else); with ``part``, only its first (or, with
    ``from_end``, its last) ``part`` bytes."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise FileNotFoundError(f"{_where(path)} does not exist.") from None
        if e.errno == errno.ELOOP:
            raise UnsafeFile(f"{_where(path)} is a symbolic link; links are never followed here.") from None
        raise UnsafeFile(f"{_where(path)} cannot be read ({e.strerror}).") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{_where(path)} is not a regular file (a folder, pipe or device); it is not read.")
        if st.st_size > cap:
            regular_file(path, cap)  # the sentence
        with os.fdopen(os.dup(fd), "rb") as f:
            if part is not None:
                f.seek(max(0, st.st_size - part) if from_end else 0)
                return f.read(part)
            data = f.read(cap + 1)
        if len(data) > cap:
            raise UnsafeFile(f"{_where(path)} grew past {cap / 2**20:,.0f} MB while read; it is not read.")
        return data
    finally:
        os.close(fd)
