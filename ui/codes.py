"""A large map's codes, encoded in the background: the page says how far it got and how long is left.

A map of ``cache.BACKGROUND_CODES`` items or more (the sprites' full grid is 737,280) takes the encoder tens of
seconds on 2 cores. One background thread encodes it (a job per run, checkpoint, split and size, shared by every
session) and keeps the codes on disk beside the run's maps (``vae.projection.cache.write_codes``), so the next
visit, and a restarted server, open the map without encoding again.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import streamlit as st

from vae.data import Dataset
from vae.models import VAE

from . import cache


@st.cache_resource(max_entries=8, show_spinner=False)
def _slot(path: str, checkpoint: str, split: str, n: int) -> dict:
    """One encoding's state, shared by sessions: "lock"; "job" (a Future) once started; "progress" (fraction,
    words); "began" (its start, for the time left)."""
    return {"lock": threading.Lock(), "progress": (0.0, "starting")}


@st.cache_resource(show_spinner=False)
def _encoder() -> ThreadPoolExecutor:
    """One thread for every large encoding: two at once would share the same 2 cores and both take longer."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="explore-encode")


def pending(run_dir: Path, model: VAE, ds: Dataset, checkpoint: str, split: str, max_points: int | None) -> bool:
    """Whether the map's codes are still being encoded in the background (the encoding is started here when it is
    needed); False when ``cache.latent_params`` answers at once: a small map, or codes kept on disk. An encoding
    that failed raises its error (the page shows it) and is tried again on the next visit."""
    n = ds.split_size(split)
    count = min(max_points, n) if max_points else n  # on every rerun: no shuffle of the split to count its rows
    if count < cache.BACKGROUND_CODES or cache.codes_kept(str(run_dir), checkpoint, split, count):
        return False
    slot = _slot(str(run_dir), checkpoint, split, count)
    with slot["lock"]:
        if slot.get("finished"):  # encoded, but not kept (a full disk): latent_params encodes it in the page
            return False
        if "job" not in slot:
            slot["began"] = time.perf_counter()

            def report(fraction: float, message: str) -> None:
                spent = time.perf_counter() - slot["began"]
                left = f" · about {spent / fraction * (1 - fraction):.0f} s left" if 0.02 < fraction < 1 else ""
                slot["progress"] = (min(max(fraction, 0.0), 1.0), message + left)

            rows = cache.map_rows(ds, split, max_points)
            slot["job"] = _encoder().submit(cache.encode_rows, run_dir, model, ds, checkpoint, split, rows, report)
        job = slot["job"]
        if job.done():
            del slot["job"]  # a failure is tried again on the next visit
            slot["progress"] = (0.0, "starting")
            job.result()  # raises the encoding's error
            slot["finished"] = True
            return False
    return True


@st.fragment(run_every=0.5)
def progress(run_dir: Path, checkpoint: str, split: str, n: int) -> None:
    """The encoding's progress bar; the page reruns once the codes are ready."""
    slot = _slot(str(run_dir), checkpoint, split, n)
    job = slot.get("job")
    if job is None or job.done():
        st.rerun()
    fraction, message = slot["progress"]
    st.progress(fraction, text=f"Encoding the {n:,} items of this map once, in the background ({message}); "
                "their codes are kept with the run, so the next visit opens the map at once.")  # fmt: skip
