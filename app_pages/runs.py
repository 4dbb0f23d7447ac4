"""Runs: every run in a table, their curves side by side, evaluation, and rename / delete /
download / upload of a run.

A downloaded run is a .zip of the run's own files. An uploaded one is checked completely before
anything is written (known file names only, no paths, sizes, config and weights loaded strictly
from safetensors, never unpickled), then written to a fresh run folder.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.colors
import plotly.graph_objects as go
import streamlit as st

import ui
from vae import jobs
from vae import run as rf
from vae.evaluate import evaluate_run
from vae.runzip import ZIP_FILES, evaluation_problem, import_run_zip, run_zip

IWAE_CHOICES = [10, 100, 1000]
CURVES = {
    "test_elbo": "test ELBO",
    "train_elbo": "train ELBO",
    "test_recon": "test reconstruction (−log p(x|z))",
    "test_kl": "test KL",
}
PALETTE = plotly.colors.qualitative.D3
MESSAGE_KEY = "runs_message_{}"  # (kind, text) a callback leaves for its section ("manage", "import")
UPLOADS_KEY = "runs_uploads"  # counts imports, so the uploader comes back empty after one
ZIP_KEY = "runs_zip"  # the bytes the Download button serves (kept so tests can check them)


# ---------------------------------------------------------------- cached helpers


@st.cache_resource(max_entries=4, show_spinner=False)
def _cached_zip(path: str, stamp: tuple) -> bytes:
    return run_zip(Path(path))


def zip_for_download(run_dir: Path) -> bytes:
    """The run's zip, rebuilt only when one of its files changed."""
    stamp = tuple((n, p.stat().st_mtime_ns, p.stat().st_size) for n in ZIP_FILES if (p := run_dir / n).is_file())
    return _cached_zip(str(run_dir), stamp)


def run_rows(runs: list[dict]) -> pd.DataFrame:
    """One table row per run: what it is, how far it got, and how good it is."""
    rows = []
    for r in runs:
        path = Path(r["path"])
        cfg = rf.read_json(path / rf.CONFIG_FILE, default={}) or {}
        model, train = cfg.get("model", {}), cfg.get("train", {})
        ev = rf.read_evaluation(path) or {}
        ev = {} if evaluation_problem(ev) else ev
        layers = model.get("hidden") if model.get("arch") == "mlp" else model.get("channels")
        data = cfg.get("data", {})
        rows.append(
            {
                "run": r["name"],
                "state": r["state"],
                "data": Path(data.get("path") or "").name if data.get("name") == "file" else data.get("name"),
                "model": f"{(model.get('arch') or '?').upper()} {'-'.join(map(str, layers or []))}".strip(),
                "latent": model.get("latent_dim"),
                "β": train.get("beta"),
                "epochs": f"{r['epoch']} / {r['epochs']}",
                "test ELBO": r["test_elbo"],
                "IWAE log p(x)": ev.get("iwae_ll"),
                "active units": f"{ev['active_units']} / {ev['latent_dim']}" if "active_units" in ev else None,
                "k-NN accuracy": 100 * ev["knn_accuracy"] if "knn_accuracy" in ev else None,
                "updated": datetime.fromtimestamp(r["updated"]).strftime("%Y-%m-%d %H:%M"),
            }
        )
    return pd.DataFrame(rows)


def curves_figure(names: list[str], key: str, every: list[str]) -> go.Figure:
    """One line per run: ``key`` of its epoch records against the epoch (belongs in ui.py).

    Each run keeps its colour (by its place in ``every``) whichever runs are shown.
    """
    fig, longest = go.Figure(), 1
    for name in names:
        epochs = [m for m in rf.read_metrics(rf.run_path(ui.runs_root(), name)) if m.get("type") == "epoch"]
        longest = max([longest] + [m["epoch"] for m in epochs])
        fig.add_trace(
            go.Scatter(
                x=[m["epoch"] for m in epochs],
                y=[m.get(key) for m in epochs],
                name=name,
                mode="lines+markers",
                line={"color": PALETTE[every.index(name) % len(PALETTE)] if name in every else None},
            )
        )
    better = "higher" if key.endswith("elbo") else "lower"
    fig.update_layout(
        title=f"{CURVES[key]} per epoch",
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        xaxis_title="epoch",
        yaxis_title=f"nats per item ({better} is better)",
    )
    fig.update_xaxes(tick0=1, dtick=max(1, round(longest / 8)))  # whole epochs
    return fig


