"""How far a run got, said the same way everywhere, and the notice on the model pages while it still trains."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from vae.analysis.diagnose import run_alarm
from vae.runs import folder as rf
from vae.runs import jobs


def epochs_done(status: dict, epochs: int) -> str:
    """How far a run got, said the same way in the sidebar, the progress bar and the model pages."""
    return f"{min(status.get('epoch', 0), epochs)} of {epochs} epochs done"


def alarm(run_dir: Path, status: dict) -> tuple[str, str] | None:
    """("diverged" | "collapsed", the sentence) for a run whose loss diverged or whose latent space collapsed. The
    sidebar asks on every rerun (a Decode slider step included): the metrics are read again only when they change."""
    try:
        st_ = os.lstat(Path(run_dir) / rf.METRICS_FILE)
        stamp = (st_.st_mtime_ns, st_.st_size)
    except OSError:
        stamp = None
    return _alarm(str(run_dir), stamp, status.get("state"), status.get("message") or "")


@st.cache_data(max_entries=64, show_spinner=False)
def _alarm(run: str, stamp: tuple | None, state: str | None, message: str) -> tuple[str, str] | None:
    epochs = [m for m in rf.read_metrics(Path(run)) if m["type"] == "epoch"]
    return run_alarm({"state": state, "message": message}, epochs)


def training_notice(run_dir: Path) -> None:
    """On Explore, Decode and Interpolate while the run trains: which checkpoint the page shows (a newer one is
    taken when the page next reruns: a setting changed, or Refresh)."""
    status = jobs.refresh_status(run_dir)
    if status.get("state") not in jobs.ACTIVE_STATES:
        return
    try:
        epochs = rf.load_config(run_dir)[1].epochs
        shown = rf.safetensors_metadata(run_dir / rf.MODEL_FILE).get("epoch", "?")
    except (ValueError, FileNotFoundError):
        return
    if str(shown).isdigit() and int(shown) == status.get("epoch", 0) + 1:  # an epoch's checkpoint landed before
        status = {**status, "epoch": int(shown)}  # its status line: say the same epoch twice, not 103 then 104
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.info(f"{run_dir.name} is training · {epochs_done(status, epochs)} · this page shows the checkpoint after "
              f"epoch {shown}.", icon=":material/model_training:")  # fmt: skip
    right.button("Refresh", key="training_notice_refresh", icon=":material/refresh:",
                 help="Show the newest checkpoint (the map is computed again).")  # fmt: skip


FOLLOW = "explore_follow"


def follow_training(run_dir: Path, checkpoint: str) -> bool:
    """While the run trains: a toggle on Explore to follow it. On, the page reruns when a newer checkpoint lands
    and its map starts from the one shown (``ui.maps.continued``); off, the page stays on its map until a setting
    changes or Refresh. Returns whether it follows."""
    if jobs.refresh_status(run_dir).get("state") not in jobs.ACTIVE_STATES:
        return False
    on = st.toggle("Follow the training", key=FOLLOW,
                   help="Show each new checkpoint's map as it lands, started from the map shown (UMAP begins at "
                   "its layout, PCA is turned onto it): items move only as far as the model moved them.")  # fmt: skip
    if on:
        _watch(run_dir, checkpoint)
    return on


@st.fragment(run_every=2.0)
def _watch(run_dir: Path, checkpoint: str) -> None:
    if rf.checkpoint_id(run_dir) != checkpoint:
        st.rerun()  # the whole page: the newest checkpoint's map
