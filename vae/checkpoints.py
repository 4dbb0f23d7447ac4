"""A run is a folder: ``config.json``, ``model.safetensors``, ``state.safetensors``, ``metrics.jsonl``,
``status.json`` (and later ``evaluation.json``, ``recon.png``, ``samples.png``, ``projections/``).

Every file is written atomically (a temp file in the same folder, then ``os.replace``) except
``metrics.jsonl``, which grows by whole lines written in one call; readers skip a torn last line.
Weights are safetensors and loaded strictly; nothing here ever unpickles.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import sources
from .config import CONFIG_VERSION, DataConfig, ModelConfig, TrainConfig
from .fileio import append_jsonl, atomic_path, atomic_write_bytes, read_json, read_jsonl, write_json  # noqa: F401
from .models import VAE, build_model

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
MAX_NAME = 64
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def default_root() -> Path:
    """Where runs live: ``$LATENT_EXPLORER_RUNS`` or the project's ``checkpoints/`` folder."""
    env = os.environ.get("LATENT_EXPLORER_RUNS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "checkpoints"


def sanitize_run_name(name: str) -> str:
    """A safe folder name: letters, digits, ``.``, ``_``, ``-``; no leading dot; at most 64 characters."""
    if not isinstance(name, str):
        raise ValueError(f"A run name must be text; got {type(name).__name__}.")
    clean = _NAME_OK.sub("-", name.strip()).strip("-.")[:MAX_NAME].strip("-.")
    if not clean:
        raise ValueError(f"The run name {name[:40]!r} has no usable characters; use letters, digits, '.', '_' or '-'.")
    return clean


def run_path(root: str | Path, name: str) -> Path:
    """The folder of run ``name`` under ``root``; the name is sanitised so no path escapes ``root``."""
    root = Path(root).resolve()
    path = (root / sanitize_run_name(name)).resolve()
    if path.parent != root:  # cannot happen after sanitising; kept as an internal invariant
        raise ValueError(f"Run name {name!r} would leave the runs folder.")
    return path


# ---------------------------------------------------------------- tensors


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomic safetensors write (contiguous CPU copies)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; a missing, truncated or foreign file raises a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path.name} in {path.parent.name} is truncated or not a safetensors file ({e}).") from e


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{Path(path).name} is truncated or not a safetensors file ({e}).") from e


# ---------------------------------------------------------------- configs and weights


def save_config(run_dir: str | Path, model: ModelConfig, train: TrainConfig, data: DataConfig) -> None:
    write_json(
        Path(run_dir) / CONFIG_FILE,
        {"version": CONFIG_VERSION, "model": model.to_dict(), "train": train.to_dict(), "data": data.to_dict()},
    )


def load_config(run_dir: str | Path) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """The run's own configs; an unknown version or unknown fields give a clear error."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent.name} has no {CONFIG_FILE}: it is not a run folder.")
    raw = read_json(path)
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
    return (
        ModelConfig.from_dict(raw.get("model", {})),
        TrainConfig.from_dict(raw.get("train", {})),
        DataConfig.from_dict(raw.get("data", {})),
    )


def load_data_config(run_dir: str | Path) -> DataConfig:
    """The run's data config, checked: only built-in data and the runs folder's uploads (see ``sources``)."""
    run_dir = Path(run_dir).resolve()
    _, _, data = load_config(run_dir)
    return sources.checked(data, run_dir.parent)


def save_model(run_dir: str | Path, model: VAE, metadata: dict[str, str] | None = None) -> None:
    save_tensors(Path(run_dir) / MODEL_FILE, model.state_dict(), metadata)


def check_state_dict(model: VAE, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Raise a clear error unless ``tensors`` has exactly the model's names and shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{where} does not match config.json: missing {missing[:3]}, unexpected {extra[:3]} "
            f"({len(missing)} missing, {len(extra)} unexpected)."
        )
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape) or tensors[k].dtype != v.dtype:
            raise ValueError(
                f"{where}: tensor {k} has shape {tuple(tensors[k].shape)} ({tensors[k].dtype}) but config.json "
                f"implies {tuple(v.shape)} ({v.dtype})."
            )


def load_model(run_dir: str | Path) -> VAE:
    """Rebuild the run's model from its own config and load its weights strictly, in eval mode."""
    run_dir = Path(run_dir)
    model_cfg, _, _ = load_config(run_dir)
    model = build_model(model_cfg)
    tensors = load_tensors(run_dir / MODEL_FILE)
    check_state_dict(model, tensors, f"{MODEL_FILE} in {run_dir.name}")
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def checkpoint_id(run_dir: str | Path) -> str:
    """Changes whenever the weights change: used to key caches (projections, evaluations)."""
    st = (Path(run_dir) / MODEL_FILE).stat()
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


