"""Where runs and their maps live, read without loading torch (the app's first lines and the map worker use it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository (vae/runs/places.py)
CONFIG_FILE = "config.json"  # what makes a folder a run
PROJECTIONS_DIR = "projections"


def default_root() -> Path:
    """Where runs live: ``$LATENT_EXPLORER_RUNS`` or the project's ``checkpoints/`` folder."""
    env = os.environ.get("LATENT_EXPLORER_RUNS")
    return Path(env) if env else PROJECT_ROOT / "checkpoints"


def is_run(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def run_folders(root: str | Path | None = None) -> Iterator[Path]:
    """The run folders under ``root`` (folders with a config; hidden ones, such as uploads, left out)."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        return
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith(".") and is_run(p):
            yield p


def has_runs(root: str | Path | None = None) -> bool:
    try:
        return next(run_folders(root), None) is not None
    except OSError:
        return False


def projections_dir(run_dir: str | Path) -> Path:
    """Where the run's cached maps live (what is inside is ``vae.projection``'s business; its map worker reads
    this without loading torch)."""
    return Path(run_dir) / PROJECTIONS_DIR
