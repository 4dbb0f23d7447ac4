"""Start, steer and watch a run from the Train page: the Start callback, pause / resume / stop, and the run's
live panel (a fragment polling the run folder every ``LIVE_EVERY_S`` seconds) or its final panel.

The training runs in its own process (``vae.runs.jobs``); these panels only read the run folder's files, so
closing the tab does not stop it and reloading the page finds it again.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vae.analysis.diagnose import collapse_warning
from vae.analysis.history import animation_gif
from vae.runs import folder as rf
from vae.runs import jobs

from . import livemap, state
from .cache import dataset_for, history_view, load_data
from .figures import chart, elbo_figure, history_figure, kl_heat_figure, kl_parts_figure, loss_figure
from .forms import ARCH_LABELS, FAMILY_LABELS, NEW_FORM_KEY, data_config, model_configs
from .maps import label_groups
from .notice import alarm, epochs_done
from .pictures import enlarged_png, label_name
from .runtime import runs_root

ERROR_KEY = "train_error"  # a refused start, shown beside the Start button
RUN_ERROR_KEY = "train_run_error"  # a refused pause / resume / stop, shown in the run panel
WATCHED_KEY = "train_watched"  # the run whose live panel this session showed last
# How often the live panel reads the run folder. Each poll costs the browser (software rendering on 2 cores) its
# reruns and the curves' redraws beside the training: polled every second, a watched 1-thread training kept 0.85 of
# its pace; every 2 s, 0.94 (`python -m bench live_map`), its ELBO points on screen 1.3 s after they land, not 0.8.
LIVE_EVERY_S = 2.0


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def start_training() -> None:
    """Create the run folder, launch its process and select it (a callback: runs before the picker draws)."""
    ss = st.session_state
    ss[ERROR_KEY] = None
    try:
        data_cfg = data_config(ss)
        if data_cfg is None:
            raise ValueError("Upload a data file first.")
        ds = load_data(data_cfg)
        model_cfg, train_cfg, name = model_configs(ss, ds)
        run_dir = rf.create_run(runs_root(), name, model_cfg, train_cfg, data_cfg)
    except (ValueError, FileNotFoundError, OSError) as e:
        ss[ERROR_KEY] = str(e)
        return
    try:
        jobs.start(run_dir, procs=int(ss.get("train_procs") or 1))
    except (ValueError, FileNotFoundError, OSError) as e:
        rf.delete_run(runs_root(), run_dir.name)  # a refused start leaves no empty run behind
        ss[ERROR_KEY] = str(e)
        return
    state.select_run(run_dir.name)
    ss[WATCHED_KEY] = run_dir.name
    ss[NEW_FORM_KEY] = False  # the new run's panel takes the top of the page


def continue_training(run: str) -> None:
    """Resume a stopped or interrupted run from its checkpoint (or start it if it has none)."""
    run_dir = Path(run)
    try:
        jobs.start(run_dir, resume=rf.has_state(run_dir))  # a resume keeps the run's number of processes
    except (ValueError, FileNotFoundError, OSError) as e:
        st.session_state[RUN_ERROR_KEY] = str(e)


def control(run: str, command: str) -> None:
    run_dir = Path(run)
    try:
        {"pause": jobs.pause, "resume": jobs.resume, "stop": jobs.stop}[command](run_dir)
    except (ValueError, FileNotFoundError, OSError) as e:
        st.session_state[RUN_ERROR_KEY] = str(e)


def config_summary(run_dir: Path) -> str:
    try:
        m, t, d = rf.load_config(run_dir)
    except (ValueError, FileNotFoundError) as e:
        return str(e)
    layers = ", ".join(map(str, m.hidden if m.arch == "mlp" else m.channels))
    weight = f"K {t.iwae_k}" if m.family == "iwae" else f"β {t.beta:g}"
    if m.family == "vampprior":
        weight += f" · {m.pseudo_inputs} pseudo-inputs"
    return (
        f"{rf.data_label(d)} · {FAMILY_LABELS[m.family]} · {ARCH_LABELS[m.arch]} ({layers}) · latent {m.latent_dim}"
        f" · {weight}{f' (warm-up {t.warmup_epochs:g} epochs)' if t.warmup_epochs else ''} · {t.epochs} epochs · "
        f"batch {t.batch_size} · learning rate {t.lr:g}"
    )


def progress_bar(status: dict, epochs: int) -> None:
    step, total = status.get("step", 0), status.get("total_steps")
    state = status.get("state")
    if not total:
        st.progress(0.0, text=f"Starting: {status.get('message') or 'launching the training process'}…")
        return
    where = f"{epochs_done(status, epochs)} · step {step:,} of {total:,}"
    if status.get("device"):  # where it trains: the CPU or a GPU, and how many processes
        procs = status.get("processes", 1)
        where += f" · on {'a GPU' if status['device'] == 'cuda' else 'the CPU'}"
        where += f", {procs} processes" if procs > 1 else ""
    if state == "paused":
        text = f"Paused · {where}"
    else:
        text = f"Training · {where} · about {duration(status.get('eta_s'))} left"
    st.progress(min(1.0, step / total), text=text)


def curves_and_pictures(run_dir: Path, warn: bool = True, live: bool = False) -> None:
    metrics = rf.read_metrics(run_dir)
    steps = [m for m in metrics if m.get("type") == "step"]
    epochs = [m for m in metrics if m.get("type") == "epoch"]
    left, right = st.columns(2)
    with left:
        if steps:
            chart(loss_figure(steps), key="train_loss_chart")
        else:
            st.caption("The loss curve appears after the first logged steps.")
    with right:
        if epochs:
            chart(elbo_figure(epochs), key="train_elbo_chart")
        else:
            st.caption("The ELBO curve appears after the first epoch.")
    if any("total_correlation" in m for m in steps):  # β-TCVAE: the three terms it weighs apart
        chart(kl_parts_figure(steps), key="train_kl_parts_chart")
    left, right = st.columns(2)
    for col, file, caption in (
        (left, "recon", "Test items (top row) and their reconstructions (bottom row)"),
        (right, "samples", samples_caption(run_dir)),
    ):
        png = enlarged_png(rf.picture_path(run_dir, file))
        if png:
            col.image(png, caption=caption, output_format="PNG")
    collapse_section(run_dir, epochs, warn)
    history_section(run_dir, live=live)


def samples_caption(run_dir: Path) -> str:
    """What the training's picture of prior samples shows, for the run's family."""
    try:
        family = rf.load_config(run_dir)[0].family
    except (OSError, ValueError):  # a run folder changed under the page: say the usual
        family = "vae"
    if family == "vampprior":
        return "Samples decoded from the VampPrior (each from one of its pseudo-inputs' components)"
    if family == "cvae":
        return "Samples decoded from the prior N(0, I), each row given one class (row 1: the first)"
    return "Samples decoded from the prior N(0, I)"


def collapse_section(run_dir: Path, epochs: list[dict], warn: bool = True) -> None:
    """The collapse alarm (unless said already), and the KL of each dimension over the epochs as a heat strip."""
    if not any(isinstance(e.get("test_kl_per_dim"), list) for e in epochs):
        return
    latent_dim = len(next(e["test_kl_per_dim"] for e in reversed(epochs) if isinstance(e.get("test_kl_per_dim"), list)))
    if warn and (warning := collapse_warning(epochs, latent_dim)):
        st.warning(warning, icon=":material/warning:")
    chart(kl_heat_figure(epochs), key="train_kl_heat")


HISTORY_CHART = "train_history_chart"
LIVE_MAP_KEY = "train_live_map"  # the live map's component (``ui.livemap``) while the run trains
FOLLOW_KEY = "train_history_follow"  # the item the replay follows: its id in the probe's split


def followed_item(ids) -> int | None:
    """The item the replay follows: the last one clicked on the history chart (kept across reruns and frames)."""
    event = st.session_state.get(HISTORY_CHART)
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        points = []
    for p in reversed(points or []):
        item = p.get("customdata")
        item = item[0] if isinstance(item, list) and item else item
        if isinstance(item, (int, float)) and int(item) in set(map(int, ids)):
            st.session_state[FOLLOW_KEY] = int(item)
            break
    item = st.session_state.get(FOLLOW_KEY)
    return item if isinstance(item, int) and item in set(map(int, ids)) else None


@st.cache_resource(max_entries=4, show_spinner=False)
def history_chart(path: str, stamp: tuple, follow: int | None, names: tuple, _view: dict):
    """The replay's figure, built once per new frame (or followed item): its wait for UMAP polls every second, and
    building 15 frames' figure took 160 ms each time."""
    labels = _view["labels"]
    groups = label_groups(labels, list(names) or None, len(_view["indices"]))
    axis = "UMAP" if _view["method"] == "umap" else "aligned PCA"
    return history_figure(_view["layouts"], groups, _view["captions"], _view["indices"], pictures=_view["pictures"],
                          follow=follow, axis=axis)  # fmt: skip


