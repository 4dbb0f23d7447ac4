"""Runs: every run in a table, their curves side by side, evaluation, and rename / delete /
download / upload of a run.

A downloaded run is a .zip of the run's own files. An uploaded one is checked completely before
anything is written (known file names only, no paths, sizes, config and weights loaded strictly
from safetensors, never unpickled), then written to a fresh run folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.colors
import plotly.graph_objects as go
import streamlit as st
import torch
from safetensors import SafetensorError, safe_open

import ui
from vae import checkpoints as ck
from vae import jobs
from vae.evaluate import EVALUATION_FILE, evaluate_run
from vae.models import build_model

KB, MB = 1 << 10, 1 << 20
# The files a run .zip may hold, with the most bytes each may have.
ZIP_FILES = {
    ck.CONFIG_FILE: 64 * KB,
    ck.MODEL_FILE: 512 * MB,
    ck.METRICS_FILE: 64 * MB,
    ck.STATUS_FILE: 64 * KB,
    EVALUATION_FILE: 4 * MB,
}
ZIP_REQUIRED = (ck.CONFIG_FILE, ck.MODEL_FILE)
IWAE_CHOICES = [10, 100, 1000]
EVAL_NUMBERS = ("test_elbo", "test_recon", "test_kl", "active_units", "latent_dim", "n_test")
EVAL_OPTIONAL = ("iwae_ll", "iwae_k", "knn_accuracy", "knn_k", "recon_mse", "seconds", "time")
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


# ---------------------------------------------------------------- run .zip files (belong in vae/checkpoints.py)


def run_zip(run_dir: Path) -> bytes:
    """The run's files (those that exist of ``ZIP_FILES``) in a zip, built in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ZIP_FILES:
            path = run_dir / name
            if path.is_file():
                zf.writestr(name, path.read_bytes())
    return buf.getvalue()


def read_run_zip(data: bytes) -> dict[str, bytes]:
    """The members of a run zip by name, after checking names and sizes; a ``ValueError`` sentence otherwise."""
    expected = ", ".join(ZIP_FILES)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError):
        raise ValueError("This file is not a zip archive; expected a run .zip made by the Download button.") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            name = info.filename
            if "/" in name or "\\" in name or name in ("", ".", "..") or ":" in name:
                raise ValueError(
                    f"The zip holds {name!r}, a path; a run .zip holds only plain files ({expected}), no folders."
                )
            if name not in ZIP_FILES:
                raise ValueError(f"The zip holds an unexpected file {name!r}; a run .zip holds only {expected}.")
            if info.file_size > ZIP_FILES[name]:
                raise ValueError(
                    f"{name} in the zip is {info.file_size:,} bytes, over the {ZIP_FILES[name]:,} allowed."
                )
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise ValueError("The zip holds the same file twice; expected each run file once.")
        missing = [n for n in ZIP_REQUIRED if n not in names]
        if missing:
            raise ValueError(f"The zip has no {' or '.join(missing)}; a run needs both config.json and its weights.")
        out = {}
        for info in infos:
            try:
                with zf.open(info) as f:
                    body = f.read(ZIP_FILES[info.filename] + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
                raise ValueError(f"{info.filename} in the zip could not be read ({e}); the zip is damaged.") from None
            if len(body) > ZIP_FILES[info.filename]:
                raise ValueError(f"{info.filename} in the zip unpacks to more than {ZIP_FILES[info.filename]:,} bytes.")
            out[info.filename] = body
    return out


def check_weights(folder: Path) -> None:
    """Config and weights of ``folder`` must load: shapes compared from headers first, then a strict load."""
    model_cfg, _, _ = ck.load_config(folder)
    with torch.device("meta"):  # the shapes config.json implies, without allocating anything
        expected = {k: tuple(v.shape) for k, v in build_model(model_cfg).state_dict().items()}
    try:
        with safe_open(str(folder / ck.MODEL_FILE), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{ck.MODEL_FILE} in the zip is truncated or not a safetensors file ({e}).") from None
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        raise ValueError(f"{ck.MODEL_FILE} in the zip does not match its config.json (first difference: {wrong[0]}).")
    ck.load_model(folder)  # strict: names, shapes, dtypes, and every byte readable


def import_run_zip(root: Path, data: bytes, name: str) -> Path:
    """Check a run zip completely, then write it to a new run folder (``name``, ``name-2``...)."""
    files = read_run_zip(data)
    try:
        base = ck.sanitize_run_name(name)
    except ValueError:
        base = "imported-run"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / base  # so messages name the run, not the temp folder
        folder.mkdir()
        for n in ZIP_REQUIRED:
            (folder / n).write_bytes(files[n])
        check_weights(folder)
    status = _json_object(files, ck.STATUS_FILE)
    evaluation = _json_object(files, EVALUATION_FILE)
    if evaluation is not None and (problem := evaluation_problem(evaluation)):
        raise ValueError(f"{EVALUATION_FILE} in the zip is not an evaluation: {problem}.")
    try:
        files.get(ck.METRICS_FILE, b"").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{ck.METRICS_FILE} in the zip is not text; expected JSON lines.") from None
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=root))  # hidden: never listed as a run
    try:
        for n in (ck.CONFIG_FILE, ck.MODEL_FILE, ck.METRICS_FILE):
            if n in files:
                (staging / n).write_bytes(files[n])
        # A status from another machine may name a process id: keep the progress, never the pid.
        old = status or {}
        ck.write_json(
            staging / ck.STATUS_FILE,
            {
                **{k: old[k] for k in ("epoch", "step", "total_steps") if isinstance(old.get(k), int)},
                "state": "finished" if old.get("state") == "finished" else "stopped",
                "message": "imported from a run .zip"
                + ("" if old.get("state") == "finished" else " (without optimiser state: it cannot be resumed)"),
                "updated": time.time(),
            },
        )
        if evaluation is not None:
            evaluation["checkpoint"] = ck.checkpoint_id(staging)  # same weights, new file
            ck.write_json(staging / EVALUATION_FILE, evaluation)
        for i in range(1, 1000):
            target = ck.run_path(root, base if i == 1 else f"{base[: ck.MAX_NAME - 6]}-{i}")
            if not target.exists():
                os.rename(staging, target)
                return target
        raise ValueError(f"Too many runs are named {base!r}; rename the zip.")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def evaluation_problem(ev: object) -> str | None:
    """Why ``ev`` is not an evaluation this page can show (None when it is one)."""
    if not isinstance(ev, dict):
        return "it is not a JSON object"
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    for key in EVAL_NUMBERS:
        if not number(ev.get(key)):
            return f"its field {key!r} is not a number"
    for key in EVAL_OPTIONAL:
        if key in ev and not number(ev[key]):
            return f"its field {key!r} is not a number"
    for key in ("kl_per_dim", "mean_variance"):
        values = ev.get(key)
        if not (isinstance(values, list) and len(values) == ev["latent_dim"] and all(map(number, values))):
            return f"its field {key!r} is not a list of {ev['latent_dim']} numbers"
    return None