def kl_figure(ev: dict) -> go.Figure:
    """KL per latent dimension, active dimensions (Burda's criterion) in colour."""
    kl = ev.get("kl_per_dim", [])
    var = ev.get("mean_variance") or [1.0] * len(kl)
    active = [v > 0.01 for v in var]
    fig = go.Figure(
        go.Bar(
            x=[f"z{i}" for i in range(len(kl))],
            y=kl,
            marker_color=["#1f77b4" if a else "#c7c7c7" for a in active],
            hovertemplate="%{x}: %{y:.3f} nats<extra></extra>",
        )
    )
    fig.update_layout(
        title="KL per latent dimension (grey: inactive)",
        height=300,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        yaxis_title="nats",
    )
    return fig


# ---------------------------------------------------------------- callbacks (run before the picker draws)


def say(where: str, kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY.format(where)] = (kind, text)


def show_message(where: str) -> None:
    if message := st.session_state.pop(MESSAGE_KEY.format(where), None):
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


def rename(old: str, key: str) -> None:
    root = ui.runs_root()
    new = (st.session_state.get(key) or "").strip()
    try:
        if jobs.refresh_status(rf.run_path(root, old)).get("state") in jobs.ACTIVE_STATES:
            raise ValueError(f"{old} is training; stop it before renaming it.")
        dst = rf.rename_run(root, old, new)
    except (ValueError, FileNotFoundError, OSError) as e:
        say("manage", "error", str(e))
        return
    ui.select_run(dst.name)
    say("manage", "success", f"Renamed {old} to {dst.name}.")


def delete(name: str) -> None:
    root = ui.runs_root()
    st.session_state.pop("runs_confirm_delete", None)
    try:
        if jobs.refresh_status(rf.run_path(root, name)).get("state") in jobs.ACTIVE_STATES:
            raise ValueError(f"{name} is training; stop it before deleting it.")
        rf.delete_run(root, name)
    except (ValueError, FileNotFoundError, OSError) as e:
        say("manage", "error", str(e))
        return
    ui.select_run(None)
    say("manage", "success", f"Deleted {name}.")


def import_upload(key: str) -> None:
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        run_dir = import_run_zip(ui.runs_root(), upload.getvalue(), Path(upload.name).stem)
    except (ValueError, FileNotFoundError, OSError) as e:
        say("import", "error", f"{upload.name} was not imported: {e}")
        return
    ui.select_run(run_dir.name)
    st.session_state[UPLOADS_KEY] = st.session_state.get(UPLOADS_KEY, 0) + 1  # a fresh, empty uploader
    say("import", "success", f"Imported {upload.name} as {run_dir.name}; it is now the selected run.")


# ---------------------------------------------------------------- sections


def table_section(runs: list[dict]) -> None:
    st.dataframe(
        run_rows(runs),
        hide_index=True,
        placeholder="—",
        key="runs_table",
        column_config={
            "test ELBO": st.column_config.NumberColumn(format="%.2f", help="nats per test item, higher is better"),
            "IWAE log p(x)": st.column_config.NumberColumn(format="%.2f", help="from Evaluate; higher is better"),
            "k-NN accuracy": st.column_config.NumberColumn(format="%.1f %%", help="10-NN on the latent means"),
            "β": st.column_config.NumberColumn(format="%g"),
        },
    )


def compare_section(runs: list[dict]) -> None:
    st.subheader("Compare curves")
    names = [r["name"] for r in runs if r["test_elbo"] is not None]
    if not names:
        st.caption("Runs appear here once they have finished an epoch.")
        return
    chosen = [n for n in st.session_state.get("runs_compare", names[:2]) if n in names]
    st.session_state["runs_compare"] = chosen
    left, right = st.columns([3, 1])
    picked = left.multiselect("Runs", names, key="runs_compare", placeholder="Choose runs to compare")
    metric = right.selectbox("Curve", list(CURVES), format_func=CURVES.get, key="runs_curve")
    if picked:
        st.plotly_chart(curves_figure(picked, metric, names), key="runs_compare_chart")


