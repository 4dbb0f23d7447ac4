"""Train: choose data and a model, start a background training, and watch it live.

The training runs in its own process (``vae.jobs``); this page only reads the run folder's files
(``status.json``, ``metrics.jsonl``, ``recon.png``, ``samples.png``), so closing the tab does not
stop it and reloading the page finds it again.
"""

from __future__ import annotations

import io
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.subplots import make_subplots

import ui
from vae import jobs
from vae import run as rf
from vae.config import CONV_SIZES, MAX_LATENT, DataConfig, ModelConfig, TrainConfig
from vae.data import Dataset, available_datasets
from vae.models import build_model, count_parameters
from vae.sources import store_upload

UPLOAD_TYPES = ["npz", "npy", "csv", "zip"]
SOURCES = ["Built-in dataset", "Upload a file"]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
ARCH_LABELS = {"mlp": "MLP", "conv": "Convolutional"}
NO_LABEL = "(no labels)"
LABEL_NAMES = ("label", "labels", "class", "target", "y")
# Per-dataset starting points: applied on the first visit and whenever the built-in dataset changes.
DEFAULTS = {
    "digits": {"latent": 8, "hidden": "128", "epochs": 40, "batch": 64, "lr": 3e-3},
    "fashion-mnist": {"latent": 20, "hidden": "400", "epochs": 10, "batch": 128, "lr": 1e-3},
    "mnist": {"latent": 20, "hidden": "400", "epochs": 10, "batch": 128, "lr": 1e-3},
    "sprites": {"latent": 10, "hidden": "400", "epochs": 10, "batch": 128, "lr": 1e-3},
}
COMMON = {
    "train_arch": "mlp",
    "train_channels": "32, 64",
    "train_beta": 1.0,
    "train_warmup": 0.0,
    "train_sprite_count": 20_000,
}
ERROR_KEY = "train_error"  # a refused start, shown beside the Start button
RUN_ERROR_KEY = "train_run_error"  # a refused pause / resume / stop, shown in the run panel
WATCHED_KEY = "train_watched"  # the run whose live panel this session showed last
SAVED_FORM_KEY = "train_form_saved"  # the last value of each form widget, see keep_form_values
FORM_KEYS = (
    "train_source", "train_dataset", "train_sprite_size", "train_sprite_count", "train_label_col", "train_resize",
    "train_arch", "train_latent", "train_hidden", "train_channels", "train_beta", "train_warmup", "train_epochs",
    "train_batch", "train_lr", "train_name",
)  # fmt: skip


# ---------------------------------------------------------------- small helpers


def keep_form_values() -> None:
    """Keep the choices of widgets hidden in this run (e.g. the model form while the data fails to load).

    Streamlit forgets a widget's value when the widget is not drawn in a run. A copy of each value is kept
    and written back through the Session State API only for keys Streamlit dropped: writing a value back
    on every run would also push it to the browser each time, overwriting what a person is typing while
    an earlier rerun finishes.
    """
    saved = st.session_state.setdefault(SAVED_FORM_KEY, {})
    for key in FORM_KEYS:
        if key in st.session_state:
            saved[key] = st.session_state[key]
        elif key in saved:
            st.session_state[key] = saved[key]


def apply_defaults(name: str, force: bool = True) -> None:
    """Put the dataset's default model choices into the form (``force=False``: only where unset)."""
    d = DEFAULTS.get(name, DEFAULTS["digits"])
    values = {
        **COMMON,
        "train_latent": d["latent"],
        "train_hidden": d["hidden"],
        "train_epochs": d["epochs"],
        "train_batch": d["batch"],
        "train_lr": d["lr"],
    }
    for key, value in values.items():
        if force or key not in st.session_state:
            st.session_state[key] = value


