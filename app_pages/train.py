"""Train: choose data and a model, start a background training, and watch it live.

The form's values become configs in ``ui.forms``; the run's panels (live while it trains, final after)
and the Start / Pause / Resume / Stop actions are ``ui.training``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st
import torch

from ui import forms, state, training
from ui.cache import load_data
from ui.pictures import enlargement, grid_picture
from ui.runtime import runs_root
from ui.sidebar import current_run
from ui.text import plain
from vae.config import CONV_SIZES, FAMILIES, FAMILY_TEXT, MAX_LATENT, MAX_PSEUDO_INPUTS
from vae.data import Dataset, available_datasets
from vae.distributed import native_bf16
from vae.models import build_model, count_parameters
from vae.runs import folder as rf
from vae.runs import jobs


def data_section() -> Dataset | None:
    """Widgets choosing the data; returns the loaded data (None after a shown message)."""
    source = st.radio("Data", forms.SOURCES, horizontal=True, key="train_source")
    if source == forms.SOURCES[0]:
        info = {d["name"]: d for d in available_datasets() if d["name"] != "file"}
        name = st.selectbox(
            "Dataset",
            list(info),
            key="train_dataset",
            format_func=lambda n: n if info[n]["available"] else f"{n} (not available here)",
            on_change=lambda: forms.apply_defaults(st.session_state["train_dataset"]),
        )
        st.caption(info[name]["description"])
        if not info[name]["available"]:
            st.warning(info[name]["how_to_get"])
            forms.offer_download(name)  # where the machine reaches the internet, one click instead of the terminal
            return None
        if name == "sprites":
            c1, c2 = st.columns(2)
            c1.selectbox("Sprite size", [32, 64], key="train_sprite_size")
            c2.number_input("Sprites", 1000, 200_000, step=1000, key="train_sprite_count")
    else:
        upload = st.file_uploader(
            "A .npz / .npy array (N×H×W, N×H×W×C or N×D), a .csv of numbers, or a .zip of PNG/JPEG images "
            "(one sub-folder per class)",
            type=forms.UPLOAD_TYPES,
            key="train_upload",
        )
        if upload is None:
            st.info("Upload a file to train on your own data.")
            return None
        suffix = Path(upload.name).suffix.lower()
        if suffix == ".csv":
            stored = forms.save_upload(upload)
            columns = forms.csv_columns(stored)
            if st.session_state.get("train_label_for") != stored.name:  # a new file: guess its label column
                st.session_state["train_label_for"] = stored.name
                guess = [c for c in columns if c.lower() in forms.LABEL_NAMES]
                st.session_state["train_label_col"] = guess[0] if guess else forms.NO_LABEL
            st.selectbox(
                "Label column (optional)",
                [forms.NO_LABEL, *columns],
                key="train_label_col",
                help="Labels colour the latent map; they are not used for training.",
            )
        elif suffix == ".zip":
            st.selectbox(
                "Resize images to",
                [None, 28, 32, 64],
                key="train_resize",
                format_func=lambda s: "keep their size" if s is None else f"{s}×{s}",
            )
    cfg = forms.data_config(st.session_state)
    try:
        return load_data(cfg)
    except (ValueError, FileNotFoundError, OSError) as e:
        message = str(e)
        if cfg.name == "file":  # name the file as the person knows it, not the stored copy
            message = message.replace(str(cfg.path), upload.name)
        st.error(plain(message))
        return None


def preview(ds: Dataset) -> None:
    what = forms.shape_text(ds)
    classes = f", {len(ds.label_names)} classes" if ds.label_names else ", no labels"
    st.caption(f"{len(ds.x_train):,} training and {len(ds.x_test):,} test {what}{classes}.")
    if ds.is_image:
        side = ds.item_shape[-1]
        n, ncol = (32, 16) if side <= 32 else (16, 8)
        st.image(grid_picture(ds.x_train[:n].numpy(), ncol=ncol, scale=enlargement(side, 40)), output_format="PNG")
    else:
        import pandas as pd

        rows = ds.to_original_units(ds.x_train[:6])  # six training rows, in the file's own units
        st.dataframe(pd.DataFrame(rows, columns=ds.feature_names).round(4) + 0.0, hide_index=True)  # + 0.0: no -0


def model_section(ds: Dataset) -> bool:
    """Widgets choosing the model and the training; True when they make valid configs."""
    if not forms.conv_possible(ds.item_shape) and st.session_state.get("train_arch") == "conv":
        st.session_state["train_arch"] = "mlp"
    archs = ["mlp", "conv"] if forms.conv_possible(ds.item_shape) else ["mlp"]
    arch = st.radio("Architecture", archs, format_func=forms.ARCH_LABELS.get, horizontal=True, key="train_arch")
    if len(archs) == 1:
        sides = f"{', '.join(map(str, CONV_SIZES[:-1]))} or {CONV_SIZES[-1]}"
        st.caption(f"A convolutional model needs square images of side {sides}; these are {forms.shape_text(ds)}.")
    family = st.radio("Model family", FAMILIES, format_func=forms.FAMILY_LABELS.get, horizontal=True,
                      key="train_family")  # fmt: skip
    st.caption(FAMILY_TEXT[family])
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.number_input("Latent dimensions", 1, MAX_LATENT, key="train_latent")
    if arch == "mlp":
        c2.text_input("Hidden layer widths", key="train_hidden", help="Comma-separated, e.g. 512, 256.")
    else:
        c2.text_input("Conv channels", key="train_channels", help="One stride-2 layer per entry.")
    if family == "iwae":
        c3.number_input("Importance samples K", 1, 1000, key="train_iwae_k", help=forms.IWAE_K_HELP)
    else:
        beta = "β (weight of the total correlation)" if family == "beta-tcvae" else "β (weight of the KL term)"
        c3.number_input(beta, 0.0, 1000.0, step=0.5, key="train_beta")
        c4.number_input("KL warm-up (epochs)", 0.0, 10_000.0, step=1.0, key="train_warmup",
                        help="β grows from 0 over these epochs.")  # fmt: skip
    if family == "vampprior":
        c5.number_input("Pseudo-inputs K", 1, MAX_PSEUDO_INPUTS, key="train_pseudo", help=forms.PSEUDO_HELP)
    if family == "vae":
        c5.number_input("Free bits (nats)", 0.0, 10.0, step=0.25, key="train_free_bits", help=forms.FREE_BITS_HELP)
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Epochs", 1, 10_000, key="train_epochs")
    c2.number_input("Batch size", 1, 65_536, step=16, key="train_batch")
    c3.select_slider("Learning rate", forms.LEARNING_RATES, format_func=lambda v: f"{v:g}", key="train_lr")
    c4.text_input("Run name", key="train_name", placeholder="named after data, model and latent size")
    c1, c2 = st.columns(2)
    if native_bf16() or st.session_state.get("train_bf16"):  # offered where the CPU multiplies bfloat16 itself
        c1.toggle("Faster arithmetic (bfloat16)", key="train_bf16", help=forms.BF16_HELP)
    cores = os.cpu_count() or 1
    if cores >= forms.MIN_CORES_FOR_PROCS:  # several processes: only where the machine has the cores
        procs = c2.number_input("Processes", 1, cores, step=1, key="train_procs", help=forms.PROCS_HELP)
        if procs > cores // 2:
            c2.caption(f"{procs} processes on {cores} cores leave each under 2 threads: fewer processes may train "
                       "faster here.")  # fmt: skip
    else:
        st.session_state["train_procs"] = 1
    try:
        model_cfg, _, name = forms.model_configs(st.session_state, ds)
        given = rf.available_name(runs_root(), name)  # what create_run will call it: "…-2" when the name is taken
    except ValueError as e:
        st.error(plain(e))
        return False
    with torch.device("meta"):  # count without allocating
        n_params = count_parameters(build_model(model_cfg))
    taken = f" ({name!r} is taken)" if given != rf.sanitize_run_name(name) else ""
    st.caption(f"Run {given!r}{taken}: {n_params:,} parameters, {ds.likelihood} likelihood; trains in a background "
               "process.")  # fmt: skip
    return True


def new_run_form() -> None:
    st.subheader("1 · Data")
    ds = data_section()
    if ds is not None:
        preview(ds)
    st.subheader("2 · Model and training")
    if ds is None:
        st.caption("Choose data that loads to set up the model.")
        return
    valid = model_section(ds)
    busy = [p.name for p in jobs.active_runs(runs_root())]
    if busy:
        st.info(f"Training now: {', '.join(busy)}. This machine trains {jobs.max_jobs()} model(s) at a time.")
    st.button(
        "Start training",
        type="primary",
        key="train_start",
        icon=":material/play_arrow:",
        disabled=not valid,
        on_click=training.start_training,
    )
    if msg := st.session_state.pop(training.ERROR_KEY, None):
        st.error(plain(msg))


# ---------------------------------------------------------------- the page

state.keep_widgets(forms.FORM_KEYS)
forms.apply_defaults("digits", force=False)
st.title("Train")
run_dir = current_run()
status = jobs.refresh_status(run_dir) if run_dir else {}
others = [p.name for p in jobs.active_runs(runs_root()) if p != run_dir]
if others:
    st.info(f"{others[0]} is training. Select it in the sidebar to watch it.")
if run_dir is None:  # nothing trained yet: the form is the page
    st.caption("Choose data and a model; training runs in the background and keeps going if you close the tab.")
    new_run_form()
else:  # the selected run first (its state, an alarm at the top); a new run on request, from the preset or a copy
    b1, b2, b3, _ = st.columns([1, 2, 1, 2])
    b1.button("New run", key="train_new", icon=":material/add:", on_click=forms.new_run)
    b2.button(f"New run with {run_dir.name}'s settings", key="train_copy", icon=":material/content_copy:",
              on_click=forms.copy_settings, args=(str(run_dir),))  # fmt: skip
    if st.session_state.get(forms.NEW_FORM_KEY):
        b3.button(
            "Close the form", key="train_close", on_click=lambda: st.session_state.update({forms.NEW_FORM_KEY: False})
        )
        st.subheader("New run")
        st.caption("Training runs in the background and keeps going if you close the tab.")
        new_run_form()
        st.divider()
    training.run_panel(run_dir, status)
