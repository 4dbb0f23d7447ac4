"""The Runs page's table and actions: one row per run, the run zip served for download, and the callbacks that
rename, delete and import runs (each leaves a message for its section instead of raising)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from vae.runs import folder as rf
from vae.runs import jobs
from vae.runs.runzip import ZIP_FILES, import_run_zip, run_zip
from vae.runs.schema import evaluation_problem

from . import state
from .forms import FAMILY_LABELS
from .notice import alarm
from .runtime import runs_root

MESSAGE_KEY = "runs_message_{}"  # (kind, text) a callback leaves for its section ("manage", "import")
UPLOADS_KEY = "runs_uploads"  # counts imports, so the uploader comes back empty after one


@st.cache_resource(max_entries=4, show_spinner=False)
def _cached_zip(path: str, stamp: tuple) -> bytes:
    return run_zip(Path(path))


def zip_for_download(run_dir: Path) -> bytes:
    """The run's zip, rebuilt only when one of its files changed (their own times: a link is never followed);
    ``ValueError`` with a sentence when the run holds a file that is not a regular one."""

    def own(path: Path) -> tuple | None:
        try:
            st = os.lstat(path)
        except OSError:
            return None
        return st.st_mode, st.st_mtime_ns, st.st_size

    return _cached_zip(str(run_dir), tuple((n, own(run_dir / n)) for n in ZIP_FILES))


SCORE_COLUMNS = {  # vae.analysis.disentanglement's keys -> the table's columns
    "mig": "MIG",
    "beta_vae": "β-VAE score",
    "factor_vae": "FactorVAE score",
    "dci_disentanglement": "DCI disentanglement",
    "dci_completeness": "DCI completeness",
    "dci_informativeness": "DCI informativeness",
    "sap": "SAP",
}


KL_PARTS = {  # the KL split three ways (vae.analysis.decompose), nats on the test split
    "index_code_mi": "index-code MI",
    "total_correlation": "total correlation",
    "dimension_wise_kl": "dimension-wise KL",
}


def run_rows(runs: list[dict]) -> pd.DataFrame:
    """One table row per run (``listing.list_runs``): what it is, how far it got, and how good it is."""
    rows = []
    for r in runs:
        ev = rf.read_evaluation(Path(r["path"])) or {}
        ev = {} if evaluation_problem(ev) else ev
        ok = r["arch"] is not None  # a broken run has no config: listed with its reason, so it can be deleted
        rows.append(
            {
                "run": r["name"],
                "tags": ", ".join(rf.read_notes(Path(r["path"]))["tags"]) or None,
                "state": r["state"],
                "alarm": (alarm(Path(r["path"]), r) or ("",))[0] if ok else "",  # collapsed, diverged or ""
                "data": r["dataset"],
                "family": FAMILY_LABELS.get(r.get("family") or "", r.get("family")) if ok else None,
                "model": f"{r['arch'].upper()} {'-'.join(map(str, r['layers']))}".strip() if ok else None,
                "latent": r["latent_dim"],
                "β": r["beta"],
                "epochs": f"{r['epoch']} / {r['epochs']}" if ok else None,
                "test ELBO": r["test_elbo"],
                "IWAE log p(x)": ev.get("iwae_ll"),
                "active units": f"{ev['active_units']} / {ev['latent_dim']}" if "active_units" in ev else None,
                "k-NN accuracy": 100 * ev["knn_accuracy"] if "knn_accuracy" in ev else None,
                **{name: ev.get(key) for key, name in KL_PARTS.items()},
                **{name: (ev.get("disentanglement") or {}).get(key) for key, name in SCORE_COLUMNS.items()},
                "updated": datetime.fromtimestamp(r["updated"]).strftime("%Y-%m-%d %H:%M"),
            }
        )
    table = pd.DataFrame(rows)
    optional = [*SCORE_COLUMNS.values(), *KL_PARTS.values()]
    unscored = [name for name in optional if name in table and table[name].isna().all()]
    return table.drop(columns=unscored)  # disentanglement columns only where a run has the scores


def say(where: str, kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY.format(where)] = (kind, text)


def show_message(where: str) -> None:
    if message := st.session_state.pop(MESSAGE_KEY.format(where), None):
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


def training(path) -> bool:
    """Whether the run listed at ``path`` trains now (a link or a hand-made folder with an odd name never does: its
    status is not read through the link)."""
    return not path.is_symlink() and rf.is_run(path) and jobs.refresh_status(path).get("state") in jobs.ACTIVE_STATES


def rename(old: str, key: str) -> None:
    root = runs_root()
    new = (st.session_state.get(key) or "").strip()
    try:
        if training(rf.listed(root, old)):
            raise ValueError(f"{old} is training; stop it before renaming it.")
        dst = rf.rename_run(root, old, new)
    except (ValueError, FileNotFoundError, OSError) as e:
        say("manage", "error", str(e))
        return
    state.select_run(dst.name)
    say("manage", "success", f"Renamed {old} to {dst.name}.")


def delete(name: str) -> None:
    root = runs_root()
    st.session_state.pop("runs_confirm_delete", None)
    try:
        if training(rf.listed(root, name)):
            raise ValueError(f"{name} is training; stop it before deleting it.")
        rf.delete_run(root, name)
    except (ValueError, FileNotFoundError, OSError) as e:
        say("manage", "error", str(e))
        return
    state.select_run(None)
    say("manage", "success", f"Deleted {name}.")


def import_upload(key: str) -> None:
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        run_dir = import_run_zip(runs_root(), upload.getvalue(), Path(upload.name).stem)
    except (ValueError, FileNotFoundError, OSError) as e:
        say("import", "error", f"{upload.name} was not imported: {e}")
        return
    state.select_run(run_dir.name)
    st.session_state[UPLOADS_KEY] = st.session_state.get(UPLOADS_KEY, 0) + 1  # a fresh, empty uploader
    say("import", "success", f"Imported {upload.name} as {run_dir.name}; it is now the selected run.")
