"""Start, steer and watch a run from the Train page: the Start callback, pause / resume / stop, and the run's
live panel (``ui.livepanel`` and ``ui.livemap``: drawn by the browser, which polls the run's feed) or its final
panel.

The training runs in its own process (``vae.runs.jobs``); these panels only read the run folder's files, so
closing the tab does not stop it and reloading the page finds it again.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vae.analysis import history
from vae.analysis.diagnose import collapse_warning
from vae.analysis.history import animation_gif
from vae.runs import folder as rf
from vae.runs import jobs

from . import livemap, livepanel, state
from .cache import history_view, load_data
from .figures import chart, elbo_figure, history_figure, kl_heat_figure, kl_parts_figure, loss_figure
from .forms import ARCH_LABELS, FAMILY_LABELS, NEW_FORM_KEY, data_config, model_configs
from .livepanel import samples_caption
from .maps import label_groups
from .notice import alarm
from .pictures import enlarged_png
from .runtime import runs_root

ERROR_KEY = "train_error"  # a refused start, shown beside the Start button
RUN_ERROR_KEY = "train_run_error"  # a refused pause / resume / stop, shown in the run panel
WATCHED_KEY = "train_watched"  # the run whose live panel this session showed last


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


def curves_and_pictures(run_dir: Path, warn: bool = True) -> None:
    """A run's curves and pictures after training (while it trains the browser draws them: ``ui.livepanel``)."""
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
    history_section(run_dir)


def collapse_section(run_dir: Path, epochs: list[dict], warn: bool = True) -> None:
    """The collapse alarm (unless said already), and the KL of each dimension over the epochs as a heat strip."""
    if not any(isinstance(e.get("test_kl_per_dim"), list) for e in epochs):
        return
    latent_dim = len(next(e["test_kl_per_dim"] for e in reversed(epochs) if isinstance(e.get("test_kl_per_dim"), list)))
    if warn and (warning := collapse_warning(epochs, latent_dim)):
        st.warning(warning, icon=":material/warning:")
    chart(kl_heat_figure(epochs), key="train_kl_heat")


HISTORY_CHART = "train_history_chart"
LIVE_PANEL_KEY = "train_live_panel"  # the live panel's component (``ui.livepanel``): curves, pictures, progress
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


def history_section(run_dir: Path, feed: str | None = None) -> None:
    """The probe set's latent map, frame by frame: live while training, a replay (slider, play, GIF) after.

    While training it is drawn by the browser (``ui.livemap``), which asks the run's feed for new frames every
    2 s: between frames it costs nothing, and a new frame glides in. A Plotly figure of every frame (2,000 items),
    re-rendered per frame, took the browser about a second of CPU each time, beside the training. After
    training, the Plotly replay; its wait for the UMAP frames polls on its own."""
    st.subheader("Latent map as it trains")
    method = st.radio("Map", ["PCA", "UMAP"], key="train_history_method", horizontal=True,
                      help="PCA: each frame's principal plane, turned to match the frame before (milliseconds). UMAP: "
                           "each frame's UMAP started from the frame before, fitted in the background.")  # fmt: skip
    if feed is not None:
        live_history(run_dir, method.lower(), feed)
        return
    view = history_view(run_dir, method.lower())
    if view is None:
        st.caption("This run has no recorded latent history (runs trained before it was recorded have none).")
        return
    labels, n = view["labels"], len(view["indices"])
    names = livemap.label_names(run_dir, labels)
    if view["umap_missing"]:
        st.fragment(run_every=1.0)(umap_waiting)(run_dir, view)
    follow = followed_item(view["indices"])
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
        + "Play or drag the slider; "
        + (f"the ring follows item #{follow} (click another to follow it). " if follow is not None
           else "click an item to follow it across the frames. ")
        + ("Beside the map, the same prior samples decoded at each frame." if view["pictures"] else "")
    )  # fmt: skip
    st.download_button(
        "Download animation (GIF)", lambda: animation_gif(view["layouts"], labels, view["captions"], names=names),
        file_name=f"{run_dir.name}-latent-history-{view['method']}.gif", mime="image/gif", icon=":material/download:",
        key="train_history_gif", on_click="ignore",
    )  # fmt: skip


def live_history(run_dir: Path, method: str, feed: str) -> None:
    """While the run trains: the live map (``ui.livemap``), which polls the run's ``feed`` for its frames."""
    probe = history.read_probe(run_dir)
    ids = probe[0] if probe is not None else []
    follow = livemap.show(feed, method, ids, followed_item(ids), key=LIVE_MAP_KEY)
    st.session_state[FOLLOW_KEY] = follow
    st.caption(
        "The probe set's items, a frame before training, after each epoch and every 10 s of long epochs; new frames "
        "glide in as they land. "
        + ("Each frame is a UMAP of the items' latent means started from the frame before's layout and turned to "
           "match it" if method == "umap" else "Each frame is a PCA of the items' latent means, turned to match "
           "the frame before")
        + " (orthogonal Procrustes), so an item stays put unless the model moved it. Play or drag the slider to "
        "replay; " + (f"the ring follows item #{follow} (click another to follow it). " if follow is not None
                      else "click an item to follow it across the frames.")
    )  # fmt: skip

    def gif() -> bytes:  # the frames when the button is pressed, not when the panel was drawn
        view = history_view(run_dir, method)
        if view is None:
            raise ValueError("The run has no frame yet.")
        names = livemap.label_names(run_dir, view["labels"])
        return animation_gif(view["layouts"], view["labels"], view["captions"], names=names)

    st.download_button("Download animation (GIF)", gif, file_name=f"{run_dir.name}-latent-history-{method}.gif",
                       mime="image/gif", icon=":material/download:", key="train_history_gif",
                       on_click="ignore")  # fmt: skip


def umap_waiting(run_dir: Path, view: dict) -> None:
    """(A fragment, every second.) The UMAP frames' progress; the page reruns once they are all fitted."""
    now = history_view(run_dir, "umap")
    if now is None or not now["umap_missing"]:
        st.rerun()
    st.info(livemap.umap_sentence(now), icon=":material/hourglass_top:")


@st.fragment
def live_panel(run: str, epochs: int) -> None:
    """The run while it trains. Drawn once: the browser polls the run's feed from then on (``ui.livepanel``,
    ``ui.livemap``) and reruns this fragment when the run's state changes; the whole page once training ends."""
    run_dir = Path(run)
    status = jobs.refresh_status(run_dir)
    if status.get("state") not in jobs.ACTIVE_STATES:
        st.rerun()  # the page then shows the final state without polling
    st.session_state[WATCHED_KEY] = run_dir.name
    c1, c2, _ = st.columns([1, 1, 4])
    if status.get("state") == "paused":
        c1.button("Resume", key="train_resume", icon=":material/play_arrow:", on_click=control, args=(run, "resume"))
    else:
        c1.button("Pause", key="train_pause", icon=":material/pause:", on_click=control, args=(run, "pause"))
    c2.button("Stop", key="train_stop", icon=":material/stop:", on_click=control, args=(run, "stop"))
    if msg := st.session_state.pop(RUN_ERROR_KEY, None):
        st.error(msg)
    feed = livepanel.show(run_dir, status, epochs, key=LIVE_PANEL_KEY)
    history_section(run_dir, feed=feed)


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