def history_section(run_dir: Path, live: bool = False) -> None:
    """The probe set's latent map, frame by frame: live while training, a replay (slider, play, GIF) after.

    While training it is drawn inside the live panel's fragment (every 2 s) by the browser (``ui.livemap``):
    its bytes change only when a frame lands, so between frames it costs nothing, and a new frame glides in. A
    Plotly figure of every frame (2,000 items), re-rendered per frame, took the browser about a second of CPU
    each time, beside the training. After training, the Plotly replay; its wait for the UMAP frames polls on
    its own."""
    st.subheader("Latent map as it trains")
    method = st.radio("Map", ["PCA", "UMAP"], key="train_history_method", horizontal=True,
                      help="PCA: each frame's principal plane, turned to match the frame before (milliseconds). UMAP: "
                           "each frame's UMAP started from the frame before, fitted in the background.")  # fmt: skip
    view = history_view(run_dir, method.lower())
    if view is None:
        st.caption("This run has no recorded latent history (runs trained before it was recorded have none).")
        return
    labels, n = view["labels"], len(view["indices"])
    names = None
    if labels is not None:
        try:
            ds = dataset_for(run_dir)
            names = [label_name(ds, y) for y in range(int(labels.max()) + 1)]
        except (ValueError, FileNotFoundError):
            names = [str(y) for y in range(int(labels.max()) + 1)]
    if view["umap_missing"]:
        if live:
            umap_note(run_dir, view, live=True)
        else:
            st.fragment(run_every=1.0)(umap_waiting)(run_dir, view)
        if live and view["umap_fitted"]:  # the UMAP frames so far, gliding to each as it is fitted
            view = fitted_so_far(view)
    follow = followed_item(view["indices"])
    if live:
        follow = livemap.show(run_dir, view, names, follow, key=LIVE_MAP_KEY)
        st.session_state[FOLLOW_KEY] = follow
    else:
        fig = history_chart(str(run_dir), view["stamp"], follow, tuple(names or ()), view)
        chart(fig, key=HISTORY_CHART, on_select="rerun", selection_mode="points")
    frames = len(view["layouts"])
    st.caption(
        f"{n:,} {view['split']} items, {frames} frame{'s' * (frames != 1)} (before training, each epoch, and every "
        "10 s of long epochs). "
        + ("Each frame is a UMAP of the items' latent means started from the frame before's layout and turned to "
           "match it" if view["method"] == "umap" else "Each frame is a PCA of the items' latent means, turned to "
           "match the frame before")
        + " (orthogonal Procrustes), so an item stays put unless the model moved it. "
        + ("New frames glide in as they land; Play or drag the slider to replay; " if live
           else "Play or drag the slider; ")
        + (f"the ring follows item #{follow} (click another to follow it). " if follow is not None
           else "click an item to follow it across the frames. ")
        + ("Beside the map, the same prior samples decoded at each frame." if view["pictures"] else "")
    )  # fmt: skip
    st.download_button(
        "Download animation (GIF)", lambda: animation_gif(view["layouts"], labels, view["captions"], names=names),
        file_name=f"{run_dir.name}-latent-history-{view['method']}.gif", mime="image/gif", icon=":material/download:",
        key="train_history_gif",
    )  # fmt: skip