def evaluate_section(run_dir: Path) -> None:
    st.subheader(f"Evaluate {run_dir.name}")
    if not (run_dir / rf.MODEL_FILE).is_file():
        st.info(f"{run_dir.name} has no saved model yet: it saves one after its first epoch.")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    k = c1.select_slider(
        "IWAE samples per test item (K)",
        IWAE_CHOICES,
        value=100,
        key="runs_iwae_k",
        help="More samples give a tighter log-likelihood bound and take proportionally longer.",
    )
    if c2.button("Evaluate", key="runs_evaluate", type="primary", icon=":material/analytics:"):
        bar = st.progress(0.0, text="Loading the model and data…")
        try:
            evaluate_run(
                run_dir,
                iwae_k=k,
                dataset=ui.dataset_for(run_dir),
                progress=lambda f, m: bar.progress(min(1.0, max(0.0, f)), text=m),
            )
        except (ValueError, FileNotFoundError) as e:
            st.error(str(e))
        bar.empty()
    ev = rf.read_evaluation(run_dir)
    if ev is None:
        st.caption("Not evaluated yet.")
        return
    if problem := evaluation_problem(ev):
        st.warning(f"The evaluation of {run_dir.name} cannot be shown ({problem}); evaluate again.")
        return
    if ev.get("checkpoint") != rf.checkpoint_id(run_dir):
        st.warning("These results are for earlier weights: the run has trained since. Evaluate again.")
    cols = st.columns(4)
    cols[0].metric("Test ELBO", f"{ev['test_elbo']:.2f}", help="nats per test item (higher is better)")
    if "iwae_ll" in ev:
        cols[1].metric(f"IWAE log p(x), K={ev.get('iwae_k', '?')}", f"{ev['iwae_ll']:.2f}", help="a tighter bound")
    cols[2].metric("Active units", f"{ev['active_units']} of {ev['latent_dim']}", help="Cov(E[z|x]) > 0.01")
    if "knn_accuracy" in ev:
        cols[3].metric(
            f"{ev.get('knn_k', 'k')}-NN accuracy", f"{100 * ev['knn_accuracy']:.1f} %", help="on latent means"
        )
    st.caption(
        f"{ev['n_test']:,} test items · reconstruction {ev['test_recon']:.2f} nats, KL {ev['test_kl']:.2f} nats · "
        f"evaluated {datetime.fromtimestamp(ev.get('time', 0)):%Y-%m-%d %H:%M} in {ev.get('seconds', 0):.1f} s"
    )
    st.plotly_chart(kl_figure(ev), key="runs_kl_chart")


def manage_section(run_dir: Path, active: bool) -> None:
    name = run_dir.name
    st.subheader(f"Manage {name}")
    show_message("manage")
    busy = "Stop the training first." if active else None
    c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
    key = f"runs_new_name_{name}"
    c1.text_input("New name", value=name, key=key)
    c1.button("Rename", key="runs_rename", on_click=rename, args=(name, key), disabled=active, help=busy)
    data = zip_for_download(run_dir)
    st.session_state[ZIP_KEY] = data
    c2.download_button(
        "Download .zip",
        data=data,
        file_name=f"{name}.zip",
        mime="application/zip",
        key="runs_download",
        icon=":material/download:",
        on_click="ignore",
        help="config.json, model.safetensors, metrics.jsonl, status.json and evaluation.json if present",
    )
    with c3:
        if st.session_state.get("runs_confirm_delete") == name:
            st.warning(f"Delete {name} and all its files? This cannot be undone.")
            a, b = st.columns(2)
            a.button("Yes, delete", key="runs_delete_yes", type="primary", on_click=delete, args=(name,))
            b.button("Cancel", key="runs_delete_no", on_click=lambda: st.session_state.pop("runs_confirm_delete"))
        else:
            st.button(
                "Delete…",
                key="runs_delete",
                icon=":material/delete:",
                disabled=active,
                help=busy,
                on_click=lambda: st.session_state.update(runs_confirm_delete=name),
            )


def import_section() -> None:
    st.subheader("Upload a run")
    key = f"runs_upload_{st.session_state.get(UPLOADS_KEY, 0)}"
    st.file_uploader(
        "A run .zip made by Download (config.json and model.safetensors, optionally metrics, status, evaluation)",
        type=["zip"],
        key=key,
        on_change=import_upload,
        args=(key,),
        max_upload_size=512,
    )
    show_message("import")


# ---------------------------------------------------------------- the page

st.title("Runs")
runs = rf.list_runs(ui.runs_root())
for r in runs:
    r["state"] = jobs.refresh_status(r["path"]).get("state", r["state"])
if not runs:
    show_message("manage")  # e.g. the last run was just deleted
    st.info("No runs yet: train one on the Train page, or upload a run .zip below.")
else:
    table_section(runs)
    compare_section(runs)
    run_dir = ui.current_run()
    if run_dir is not None:
        st.divider()
        evaluate_section(run_dir)
        manage_section(run_dir, jobs.refresh_status(run_dir).get("state") in jobs.ACTIVE_STATES)
st.divider()
import_section()