def save_upload(upload) -> Path:
    """Store an uploaded file under the runs folder, named by content so a cached load stays valid.

    Remembered per upload, so a large file is hashed and written once, not on every rerun.
    """
    saved = st.session_state.setdefault("train_saved_uploads", {})
    if upload.file_id in saved and Path(saved[upload.file_id]).is_file():
        return Path(saved[upload.file_id])
    path = store_upload(ui.runs_root(), upload.name, upload.getvalue())
    saved[upload.file_id] = str(path)
    return path


def csv_columns(path: Path) -> list[str]:
    """The header row of a CSV file (empty when unreadable: the loader then says why).

    Read as ``utf-8-sig``, as pandas reads it: Excel's "CSV UTF-8" starts with a byte-order mark,
    which would otherwise stick to the first column's name.
    """
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            return [c.strip() for c in next(csv.reader(f), [])]
    except (OSError, csv.Error):
        return []


def parse_widths(text: str, what: str) -> tuple[int, ...]:
    """``"512, 256"`` -> ``(512, 256)``; a sentence if it is not a list of whole numbers."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{what} must be whole numbers separated by commas, e.g. 512, 256; got {text!r}.") from None


def shape_text(ds: Dataset) -> str:
    """``1×8×8 images`` or ``rows of 3 features``."""
    shape = "×".join(str(s) for s in ds.item_shape)
    return f"images of {shape}" if ds.is_image else f"rows of {ds.item_shape[0]} features"


def conv_possible(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[0] in (1, 3) and shape[1] == shape[2] and shape[1] in CONV_SIZES


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def enlarged_png(path: Path | None, min_width: int = 320) -> bytes | None:
    """A run's picture, enlarged with nearest-neighbour pixels so small images stay crisp."""
    if path is None:
        return None
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _enlarged_png(str(path), stamp, min_width)