def umap_note(run_dir: Path, view: dict, live: bool = False) -> None:
    _, message = view.get("umap_progress", (0.0, "starting"))
    fitted, n = len(view["layouts"]) - view["umap_missing"], len(view["layouts"])
    shown = "the map shows those so far" if fitted and live else "the PCA frames stand in meanwhile"
    st.info(f"UMAP frames: {fitted} of {n} fitted; the rest are being fitted in the background ({message}), and "
            f"{shown}.", icon=":material/hourglass_top:")  # fmt: skip


def fitted_so_far(view: dict) -> dict:
    """A history view in UMAP while some frames wait for theirs: the frames fitted so far (their first ones).
    The live map shows these rather than every frame in PCA, which it would have to swap for UMAP's places
    whenever the fits catch up, and back at the next frame."""
    k = len(view["umap_fitted"])
    pictures = view["pictures"][:k] if view["pictures"] else None
    return {**view, "layouts": view["umap_fitted"], "captions": view["captions"][:k], "pictures": pictures,
            "method": "umap", "umap_missing": 0}  # fmt: skip


def umap_waiting(run_dir: Path, view: dict) -> None:
    """(A fragment, every second.) The UMAP frames' progress; the page reruns once they are all fitted."""
    now = history_view(run_dir, "umap")
    if now is None or not now["umap_missing"]:
        st.rerun()
    umap_note(run_dir, now)


