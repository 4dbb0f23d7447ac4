"""Where a run's data may come from: the built-in datasets at their own places, or users' files kept in
the runs folder's uploads.

A run's ``config.json`` names its data, and that file is untrusted: it may come from a run .zip or a
folder copied in by hand. So a run's data config is checked before anything is read (``checked``):
a path or root anywhere else on the disk is refused with a sentence. Users' files live in
``<runs>/_uploads/`` under a name that holds a hash of their content (``store_upload``, ``adopt``),
and a run stores that path relative to the runs folder (``stored_form``), so a run zip taken to
another machine finds the same file once the user uploads it there.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path, PurePath

from ..config import DataConfig
from ..runs.fileio import atomic_write_bytes
from ..runs.guard import real_folder, regular_file
from .base import MAX_FILE_BYTES
from .idx import IDX_ENV, _idx_candidates
from .registry import DATASETS

UPLOADS = "_uploads"


def uploads_dir(runs_root: str | Path) -> Path:
    """The folder of users' data files under ``runs_root`` (it is never listed as a run)."""
    return Path(runs_root) / UPLOADS


def _stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", PurePath(name).stem).strip("-.")[:40]
    return stem or "upload"


def store_upload(runs_root: str | Path, filename: str, data: bytes) -> Path:
    """Keep an uploaded file's bytes in the uploads folder, named by its content; the same bytes give the same path."""
    suffix = PurePath(filename).suffix.lower()
    path = uploads_dir(runs_root) / f"{_stem(filename)}-{hashlib.sha256(data).hexdigest()[:10]}{suffix}"
    if not real_folder(path.parent):  # UnsafeFile when a link or a file stands there: never written through
        path.parent.mkdir(parents=True, exist_ok=True)
    if regular_file(path) is None:
        atomic_write_bytes(path, data)
    return path


def _folder_digest(folder: Path) -> str:
    """A hash of a folder's relative file names and contents (at most ``MAX_FILE_BYTES`` in all)."""
    h, total = hashlib.sha256(), 0
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        total += p.stat().st_size
        if total > MAX_FILE_BYTES:
            raise ValueError(f"{folder} holds more than {MAX_FILE_BYTES:,} bytes; use a smaller folder.")
        h.update(p.relative_to(folder).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:10]


