"""Files written whole or not at all; JSON and safetensors read without trusting them.

``atomic_path`` is the one atomic write of the project: a temp file in the same folder, then
``os.replace``, so a reader (another process, a crash, a full disk) never sees half a file. Every
other writer here (bytes, JSON, safetensors, ``np.savez``, downloads) goes through it.

Every read treats the file as hostile (a run folder can be copied in by hand or unzipped): only a regular file
is read (a symbolic link is never followed, a pipe or device never opened for long), and never more than a cap
(``MAX_JSON``, ``MAX_JSONL``, ``MAX_TENSORS``); a write never replaces what is not a regular file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

if TYPE_CHECKING:
    import torch

from .guard import MAX_JSON, MAX_JSONL, MAX_TENSORS, UnsafeFile, _where, read_bytes, regular_file


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``path``; on a clean exit it replaces ``path``, on an error it is removed.
    What stands at ``path`` must be a regular file or nothing: a link, device or pipe is never replaced."""
    path = Path(path)
    try:
        regular_file(path)
    except UnsafeFile:
        raise UnsafeFile(f"{path} is not a regular file (a link, folder, pipe or device): nothing was written to it, "
                         "and it was left as it is.") from None  # fmt: skip
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as e:  # named after the file asked for, not the hidden temp file
        raise OSError(e.errno, e.strerror, str(path)) from None
    os.close(fd)
    try:
        yield Path(tmp)
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | Path, default: Any = None) -> Any:
    """Parsed JSON, or ``default`` when the file is missing, unreadable, not a regular file or too large."""
    try:
        return json.loads(read_bytes(path, MAX_JSON))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested ten thousand deep
        return default


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one JSON line in a single write (O_APPEND), so readers never see half a record."""
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFile(f"{_where(Path(path))} is not a regular file; nothing was written to it.")
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: str | Path) -> list[dict]:
    """Every complete JSON line of ``path`` (a torn or corrupt line is skipped)."""
    out = []
    try:
        lines = read_bytes(path, MAX_JSONL).decode("utf-8").splitlines()
    except (OSError, ValueError):  # missing, not a regular file, too large, not text
        return []
    for line in lines:
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def save_file(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str] | None = None) -> None:
    """safetensors' own writer, imported at the first use: it loads torch, which a process writing only maps (the map
    worker) never needs."""
    from safetensors.torch import save_file as save

    save(tensors, filename, metadata=metadata)


def load_file(filename: str | Path) -> dict[str, torch.Tensor]:
    """safetensors' own reader, imported at the first use (as ``save_file``)."""
    from safetensors.torch import load_file as load

    return load(filename)


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomic safetensors write (contiguous CPU copies)."""
    with atomic_path(path) as tmp:
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        except SafetensorError as e:  # a full disk comes back as "IoError(Os { code: 28, ... })": an OSError here
            code = re.search(r"code: (\d+)", str(e))
            number = int(code.group(1)) if code else errno.EIO
            raise OSError(number, os.strerror(number), str(path)) from None


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; a missing, truncated or foreign file raises a clear error."""
    path = Path(path)
    if regular_file(path, MAX_TENSORS) is None:
        raise FileNotFoundError(f"{path} does not exist.")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path.name} in {path.parent.name} is truncated or not a safetensors file ({e}).") from e


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    regular_file(path, MAX_TENSORS)
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{Path(path).name} is truncated or not a safetensors file ({e}).") from e
