"""The Train page's form: its widget keys, dataset presets, and plain functions from the form's values to
configs. The functions read Session State, so the Start callback (which runs before the next draw) sees the
newest values; they raise a ``ValueError`` sentence for values that make no valid config.
"""

from __future__ import annotations

import csv
from pathlib import Path

import streamlit as st

from vae.config import CONV_SIZES, DataConfig, ModelConfig, TrainConfig, preset, watched_threads
from vae.data import Dataset
from vae.data.sources import store_upload
from vae.distributed import native_bf16
from vae.runs import folder as rf

from .runtime import runs_root

UPLOAD_TYPES = ["npz", "npy", "csv", "zip"]
FREE_BITS_HELP = (
    "Each latent dimension's KL counts as at least this many nats, so the model gains nothing by switching a "
    "dimension off: the standard remedy when the latent space collapses (try 0.5). 0: off."
)
SOURCES = ["Built-in dataset", "Upload a file"]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
ARCH_LABELS = {"mlp": "MLP", "conv": "Convolutional"}
NO_LABEL = "(no labels)"
LABEL_NAMES = ("label", "labels", "class", "target", "y")
FORM_KEYS = (
    "train_source", "train_dataset", "train_sprite_size", "train_sprite_count", "train_label_col", "train_resize",
    "train_arch", "train_latent", "train_hidden", "train_channels", "train_beta", "train_warmup", "train_epochs",
    "train_batch", "train_lr", "train_name", "train_free_bits", "train_bf16", "train_procs", "train_family",
    "train_iwae_k", "train_pseudo",
)  # fmt: skip
FAMILY_LABELS = {"vae": "VAE", "cvae": "Conditional VAE", "beta-tcvae": "β-TCVAE", "iwae": "IWAE",
                 "vampprior": "VampPrior"}  # fmt: skip
PSEUDO_HELP = (
    "Components of the learned prior: each is the encoder's posterior at a learned pseudo-input. More is a "
    "richer prior and a slower step (each step encodes them all)."
)
IWAE_K_HELP = (
    "Samples of z per item in the training bound: more is tighter and slower (each step decodes K times); "
    "K = 1 is the ELBO."
)
MIN_CORES_FOR_PROCS = 4  # below this, one process with every core's thread was fastest (2 x 1 thread: 0.37x)
PROCS_HELP = (
    "Train one model in several processes (DistributedDataParallel over 127.0.0.1): each takes its share of every "
    "batch, with the machine's cores shared out as threads. On a 2-core machine 2 processes of 1 thread ran at "
    "0.37x of one process with 2 threads (python -m bench ddp): it pays off with many cores or GPUs."
)
BF16_HELP = (
    "The forward pass in bfloat16 (weights and optimiser stay float32): on this CPU, which multiplies bfloat16 in "
    "hardware, the default MLP trained 1.7x faster to the same test ELBO (python -m bench recipe)."
)


def widths_text(widths: tuple[int, ...]) -> str:
    return ", ".join(map(str, widths))


def apply_defaults(name: str, force: bool = True) -> None:
    """Put the dataset's preset into the form (``force=False``: only where unset)."""
    p, m = preset(name), ModelConfig
    values = {
        "train_arch": m.arch,
        "train_channels": widths_text(m.channels),
        "train_beta": p.train.beta,
        "train_warmup": p.train.warmup_epochs,
        "train_free_bits": p.train.free_bits,
        "train_sprite_count": 20_000,
        "train_latent": p.latent_dim,
        "train_hidden": widths_text(p.hidden),
        "train_epochs": p.train.epochs,
        "train_batch": p.train.batch_size,
        "train_lr": p.train.lr,
        "train_bf16": native_bf16(),  # faster at the same ELBO where the CPU has bfloat16 in hardware
        "train_procs": 1,
        "train_family": m.family,
        "train_iwae_k": TrainConfig.iwae_k,
        "train_pseudo": m.pseudo_inputs,
    }
    for key, value in values.items():
        if force or key not in st.session_state:
            st.session_state[key] = value


NEW_FORM_KEY = "train_new_form"  # True: the New run form is open at the top of the Train page


def new_run(dataset: str | None = None) -> None:
    """(A button's callback.) Open the form at the top with the dataset's preset, not the last run's values."""
    apply_defaults(dataset or st.session_state.get("train_dataset", "digits"))
    st.session_state["train_name"] = ""
    st.session_state[NEW_FORM_KEY] = True


def close_form() -> None:
    st.session_state[NEW_FORM_KEY] = False