def _copy_in(runs_root: Path, source: Path) -> Path:
    """A copy of a user's file or folder in the uploads folder (kept if already there)."""
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist; expected a data file or folder.")
    if source.is_file():
        if source.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"{source} is {source.stat().st_size:,} bytes, over the {MAX_FILE_BYTES:,} allowed.")
        return store_upload(runs_root, source.name, source.read_bytes())
    target = uploads_dir(runs_root) / f"{_stem(source.name + '.d')}-{_folder_digest(source)}"
    if not target.is_dir():
        if not real_folder(target.parent):
            target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".copy-"))  # whole or not at all
        try:
            shutil.copytree(source, staging / "d", symlinks=False)
            os.replace(staging / "d", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _standard_idx_places(name: str) -> list[Path]:
    return [p.resolve() for p in _idx_candidates(name, None)]


def adopt(cfg: DataConfig, runs_root: str | Path) -> DataConfig:
    """The config a new run may keep: a user's file or IDX folder elsewhere is first copied into the uploads."""
    runs_root = Path(runs_root)
    if cfg.root and cfg.name not in IDX_ENV:
        cfg = replace(cfg, root=None)  # only IDX datasets read a root; the others never looked at it
    if cfg.name == "file" and cfg.path and _inside_uploads(cfg.path, runs_root) is None:
        cfg = replace(cfg, path=str(_copy_in(runs_root, Path(cfg.path).expanduser())))
    if cfg.root and cfg.name in IDX_ENV and _idx_root(cfg, runs_root) is None:
        cfg = replace(cfg, root=str(_copy_in(runs_root, Path(cfg.root).expanduser())))
    return cfg


def _inside_uploads(path: str, runs_root: Path) -> Path | None:
    """``path`` (relative to the runs folder, or absolute) resolved, if it lies strictly inside the uploads."""
    p = Path(path)
    if not p.is_absolute():
        p = runs_root / p
    if Path(uploads_dir(runs_root)).is_symlink():  # a link planted as _uploads would let a config name any file
        return None
    resolved, uploads = p.resolve(), uploads_dir(runs_root).resolve()
    return resolved if resolved != uploads and resolved.is_relative_to(uploads) else None


def _idx_root(cfg: DataConfig, runs_root: Path) -> Path | None:
    inside = _inside_uploads(cfg.root, runs_root)
    if inside is not None:
        return inside
    resolved = Path(cfg.root).expanduser().resolve()
    return resolved if resolved in _standard_idx_places(cfg.name) else None


def checked(cfg: DataConfig, runs_root: str | Path) -> DataConfig:
    """``cfg`` with its upload paths made absolute, if a run may read that data; a sentence otherwise.

    Raises ``ValueError`` for data a run may not name (an unknown dataset, a path outside the uploads,
    an IDX root outside the dataset's own places) and ``FileNotFoundError`` for an upload that is not on
    this machine, saying how to supply it.
    """
    runs_root = Path(runs_root)
    where = f"{UPLOADS}/ in the runs folder"
    if cfg.name not in DATASETS or cfg.name == "file" and not cfg.path:
        raise ValueError(f"The run names an unknown dataset {cfg.name!r}; known datasets are {', '.join(DATASETS)}.")
    if cfg.name != "file" and cfg.path:
        raise ValueError(f"The run gives a file path for the built-in dataset {cfg.name!r}; built-in data has none.")
    if cfg.root and cfg.name not in IDX_ENV:
        raise ValueError(f"The run gives a data folder for {cfg.name!r}, which is not read from files.")
    if cfg.root:
        root = _idx_root(cfg, runs_root)
        if root is None:
            raise ValueError(
                f"The run reads {cfg.name} from {cfg.root!r}, outside its own places and {where}; "
                "a run may only read built-in datasets and files uploaded to this app."
            )
        cfg = replace(cfg, root=str(root))
    if cfg.name == "file":
        path = _inside_uploads(cfg.path, runs_root)
        if path is None:
            raise ValueError(
                f"The run reads its data from {cfg.path!r}, outside {where}; "
                "a run may only read built-in datasets and files uploaded to this app."
            )
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: this run was trained on {path.name}, which is not on this machine. "
                f"Upload that file on the Train page (the same file gets the same name), or copy it to {path}."
            )
        cfg = replace(cfg, path=str(path))
    return cfg


def stored_form(cfg: DataConfig, runs_root: str | Path) -> DataConfig:
    """The config as a run folder keeps it: upload paths relative to the runs folder, refused if outside."""
    runs_root = Path(runs_root)
    out = {}
    for field in ("path", "root"):
        value = getattr(cfg, field)
        inside = _inside_uploads(value, runs_root) if value else None
        if inside is not None:
            out[field] = inside.relative_to(runs_root.resolve()).as_posix()
    cfg = replace(cfg, **out)
    try:
        checked(cfg, runs_root)
    except FileNotFoundError:
        pass  # a run may be made before its data is there (an import); opening it says what is missing
    return cfg


def foreign_form(cfg: DataConfig) -> DataConfig:
    """A config from another machine: an absolute path into that machine's uploads becomes one into ours."""
    out = {}
    for field in ("path", "root"):
        parts = PurePath(getattr(cfg, field) or "").parts
        if PurePath(getattr(cfg, field) or "").is_absolute() and UPLOADS in parts:
            i = len(parts) - 1 - parts[::-1].index(UPLOADS)
            out[field] = "/".join(parts[i:])
    return replace(cfg, **out)
