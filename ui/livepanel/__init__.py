"""The Train page's live panel while its run trains, drawn by the browser (livepanel.js beside this file): the
progress bar, the loss and ELBO curves (and β-TCVAE's KL parts), the KL of each dimension as a heat strip, the
collapse alarm and the training's two pictures.

The page mounts it once; the browser then polls the run's feed (``ui.served``: ``/api/live?id=...&part=panel``)
every ``EVERY_S`` seconds and gets only the metrics' rows it has not drawn, which it adds to its curves. A
Streamlit rerun every poll (the fragment this replaces) cost the browser its React pass, Plotly's redraw of every
curve and the page's repaint, about a quarter of a core beside the training; a fetch of a few rows costs nothing
that shows. When the run's state changes (paused, resumed, finished, failed) the panel tells the page (trigger
``state``), which reruns its fragment: the buttons follow, and a run that ended gets its final panel.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import streamlit as st

from vae.analysis.diagnose import collapse_warning
from vae.runs import folder as rf
from vae.runs import jobs

from .. import livemap, served
from ..figures import KL_PARTS
from ..notice import epochs_done
from ..pictures import enlarged_png

FRONTEND = Path(__file__).resolve().parent
EVERY_S = 2.0  # how often the browser asks the feed while the run trains
PICTURES = ("recon", "samples")
STEP_KEYS = ("epoch", "loss", "recon", "kl", *(key for key, _ in KL_PARTS))
EPOCH_KEYS = ("epoch", "train_elbo", "test_elbo")

_component = st.components.v2.component(
    "latent_explorer_live_panel",
    js=(FRONTEND / "feed.js").read_text() + (FRONTEND / "livepanel.js").read_text(),  # feed.js: shared with livemap
    css=(FRONTEND / "livepanel.css").read_text(),
)


def progress(status: dict, epochs: int) -> tuple[float, str]:
    """The progress bar's fraction and sentence for a run's status (``epochs``: its configured count)."""
    step, total = status.get("step", 0), status.get("total_steps")
    if not total:
        return 0.0, f"Starting: {status.get('message') or 'launching the training process'}…"
    where = f"{epochs_done(status, epochs)} · step {step:,} of {total:,}"
    if status.get("device"):  # where it trains: the CPU or a GPU, and how many processes
        procs = status.get("processes", 1)
        where += f" · on {'a GPU' if status['device'] == 'cuda' else 'the CPU'}"
        where += f", {procs} processes" if procs > 1 else ""
    if status.get("state") == "paused":
        return min(1.0, step / total), f"Paused · {where}"
    return min(1.0, step / total), f"Training · {where} · about {duration(status.get('eta_s'))} left"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _number(value) -> float | None:
    """A metric as JSON can carry it: a finite float, else None (a gap in its curve)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def panel(run_dir: Path, epochs: int, steps_from: int = 0, epochs_from: int = 0) -> dict:
    """What the live panel draws: the status and its progress bar, the step rows from ``steps_from`` and the epoch
    rows from ``epochs_from`` on (each as ``STEP_KEYS`` / ``EPOCH_KEYS``, the epochs' KL per dimension apart), the
    pictures' stamps, their captions and the collapse alarm. Where the browser holds more rows than the file (a
    run restarted from a checkpoint), its rows start again from 0 (``from``)."""
    status = jobs.refresh_status(run_dir)
    fraction, text = progress(status, epochs)
    metrics = rf.read_metrics(run_dir)
    steps = [m for m in metrics if m.get("type") == "step"]
    done = [m for m in metrics if m.get("type") == "epoch"]
    steps_from = steps_from if steps_from <= len(steps) else 0
    epochs_from = epochs_from if epochs_from <= len(done) else 0
    heat = [e.get("test_kl_per_dim") if isinstance(e.get("test_kl_per_dim"), list) else None for e in done]
    dims = next((len(h) for h in reversed(heat) if h), 0)
    stamps = {}
    for which in PICTURES:
        path = rf.picture_path(run_dir, which)
        stamps[which] = str(path.stat().st_mtime_ns) if path is not None and path.is_file() else None
    return {
        "state": status.get("state"),
        "progress": [fraction, text],
        "steps": {"from": steps_from, "rows": [[_number(m.get(k)) for k in STEP_KEYS] for m in steps[steps_from:]]},
        "epochs": {
            "from": epochs_from,
            "rows": [[_number(m.get(k)) for k in EPOCH_KEYS] for m in done[epochs_from:]],
            "kl": [[_number(v) for v in h] if h else None for h in heat[epochs_from:]],
        },
        "parts": any("total_correlation" in m for m in steps),
        "pictures": stamps,
        "captions": {
            "recon": "Test items (top row) and their reconstructions (bottom row)",
            "samples": samples_caption(run_dir),
        },  # fmt: skip
        "warning": collapse_warning(done, dims) if dims else None,
    }