def copy_settings(run_dir: str) -> None:
    """(A button's callback.) Open the form at the top holding the settings of the run in ``run_dir``."""
    from vae.runs import folder as rf

    model, train, data = rf.load_config(Path(run_dir))
    built_in = data.name != "file"
    values = {
        "train_source": SOURCES[0] if built_in else SOURCES[1],
        "train_arch": model.arch, "train_latent": model.latent_dim, "train_hidden": widths_text(model.hidden),
        "train_channels": widths_text(model.channels), "train_beta": train.beta,
        "train_warmup": train.warmup_epochs, "train_free_bits": train.free_bits, "train_epochs": train.epochs,
        "train_batch": train.batch_size, "train_lr": min(LEARNING_RATES, key=lambda r: abs(r - train.lr)),
        "train_bf16": train.precision == "bf16", "train_name": "", "train_family": model.family,
        "train_iwae_k": train.iwae_k, "train_pseudo": model.pseudo_inputs,
    }  # fmt: skip
    if built_in:
        values["train_dataset"] = data.name
        if data.name == "sprites":
            values |= {"train_sprite_size": data.size or 32, "train_sprite_count": data.count or 20_000}
    st.session_state.update(values)
    st.session_state[NEW_FORM_KEY] = True
    st.toast(f"The form below holds {Path(run_dir).name}'s settings; give the new run a name and start it.")


def offer_download(name: str) -> None:
    """For a dataset that can be downloaded (MNIST, Fashion-MNIST) but is not here: a button that fetches it into the
    download cache with a progress bar (each file's SHA-256 checked), or a sentence when this machine cannot."""
    from vae.data import IDX_MIRRORS, download_idx
    from vae.data.base import _cache_dir

    if name not in IDX_MIRRORS or not st.button(f"Download {name} here", key="train_download",
                                                icon=":material/download:"):  # fmt: skip
        return
    bar = st.progress(0.0, text=f"Downloading {name}…")
    try:
        download_idx(name, _cache_dir(), progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
    except (ConnectionError, OSError, ValueError) as e:
        bar.empty()
        st.error(f"{name} could not be downloaded here ({e}). The command above fetches it from a terminal.")
        return
    bar.empty()
    st.rerun()  # the dataset list, with this one now available


def save_upload(upload) -> Path:
    """Store an uploaded file under the runs folder, named by content so a cached load stays valid.

    Remembered per upload, so a large file is hashed and written once, not on every rerun.
    """
    saved = st.session_state.setdefault("train_saved_uploads", {})
    if upload.file_id in saved and Path(saved[upload.file_id]).is_file():
        return Path(saved[upload.file_id])
    path = store_upload(runs_root(), upload.name, upload.getvalue())
    saved[upload.file_id] = str(path)
    return path


def csv_columns(path: Path) -> list[str]:
    """The header row of a CSV file (empty when unreadable: the loader then says why).

    Read as ``utf-8-sig``, as pandas reads it: Excel's "CSV UTF-8" starts with a byte-order mark,
    which would otherwise stick to the first column's name.
    """
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
        family=(family := state.get("train_family", "vae")),
        pseudo_inputs=int(state.get("train_pseudo", ModelConfig.pseudo_inputs)),
        classes=ds.label_count() if family == "cvae" else 0,  # a sentence where the data have no labels
    )
    built_in = state.get("train_source", SOURCES[0]) == SOURCES[0]
    base = preset(state.get("train_dataset", "digits")).train if built_in else TrainConfig()
    train_cfg = base.replace(
        epochs=int(state.get("train_epochs", base.epochs)),
        batch_size=int(state.get("train_batch", base.batch_size)),
        lr=float(state.get("train_lr", base.lr)),
        beta=float(state.get("train_beta", 1.0)),
        warmup_epochs=float(state.get("train_warmup", 0.0)),
        free_bits=float(state.get("train_free_bits", 0.0)),
        precision="bf16" if state.get("train_bf16") else "fp32",
        iwae_k=int(state.get("train_iwae_k", base.iwae_k)),
    )
    if model_cfg.family != "vae":  # only the ELBO's closed-form KL takes free bits; IWAE's bound no β or warm-up
        train_cfg = train_cfg.replace(free_bits=0.0)
    if model_cfg.family == "iwae":
        train_cfg = train_cfg.replace(beta=1.0, warmup_epochs=0.0)
    procs = int(state.get("train_procs") or 1)
    train_cfg = train_cfg.replace(threads=watched_threads(train_cfg.threads, procs))  # a core left to the page
    name = (state.get("train_name") or "").strip() or auto_name(ds, model_cfg)
    return model_cfg, train_cfg, name


def auto_name(ds: Dataset, model_cfg: ModelConfig) -> str:
    return rf.default_name(ds.name, model_cfg.arch, model_cfg.latent_dim)
