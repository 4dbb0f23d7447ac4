"""The Decode page's current point: where it starts (zero, a data item, a point handed over
by another page), and every way it moves (sliders, Reset, Random, the browser's released point).

The point lives in ``st.session_state["decode_point"]`` (all dimensions, exact values); the sliders are views
onto it, and ``decode_version`` is bumped whenever Python moves it, so the browser's decoder adopts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import streamlit as st

from vae.data import Dataset
from vae.models import VAE

from .. import itempicker, state
from ..pictures import label_name
from ..text import plain
from . import failure, released

LIMIT, STEP = 3.0, 0.05  # slider range -LIMIT..LIMIT
POINT_KEY, START_KEY, LAST_KEY = "decode_point", "decode_start", "decode_last"
MODE_KEY, INDEX_KEY = "decode_mode", "decode_index"  # widgets
HOW_KEY = "decode_how"  # {"mode", "index"}: survives page switches, unlike widget state
OWNER_KEY, SEEN_KEY = "decode_owner", "decode_seen_z"
BROWSER_KEY, LIVE_KEY = "decode_in_browser", "decode_live"  # the toggle; the in-browser decoder component
PREFER_KEY = "decode_prefer_browser"  # the toggle's last value: survives page switches, unlike widget state
VERSION_KEY = "decode_version"  # bumped whenever Python moves the point, so the browser adopts it
FAILED_KEY = "decode_browser_failed"  # why the browser could not decode, once it said so
MODES = {"zero": "Zero", "item": "Data item", "handoff": "Point from Explore"}  # a prior sample: the Random button

ss = st.session_state


def slider_key(d: int) -> str:
    return f"decode_dim_{d}"


def handoff(latent_dim: int) -> list[float] | None:
    """The point another page left in session state, if it fits this model."""
    z = state.decode_handoff()
    try:
        arr = np.asarray(z, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    ok = z is not None and arr.shape == (latent_dim,) and np.isfinite(arr).all()
    return arr.tolist() if ok else None


def apply(z: Sequence[float], start: bool = False) -> None:
    """Make ``z`` the current point (and the start point), moving every slider to it."""
    z = [float(v) for v in z]
    ss[POINT_KEY] = z
    ss[VERSION_KEY] = ss.get(VERSION_KEY, 0) + 1
    if start:
        ss[START_KEY] = list(z)
    for d, v in enumerate(z):
        ss[slider_key(d)] = float(np.clip(v, -LIMIT, LIMIT))


def start_point(mode: str, index: int, model: VAE, ds: Dataset) -> list[float]:
    dim = model.cfg.latent_dim
    if mode == "item":
        mu, _ = model.embed_split(ds, "test", [index])  # (1, latent_dim); a conditional VAE: with its label
        return mu[0].tolist()
    if mode == "handoff":
        return handoff(dim) or [0.0] * dim
    return [0.0] * dim


def on_start(model: VAE, ds: Dataset) -> None:
    how = {"mode": ss.get(MODE_KEY, "zero"), "index": int(ss.get(INDEX_KEY, ss[HOW_KEY]["index"]))}
    ss[HOW_KEY] = how
    apply(start_point(how["mode"], how["index"], model, ds), start=True)


def on_slider(d: int) -> None:
    ss[POINT_KEY][d] = float(ss[slider_key(d)])


def on_random(latent_dim: int) -> None:
    apply(np.random.default_rng().standard_normal(latent_dim))


def on_reset() -> None:
    apply(ss[START_KEY])


def on_browser_release() -> None:
    """The browser sent the point it settled on: it becomes the current point (sliders follow)."""
    value = released(LIVE_KEY)
    if not value or value.get("version") != ss.get(VERSION_KEY):
        return  # a point from before Python last moved it
    z = value.get("z")
    if isinstance(z, list) and len(z) == len(ss[POINT_KEY]) and all(isinstance(v, (int, float)) for v in z):
        ss[POINT_KEY] = [float(v) for v in z]
        for d, v in enumerate(ss[POINT_KEY]):
            ss[slider_key(d)] = float(np.clip(v, -LIMIT, LIMIT))


def on_browser_failed() -> None:
    ss[FAILED_KEY] = failure(LIVE_KEY) or "unknown error"
    ss[BROWSER_KEY] = ss[PREFER_KEY] = False


def init_state(run_dir: Path, latent_dim: int) -> None:
    """Fresh state for a newly selected model; a new point from another page becomes the start."""
    if ss.get(OWNER_KEY) != (str(run_dir), latent_dim):
        ss[OWNER_KEY] = (str(run_dir), latent_dim)
        ss[HOW_KEY] = {"mode": "zero", "index": 0}
        apply([0.0] * latent_dim, start=True)
    z = handoff(latent_dim)
    if z is not None and z != ss.get(SEEN_KEY):
        ss[SEEN_KEY] = z
        ss[HOW_KEY] = {**ss[HOW_KEY], "mode": "handoff"}
        ss[MODE_KEY] = "handoff"
        apply(z, start=True)


def start_controls(model: VAE, ds: Dataset) -> None:
    available = {"handoff": handoff(model.cfg.latent_dim) is not None, "item": len(ds.x_test) > 0}
    modes = [m for m in MODES if available.get(m, True)]
    if ss.get(MODE_KEY) not in modes:
        ss[MODE_KEY] = ss[HOW_KEY]["mode"] if ss[HOW_KEY]["mode"] in modes else "zero"
    mode = st.radio(
        "Start from", modes, key=MODE_KEY, format_func=MODES.get, horizontal=True, on_change=on_start, args=(model, ds)
    )
    if mode == "item":
        ss.setdefault(INDEX_KEY, min(ss[HOW_KEY]["index"], len(ds.x_test) - 1))
        if itempicker.browse(ds, "decode_browse", INDEX_KEY) is not None:
            on_start(model, ds)  # the item picked by its picture becomes the start point
        index = st.number_input(
            "Test item", 0, len(ds.x_test) - 1, step=1, key=INDEX_KEY, on_change=on_start, args=(model, ds)
        )
        if ds.y_test is not None:
            st.caption(
                f"Label: **{plain(label_name(ds, int(ds.y_test[index])))}** · its posterior mean fills the sliders"
            )
    elif mode == "handoff":
        st.info("Starting from the latent point chosen on the Explore page.", icon=":material/call_received:")
    reset, rand = st.columns(2)
    reset.button(
        "Reset", icon=":material/restart_alt:", on_click=on_reset, width="stretch", help="Back to the start point"
    )
    rand.button(
        "Random",
        icon=":material/casino:",
        on_click=on_random,
        args=(model.cfg.latent_dim,),
        width="stretch",
        help="A new sample from the prior N(0, I) each click",
    )


def sliders(shown: Sequence[int], held: Sequence[int], kl: np.ndarray) -> None:
    cols = st.columns(2 if len(shown) > 8 else 1)
    for i, d in enumerate(shown):
        ss.setdefault(slider_key(d), float(np.clip(ss[POINT_KEY][d], -LIMIT, LIMIT)))
        cols[i % len(cols)].slider(
            f"z{d} · KL {kl[d]:.2f}",
            -LIMIT,
            LIMIT,
            step=STEP,
            format="%.2f",
            key=slider_key(d),
            on_change=on_slider,
            args=(d,),
        )
    point = ss[POINT_KEY]
    outside = [f"z{d} = {point[d]:.2f}" for d in shown if abs(point[d]) > LIMIT]
    if outside:
        st.caption(f"Outside the slider range (the slider shows ±{LIMIT:g}): {', '.join(outside)}")
    held_caption(held)


def held_caption(held: Sequence[int]) -> None:
    if held:
        point = ss[POINT_KEY]
        st.caption(
            f"Held at their values ({len(held)}, least KL): " + ", ".join(f"z{d} = {point[d]:.2f}" for d in held)
        )
