"""A run as a .zip: export the run's own files, and import a zip only after checking it whole.

An import checks names (plain known files only, no paths), declared and actual sizes, the config
and the weights (shapes from the safetensors header first, then a strict load; never unpickled)
before anything is written; the run then appears under a fresh name in one rename.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..config import DataConfig
from ..data.sources import foreign_form, stored_form
from ..models import build_model
from . import folder as rf
from .guard import UnsafeFile, read_bytes, real_folder
from .schema import clean_notes, evaluation_problem

KB, MB = 1 << 10, 1 << 20
# The files a run .zip may hold, with the most bytes each may have.
ZIP_FILES = {
    rf.CONFIG_FILE: 64 * KB,
    rf.MODEL_FILE: 512 * MB,
    rf.METRICS_FILE: 64 * MB,
    rf.STATUS_FILE: 64 * KB,
    rf.EVALUATION_FILE: 4 * MB,
    rf.NOTES_FILE: 64 * KB,
    rf.PICTURES["recon"]: 16 * MB,
    rf.PICTURES["samples"]: 16 * MB,
}
ZIP_REQUIRED = (rf.CONFIG_FILE, rf.MODEL_FILE)
# The latent map's history travels too, as latent-history/<file>: its probe set and frames, each a safetensors file
HISTORY_MEMBER = re.compile(rf"^{re.escape(rf.HISTORY_DIR)}/(probe|frame-\d{{6}})\.safetensors$")
HISTORY_FILE_BYTES, HISTORY_FILES = 32 * MB, 5000
HISTORY_BYTES = 1024 * MB  # all of a run's history together
MAX_ZIP_BYTES = sum(ZIP_FILES.values()) + HISTORY_BYTES  # a zip can be no larger than its members allow


def _cap(name: str) -> int | None:
    """The most bytes member ``name`` may have, or None when a run zip cannot hold it."""
    return ZIP_FILES.get(name) or (HISTORY_FILE_BYTES if HISTORY_MEMBER.match(name) else None)


ZIP_FIRST, ZIP_LAST = (1980, 1, 1, 0, 0, 0), (2107, 12, 31, 23, 59, 58)  # the times a zip member can carry


def run_zip(run_dir: Path) -> bytes:
    """The run's files (those that exist of ``ZIP_FILES``) in a zip, built in memory."""
    real_folder(run_dir)
    members = [(name, cap) for name, cap in ZIP_FILES.items()]
    history = run_dir / rf.HISTORY_DIR
    if real_folder(history):
        members += [(f"{rf.HISTORY_DIR}/{p.name}", HISTORY_FILE_BYTES) for p in sorted(history.iterdir())
                    if HISTORY_MEMBER.match(f"{rf.HISTORY_DIR}/{p.name}")][:HISTORY_FILES]  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.comment = run_dir.name.encode()  # the run's own name: an import keeps it unless it is taken
        for name, cap in members:
            try:  # a link, pipe or device planted in the run refuses the export: never followed, never waited on
                data = read_bytes(run_dir / name, cap)
                # stamped with the file's own time, not the clock's: the same run gives the same bytes
                stamp = min(max(time.localtime(os.lstat(run_dir / name).st_mtime)[:6], ZIP_FIRST), ZIP_LAST)
                zf.writestr(zipfile.ZipInfo(name, date_time=stamp), data, compress_type=zipfile.ZIP_DEFLATED)
            except FileNotFoundError:
                continue
            except UnsafeFile as e:
                raise ValueError(f"{run_dir.name} cannot be exported: {e}") from None
    return buf.getvalue()


