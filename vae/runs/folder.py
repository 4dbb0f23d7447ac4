"""The run folder: every file name in it, and its reads and writes. Nothing else spells a run file's name.

A run is a folder under the runs folder (``default_root()``)::

    config.json          ModelConfig, TrainConfig and DataConfig (versioned), so the run rebuilds its own model
    model.safetensors    the weights of the last checkpoint (loaded strictly; never unpickled)
    state.safetensors    optimiser, random and loop state, to resume exactly
    metrics.jsonl        one JSON line every few steps and one per epoch (grows by whole lines)
    status.json          state (created, starting, running, paused, finished, stopped, failed, interrupted), pid
    control.json         pause / resume / stop, written by the app, read by the training process
    train.log            the training process's output
    recon.png samples.png  the last epoch's reconstructions and prior samples
    evaluation.json      the last evaluation (IWAE, active units, k-NN), tagged with its checkpoint
    notes.json           the person's tags and note about the run (kept by renames and run zips)
    projections/         cached maps (file names within it: ``vae.projection``)
    latent-history/      the probe set's latent means over training (``vae.analysis.history``)
    embedding-*.csv      codes written by ``python -m vae embed``

Every file is written atomically (``vae.runs.fileio``) except ``metrics.jsonl``, which grows by whole lines
written in one call; readers skip a torn last line. Every file is untrusted bytes when read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import torch

from ..config import CONFIG_VERSION, DataConfig, ModelConfig, TrainConfig
from ..data import sources
from ..models import VAE, build_model, check_state_dict
from . import schema
from .fileio import (
    append_jsonl,
    atomic_write_bytes,
    load_tensors,
    read_json,
    read_jsonl,
    safetensors_metadata,
    save_tensors,
    write_json,
)
from .guard import MAX_JSON, MAX_LOG, MAX_PICTURE, MAX_PIXELS, UnsafeFile, read_bytes, real_folder, regular_file
from .places import CONFIG_FILE, PROJECTIONS_DIR, default_root, is_run, projections_dir, run_folders  # noqa: F401

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
CONTROL_FILE = "control.json"
LOG_FILE = "train.log"
EVALUATION_FILE = "evaluation.json"
NOTES_FILE = "notes.json"  # the person's tags and note about the run: {"tags": [...], "note": "..."}
PICTURES = {"recon": "recon.png", "samples": "samples.png"}
HISTORY_DIR = "latent-history"
CONTROL_COMMANDS = ("pause", "resume", "stop", "")
MAX_NAME = 64
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_run_name(name: str) -> str:
    """A safe folder name: letters, digits, ``.``, ``_``, ``-``; no leading dot; at most 64 characters."""
    if not isinstance(name, str):
        raise ValueError(f"A run name must be text; got {type(name).__name__}.")
    clean = _NAME_OK.sub("-", name.strip()).strip("-.")[:MAX_NAME].strip("-.")
    if not clean:
        raise ValueError(f"The run name {name[:40]!r} has no usable characters; use letters, digits, '.', '_' or '-'.")
    return clean


def run_path(root: str | Path, name: str) -> Path:
    """The folder of run ``name`` under ``root``. The name must be a run name already (``sanitize_run_name`` leaves
    it as it is), so that it never escapes ``root`` nor names another run ("with space" is not "with-space"); a link
    there is refused, never followed (it could name another run, or anything)."""
    root = Path(root).resolve()
    clean = sanitize_run_name(name)
    if clean != name:
        raise ValueError(f"{name[:60]!r} is not a run name (letters, digits, '.', '_' and '-'; {clean!r} would be).")
    if clean == sources.UPLOADS:
        raise ValueError(f"{clean!r} is the folder of uploaded data files; choose another run name.")
    path = root / clean
    if path.is_symlink():
        raise ValueError(f"{clean!r} in the runs folder is a link: it is never followed; delete it on the Runs page.")
    return path


# ---------------------------------------------------------------- configs and weights


def save_config(run_dir: str | Path, model: ModelConfig, train: TrainConfig, data: DataConfig) -> None:
    write_json(
        Path(run_dir) / CONFIG_FILE,
        {"version": CONFIG_VERSION, "model": model.to_dict(), "train": train.to_dict(), "data": data.to_dict()},
    )


def load_config(run_dir: str | Path) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """The run's own configs; an unknown version or unknown fields give a clear error."""
    path = Path(run_dir) / CONFIG_FILE
    real_folder(run_dir)  # a link to a folder elsewhere is never a run
    try:
        raw = json.loads(read_bytes(path, MAX_JSON))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path.parent.name} has no {CONFIG_FILE}: it is not a run folder.") from None
    except (UnicodeDecodeError, RecursionError, json.JSONDecodeError):
        raw = None
    if not isinstance(raw, dict):
        raise ValueError(f"{CONFIG_FILE} in {path.parent.name} is not valid JSON.")
    if raw.get("version") != CONFIG_VERSION:
        raise ValueError(
            f"{CONFIG_FILE} in {path.parent.name} has version {raw.get('version')!r}; "
            f"this Latent Explorer reads version {CONFIG_VERSION}."
        )
    unknown = sorted(set(raw) - {"version", "model", "train", "data"})
    if unknown:
        raise ValueError(f"{CONFIG_FILE} in {path.parent.name} has unknown sections: {', '.join(unknown)}.")
    try:
        return (
            ModelConfig.from_dict(raw.get("model", {})),
            TrainConfig.from_dict(raw.get("train", {})),
            DataConfig.from_dict(raw.get("data", {})),
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{CONFIG_FILE} in {path.parent.name} is not a run's config: {e}") from None


def load_data_config(run_dir: str | Path) -> DataConfig:
    """The run's data config, checked: only built-in data and the runs folder's uploads (see ``sources``)."""
    run_dir = Path(run_dir).resolve()
    _, _, data = load_config(run_dir)
    return sources.checked(data, run_dir.parent)


def save_model(run_dir: str | Path, model: VAE, metadata: dict[str, str] | None = None) -> None:
    """The weights the app loads, always float32 (a float64 training's resume state keeps its own precision)."""
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_tensors(Path(run_dir) / MODEL_FILE, tensors, metadata)


def load_model(run_dir: str | Path) -> VAE:
    """Rebuild the run's model from its own config and load its weights strictly, in eval mode."""
    run_dir = Path(run_dir)
    model_cfg, _, _ = load_config(run_dir)
    model = build_model(model_cfg)
    tensors = load_tensors(run_dir / MODEL_FILE)
    check_state_dict(model, tensors, f"{MODEL_FILE} in {run_dir.name}")
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def has_model(run_dir: str | Path) -> bool:
    try:
        return regular_file(Path(run_dir) / MODEL_FILE) is not None
    except UnsafeFile:
        return False


def save_state(run_dir: str | Path, tensors: dict[str, torch.Tensor], loop: str) -> None:
    """The resume state: optimiser and random tensors, and the loop's bookkeeping as a JSON string."""
    save_tensors(Path(run_dir) / STATE_FILE, tensors, {"loop": loop})


def load_state(run_dir: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors and loop JSON that ``save_state`` wrote; a clear error when missing or damaged."""
    path = Path(run_dir) / STATE_FILE
    return load_tensors(path), safetensors_metadata(path).get("loop", "{}")


def check_state(run_dir: str | Path) -> None:
    """A clear error unless the run's resume state is there and whole (read before anything is changed)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{Path(run_dir).name} has no resume state ({STATE_FILE}); it cannot be resumed.")
    try:
        loop = json.loads(safetensors_metadata(path).get("loop", ""))
    except ValueError as e:
        raise ValueError(f"{Path(run_dir).name} cannot be resumed: its {STATE_FILE} is damaged ({e}).") from None
    if not isinstance(loop, dict) or not all(k in loop for k in ("epoch", "pos", "step", "elapsed", "sums")):
        raise ValueError(f"{Path(run_dir).name} cannot be resumed: its {STATE_FILE} lacks the loop state.")


def has_state(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE_FILE).is_file()


def state_label(run_dir: str | Path) -> str:
    """How messages name the resume state file."""
    return f"{STATE_FILE} in {Path(run_dir).name}"


def checkpoint_id(run_dir: str | Path) -> str:
    """Changes whenever the weights change: used to key caches (projections, evaluations)."""
    st = (Path(run_dir) / MODEL_FILE).stat()
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def create_run(root: str | Path, name: str, model: ModelConfig, train: TrainConfig, data: DataConfig) -> Path:
    """Make a new run folder (``name``, or ``name-2``, ``name-3``... if taken) holding its config."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = sources.stored_form(data, root)  # refuses data outside the built-in places and the uploads
    for candidate in _candidates(name):
        path = run_path(root, candidate)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        save_config(path, model, train, data)
        write_json(
            path / STATUS_FILE, {"state": "created", "message": "", "epoch": 0, "step": 0, "updated": time.time()}
        )
        return path
    raise ValueError(f"Too many runs are named {sanitize_run_name(name)!r}; choose another name.")


def _candidates(name: str):
    """``name`` sanitised, then ``name-2``, ``name-3``, ...: the names a new run tries in turn."""
    base = sanitize_run_name(name)
    yield base
    for i in range(2, 10_000):
        yield f"{base[: MAX_NAME - 6]}-{i}"


def available_name(root: str | Path, name: str) -> str:
    """The name a run asked to be called ``name`` gets under ``root`` now (what ``create_run`` would pick)."""
    return next((c for c in _candidates(name) if not os.path.lexists(Path(root) / c)), sanitize_run_name(name))


# ---------------------------------------------------------------- status, metrics, control, log


def read_status(run_dir: str | Path) -> dict:
    """status.json, every field of the wrong type or range left out (``schema.status``)."""
    return schema.status(read_json(Path(run_dir) / STATUS_FILE, default={}))


def write_status(run_dir: str | Path, status: dict) -> None:
    write_json(Path(run_dir) / STATUS_FILE, status)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The metrics records, each checked (``schema.metric``): a line that is not a record is skipped."""
    return [m for rec in read_jsonl(Path(run_dir) / METRICS_FILE) if (m := schema.metric(rec)) is not None]


def append_metric(run_dir: str | Path, record: dict) -> None:
    append_jsonl(Path(run_dir) / METRICS_FILE, record)


def write_metrics(run_dir: str | Path, records: list[dict]) -> None:
    """Replace the metrics with ``records`` (a resume drops lines of steps it will redo)."""
    body = "".join(json.dumps(m, sort_keys=True) + "\n" for m in records)
    atomic_write_bytes(Path(run_dir) / METRICS_FILE, body.encode())


def read_control(run_dir: str | Path) -> str:
    """The last command written to the run's control file ("" if none)."""
    rec = read_json(Path(run_dir) / CONTROL_FILE, default={}) or {}
    return rec.get("command", "") if isinstance(rec, dict) and isinstance(rec.get("command"), str) else ""


def write_control(run_dir: str | Path, command: str) -> None:
    if command not in CONTROL_COMMANDS:
        raise ValueError(f"A control command must be pause, resume or stop; got {command!r}.")
    write_json(Path(run_dir) / CONTROL_FILE, {"command": command, "time": time.time()})


def clear_control(run_dir: str | Path) -> None:
    (Path(run_dir) / CONTROL_FILE).unlink(missing_ok=True)


def control_mtime(run_dir: str | Path) -> int | None:
    """When the control file last changed (ns), or None without one: a cheap check before reading it."""
    try:
        return os.lstat(Path(run_dir) / CONTROL_FILE).st_mtime_ns
    except FileNotFoundError:
        return None


def log_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOG_FILE


def read_log(run_dir: str | Path, max_bytes: int = 20_000) -> str:
    """The last ``max_bytes`` of the training process's output."""
    try:
        return read_bytes(log_path(run_dir), MAX_LOG, part=max_bytes, from_end=True).decode(errors="replace")
    except FileNotFoundError:
        return ""
    except (OSError, UnsafeFile) as e:
        return f"(the training's log cannot be shown: {e})"


def remove_temp_files(run_dir: str | Path) -> None:
    """Half-written files of a process that was killed mid-write."""
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- pictures, evaluation, projections, exports


def write_picture(run_dir: str | Path, which: str, png: bytes) -> None:
    """``which`` is "recon" (test items over their reconstructions) or "samples" (decoded prior samples)."""
    atomic_write_bytes(Path(run_dir) / PICTURES[which], png)


def picture_path(run_dir: str | Path, which: str) -> Path | None:
    path = Path(run_dir) / PICTURES[which]
    try:
        head = read_bytes(path, MAX_PICTURE, part=24)  # a PNG's signature and IHDR: width and height, big-endian
    except (OSError, UnsafeFile):
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or int.from_bytes(head[16:20]) * int.from_bytes(head[20:24]) > MAX_PIXELS:
        return None  # not a PNG, or one far larger than the pictures a training writes
    return path


def read_evaluation(run_dir: str | Path) -> dict | None:
    """evaluation.json's object (None without one); ``schema.evaluation_problem`` says whether it can be shown."""
    ev = read_json(Path(run_dir) / EVALUATION_FILE, default=None)
    return ev if isinstance(ev, dict) else None


def write_evaluation(run_dir: str | Path, evaluation: dict) -> None:
    write_json(Path(run_dir) / EVALUATION_FILE, evaluation)


def read_notes(run_dir: str | Path) -> dict:
    """The run's tags and note ({"tags": [], "note": ""} without them, or when the file is not such notes)."""
    try:
        return schema.clean_notes(read_json(Path(run_dir) / NOTES_FILE, default={}))
    except ValueError:
        return {"tags": [], "note": ""}


def write_notes(run_dir: str | Path, notes: dict) -> None:
    write_json(Path(run_dir) / NOTES_FILE, schema.clean_notes(notes))


def history_dir(run_dir: str | Path) -> Path:
    """Where the latent map's history lives (what is inside is ``vae.analysis.history``'s business);
    ``UnsafeFile`` when something other than a real folder stands there (a link is never written through)."""
    path = Path(run_dir) / HISTORY_DIR
    real_folder(path)
    return path


def embedding_path(run_dir: str | Path, method: str, split: str) -> Path:
    return Path(run_dir) / f"embedding-{method}-{split}.csv"


# ---------------------------------------------------------------- run folders


def default_name(data: str, arch: str, latent_dim: int) -> str:
    """The name a run gets unless the user gives one: its data (a file's stem), architecture and latent size."""
    return f"{Path(data).stem or 'data'}-{arch}-z{latent_dim}"


def data_label(data: DataConfig) -> str:
    """How the app and the command line name a run's data: the dataset, or the user's file name."""
    return Path(data.path).name if data.name == "file" and data.path else data.name


def listed(root: str | Path, name: str) -> Path:
    """The run folder listed under ``name`` exactly (a hand-made folder with an odd name, or a link, too)."""
    path = next((p for p in run_folders(root) if p.name == name), None)
    if path is None:
        raise FileNotFoundError(f"There is no run named {name!r}.")
    return path


def delete_run(root: str | Path, name: str) -> None:
    """Delete the run; a link listed as a run is removed itself, never what it points to."""
    path = listed(root, name)
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)


def rename_run(root: str | Path, old: str, new: str) -> Path:
    src, dst = listed(root, old), run_path(root, sanitize_run_name(new))
    if dst.exists():
        raise ValueError(f"A run named {dst.name!r} already exists; choose another name.")
    src.rename(dst)
    return dst


def new_run(
    root: str | Path,
    name: str,
    dataset,  # a vae.data.Dataset
    data_cfg,
    *,
    train_cfg: TrainConfig | None = None,
    **model: object,
) -> Path:
    """Create a run folder for ``dataset`` with a model shaped to its items.

    ``model`` sets ModelConfig fields (arch, latent_dim, hidden, channels, likelihood, ...); the rest keep
    ModelConfig's defaults, except the likelihood, which defaults to the dataset's suggestion (Bernoulli
    for images in [0, 1], Gaussian for standardised vectors).
    """
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in model.items() if v is not None}
    fields.setdefault("likelihood", dataset.likelihood)
    if fields.get("family") == "cvae":  # one one-hot input per class of the data's labels
        fields.setdefault("classes", dataset.label_count())
    model_cfg = ModelConfig(input_shape=tuple(dataset.item_shape), **fields)
    return create_run(root, name, model_cfg, train_cfg or TrainConfig(), data_cfg)