@st.cache_data(max_entries=16, show_spinner=False)
def _enlarged_png(path: str, stamp: int, min_width: int) -> bytes | None:
    try:
        img = Image.open(io.BytesIO(Path(path).read_bytes()))
        img.load()
    except (OSError, ValueError):
        return None
    k = -(-min_width // img.width)
    if k > 1:
        img = img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- figures (belong in ui.py)


def loss_figure(steps: list[dict]) -> go.Figure:
    """Training loss, reconstruction and KL per logging window against (fractional) epochs."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [m["epoch"] for m in steps]
    for key, name in (("loss", "loss (−ELBO with β)"), ("recon", "reconstruction")):
        fig.add_trace(go.Scatter(x=x, y=[m.get(key) for m in steps], name=name, mode="lines"), secondary_y=False)
    fig.add_trace(
        go.Scatter(x=x, y=[m.get("kl") for m in steps], name="KL (right axis)", mode="lines"), secondary_y=True
    )
    fig.update_yaxes(title_text="nats per item", secondary_y=False)
    fig.update_yaxes(title_text="KL, nats", secondary_y=True, showgrid=False)
    return _layout(fig, "Training objective")


def elbo_figure(epochs: list[dict]) -> go.Figure:
    """Train and test ELBO after each epoch (higher is better)."""
    fig = go.Figure()
    x = [m["epoch"] for m in epochs]
    for key, name in (("train_elbo", "train ELBO"), ("test_elbo", "test ELBO")):
        fig.add_trace(go.Scatter(x=x, y=[m.get(key) for m in epochs], name=name, mode="lines+markers"))
    fig.update_yaxes(title_text="nats per item (higher is better)")
    fig.update_xaxes(tick0=1, dtick=max(1, round(max(x, default=1) / 8)))  # whole epochs
    return _layout(fig, "ELBO per epoch")


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        height=320,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        uirevision="keep",  # zoom and hidden traces survive the live refresh
    )
    fig.update_xaxes(title_text="epoch")
    return fig


# ---------------------------------------------------------------- form values -> configs
# Plain functions of the form's values (Session State), used both to check the form as it is drawn
# and by the Start callback, which runs before the next draw and must see the newest values.


def data_config(state) -> DataConfig | None:
    """The data the form describes (None while no file is uploaded)."""
    if state.get("train_source", SOURCES[0]) == SOURCES[0]:
        name = state.get("train_dataset", "digits")
        if name == "sprites":
            size, count = state.get("train_sprite_size", 32), state.get("train_sprite_count", 20_000)
            return DataConfig(name="sprites", size=int(size), count=int(count))
        return DataConfig(name=name)
    upload = state.get("train_upload")
    if upload is None:
        return None
    path = save_upload(upload)
    label = state.get("train_label_col") if path.suffix == ".csv" else None
    size = state.get("train_resize") if path.suffix == ".zip" else None
    return DataConfig(name="file", path=str(path), label_column=None if label == NO_LABEL else label, size=size)


def model_configs(state, ds: Dataset) -> tuple[ModelConfig, TrainConfig, str]:
    """Validated model and training configs and the run name; a ``ValueError`` sentence otherwise."""
    arch = state.get("train_arch", "mlp")
    if arch == "mlp":
        widths = parse_widths(state.get("train_hidden", ""), "Hidden layer widths")
    else:
        widths = parse_widths(state.get("train_channels", ""), "Conv channels")
    model_cfg = ModelConfig(
        input_shape=tuple(ds.item_shape),
        arch=arch,
        latent_dim=int(state.get("train_latent", 20)),
        hidden=widths if arch == "mlp" else (400,),
        channels=widths if arch == "conv" else (32, 64),
        likelihood=ds.likelihood,
    )
    train_cfg = TrainConfig(
        epochs=int(state.get("train_epochs", 10)),
        batch_size=int(state.get("train_batch", 128)),
        lr=float(state.get("train_lr", 1e-3)),
        beta=float(state.get("train_beta", 1.0)),
        warmup_epochs=float(state.get("train_warmup", 0.0)),
    )
    name = (state.get("train_name") or "").strip() or auto_name(ds, model_cfg)
    return model_cfg, train_cfg, name


def auto_name(ds: Dataset, model_cfg: ModelConfig) -> str:
    return f"{Path(ds.name).stem or 'data'}-{model_cfg.arch}-z{model_cfg.latent_dim}"


# ---------------------------------------------------------------- actions (button callbacks)


def start_training() -> None:
    """Create the run folder, launch its process and select it (a callback: runs before the picker draws)."""
    state = st.session_state
    state[ERROR_KEY] = None
    try:
        data_cfg = data_config(state)
        if data_cfg is None:
            raise ValueError("Upload a data file first.")
        ds = ui.load_data(data_cfg)
        model_cfg, train_cfg, name = model_configs(state, ds)
        run_dir = rf.create_run(ui.runs_root(), name, model_cfg, train_cfg, data_cfg)
    except (ValueError, FileNotFoundError, OSError) as e:
        state[ERROR_KEY] = str(e)
        return
    try:
        jobs.start(run_dir)
    except (ValueError, FileNotFoundError, OSError) as e:
        rf.delete_run(ui.runs_root(), run_dir.name)  # a refused start leaves no empty run behind
        state[ERROR_KEY] = str(e)
        return
    ui.select_run(run_dir.name)
    state[WATCHED_KEY] = run_dir.name


def continue_training(run: str) -> None:
    """Resume a stopped or interrupted run from its checkpoint (or start it if it has none)."""
    run_dir = Path(run)
    try:
        jobs.start(run_dir, resume=(run_dir / rf.STATE_FILE).is_file())
    except (ValueError, FileNotFoundError, OSError) as e:
        st.session_state[RUN_ERROR_KEY] = str(e)


def control(run: str, command: str) -> None:
    run_dir = Path(run)
    try:
        {"pause": jobs.pause, "resume": jobs.resume, "stop": jobs.stop}[command](run_dir)
    except (ValueError, FileNotFoundError, OSError) as e:
        st.session_state[RUN_ERROR_KEY] = str(e)


# ---------------------------------------------------------------- the form


def data_section() -> Dataset | None:
    """Widgets choosing the data; returns the loaded data (None after a shown message)."""
    source = st.radio("Data", SOURCES, horizontal=True, key="train_source")
    if source == SOURCES[0]:
        info = {d["name"]: d for d in available_datasets() if d["name"] != "file"}
        name = st.selectbox(
            "Dataset",
            list(info),
            key="train_dataset",
            format_func=lambda n: n if info[n]["available"] else f"{n} (not available here)",
            on_change=lambda: apply_defaults(st.session_state["train_dataset"]),
        )
        st.caption(info[name]["description"])
        if not info[name]["available"]:
            st.warning(info[name]["how_to_get"])
            return None
        if name == "sprites":
            c1, c2 = st.columns(2)
            c1.selectbox("Sprite size", [32, 64], key="train_sprite_size")
            c2.number_input("Sprites", 1000, 200_000, step=1000, key="train_sprite_count")
    else:
        upload = st.file_uploader(
            "A .npz / .npy array (N×H×W, N×H×W×C or N×D), a .csv of numbers, or a .zip of PNG/JPEG images "
            "(one sub-folder per class)",
            type=UPLOAD_TYPES,
            key="train_upload",
        )
        if upload is None:
            st.info("Upload a file to train on your own data.")
            return None
        suffix = Path(upload.name).suffix.lower()
        if suffix == ".csv":
            stored = save_upload(upload)
            columns = csv_columns(stored)
            if st.session_state.get("train_label_for") != stored.name:  # a new file: guess its label column
                st.session_state["train_label_for"] = stored.name
                guess = [c for c in columns if c.lower() in LABEL_NAMES]
                st.session_state["train_label_col"] = guess[0] if guess else NO_LABEL
            st.selectbox(
                "Label column (optional)",
                [NO_LABEL, *columns],
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
    cfg = data_config(st.session_state)
    try:
        return ui.load_data(cfg)
    except (ValueError, FileNotFoundError, OSError) as e:
        message = str(e)
        if cfg.name == "file":  # name the file as the person knows it, not the stored copy
            message = message.replace(str(cfg.path), upload.name)
        st.error(message)
        return None


def preview(ds: Dataset) -> None:
    what = shape_text(ds)
    classes = f", {len(ds.label_names)} classes" if ds.label_names else ", no labels"
    st.caption(f"{len(ds.x_train):,} training and {len(ds.x_test):,} test {what}{classes}.")
    if ds.is_image:
        side = ds.item_shape[-1]
        n, ncol = (32, 16) if side <= 32 else (16, 8)
        st.image(ui.grid_picture(ds.x_train[:n].numpy(), ncol=ncol, scale=max(1, 40 // side)), output_format="PNG")
    else:
        import pandas as pd

        rows = ds.to_original_units(ds.x_train[:6])
        st.dataframe(pd.DataFrame(rows, columns=ds.feature_names), hide_index=True)


def model_section(ds: Dataset) -> bool:
    """Widgets choosing the model and the training; True when they make valid configs."""
    if not conv_possible(ds.item_shape) and st.session_state.get("train_arch") == "conv":
        st.session_state["train_arch"] = "mlp"
    archs = ["mlp", "conv"] if conv_possible(ds.item_shape) else ["mlp"]
    arch = st.radio("Architecture", archs, format_func=ARCH_LABELS.get, horizontal=True, key="train_arch")
    if len(archs) == 1:
        sides = f"{', '.join(map(str, CONV_SIZES[:-1]))} or {CONV_SIZES[-1]}"
        st.caption(f"A convolutional model needs square images of side {sides}; these are {shape_text(ds)}.")
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Latent dimensions", 1, MAX_LATENT, key="train_latent")
    if arch == "mlp":
        c2.text_input("Hidden layer widths", key="train_hidden", help="Comma-separated, e.g. 512, 256.")
    else:
        c2.text_input("Conv channels", key="train_channels", help="One stride-2 layer per entry.")
    c3.number_input("β (weight of the KL term)", 0.0, 1000.0, step=0.5, key="train_beta")
    c4.number_input(
        "KL warm-up (epochs)", 0.0, 10_000.0, step=1.0, key="train_warmup", help="β grows from 0 over these epochs."
    )
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Epochs", 1, 10_000, key="train_epochs")
    c2.number_input("Batch size", 1, 65_536, step=16, key="train_batch")
    c3.select_slider("Learning rate", LEARNING_RATES, format_func=lambda v: f"{v:g}", key="train_lr")
    c4.text_input("Run name", key="train_name", placeholder="named after data, model and latent size")
    try:
        model_cfg, _, name = model_configs(st.session_state, ds)
    except ValueError as e:
        st.error(str(e))
        return False
    with torch.device("meta"):  # count without allocating
        n_params = count_parameters(build_model(model_cfg))
    st.caption(f"Run {name!r}: {n_params:,} parameters, {ds.likelihood} likelihood; trains in a background process.")
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
    busy = [p.name for p in jobs.active_runs(ui.runs_root())]
    if busy:
        st.info(f"Training now: {', '.join(busy)}. This machine trains {jobs.max_jobs()} model(s) at a time.")
    st.button(
        "Start training",
        type="primary",
        key="train_start",
        icon=":material/play_arrow:",
        disabled=not valid,
        on_click=start_training,
    )
    if msg := st.session_state.pop(ERROR_KEY, None):
        st.error(msg)


# ---------------------------------------------------------------- the selected run


def config_summary(run_dir: Path) -> str:
    try:
        m, t, d = rf.load_config(run_dir)
    except (ValueError, FileNotFoundError) as e:
        return str(e)
    layers = ", ".join(map(str, m.hidden if m.arch == "mlp" else m.channels))
    data = Path(d.path).name if d.name == "file" and d.path else d.name
    return (
        f"{data} · {ARCH_LABELS[m.arch]} ({layers}) · latent {m.latent_dim} · β {t.beta:g}"
        f"{f' (warm-up {t.warmup_epochs:g} epochs)' if t.warmup_epochs else ''} · {t.epochs} epochs · "
        f"batch {t.batch_size} · learning rate {t.lr:g}"
    )


def progress_bar(status: dict, epochs: int) -> None:
    step, total = status.get("step", 0), status.get("total_steps")
    epoch = status.get("epoch", 0)
    state = status.get("state")
    if not total:
        st.progress(0.0, text=f"Starting: {status.get('message') or 'launching the training process'}…")
        return
    where = f"epoch {min(epoch + 1, epochs)} of {epochs} · step {step:,} of {total:,}"
    if state == "paused":
        text = f"Paused at {where}"
    else:
        text = f"Training {where} · about {duration(status.get('eta_s'))} left"
    st.progress(min(1.0, step / total), text=text)


def curves_and_pictures(run_dir: Path) -> None:
    metrics = rf.read_metrics(run_dir)
    steps = [m for m in metrics if m.get("type") == "step"]
    epochs = [m for m in metrics if m.get("type") == "epoch"]
    left, right = st.columns(2)
    with left:
        if steps:
            st.plotly_chart(loss_figure(steps), key="train_loss_chart")
        else:
            st.caption("The loss curve appears after the first logged steps.")
    with right:
        if epochs:
            st.plotly_chart(elbo_figure(epochs), key="train_elbo_chart")
        else:
            st.caption("The ELBO curve appears after the first epoch.")
    left, right = st.columns(2)
    for col, file, caption in (
        (left, "recon", "Test items (top row) and their reconstructions (bottom row)"),
        (right, "samples", "Samples decoded from the prior N(0, I)"),
    ):
        png = enlarged_png(rf.picture_path(run_dir, file))
        if png:
            col.image(png, caption=caption, output_format="PNG")


@st.fragment(run_every=1.0)
def live_panel(run: str, epochs: int) -> None:
    """Polls the run's files every second; reruns the whole page once training ends."""
    run_dir = Path(run)
    status = jobs.refresh_status(run_dir)
    if status.get("state") not in jobs.ACTIVE_STATES:
        st.rerun()  # the page then shows the final state without polling
    st.session_state[WATCHED_KEY] = run_dir.name
    progress_bar(status, epochs)
    c1, c2, _ = st.columns([1, 1, 4])
    if status.get("state") == "paused":
        c1.button("Resume", key="train_resume", icon=":material/play_arrow:", on_click=control, args=(run, "resume"))
    else:
        c1.button("Pause", key="train_pause", icon=":material/pause:", on_click=control, args=(run, "pause"))
    c2.button("Stop", key="train_stop", icon=":material/stop:", on_click=control, args=(run, "stop"))
    if msg := st.session_state.pop(RUN_ERROR_KEY, None):
        st.error(msg)
    curves_and_pictures(run_dir)


def final_panel(run_dir: Path, status: dict, epochs: int) -> None:
    """A run that is not training: what happened, what to do next, and its last curves."""
    state, message = status.get("state"), status.get("message") or ""
    if state == "finished":
        done = [m for m in rf.read_metrics(run_dir) if m.get("type") == "epoch"]
        elbo = f", test ELBO {done[-1]['test_elbo']:.2f} nats" if done and "test_elbo" in done[-1] else ""
        st.success(f"Training finished: {status.get('epoch', epochs)} epochs{elbo}.")
        st.page_link("app_pages/explore.py", label="Explore its latent space", icon=":material/scatter_plot:")
    elif state == "failed":
        st.error(message or "The training failed.")
        with st.expander("Training log"):
            st.code(rf.read_log(run_dir, 4000) or "(empty)")
    elif state in ("interrupted", "stopped", "created"):
        text = {"created": "This run was created but never started."}.get(state, message)
        (st.warning if state == "interrupted" else st.info)(text)
        has_ckpt = (run_dir / rf.STATE_FILE).is_file()
        label = "Resume training" if has_ckpt else "Start training"
        st.button(
            label, key="train_continue", icon=":material/play_arrow:", on_click=continue_training, args=(str(run_dir),)
        )
    else:
        st.info(f"State: {state or 'unknown'}. {message}")
    if msg := st.session_state.pop(RUN_ERROR_KEY, None):
        st.error(msg)
    curves_and_pictures(run_dir)


def run_panel(run_dir: Path, status: dict) -> None:
    st.subheader(f"Run: {run_dir.name}")
    st.caption(config_summary(run_dir))
    try:
        epochs = rf.load_config(run_dir)[1].epochs
    except (ValueError, FileNotFoundError):
        epochs = status.get("epoch", 0)
    if status.get("state") in jobs.ACTIVE_STATES:
        live_panel(str(run_dir), epochs)
    else:
        final_panel(run_dir, status, epochs)


# ---------------------------------------------------------------- the page

keep_form_values()
apply_defaults("digits", force=False)
st.title("Train")
run_dir = ui.current_run()
status = jobs.refresh_status(run_dir) if run_dir else {}
training = status.get("state") in jobs.ACTIVE_STATES
# A run being watched keeps its place at the top when it ends, so its result appears where its progress was.
if run_dir and (training or st.session_state.get(WATCHED_KEY) == run_dir.name):
    run_panel(run_dir, status)
    st.divider()
    with st.expander("Train another model", icon=":material/add:"):
        new_run_form()
else:
    others = [p.name for p in jobs.active_runs(ui.runs_root())]
    if others:
        st.info(f"{others[0]} is training. Select it in the sidebar to watch it.")
    st.caption("Choose data and a model; training runs in the background and keeps going if you close the tab.")
    new_run_form()
    if run_dir:
        st.divider()
        run_panel(run_dir, status)
