"""Process-wide set-up of the Streamlit server: the garbage-collector freeze and where runs live."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from vae.runs import folder as rf

_GC_FROZEN = _CONFIGURED = False


def configure_process() -> None:
    """Once per server process: torch's and numpy's thread budgets, then the garbage-collector freeze."""
    global _CONFIGURED
    if not _CONFIGURED:
        torch.set_num_threads(server_threads())
        # numpy's BLAS too (OpenBLAS starts a thread per core): beside a training on the other core, a history
        # frame's PCA (an SVD of 2,000 x 20) took 3-6 ms at the median and up to 113 ms on two threads, 1.6-2.1 ms
        # on one; its threads' waiting cost the server half its CPU while a page watched the training.
        threadpool_limits(server_threads(), user_api="blas")
        freeze_gc_once()
        _CONFIGURED = True


def server_threads() -> int:
    """Torch threads for the server: ``$LATENT_EXPLORER_SERVER_THREADS``, default 1.

    The server decodes a point or a small grid per interaction (well under a millisecond of work on one
    thread), while a training may be using every core: two torch thread pools on two cores made both
    many times slower (docs/BENCHMARKS.md, eight sessions beside a training).
    """
    try:
        return max(1, int(os.environ.get("LATENT_EXPLORER_SERVER_THREADS", "1")))
    except ValueError:
        return 1


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


def page_icon():
    """The tab's icon, drawn here (a named Material icon makes the browser fetch it from Google's servers)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for (x, y), colour in zip([(8, 22), (13, 12), (22, 8), (24, 21), (16, 25)], ["#636efa", "#ef553b", "#00cc96",
                              "#ab63fa", "#ffa15a"], strict=True):  # fmt: skip
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
    return img


def runs_root() -> Path:
    """The runs folder the app shows: ``$LATENT_EXPLORER_RUNS`` or ``checkpoints/``."""
    return rf.default_root()
