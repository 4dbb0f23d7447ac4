"""The runs folder as a table: every run's summary (a broken run listed as ``broken`` with its reason)."""

from __future__ import annotations

import os
from pathlib import Path

from . import folder as rf
from .guard import UnsafeFile, real_folder
from .places import run_folders


def _mtime(path: Path) -> float:
    """When ``path`` itself last changed (a link's own time, never its target's); 0 when it is gone."""
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def run_names(root: str | Path | None = None) -> list[str]:
    """Names of the runs under ``root``, most recently updated first, without reading their metrics."""
    runs = list(run_folders(root))
    return [p.name for p in sorted(runs, key=lambda p: _mtime(p / rf.STATUS_FILE) or _mtime(p), reverse=True)]


def list_runs(root: str | Path | None = None) -> list[dict]:
    """One summary per run under ``root``, newest first: name, path, state, epoch, metrics, config.

    A run whose files are broken is listed too, with state "broken" and the reason as its message,
    so it can still be seen and deleted.
    """
    runs = [_summary(p) for p in run_folders(root)]
    return sorted(runs, key=lambda r: r["updated"], reverse=True)


def _problem(path: Path) -> str | None:
    """Why the folder ``path`` cannot be a run whatever its files say (None when it can)."""
    try:
        clean = rf.sanitize_run_name(path.name)
    except ValueError:
        clean = ""
    if clean != path.name:
        return (f"its folder's name {path.name!r} holds characters a run's name cannot (letters, digits, '.', '_' "
                "and '-'); rename the folder by hand or delete it")  # fmt: skip
    try:
        real_folder(path)
    except UnsafeFile as e:
        return str(e)
    return None


def _summary(path: Path) -> dict:
    problem = _problem(path)
    status = {} if problem else rf.read_status(path)
    updated = status.get("updated")
    out = {
        "name": path.name,
        "path": str(path),
        # no status at all: killed while the run was being made, before its first status write
        "state": status.get("state") or ("unknown" if os.path.lexists(path / rf.STATUS_FILE) else "created"),
        "message": str(status.get("message", "")),
        "epoch": status.get("epoch", 0),
        "epochs": None,
        "dataset": None,
        "arch": None,
        "family": None,
        "layers": None,
        "latent_dim": None,
        "beta": None,
        "test_elbo": None,
        "has_model": not problem and rf.has_model(path),
        "created": _mtime(path),
        "updated": float(updated) if updated is not None else _mtime(path),
    }
    if problem:
        return {**out, "state": "broken", "message": f"{path.name} is not a run: {problem}."}
    try:
        model, train, data = rf.load_config(path)
    except (ValueError, TypeError, FileNotFoundError) as e:
        return {**out, "state": "broken", "message": str(e)}
    epochs = [m for m in rf.read_metrics(path) if m["type"] == "epoch"]
    elbo = epochs[-1].get("test_elbo") if epochs else None
    return {
        **out,
        "epochs": train.epochs,
        "dataset": rf.data_label(data),
        "arch": model.arch,
        "family": model.family,
        "layers": list(model.hidden if model.arch == "mlp" else model.channels),
        "latent_dim": model.latent_dim,
        "beta": train.beta,
        "test_elbo": elbo,
    }