def read_run_zip(data: bytes) -> dict[str, bytes]:
    """The members of a run zip by name, after checking names and sizes; a ``ValueError`` sentence otherwise."""
    expected = ", ".join(ZIP_FILES)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError):
        raise ValueError("This file is not a zip archive; expected a run .zip made by the Download button.") from None
    with zf:
        infos = zf.infolist()
        history = 0
        for info in infos:
            name = info.filename
            if HISTORY_MEMBER.match(name):
                history += info.file_size
            elif "/" in name or "\\" in name or name in ("", ".", "..") or ":" in name:
                raise ValueError(f"The zip holds {name!r}, a path; a run .zip holds only plain files ({expected}) "
                                 f"and {rf.HISTORY_DIR}/'s frames.")  # fmt: skip
            elif name not in ZIP_FILES:
                raise ValueError(f"The zip holds an unexpected file {name!r}; a run .zip holds only {expected}.")
            if info.file_size > _cap(name):
                raise ValueError(f"{name} in the zip is {info.file_size:,} bytes, over the {_cap(name):,} allowed.")
        if history > HISTORY_BYTES or len([i for i in infos if HISTORY_MEMBER.match(i.filename)]) > HISTORY_FILES:
            raise ValueError(f"The zip's {rf.HISTORY_DIR} is larger than a run's history can be.")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise ValueError("The zip holds the same file twice; expected each run file once.")
        missing = [n for n in ZIP_REQUIRED if n not in names]
        if missing:
            needs = f"a run needs both {rf.CONFIG_FILE} and its weights"
            raise ValueError(f"The zip has no {' or '.join(missing)}; {needs}.")
        out = {}
        for info in infos:
            try:
                with zf.open(info) as f:
                    body = f.read(_cap(info.filename) + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
                raise ValueError(f"{info.filename} in the zip could not be read ({e}); the zip is damaged.") from None
            if len(body) > _cap(info.filename):
                raise ValueError(f"{info.filename} in the zip unpacks to more than {_cap(info.filename):,} bytes.")
            out[info.filename] = body
        comment = zf.comment.decode("utf-8", errors="replace")
    if comment:
        out[NAME_KEY] = comment.encode()
    return out


NAME_KEY = "\0name"  # read_run_zip's entry for the run name the zip carries (not a file)


def check_weights(folder: Path) -> None:
    """Config and weights of ``folder`` must load: shapes compared from headers first, then a strict load."""
    model_cfg, _, _ = rf.load_config(folder)
    with torch.device("meta"):  # the shapes config.json implies, without allocating anything
        expected = {k: tuple(v.shape) for k, v in build_model(model_cfg).state_dict().items()}
    try:
        with safe_open(str(folder / rf.MODEL_FILE), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{rf.MODEL_FILE} in the zip is truncated or not a safetensors file ({e}).") from None
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        raise ValueError(
            f"{rf.MODEL_FILE} in the zip does not match its {rf.CONFIG_FILE} (first difference: {wrong[0]})."
        )
    rf.load_model(folder)  # strict: names, shapes, dtypes, and every byte readable


def import_run_zip(root: Path, data: bytes, fallback: str, name: str | None = None) -> Path:
    """Check a run zip completely, then write it to a new run folder named ``name`` if given, else the run's own
    name the zip carries, else ``fallback`` (the zip's file name); ``-2``, ``-3``... when that is taken."""
    files = read_run_zip(data)
    files[rf.CONFIG_FILE] = _local_data(files[rf.CONFIG_FILE], root)
    carried = files.pop(NAME_KEY, b"").decode()
    base = "imported-run"
    for candidate in (name or "", carried, fallback):
        try:
            base = rf.sanitize_run_name(candidate)
            break
        except ValueError:
            continue
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / base  # so messages name the run, not the temp folder
        folder.mkdir()
        for n in ZIP_REQUIRED:
            (folder / n).write_bytes(files[n])
        check_weights(folder)
    notes = _json_object(files, rf.NOTES_FILE)
    notes = None if notes is None else clean_notes(notes)  # a sentence when they are not a run's notes
    status = _json_object(files, rf.STATUS_FILE)
    evaluation = _json_object(files, rf.EVALUATION_FILE)
    if evaluation is not None and (problem := evaluation_problem(evaluation)):
        raise ValueError(f"{rf.EVALUATION_FILE} in the zip is not an evaluation: {problem}.")
    try:
        files.get(rf.METRICS_FILE, b"").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{rf.METRICS_FILE} in the zip is not text; expected JSON lines.") from None
    root.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=root))  # hidden: never listed as a run
    except OSError as e:  # named after the runs folder, not the hidden folder it tried to make
        raise OSError(e.errno, e.strerror, str(root)) from None
    try:
        for n in (rf.CONFIG_FILE, rf.MODEL_FILE, rf.METRICS_FILE, *rf.PICTURES.values()):
            if n in files:
                (staging / n).write_bytes(files[n])
        for n, body in files.items():  # the latent map's history: its frames are read back as untrusted as any
            if HISTORY_MEMBER.match(n):
                (staging / rf.HISTORY_DIR).mkdir(exist_ok=True)
                (staging / n).write_bytes(body)
        # A status from another machine may name a process id: keep the progress, never the pid.
        old = status or {}
        rf.write_status(
            staging,
            {
                **{k: old[k] for k in ("epoch", "step", "total_steps") if isinstance(old.get(k), int)},
                "state": "finished" if old.get("state") == "finished" else "stopped",
                "message": "imported from a run .zip"
                + ("" if old.get("state") == "finished" else " (without optimiser state: it cannot be resumed)"),
                "updated": time.time(),
            },
        )
        if evaluation is not None:
            evaluation["checkpoint"] = rf.checkpoint_id(staging)  # same weights, new file
            rf.write_evaluation(staging, evaluation)
        if notes is not None:
            rf.write_notes(staging, notes)
        for i in range(1, 1000):
            target = rf.run_path(root, base if i == 1 else f"{base[: rf.MAX_NAME - 6]}-{i}")
            if not target.exists():
                os.rename(staging, target)
                return target
        raise ValueError(f"Too many runs are named {base!r}; rename the zip.")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _local_data(config: bytes, root: Path) -> bytes:
    """config.json with its data section as this machine keeps it; data outside the built-in places and the
    runs folder's uploads is refused (a crafted zip must not make the server read other files)."""
    raw = _json_object({rf.CONFIG_FILE: config}, rf.CONFIG_FILE)
    try:
        cfg = foreign_form(DataConfig.from_dict(raw.get("data", {})))
        raw["data"] = stored_form(cfg, root).to_dict()
    except (ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{rf.CONFIG_FILE} in the zip names data this app may not read: {e}") from None
    return json.dumps(raw, indent=2, sort_keys=True).encode()


def _json_object(files: dict[str, bytes], name: str) -> dict | None:
    if name not in files:
        return None
    try:
        obj = json.loads(files[name])
    except (ValueError, UnicodeDecodeError):
        obj = None
    if not isinstance(obj, dict):
        raise ValueError(f"{name} in the zip is not a JSON object.")
    return obj