def _json_object(files: dict[str, bytes], name: str) -> dict | None:
    if name not in files:
        return None
    try:
        obj = json.loads(files[name])
    except (ValueError, UnicodeDecodeError):
        obj = None
    if not isinstance(obj, dict):
        raise ValueError(f"{name} in the zip is not a JSON object.")
    return obj


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
        cfg = ck.read_json(path / ck.CONFIG_FILE, default={}) or {}
        model, train = cfg.get("model", {}), cfg.get("train", {})
        ev = ck.read_json(path / EVALUATION_FILE, default={})
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
        epochs = [m for m in ck.read_metrics(ck.run_path(ui.runs_root(), name)) if m.get("type") == "epoch"]
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
        if jobs.refresh_status(ck.run_path(root, old)).get("state") in jobs.ACTIVE_STATES:
            raise ValueError(f"{old} is training; stop it before renaming it.")
        dst = ck.rename_run(root, old, new)
    except (ValueError, FileNotFoundError, OSError) as e:
        say("manage", "error", str(e))
        return
    ui.select_run(dst.name)
    say("manage", "success", f"Renamed {old} to {dst.name}.")


def delete(name: str) -> None:
    root = ui.runs_root()
    st.session_state.pop("runs_confirm_delete", None)
    try:
        if jobs.refresh_status(ck.run_path(root, name)).get("state") in jobs.ACTIVE_STATES:
            raise ValueError(f"{name} is training; stop it before deleting it.")
        ck.delete_run(root, name)
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
    if not (run_dir / ck.MODEL_FILE).is_file():
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
    ev = ck.read_json(run_dir / EVALUATION_FILE, default=None)
    if ev is None:
        st.caption("Not evaluated yet.")
        return
    if problem := evaluation_problem(ev):
        st.warning(f"{EVALUATION_FILE} of {run_dir.name} cannot be shown ({problem}); evaluate again.")
        return
    if ev.get("checkpoint") != ck.checkpoint_id(run_dir):
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
runs = ck.list_runs(ui.runs_root())
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
