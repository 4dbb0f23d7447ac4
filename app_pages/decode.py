"""Decode: one slider per latent dimension, the decoded item live, a traversal grid, and samples of the prior.

Start from zero, a test item's posterior mean or a point handed over by Explore (Random draws a prior sample;
or open one from the grid of prior samples at the bottom), move the sliders and watch the decoder's output (the
point and its controls: ``ui.decoder.point``). For images the sliders and a 2-D pad decode in the browser while dragged
(``ui.decoder``) and send the point back on release; otherwise, or when switched off, Streamlit sliders decode
on the server. Only the decode panel (a fragment) reruns on a slider step; KL per dimension is cached per
checkpoint. Tests read ``decode_last``, ``decode_prior_samples`` and ``decode_opened_sample``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ui import attributes, cache, conditional, decoder, posterior, state
from ui.decoder.point import (
    BROWSER_KEY,
    FAILED_KEY,
    INDEX_KEY,
    LAST_KEY,
    LIMIT,
    LIVE_KEY,
    MODE_KEY,
    POINT_KEY,
    PREFER_KEY,
    VERSION_KEY,
    apply,
    held_caption,
    init_state,
    on_browser_failed,
    on_browser_release,
    sliders,
    ss,
    start_controls,
)  # fmt: skip
from ui.decoder.views import CELL_PX, DISPLAY_PX, download_png, show_decoded, show_traversal
from ui.pictures import decode, enlargement, picture
from ui.sidebar import current_run
from vae.data import Dataset
from vae.models import VAE
from vae.runs import folder as rf

MAX_SLIDERS = 16  # larger latents: the dimensions with the most KL get sliders, the rest are held


def browser_choice(model: VAE) -> bool:
    """Whether this panel decodes in the browser: a toggle, off (with the reason) where the browser cannot."""
    reason = decoder.unsupported(model)
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


def browser_panel(run_dir: Path, model: VAE, ds: Dataset, kl: np.ndarray, shown: list[int], held: list[int]) -> None:
    """Start controls, then sliders, a 2-D pad and the image, decoded in the browser while dragged."""
    controls, original = st.columns([2, 3], gap="large")
    with controls:
        start_controls(model, ds)
    if ss.get(MODE_KEY) == "item":
        item = ds.x_test[int(ss.get(INDEX_KEY, 0))].numpy()
        png = picture(item, scale=enlargement(item.shape, CELL_PX * 2))
        original.image(png, caption="Test item", output_format="PNG")
    ss.setdefault(VERSION_KEY, 0)
    decoder.panel(
        run_dir,
        z=ss[POINT_KEY],
        version=ss[VERSION_KEY],
        dims=shown,
        labels=[f"z{d} · KL {kl[d]:.2f}" for d in shown],
        pad=(shown[0], shown[1 % len(shown)]),
        limit=LIMIT,
        px=DISPLAY_PX,
        key=LIVE_KEY,
        on_release=on_browser_release,
        on_failed=on_browser_failed,
    )
    held_caption(held)
    z = np.asarray(ss[POINT_KEY], dtype=np.float32)  # (latent_dim,): the point released last
    item = decode(model, z[None])[0]  # (*item_shape)
    ss[LAST_KEY] = item
    png = picture(item, scale=enlargement(item.shape, DISPLAY_PX))
    download_png(png, run_dir.name, "Download PNG of the released point")


def server_panel(run_dir: Path, model: VAE, ds: Dataset, kl: np.ndarray, shown: list[int], held: list[int]) -> None:
    """Start controls, Streamlit sliders and the item the server decodes after each release."""
    controls, view = st.columns([2, 3], gap="large")
    with controls:
        start_controls(model, ds)
        sliders(shown, held, kl)
    z = np.asarray(ss[POINT_KEY], dtype=np.float32)  # (latent_dim,)
    item = decode(model, z[None])[0]  # (*item_shape)
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
    attributes.axis_slider(run_dir, rf.checkpoint_id(run_dir), model.cfg.latent_dim, lambda: ss[POINT_KEY], apply)
    state.set_link_vector(ss[POINT_KEY])  # the point lives in the URL: a copied link reopens it
    z = np.asarray(ss[POINT_KEY], dtype=np.float32)
    conditional.every_class(model, ds, z)  # a conditional VAE: this style drawn in every class
    show_traversal(model, ds, z, shown, run_dir.name)


# ---------------------------------------------------------------- the page

st.title("Decode")
run_dir, model = cache.require_model(current_run())
ds = cache.require_data(run_dir)
latent_dim = model.cfg.latent_dim
kl = cache.kl_by_dimension(str(run_dir), rf.checkpoint_id(run_dir))
order = [int(d) for d in np.argsort(-kl, kind="stable")]  # most KL first
shown, held = order[:MAX_SLIDERS], sorted(order[MAX_SLIDERS:])
if POINT_KEY not in ss and (linked := state.link_vector(latent_dim)):  # a new session opened from a link
    state.hand_to_decode(linked)
init_state(run_dir, latent_dim)
st.caption(
    f"Run **{run_dir.name}** · {latent_dim} latent dimensions, sliders ordered by KL (most informative first)"
    + (f"; the {len(held)} with the least KL are held" if held else "")
)
decode_panel(run_dir, model, ds, kl, shown, held)


@st.fragment
def prior_samples(model: VAE) -> None:
    """Decoded samples of the prior N(0, I); "Open" makes one the point decoded above."""
    with st.container(key="decode_prior"):
        prior_section(model)


def prior_section(model: VAE) -> None:
    st.subheader("Sample from the prior")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    temperature = left.slider(
        "Temperature", 0.0, 2.0, 1.0, 0.1, key="decode_temperature",
        help="The scale of ε in z = temperature · ε: 1 samples the prior itself; lower stays nearer its centre.",
    )  # fmt: skip
    if right.button("New samples", key="decode_new_samples", icon=":material/casino:"):
        ss["decode_prior_seed"] = ss.get("decode_prior_seed", 0) + 1
    posterior.sample_grid(model, temperature, ss.get("decode_prior_seed", 0), on_open=open_sample)


def open_sample(z: np.ndarray) -> None:
    apply(z, start=True)
    ss["decode_opened_sample"] = [float(v) for v in z]
    st.toast("That sample is now the point: the sliders and the picture at the top of the page show it.",
             icon=":material/north:")  # fmt: skip  # they are off-screen from here


prior_samples(model)
