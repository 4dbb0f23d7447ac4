"""Home: what the app does, and a one-click demo model for a fresh install (the digits preset)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import mapview, state
from ui.cache import load_data
from ui.runtime import runs_root
from ui.sidebar import current_run
from vae.config import DEMO_DATA, DataConfig, preset
from vae.runs import folder as rf
from vae.runs import jobs, listing
from vae.runs.folder import new_run

DEMO_KEY, ERROR_KEY = "home_demo", "home_error"  # the demo run this session started; why it could not start


def start_demo() -> None:
    """Create the demo run and start its training process (a button callback)."""
    cfg, p = DataConfig(name=DEMO_DATA), preset(DEMO_DATA)
    try:
        run_dir = new_run(runs_root(), f"demo-{DEMO_DATA}", load_data(cfg), cfg, train_cfg=p.train,
                          latent_dim=p.latent_dim, hidden=p.hidden)  # fmt: skip
        jobs.start(run_dir)
    except (ValueError, FileNotFoundError, OSError) as e:
        st.session_state[ERROR_KEY] = str(e)
        return
    state.select_run(run_dir.name)
    st.session_state[DEMO_KEY] = str(run_dir)


@st.fragment(run_every=0.5)
def demo_progress(run_dir: Path, epochs: int) -> None:
    """The demo's progress, polled; the whole page reruns once it ends (and then opens Explore)."""
    status = jobs.refresh_status(run_dir)
    if status.get("state") not in jobs.ACTIVE_STATES:
        st.rerun(scope="app")
    done = status.get("step", 0) / max(1, status.get("total_steps") or 1)
    st.progress(min(1.0, done), text=f"Training the demo: epoch {status.get('epoch', 0)} of {epochs}")


st.title("Latent Explorer")
st.write(
    "Train a small variational autoencoder, then walk around its latent space: see the map of "
    "the codes, click anywhere on it to decode that point, drag a slider per latent dimension, and "
    "interpolate between two items."
)
demo = Path(st.session_state[DEMO_KEY]) if DEMO_KEY in st.session_state else None
if demo is not None and rf.is_run(demo):
    status = jobs.refresh_status(demo)
    if status.get("state") in jobs.ACTIVE_STATES:
        demo_progress(demo, preset(DEMO_DATA).train.epochs)
        mapview.preload_plotly()  # the demo opens on Explore's map: its Plotly loads meanwhile
        st.stop()
    del st.session_state[DEMO_KEY]
    if status.get("state") == "finished":
        state.switch_page("app_pages/explore.py")
    st.error(status.get("message") or "The demo did not finish.")

if not listing.run_names(runs_root()):
    st.subheader("Start here")
    st.write(
        "There are no models yet. Train a quick demo on scikit-learn's 8×8 digits "
        "(about 10 seconds on a laptop), or choose your own data and model on the Train page."
    )
    st.button("Train a demo model", type="primary", on_click=start_demo)
    if msg := st.session_state.pop(ERROR_KEY, None):
        st.error(msg)
else:
    run = current_run()
    st.write(f"Selected run: **{run.name if run else '—'}** (change it in the sidebar).")
    cols = st.columns(4)
    cols[0].page_link("app_pages/train.py", label="Train a model", icon=":material/model_training:")
    cols[1].page_link("app_pages/explore.py", label="Explore the map", icon=":material/scatter_plot:")
    cols[2].page_link("app_pages/decode.py", label="Decode with sliders", icon=":material/tune:")
    cols[3].page_link("app_pages/interpolate.py", label="Interpolate", icon=":material/timeline:")