def samples_caption(run_dir: Path) -> str:
    """What the training's picture of prior samples shows, for the run's family."""
    try:
        family = rf.load_config(run_dir)[0].family
    except (OSError, ValueError):  # a run folder changed under the page: say the usual
        family = "vae"
    if family == "vampprior":
        return "Samples decoded from the VampPrior (each from one of its pseudo-inputs' components)"
    if family == "cvae":
        return "Samples decoded from the prior N(0, I), each row given one class (row 1: the first)"
    return "Samples decoded from the prior N(0, I)"


def _count(params: Mapping[str, str], name: str) -> int:
    raw = params.get(name) or "0"
    if not raw.isdigit() or len(raw) > 9:
        raise ValueError(f"{name} must be a count of rows, not {raw[:20]!r}.")
    return int(raw)


def answer(run_dir: Path, epochs: int, params: Mapping[str, str]) -> served.Answer:
    """The run's feed: ``part=panel`` (``steps``, ``epochs``: the rows the browser has), ``part=picture``
    (``file``: recon or samples), ``part=map`` (``method``, ``have``: the stamp of the frames it has) or
    ``part=samples`` (``frame``: a frame's decoded prior samples)."""
    part = params.get("part") or "panel"
    if part == "panel":
        try:
            steps, done = _count(params, "steps"), _count(params, "epochs")
        except ValueError as e:
            return served.Answer(400, str(e))
        body = json.dumps(panel(run_dir, epochs, steps, done), separators=(",", ":"), allow_nan=False)
        return served.Answer(200, body.encode())
    if part == "picture":
        which = params.get("file")
        if which not in PICTURES:
            return served.Answer(400, f"file must be one of {', '.join(PICTURES)}.")
        png = enlarged_png(rf.picture_path(run_dir, which))
        return served.Answer(200, png, "image/png") if png else served.Answer(404, "The run has no such picture yet.")
    if part == "map":
        url = f"{served.FEED_ROUTE}?id={params.get('id', '')}"  # this feed's own URL, for the frames' pictures
        return livemap.feed(run_dir, params.get("method") or "pca", params.get("have") or "", url)
    if part == "samples":
        return livemap.samples(run_dir, params.get("frame"))
    return served.Answer(400, "part must be panel, picture, map or samples.")


def feed_url(run_dir: Path, epochs: int) -> str:
    """Offer the run's feed on this server (``ui.served``); the URL the browser polls."""
    feed_id = "run-" + hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:24]
    return served.offer_feed(feed_id, partial(answer, Path(run_dir), epochs))


def show(run_dir: Path, status: dict, epochs: int, key: str) -> str:
    """Mount the live panel of the run that trains, with what it draws now; it polls the feed from then on.
    The fragment it is in reruns when it says the run's state changed from ``status``'s. Returns the feed's URL
    (the live map polls it too)."""
    url = feed_url(run_dir, epochs)
    data = {"feed": url, "state": status.get("state"), "every_ms": int(EVERY_S * 1000),
            "first": panel(run_dir, epochs)}  # fmt: skip
    _component(data=data, key=key, on_state_change=lambda: None)
    return url