# ---------------------------------------------------------------- run folders


def create_run(root: str | Path, name: str, model: ModelConfig, train: TrainConfig, data: DataConfig) -> Path:
    """Make a new run folder (``name``, or ``name-2``, ``name-3``... if taken) holding its config."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = sanitize_run_name(name)
    data = sources.stored_form(data, root)  # refuses data outside the built-in places and the uploads
    for i in range(1, 10_000):
        candidate = base if i == 1 else f"{base[: MAX_NAME - 6]}-{i}"
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
    raise ValueError(f"Too many runs are named {base!r}; choose another name.")


def read_status(run_dir: str | Path) -> dict:
    return read_json(Path(run_dir) / STATUS_FILE, default={}) or {}


def read_metrics(run_dir: str | Path) -> list[dict]:
    return read_jsonl(Path(run_dir) / METRICS_FILE)


def is_run(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def run_names(root: str | Path | None = None) -> list[str]:
    """Names of the runs under ``root``, most recently updated first, without reading their metrics."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_run(p)]

    def updated(p: Path) -> float:
        status = p / STATUS_FILE
        return status.stat().st_mtime if status.exists() else p.stat().st_mtime

    return [p.name for p in sorted(runs, key=updated, reverse=True)]


def list_runs(root: str | Path | None = None) -> list[dict]:
    """One summary per run under ``root``, newest first: name, path, state, epoch, metrics, config."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if not path.is_dir() or path.name.startswith(".") or not is_run(path):
            continue
        status = read_status(path)
        cfg = read_json(path / CONFIG_FILE, default={}) or {}
        epochs = [m for m in read_metrics(path) if m.get("type") == "epoch"]
        last = epochs[-1] if epochs else {}
        runs.append(
            {
                "name": path.name,
                "path": str(path),
                "state": status.get("state", "unknown"),
                "message": status.get("message", ""),
                "epoch": status.get("epoch", 0),
                "epochs": cfg.get("train", {}).get("epochs"),
                "dataset": cfg.get("data", {}).get("name"),
                "arch": cfg.get("model", {}).get("arch"),
                "latent_dim": cfg.get("model", {}).get("latent_dim"),
                "test_elbo": last.get("test_elbo"),
                "has_model": (path / MODEL_FILE).is_file(),
                "created": path.stat().st_ctime,
                "updated": status.get("updated", path.stat().st_mtime),
            }
        )
    return sorted(runs, key=lambda r: r["updated"], reverse=True)


def delete_run(root: str | Path, name: str) -> None:
    path = run_path(root, name)
    if not is_run(path):
        raise FileNotFoundError(f"There is no run named {name!r}.")
    shutil.rmtree(path)


def rename_run(root: str | Path, old: str, new: str) -> Path:
    src, dst = run_path(root, old), run_path(root, new)
    if not is_run(src):
        raise FileNotFoundError(f"There is no run named {old!r}.")
    if dst.exists():
        raise ValueError(f"A run named {dst.name!r} already exists; choose another name.")
    src.rename(dst)
    return dst
