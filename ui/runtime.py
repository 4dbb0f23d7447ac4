"""Process-wide set-up of the Streamlit server: the garbage-collector freeze and where runs live."""

from __future__ import annotations

import gc
from pathlib import Path

from vae import run as rf

_GC_FROZEN = False


def freeze_gc_once() -> None:
    """Move everything imported so far out of the garbage collector's sight (once per process).

    Streamlit collects garbage after every rerun; with torch and plotly loaded that full pass
    took 45-65 ms per interaction here. Frozen objects are skipped by it.
    """
    global _GC_FROZEN
    if not _GC_FROZEN:
        gc.collect()
        gc.freeze()
        _GC_FROZEN = True


def runs_root() -> Path:
    """The runs folder the app shows: ``$LATENT_EXPLORER_RUNS`` or ``checkpoints/``."""
    return rf.default_root()
