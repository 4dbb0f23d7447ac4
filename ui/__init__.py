"""Streamlit glue shared by every page: the run picker, cached loaders and decoders, pictures.

Pages stay thin: they call these helpers and ``vae``; nothing here trains or projects itself.
Cached objects are shared between sessions: never mutate what a cached loader returns.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vae import jobs
from vae import run as rf
from vae.config import DataConfig
from vae.data import Dataset, load_dataset
from vae.evaluate import encode
from vae.images import make_grid, png_bytes
from vae.models import VAE

RUN_KEY = "run"
_GC_FROZEN = False


def freeze_gc_once() -> None:
    """Move everything imported so far out of the garbage collector's sight (once per process).

    Streamlit collects garbage after every rerun; with torch and plotly loaded that full pass
    took 45-65 ms per interaction here. Frozen objects are skipped by it.
    """
    global _GC_FROZEN
    if not _GC_FROZEN:
        gc.collect()
        gc.freeze()
        _GC_FROZEN = True


def runs_root() -> Path:
    return rf.default_root()


# ---------------------------------------------------------------- the shared run picker


def select_run(name: str | None) -> None:
    """Make ``name`` the selected run on every page (call before the picker renders)."""
    st.session_state[RUN_KEY] = name


def run_picker() -> Path | None:
    """Sidebar select box over the runs, with the selected run's state; the choice survives page switches."""
    names = rf.run_names(runs_root())  # every full rerun draws this: names only, no metrics parsed
    if st.session_state.get(RUN_KEY) not in names:
        st.session_state[RUN_KEY] = names[0] if names else None
    with st.sidebar:
        if not names:
            st.caption("No runs yet: train one on the Train page.")
            return None
        st.selectbox("Run", names, key=RUN_KEY, help="The model every page uses. New trainings are added here.")
        run = current_run()
        if run is not None:
            if jobs.refresh_status(run).get("state") in jobs.ACTIVE_STATES:
                st.fragment(run_every=2.0)(_run_caption)(run)  # keeps the state fresh while it trains
            else:
                _run_caption(run)
    return run


def _run_caption(run: Path) -> None:
    """One line under the picker: the run's state, epoch and data."""
    status = jobs.refresh_status(run)
    _, train_cfg, data_cfg = rf.load_config(run)
    data = data_cfg.name if data_cfg.name != "file" else Path(data_cfg.path or "").name
    st.caption(f"{status.get('state', 'unknown')} · epoch {status.get('epoch', 0)} of {train_cfg.epochs} · {data}")


def current_run() -> Path | None:
    name = st.session_state.get(RUN_KEY)
    if not name:
        return None
    path = rf.run_path(runs_root(), name)
    return path if rf.is_run(path) else None


# ---------------------------------------------------------------- cached loaders


@st.cache_resource(max_entries=8, show_spinner=False)
def _load_model(path: str, checkpoint: str) -> VAE:
    model = rf.load_model(path)
    model.requires_grad_(False)
    return model


@st.cache_resource(max_entries=4, show_spinner="Loading data…")
def _load_dataset(cfg_json: str) -> Dataset:
    import json

    return load_dataset(DataConfig.from_dict(json.loads(cfg_json)))


def model_for(run_dir: Path) -> VAE:
    """The run's model (cached per checkpoint). Raises FileNotFoundError / ValueError with a sentence."""
    if not (run_dir / rf.MODEL_FILE).is_file():
        raise FileNotFoundError(f"{run_dir.name} has no saved model yet: it saves one after its first epoch.")
    return _load_model(str(run_dir), rf.checkpoint_id(run_dir))


def load_data(cfg: DataConfig) -> Dataset:
    """The dataset ``cfg`` names, cached and shared by every page and session: never mutate it."""
    import json

    return _load_dataset(json.dumps(cfg.to_dict(), sort_keys=True))


def dataset_for(run_dir: Path) -> Dataset:
    """The run's own data (cached per data config)."""
    return load_data(rf.load_data_config(run_dir))


def require_model() -> tuple[Path, VAE]:
    """The selected run and its model, or a message and ``st.stop()``."""
    run_dir = current_run()
    if run_dir is None:
        st.info("Pick a run in the sidebar, or train one on the Train page.")
        st.stop()
    try:
        return run_dir, model_for(run_dir)
    except (FileNotFoundError, ValueError) as e:
        st.error(str(e))
        st.stop()


def require_data(run_dir: Path) -> Dataset:
    """The run's data, or a sentence (data missing here, or named where a run may not read) and ``st.stop()``."""
    try:
        return dataset_for(run_dir)
    except (FileNotFoundError, ValueError) as e:
        st.error(str(e))
        st.stop()


@st.cache_data(max_entries=16, show_spinner="Encoding…")
def latent_means(path: str, checkpoint: str, split: str, max_points: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of a split (first ``max_points`` of a fixed shuffle) and their indices."""
    run_dir = Path(path)
    ds = dataset_for(run_dir)
    x = ds.x_test if split == "test" else ds.x_train
    idx = np.arange(len(x))
    if max_points and max_points < len(x):
        idx = np.sort(np.random.default_rng(0).permutation(len(x))[:max_points])
    mu, _ = encode(_load_model(path, checkpoint), x[torch.from_numpy(idx)].float())
    return mu, idx


# ---------------------------------------------------------------- decoding and pictures


def decode(model: VAE, z: np.ndarray) -> np.ndarray:
    """Decode latent rows (N, L) -> data space (N, *input_shape), without gradients."""
    with torch.inference_mode():
        return model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)).numpy()


def picture(item: np.ndarray, scale: int = 8) -> bytes:
    """PNG of one decoded or original image (C, H, W), enlarged."""
    return png_bytes(item, scale=scale)


def grid_picture(items: np.ndarray, ncol: int, scale: int = 3) -> bytes:
    """PNG of a grid of images (N, C, H, W)."""
    return png_bytes(make_grid(items, ncol), scale=scale)


def label_name(ds: Dataset, y: int | None) -> str:
    if y is None:
        return ""
    return ds.label_names[y] if ds.label_names and 0 <= y < len(ds.label_names) else str(y)
