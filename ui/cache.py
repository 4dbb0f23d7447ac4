"""Cached models, data, codes and maps, shared by every session: never mutate what these return.

Models are cached per (run, checkpoint), data per data config, codes per (run, checkpoint, split, size),
maps per (run, checkpoint, projection). A UMAP map is fitted by the map worker (a process of its own,
``vae.projection.worker``) for one background thread, so a fit survives reruns and page switches while the
page shows its progress.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import streamlit as st

from vae.analysis import history
from vae.analysis.evaluate import kl_per_dimension, reconstruction_errors
from vae.analysis.fidelity import map_fidelity, neighbour_preservation
from vae.config import DataConfig
from vae.data import Dataset, load_dataset
from vae.models import VAE
from vae.projection import LatentProjector, background_thread, cached_projection, map_path
from vae.projection.cache import codes_path, read_codes, unusable, write_codes
from vae.projection.worker import MapWorker, WorkerGone
from vae.runs import folder as rf
from vae.runs.guard import regular_file

from .notice import training_notice

INVERSE_GRID = 48  # resolution of the inverse grid saved with each map
BACKGROUND_CODES = 100_000  # a map of this many items or more: its codes encoded in the background, kept on disk
KL_SUBSET = 2000  # test items used to rank dimensions by KL


# ---------------------------------------------------------------- models, data, codes


@st.cache_resource(max_entries=8, show_spinner=False)
def _load_model(path: str, checkpoint: str) -> VAE:
    model = rf.load_model(path)
    model.requires_grad_(False)
    return model


@st.cache_resource(max_entries=4, show_spinner="Loading data…")
def _load_dataset(cfg_json: str) -> Dataset:
    return load_dataset(DataConfig.from_dict(json.loads(cfg_json)))


def model_for(run_dir: Path) -> VAE:
    """The run's model (cached per checkpoint). Raises FileNotFoundError / ValueError with a sentence."""
    if not rf.has_model(run_dir):
        if (run_dir / rf.MODEL_FILE).exists() or (run_dir / rf.MODEL_FILE).is_symlink():  # a link, pipe or folder
            raise ValueError(f"{run_dir.name}'s {rf.MODEL_FILE} is not a regular file: it is never read.")
        raise FileNotFoundError(f"{run_dir.name} has no saved model yet: it saves one after its first epoch.")
    return _load_model(str(run_dir), rf.checkpoint_id(run_dir))


def load_data(cfg: DataConfig) -> Dataset:
    """The dataset ``cfg`` names, cached and shared by every page and session: never mutate it."""
    return _load_dataset(json.dumps(cfg.to_dict(), sort_keys=True))


def dataset_for(run_dir: Path) -> Dataset:
    """The run's own data (cached per data config)."""
    return load_data(rf.load_data_config(run_dir))


def require_model(run_dir: Path | None) -> tuple[Path, VAE]:
    """The run and its model, or a message and ``st.stop()`` (no run selected, no model saved yet, bad files)."""
    if run_dir is None:
        st.info("Pick a run in the sidebar, or train one on the Train page.")
        st.stop()
    try:
        model = model_for(run_dir)
    except (FileNotFoundError, ValueError) as e:
        st.error(str(e))
        st.stop()
    training_notice(run_dir)  # a run still training: which checkpoint this page shows
    return run_dir, model


def require_data(run_dir: Path) -> Dataset:
    """The run's data, or a sentence (data missing here, or named where a run may not read) and ``st.stop()``."""
    try:
        return dataset_for(run_dir)
    except (FileNotFoundError, ValueError) as e:
        st.error(str(e))
        st.stop()


