"""Home: what the app does, and a one-click demo model for a fresh install."""

import time

import streamlit as st

import ui
from vae import jobs
from vae import run as rf
from vae.config import DataConfig, TrainConfig
from vae.train import new_run

DEMO = {"latent_dim": 8, "hidden": (128,)}
DEMO_TRAIN = TrainConfig(epochs=40, batch_size=64, lr=3e-3, log_every=10)

st.title("Latent Explorer")
st.write(
    "Train a small variational autoencoder, then walk around its latent space: see the map of "
    "the codes, click anywhere on it to decode that point, drag a slider per latent dimension, and "
    "interpolate between two items."
)

if not rf.run_names(ui.runs_root()):
    st.subheader("Start here")
    st.write(
        "There are no models yet. Train a quick demo on scikit-learn's 8×8 digits "
        "(about 10 seconds on a laptop), or choose your own data and model on the Train page."
    )
    if st.button("Train a demo model", type="primary"):
        from vae.data import load_dataset

        cfg = DataConfig(name="digits")
        run_dir = new_run(ui.runs_root(), "demo-digits", load_dataset(cfg), cfg, train_cfg=DEMO_TRAIN, **DEMO)
        try:
            jobs.start(run_dir)
        except ValueError as e:
            st.error(str(e))
            st.stop()
        ui.select_run(run_dir.name)
        bar = st.progress(0.0, text="Starting…")
        status = {}
        for _ in range(1200):
            status = jobs.refresh_status(run_dir)
            done = status.get("step", 0) / max(1, status.get("total_steps") or 1)
            bar.progress(
                min(1.0, done), text=f"Training the demo: epoch {status.get('epoch', 0)} of {DEMO_TRAIN.epochs}"
            )
            if status.get("state") not in jobs.ACTIVE_STATES:
                break
            time.sleep(0.25)
        if status.get("state") == "finished":
            st.switch_page("app_pages/explore.py")
        st.error(status.get("message") or "The demo did not finish.")
else:
    run = ui.current_run()
    st.write(f"Selected run: **{run.name if run else '—'}** (change it in the sidebar).")
    cols = st.columns(4)
    cols[0].page_link("app_pages/train.py", label="Train a model", icon=":material/model_training:")
    cols[1].page_link("app_pages/explore.py", label="Explore the map", icon=":material/scatter_plot:")
    cols[2].page_link("app_pages/decode.py", label="Decode with sliders", icon=":material/tune:")
    cols[3].page_link("app_pages/interpolate.py", label="Interpolate", icon=":material/timeline:")
