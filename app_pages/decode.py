"""Decode: one slider per latent dimension, the decoded item live, and a traversal grid.

Start from zero, a prior sample, a test item's posterior mean or a point chosen on another page
(``st.session_state["decode_z"]``, a list of floats), move the sliders and watch the decoder's output.
For images the sliders and a 2-D pad decode in the browser while dragged (live_decoder.py) and send the
point back on release; otherwise, or when switched off, Streamlit sliders decode on the server.
Only the decode panel (a fragment) reruns on a slider step; KL per dimension is cached per checkpoint.
The current point lives in ``st.session_state["decode_point"]`` (all dimensions, exact values) and
the decoded item in ``st.session_state["decode_last"]``; the sliders are views onto the point.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

import live_decoder
import ui
from vae import run as rf
from vae.data import Dataset
from vae.evaluate import encode, kl_per_dimension
from vae.latent import traversal_latents
from vae.models import VAE

MAX_SLIDERS = 16  # larger latents: the dimensions with the most KL get sliders, the rest are held
LIMIT, STEP = 3.0, 0.05  # slider range -LIMIT..LIMIT
TRAVERSAL_STEPS = 9
KL_SUBSET = 2000  # test items used to rank dimensions by KL
DISPLAY_PX, CELL_PX = 256, 64  # on-screen side of the decoded image and of a traversal cell
DECODED_ALT = "decoded image"

HANDOFF_KEY = "decode_z"  # set by other pages (Explore): a latent point to start from
POINT_KEY, START_KEY, LAST_KEY = "decode_point", "decode_start", "decode_last"
TRAVERSAL_KEY = "decode_traversal"  # the traversal's decoded items, (rows * steps, *item_shape)
MODE_KEY, INDEX_KEY = "decode_mode", "decode_index"  # widgets
HOW_KEY = "decode_how"  # {"mode", "index"}: survives page switches, unlike widget state
OWNER_KEY, SEEN_KEY = "decode_owner", "decode_seen_z"
BROWSER_KEY, LIVE_KEY = "decode_in_browser", "decode_live"  # the toggle; the in-browser decoder component
PREFER_KEY = "decode_prefer_browser"  # the toggle's last value: survives page switches, unlike widget state
VERSION_KEY = "decode_version"  # bumped whenever Python moves the point, so the browser adopts it
FAILED_KEY = "decode_browser_failed"  # why the browser could not decode, once it said so
MODES = {"zero": "Zero", "prior": "Prior sample", "item": "Data item", "handoff": "Point from Explore"}

ss = st.session_state


def slider_key(d: int) -> str:
    return f"decode_dim_{d}"


@st.cache_data(max_entries=16, show_spinner="Measuring KL per dimension…")
def kl_by_dimension(path: str, checkpoint: str) -> np.ndarray:
    """Mean KL of each latent dimension over the first test items, (latent_dim,); cached per checkpoint."""
    run_dir = Path(path)
    model, x = ui.model_for(run_dir), ui.dataset_for(run_dir).x_test[:KL_SUBSET]
    if len(x) == 0:
        return np.zeros(model.cfg.latent_dim, dtype=np.float32)
    return kl_per_dimension(model, x)


def _handoff(latent_dim: int) -> list[float] | None:
    """The point another page left in session state, if it fits this model."""
    z = ss.get(HANDOFF_KEY)
    try:
        arr = np.asarray(z, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    ok = z is not None and arr.shape == (latent_dim,) and np.isfinite(arr).all()
    return arr.tolist() if ok else None


# ---------------------------------------------------------------- state changes (callbacks)


def _apply(z: Sequence[float], start: bool = False) -> None:
    """Make ``z`` the current point (and the start point), moving every slider to it."""
    z = [float(v) for v in z]
    ss[POINT_KEY] = z
    ss[VERSION_KEY] = ss.get(VERSION_KEY, 0) + 1
    if start:
        ss[START_KEY] = list(z)
    for d, v in enumerate(z):
        ss[slider_key(d)] = float(np.clip(v, -LIMIT, LIMIT))


def _start_point(mode: str, index: int, model: VAE, ds: Dataset) -> list[float]:
    dim = model.cfg.latent_dim
    if mode == "prior":
        return np.random.default_rng().standard_normal(dim).tolist()
    if mode == "item":
        mu, _ = encode(model, ds.x_test[index : index + 1])  # (1, latent_dim)
        return mu[0].tolist()
    if mode == "handoff":
        return _handoff(dim) or [0.0] * dim
    return [0.0] * dim


def _on_start(model: VAE, ds: Dataset) -> None:
    how = {"mode": ss.get(MODE_KEY, "zero"), "index": int(ss.get(INDEX_KEY, ss[HOW_KEY]["index"]))}
    ss[HOW_KEY] = how
    _apply(_start_point(how["mode"], how["index"], model, ds), start=True)


def _on_slider(d: int) -> None:
    ss[POINT_KEY][d] = float(ss[slider_key(d)])


def _on_random(latent_dim: int) -> None:
    _apply(np.random.default_rng().standard_normal(latent_dim))


def _on_reset() -> None:
    _apply(ss[START_KEY])


def _on_browser_release() -> None:
    """The browser sent the point it settled on: it becomes the current point (sliders follow)."""
    value = live_decoder.released(LIVE_KEY)
    if not value or value.get("version") != ss.get(VERSION_KEY):
        return  # a point from before Python last moved it
    z = value.get("z")
    if isinstance(z, list) and len(z) == len(ss[POINT_KEY]) and all(isinstance(v, (int, float)) for v in z):
        ss[POINT_KEY] = [float(v) for v in z]
        for d, v in enumerate(ss[POINT_KEY]):
            ss[slider_key(d)] = float(np.clip(v, -LIMIT, LIMIT))


def _on_browser_failed() -> None:
    ss[FAILED_KEY] = live_decoder.failure(LIVE_KEY) or "unknown error"
    ss[BROWSER_KEY] = ss[PREFER_KEY] = False


def init_state(run_dir: Path, latent_dim: int) -> None:
    """Fresh state for a newly selected model; a new point from another page becomes the start."""
    if ss.get(OWNER_KEY) != (str(run_dir), latent_dim):
        ss[OWNER_KEY] = (str(run_dir), latent_dim)
        ss[HOW_KEY] = {"mode": "zero", "index": 0}
        _apply([0.0] * latent_dim, start=True)
    z = _handoff(latent_dim)
    if z is not None and z != ss.get(SEEN_KEY):
        ss[SEEN_KEY] = z
        ss[HOW_KEY] = {**ss[HOW_KEY], "mode": "handoff"}
        ss[MODE_KEY] = "handoff"
        _apply(z, start=True)


# ---------------------------------------------------------------- the panel


def start_controls(model: VAE, ds: Dataset) -> None:
    available = {"handoff": _handoff(model.cfg.latent_dim) is not None, "item": len(ds.x_test) > 0}
    modes = [m for m in MODES if available.get(m, True)]
    if ss.get(MODE_KEY) not in modes:
        ss[MODE_KEY] = ss[HOW_KEY]["mode"] if ss[HOW_KEY]["mode"] in modes else "zero"
    mode = st.radio(
        "Start from", modes, key=MODE_KEY, format_func=MODES.get, horizontal=True, on_change=_on_start, args=(model, ds)
    )
    if mode == "item":
        ss.setdefault(INDEX_KEY, min(ss[HOW_KEY]["index"], len(ds.x_test) - 1))
        index = st.number_input(
            "Test item", 0, len(ds.x_test) - 1, step=1, key=INDEX_KEY, on_change=_on_start, args=(model, ds)
        )
        if ds.y_test is not None:
            st.caption(f"Label: **{ui.label_name(ds, int(ds.y_test[index]))}** · its posterior mean fills the sliders")
    elif mode == "handoff":
        st.info("Starting from the latent point chosen on the Explore page.", icon=":material/call_received:")
    reset, rand = st.columns(2)
    reset.button(
        "Reset", icon=":material/restart_alt:", on_click=_on_reset, width="stretch", help="Back to the start point"
    )
    rand.button(
        "Random",
        icon=":material/casino:",
        on_click=_on_random,
        args=(model.cfg.latent_dim,),
        width="stretch",
        help="A sample from the prior N(0, I)",
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
            on_change=_on_slider,
            args=(d,),
        )
    point = ss[POINT_KEY]
    outside = [f"z{d} = {point[d]:.2f}" for d in shown if abs(point[d]) > LIMIT]
    if outside:
        st.caption(f"Outside the slider range (the slider shows ±{LIMIT:g}): {', '.join(outside)}")
    held_caption(held)


def _scale(item_shape: Sequence[int], px: int) -> int:
    return max(1, px // max(item_shape[-2:]))


def _feature_names(ds: Dataset, n: int) -> list[str]:
    return list(ds.feature_names) if ds.feature_names and len(ds.feature_names) == n else [f"x{i}" for i in range(n)]


def show_decoded(item: np.ndarray, ds: Dataset, name: str) -> None:
    """The decoded item: an enlarged picture (images) or a feature table in original units (vectors)."""
    if ds.is_image:
        png = ui.picture(item, scale=_scale(item.shape, DISPLAY_PX))
        cols = st.columns(2 if ss.get(MODE_KEY) == "item" else 1)
        cols[0].image(png, caption="Decoded", alt=DECODED_ALT)
        if len(cols) > 1:
            original = ds.x_test[int(ss.get(INDEX_KEY, 0))].numpy()
            cols[1].image(ui.picture(original, scale=_scale(original.shape, DISPLAY_PX)), caption="Test item")
        download_png(png, name)
    else:
        table = pd.DataFrame({"decoded": ds.to_original_units(item[None])[0]}, index=_feature_names(ds, item.size))
        st.dataframe(table, width="content")
        st.download_button(
            "Download CSV",
            table.T.to_csv(index=False),
            file_name=f"{name}-decoded.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )


def show_traversal(model: VAE, ds: Dataset, z: np.ndarray, shown: Sequence[int], name: str) -> None:
    """Each shown dimension swept from -LIMIT to +LIMIT, the others held at ``z``: one row per dimension."""
    steps = np.linspace(-LIMIT, LIMIT, TRAVERSAL_STEPS, dtype=np.float32)
    items = ui.decode(model, traversal_latents(z, shown, steps))  # (len(shown) * steps, *item_shape)
    ss[TRAVERSAL_KEY] = items
    st.subheader("Traversal")
    rows = ", ".join(f"z{d}" for d in shown)
    st.caption(f"Rows top to bottom: {rows}. Columns: {-LIMIT:+g} … {LIMIT:+g}; other dimensions held where they are.")
    if ds.is_image:
        png = ui.grid_picture(items, ncol=TRAVERSAL_STEPS, scale=_scale(items.shape, CELL_PX))
        st.image(png, alt="traversal grid")
        st.download_button(
            "Download grid PNG",
            png,
            file_name=f"{name}-traversal.png",
            mime="image/png",
            on_click="ignore",
            icon=":material/download:",
        )
    else:
        values = ds.to_original_units(items.reshape(len(items), -1))  # (rows * steps, D)
        index = [f"z{d} = {v:+.2f}" for d in shown for v in steps]
        table = pd.DataFrame(values, index=index, columns=_feature_names(ds, values.shape[1]))
        st.dataframe(table, height=320)
        st.download_button(
            "Download traversal CSV",
            table.to_csv(),
            file_name=f"{name}-traversal.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )


def browser_choice(model: VAE) -> bool:
    """Whether this panel decodes in the browser: a toggle, off (with the reason) where the browser cannot."""
    reason = live_decoder.unsupported(model)
    if reason:
        st.caption(f"Decoding on the server: {reason}.")
        return False
    if FAILED_KEY in ss:
        st.warning(
            f"The browser could not run this decoder ({ss[FAILED_KEY]}); decoding on the server instead.",
            icon=":material/warning:",
        )
    if BROWSER_KEY not in ss:
        ss[BROWSER_KEY] = ss.get(PREFER_KEY, True)
    return st.toggle(
        "Decode in the browser while dragging",
        key=BROWSER_KEY,
        on_change=lambda: ss.update({PREFER_KEY: ss[BROWSER_KEY]}),
        help="The decoder runs in this page and redraws on every move; off: the server decodes on release.",
    )


def held_caption(held: Sequence[int]) -> None:
    if held:
        point = ss[POINT_KEY]
        st.caption(
            f"Held at their values ({len(held)}, least KL): " + ", ".join(f"z{d} = {point[d]:.2f}" for d in held)
        )


def download_png(png: bytes, name: str, label: str = "Download PNG") -> None:
    st.download_button(
        label, png, file_name=f"{name}-decoded.png", mime="image/png", on_click="ignore", icon=":material/download:"
    )


def browser_panel(run_dir: Path, model: VAE, ds: Dataset, kl: np.ndarray, shown: list[int], held: list[int]) -> None:
    """Start controls, then sliders, a 2-D pad and the image, decoded in the browser while dragged."""
    controls, original = st.columns([2, 3], gap="large")
    with controls:
        start_controls(model, ds)
    if ss.get(MODE_KEY) == "item":
        item = ds.x_test[int(ss.get(INDEX_KEY, 0))].numpy()
        original.image(ui.picture(item, scale=_scale(item.shape, CELL_PX * 2)), caption="Test item")
    ss.setdefault(VERSION_KEY, 0)
    live_decoder.panel(
        run_dir,
        z=ss[POINT_KEY],
        version=ss[VERSION_KEY],
        dims=shown,
        labels=[f"z{d} · KL {kl[d]:.2f}" for d in shown],
        pad=(shown[0], shown[1 % len(shown)]),
        limit=LIMIT,
        px=DISPLAY_PX,
        key=LIVE_KEY,
        on_release=_on_browser_release,
        on_failed=_on_browser_failed,
    )
    held_caption(held)
    z = np.asarray(ss[POINT_KEY], dtype=np.float32)  # (latent_dim,): the point released last
    item = ui.decode(model, z[None])[0]  # (*item_shape)
    ss[LAST_KEY] = item
    png = ui.picture(item, scale=_scale(item.shape, DISPLAY_PX))
    download_png(png, run_dir.name, "Download PNG of the released point")


def server_panel(run_dir: Path, model: VAE, ds: Dataset, kl: np.ndarray, shown: list[int], held: list[int]) -> None:
    """Start controls, Streamlit sliders and the item the server decodes after each release."""
    controls, view = st.columns([2, 3], gap="large")
    with controls:
        start_controls(model, ds)
        sliders(shown, held, kl)
    z = np.asarray(ss[POINT_KEY], dtype=np.float32)  # (latent_dim,)
    item = ui.decode(model, z[None])[0]  # (*item_shape)
    ss[LAST_KEY] = item
    with view:
        show_decoded(item, ds, run_dir.name)


@st.fragment
def decode_panel(run_dir: Path, model: VAE, ds: Dataset, kl: np.ndarray, shown: list[int], held: list[int]) -> None:
    """The point's controls and its decoded item; a slider step reruns only this panel."""
    if browser_choice(model):
        browser_panel(run_dir, model, ds, kl, shown, held)
    else:
        server_panel(run_dir, model, ds, kl, shown, held)
    z = np.asarray(ss[POINT_KEY], dtype=np.float32)
    show_traversal(model, ds, z, shown, run_dir.name)


# ---------------------------------------------------------------- the page

st.title("Decode")
run_dir, model = ui.require_model()
ds = ui.require_data(run_dir)
latent_dim = model.cfg.latent_dim
kl = kl_by_dimension(str(run_dir), rf.checkpoint_id(run_dir))
order = [int(d) for d in np.argsort(-kl, kind="stable")]  # most KL first
shown, held = order[:MAX_SLIDERS], sorted(order[MAX_SLIDERS:])
init_state(run_dir, latent_dim)
st.caption(
    f"Run **{run_dir.name}** · {latent_dim} latent dimensions, sliders ordered by KL (most informative first)"
    + (f"; the {len(held)} with the least KL are held" if held else "")
)
decode_panel(run_dir, model, ds, kl, shown, held)