def latent_means(path: str, checkpoint: str, split: str, max_points: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of a split ("test", "train" or "all": train then test), the first ``max_points`` of a
    fixed shuffle, and their rows in the split."""
    mu, _, idx = latent_params(path, checkpoint, split, max_points)
    return mu, idx


def map_rows(ds: Dataset, split: str, max_points: int | None) -> np.ndarray:
    """The rows of a split a map of ``max_points`` items shows (None: all): the first of a fixed shuffle, sorted."""
    n = ds.split_size(split)
    return (
        np.sort(np.random.default_rng(0).permutation(n)[:max_points]) if max_points and max_points < n else np.arange(n)
    )


def _codes_file(path: str, checkpoint: str, split: str, n: int) -> Path:
    return codes_path(map_folder(Path(path))[0], checkpoint, split, n)


def codes_kept(path: str, checkpoint: str, split: str, n: int) -> bool:
    """Whether a large map's codes are kept on disk (only looked at, not read: ``latent_params`` reads them)."""
    with contextlib.suppress(OSError, ValueError):
        return regular_file(_codes_file(path, checkpoint, split, n)) is not None
    return False


def kept_codes(path: str, checkpoint: str, split: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A large map's codes (at least ``BACKGROUND_CODES`` items) as kept on disk, or None (small, or not kept yet)."""
    if len(rows) < BACKGROUND_CODES:
        return None
    file = _codes_file(path, checkpoint, split, len(rows))
    return read_codes(file, len(rows), _load_model(path, checkpoint).cfg.latent_dim)


def encode_rows(run_dir: Path, model: VAE, ds: Dataset, checkpoint: str, split: str, rows: np.ndarray,
                progress=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """μ and log σ² of ``rows`` of a split (a conditional VAE: with their labels), kept on disk when there are at
    least ``BACKGROUND_CODES`` of them (where the maps' folder can be written). No Streamlit calls: a background
    thread runs this for large maps (``ui.codes``)."""
    mu, logvar = model.embed_split(ds, split, rows, progress)
    if len(rows) >= BACKGROUND_CODES:
        with contextlib.suppress(OSError, ValueError):  # a full disk or a read-only folder: kept in memory only
            write_codes(_codes_file(str(run_dir), checkpoint, split, len(rows)), mu, logvar)
    return mu, logvar


@st.cache_data(max_entries=16, show_spinner="Encoding…")
def latent_params(
    path: str, checkpoint: str, split: str, max_points: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``latent_means`` with the log-variances: μ (N, L), log σ² (N, L) and the rows in the split (N,). A large
    map's codes come from disk when ``ui.codes`` encoded them in the background."""
    run_dir, ds = Path(path), dataset_for(Path(path))
    idx = map_rows(ds, split, max_points)
    kept = kept_codes(path, checkpoint, split, idx)
    mu, logvar = kept or encode_rows(run_dir, _load_model(path, checkpoint), ds, checkpoint, split, idx)
    return mu, logvar, idx


@st.cache_data(max_entries=8, show_spinner="Reconstructing every item of the map…")
def reconstruction_errors_of(path: str, checkpoint: str, split: str, max_points: int | None) -> np.ndarray:
    """Each item of ``latent_params``'s map: its squared reconstruction error (N,), in the same rows."""
    _, _, idx = latent_params(path, checkpoint, split, max_points)
    ds, model = dataset_for(Path(path)), _load_model(path, checkpoint)
    y = model.split_labels(ds, split, idx)  # a conditional VAE: each item's own class
    return reconstruction_errors(model, ds.split_items(split, idx).float(), y=y).astype(np.float32)


# ---------------------------------------------------------------- maps


@st.cache_resource(max_entries=8, show_spinner=False)
def _projection_slot(run_path: str, checkpoint: str, key: str) -> dict:
    """The state of one (run, checkpoint, projection), shared by sessions: its fitting job and result.

    Keys: "lock"; "job" (a Future of the fit) and "progress" (fraction, message) while UMAP fits;
    "projector" once done. Only ``fitted_projector`` writes here; a projector, once set, is never changed.
    """
    return {"lock": threading.Lock(), "progress": (0.0, "starting")}


@st.cache_resource(show_spinner=False)
def _fitting_thread() -> ThreadPoolExecutor:
    """One background thread for UMAP maps: fits survive reruns and page switches and queue, so at most one
    UMAP computation runs at a time (in the map worker, low priority, one thread: beside a training, two busy
    threads made its epochs 3-47x slower)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="explore-umap", initializer=background_thread)


@st.cache_resource(show_spinner=False)
def map_worker() -> MapWorker:
    """The process that fits this server's UMAP maps (``vae.projection.worker``): this one never imports umap,
    so it never holds Python's GIL for a compile or a fit."""
    return MapWorker()


def start_umap_warm_up() -> None:
    """Start the map worker when the server starts: it imports umap and compiles its code (the small-map path,
    then the large one into numba's disk cache) while the user finds a map to look at.
    ``LATENT_EXPLORER_WARM_UMAP=0`` leaves it to the first UMAP map."""
    if os.environ.get("LATENT_EXPLORER_WARM_UMAP", "1") != "0":
        with contextlib.suppress(WorkerGone):  # the first map tries again, else fits in this process
            map_worker().start()


_SESSION_MAPS: dict[str, Path] = {}
_SESSION_MAPS_LOCK = threading.Lock()


def map_folder(run_dir: Path) -> tuple[Path, str | None]:
    """Where the run's maps are kept: its own maps' folder, or, where that cannot be written (a read-only runs
    folder, a link planted there), a folder of this server's for as long as it runs, with the reason why."""
    folder = rf.projections_dir(run_dir)
    reason = unusable(folder)
    if reason is None:
        return folder, None
    with _SESSION_MAPS_LOCK:
        if str(run_dir) not in _SESSION_MAPS:
            _SESSION_MAPS[str(run_dir)] = Path(tempfile.mkdtemp(prefix="latent-explorer-maps-"))
        return _SESSION_MAPS[str(run_dir)], reason


def map_file(run_dir: Path, key: str) -> Path:
    """Where map ``key`` of a run is kept."""
    return map_folder(run_dir)[0] / map_path(run_dir, key).name


def _fit(run_dir: Path, checkpoint: str, split: str, key: str, codes: np.ndarray, method: str, progress=None,
         fit: bool = True, worker: MapWorker | None = None, start: np.ndarray | None = None):  # fmt: skip
    """The map, from the disk cache or fitted (by ``worker`` when given: it writes the map into the cache)."""
    folder, _ = map_folder(run_dir)
    if fit and worker is not None:
        with contextlib.suppress(WorkerGone):  # it could not start: fitted here instead
            worker.fit(folder, key, codes, {"method": method}, progress, INVERSE_GRID, checkpoint, split, start)
    return cached_projection(
        folder, key, codes, {"method": method}, progress, grid_resolution=INVERSE_GRID,
        checkpoint=checkpoint, split=split, fit=fit, start=start,
    )  # fmt: skip


def fitted_projector(
    run_dir: Path, checkpoint: str, key: str, codes: np.ndarray, method: str, split: str, wait: bool = True,
    start: np.ndarray | None = None,
) -> LatentProjector | None:  # fmt: skip
    """The map of ``codes``: from memory, else the disk cache, else fitted (UMAP in the background).

    PCA takes milliseconds and is fitted here. A UMAP fit runs in the worker thread, reporting into the
    slot (no Streamlit calls there). With ``wait`` this run shows its progress until the map is ready
    (changing a widget meanwhile reruns the page at once); without, it returns None until then
    (``fit_progress`` says how far it got). Either way the finished map lands in the disk cache. ``start``: an
    earlier map's layout of the same items to start from (the map's ``key`` must say so: ``following_key``).
    """
    slot = _projection_slot(str(run_dir), checkpoint, key)
    if "projector" in slot:
        return slot["projector"]
    if method != "umap":
        slot["projector"] = _fit(run_dir, checkpoint, split, key, codes, method, start=start)
        return slot["projector"]
    cached = _fit(run_dir, checkpoint, split, key, codes, method, fit=False)  # milliseconds, when on disk
    if cached is not None:
        slot["projector"] = cached
        return cached
    with slot["lock"]:
        if "job" not in slot:
            worker = map_worker()
            slot["cold"] = not worker.fitted
            report = lambda f, m: slot.__setitem__("progress", (min(max(f, 0.0), 1.0), m))  # noqa: E731
            slot["job"] = _fitting_thread().submit(_fit, run_dir, checkpoint, split, key, codes, method, report,
                                                   worker=worker, start=start)  # fmt: skip
    job = slot["job"]
    if not job.done() and not wait:
        return None
    if not job.done():
        with st.status(f"Computing the UMAP map of {len(codes):,} codes…", expanded=True) as status:
            bar = st.progress(0.0, text="starting")
            while not job.done():
                fraction, message = fit_progress(run_dir, checkpoint, key)
                bar.progress(fraction, text=f"{message}…")
                time.sleep(0.2)
            status.update(label="UMAP map ready", state="complete", expanded=False)
    try:
        slot["projector"] = job.result()
    finally:
        if "projector" not in slot:
            slot.pop("job", None)  # failed: the next run tries again
    return slot["projector"]


def fit_progress(run_dir: Path, checkpoint: str, key: str) -> tuple[float, str]:
    """How far the background fit of map ``key`` got: (fraction, a few words)."""
    slot = _projection_slot(str(run_dir), checkpoint, key)
    fraction, message = slot["progress"]
    if slot.get("cold") and fraction == 0.0:
        message = ("waiting for UMAP's code to compile (the server's first UMAP map: about 10 s for a small map, "
                   "a minute for a large one, on 2 cores)")  # fmt: skip
    return fraction, message


def fit_done(run_dir: Path, checkpoint: str, key: str) -> bool:
    """Whether the background fit of map ``key`` has finished (or failed: the page then shows why)."""
    slot = _projection_slot(str(run_dir), checkpoint, key)
    return "projector" in slot or ("job" in slot and slot["job"].done())


def load_projector(path: Path) -> LatentProjector:
    """A saved map, read once per version of its file."""
    return _load_projector(str(path), path.stat().st_mtime_ns)


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_projector(path: str, mtime_ns: int) -> LatentProjector:
    return LatentProjector.load(path)


@st.cache_data(max_entries=16, show_spinner="Measuring KL per dimension…")
def kl_by_dimension(path: str, checkpoint: str) -> np.ndarray:
    """Mean KL of each latent dimension over the first test items, (latent_dim,); cached per checkpoint."""
    run_dir = Path(path)
    model, ds = model_for(run_dir), dataset_for(run_dir)
    x = ds.x_test[:KL_SUBSET]
    if len(x) == 0:
        return np.zeros(model.cfg.latent_dim, dtype=np.float32)
    return kl_per_dimension(model, x, y=model.split_labels(ds, "test", np.arange(len(x))))


# ---------------------------------------------------------------- the latent map's history


def history_view(run_dir: Path, method: str = "pca") -> dict | None:
    """The run's recorded frames aligned for replay (recomputed only when a frame is added); None without any.

    ``method`` "umap": each frame's UMAP started from the previous one's (``history.umap_layouts``), fitted in
    the background by the map worker; until every frame has one, the PCA frames stand in and ``umap_missing``
    says how many frames wait (``umap_progress``: how far the fit got)."""
    if (stamps := history_stamp(run_dir, method)) is None:
        return None
    stamp, umap_stamp = stamps
    if method != "umap":
        return _history_view(str(run_dir), stamp)
    view = _history_view(str(run_dir), stamp, "umap", umap_stamp)
    if view is not None and view["umap_missing"]:
        view = {**view, "umap_progress": _start_history_umap(run_dir, stamp)}
    return view


def history_stamp(run_dir: Path, method: str = "pca") -> tuple[tuple[int, int], int] | None:
    """What ``history_view`` is made from (the frames' count and last time, the UMAP file's time or 0), or None:
    a folder listing and two stats, for the live panel's every poll. The view is the same while this is."""
    paths = history.frame_paths(run_dir)
    if not paths:
        return None
    umap_file = rf.history_dir(run_dir) / history.UMAP_FILE
    umap_stamp = umap_file.stat().st_mtime_ns if method == "umap" and umap_file.is_file() else 0
    return (len(paths), paths[-1].stat().st_mtime_ns), umap_stamp


@st.cache_data(max_entries=8, show_spinner=False)
def _history_view(path: str, stamp: tuple, method: str = "pca", umap_stamp: int = 0) -> dict | None:
    frames, probe = history.frames(Path(path)), history.read_probe(Path(path))
    if not frames or probe is None:
        return None
    indices, labels, split = probe
    layouts = history.align(history.frame_layouts(frames))  # [(P, 2)] PCA (once per frame) + Procrustes
    missing, fitted = 0, []
    if method == "umap":
        umap = history.umap_layouts(Path(path), fit_missing=False)  # the ones fitted so far (never fits here)
        fitted = [layout for layout in umap if layout is not None]  # a prefix: the first frames, in order
        missing, layouts = len(umap) - len(fitted), layouts if len(fitted) < len(umap) else umap
    return {"layouts": layouts, "labels": labels, "indices": indices, "split": split, "stamp": (stamp, umap_stamp),
            "captions": [history.caption(f) for f in frames], "pictures": history_pictures(frames),
            "method": "umap" if method == "umap" and not missing else "pca", "umap_missing": missing,
            "umap_fitted": fitted}  # fmt: skip


@st.cache_resource(max_entries=8, show_spinner=False)
def _history_umap_slot(run_path: str) -> dict:
    """One run's background UMAP fit of its history, shared by sessions: its job, progress and frame stamp."""
    return {"lock": threading.Lock(), "progress": (0.0, "starting")}


def _fit_history_umap(run_dir: Path, progress) -> None:
    try:
        history.umap_layouts(run_dir, progress=progress, fitter=map_worker().sequence)
    except WorkerGone:  # no worker could start: fitted here instead
        history.umap_layouts(run_dir, progress=progress)


def _start_history_umap(run_dir: Path, stamp: tuple) -> tuple[float, str]:
    """Start fitting the run's missing UMAP frames in the background (once per new frame; a failure is said and
    tried again when a frame is added); returns (fraction, message) of the fit under way."""
    slot = _history_umap_slot(str(run_dir))
    with slot["lock"]:
        job = slot.get("job")
        if job is not None and job.done() and job.exception() is not None:
            slot["progress"] = (0.0, f"failed: {job.exception()}")
        if job is None or (job.done() and slot.get("stamp") != stamp):
            slot.update(stamp=stamp, progress=(0.0, "starting"))
            report = lambda f, m: slot.__setitem__("progress", (min(max(f, 0.0), 1.0), m))  # noqa: E731
            slot["job"] = _fitting_thread().submit(_fit_history_umap, run_dir, report)
    return slot["progress"]


def history_pictures(frames: list) -> list[str] | None:
    """Each frame's decoded prior samples as a JPEG data URI for the replay (``vae.analysis.history.sample_jpegs``)."""
    jpegs = history.sample_jpegs(frames)
    return None if jpegs is None else ["data:image/jpeg;base64," + base64.b64encode(j).decode() for j in jpegs]


# ---------------------------------------------------------------- how far to trust a map


@st.cache_data(max_entries=16, show_spinner="Scoring the map…")
def map_fidelity_of(run_path: str, key: str, _codes: np.ndarray, _layout: np.ndarray) -> dict:
    """Trustworthiness, continuity and k-NN preservation of map ``key`` (a fixed subsample; cached per map)."""
    return map_fidelity(_codes, _layout)


@st.cache_data(max_entries=8, show_spinner="Measuring each item's neighbourhood…")
def neighbourhoods_kept(run_path: str, key: str, _codes: np.ndarray, _layout: np.ndarray) -> np.ndarray:
    """Per item of map ``key``: the share of its 10 latent neighbours that are also its map neighbours, (N,)."""
    return neighbour_preservation(_codes, _layout)