@st.fragment(run_every=LIVE_EVERY_S)
def live_panel(run: str, epochs: int) -> None:
    """Polls the run's files every ``LIVE_EVERY_S`` seconds; reruns the whole page once training ends."""
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
    curves_and_pictures(run_dir, live=True)


def final_panel(run_dir: Path, status: dict, epochs: int) -> None:
    """A run that is not training: what happened, what to do next, and its last curves."""
    state, message = status.get("state"), status.get("message") or ""
    flagged = alarm(run_dir, status)
    if flagged and flagged[0] == "collapsed":  # at the top, not a green "finished" over a dead latent space
        st.warning(f"Training {state or 'ended'}, but t{flagged[1][1:]}", icon=":material/warning:")
    if state == "finished":
        done = [m for m in rf.read_metrics(run_dir) if m.get("type") == "epoch"]
        elbo = f", test ELBO {done[-1]['test_elbo']:.2f} nats" if done and "test_elbo" in done[-1] else ""
        if not flagged:
            st.success(f"Training finished: {status.get('epoch', epochs)} epochs{elbo}.")
        st.page_link("app_pages/explore.py", label="Explore its latent space", icon=":material/scatter_plot:")
    elif state == "failed":
        st.error(message or "The training failed.")
        with st.expander("Training log"):
            st.code(rf.read_log(run_dir, 4000) or "(empty)")
    elif state in ("interrupted", "stopped", "created"):
        text = {"created": "This run was created but never started."}.get(state, message)
        (st.warning if state == "interrupted" else st.info)(text)
        has_ckpt = rf.has_state(run_dir)
        label = "Resume training" if has_ckpt else "Start training"
        st.button(
            label, key="train_continue", icon=":material/play_arrow:", on_click=continue_training, args=(str(run_dir),)
        )
    else:
        st.info(f"State: {state or 'unknown'}. {message}")
    if msg := st.session_state.pop(RUN_ERROR_KEY, None):
        st.error(msg)
    curves_and_pictures(run_dir, warn=not flagged)


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
