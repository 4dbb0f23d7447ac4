"""Runs: every run in a table, their curves side by side, evaluation, and rename / delete /
download / upload of a run (the table and actions: ``ui.runs``).

A downloaded run is a .zip of the run's own files. An uploaded one is checked completely before
anything is written (``vae.runs.runzip``: known file names only, no paths, sizes, config and weights loaded
strictly from safetensors, never unpickled, data only from built-in places and the uploads).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from ui import runs as actions
from ui import state
from ui.cache import dataset_for
from ui.figures import CURVE_AXES, CURVES, chart, curves_figure, kl_figure
from ui.runtime import runs_root
from ui.sidebar import current_run
from ui.text import plain
from ui.training import collapse_section
from vae.analysis.disentanglement import known_factors as factors_of
from vae.analysis.evaluate import evaluate_run
from vae.config import IWAE_K
from vae.runs import folder as rf
from vae.runs import jobs, listing
from vae.runs.runzip import ZIP_FILES, ZIP_REQUIRED
from vae.runs.schema import MAX_NOTE, MAX_TAGS, evaluation_problem

IWAE_CHOICES = sorted({10, IWAE_K, 1000})
ZIP_KEY = "runs_zip"  # the bytes the Download button serves (kept so tests can check them)


TABLE_NAMES = "runs_table_names"  # the table's runs in its rows' order, for a click's callback


def select_clicked() -> None:
    """(The table's callback, before the picker draws.) A clicked row makes its run the selected one."""
    rows = (st.session_state.get("runs_table") or {}).get("selection", {}).get("rows", [])
    names = st.session_state.get(TABLE_NAMES, [])
    if rows and rows[0] < len(names):
        state.select_run(names[rows[0]])


def table_section(runs: list[dict]) -> None:
    table = actions.run_rows(runs)
    st.session_state[TABLE_NAMES] = list(table["run"])
    st.dataframe(
        table,
        hide_index=True,
        placeholder="—",
        key="runs_table",
        on_select=select_clicked,
        selection_mode="single-row",
        column_config={
            "test ELBO": st.column_config.NumberColumn(format="%.2f", help="nats per test item, higher is better"),
            "IWAE log p(x)": st.column_config.NumberColumn(format="%.2f", help="from Evaluate; higher is better"),
            "k-NN accuracy": st.column_config.NumberColumn(format="%.1f %%", help="10-NN on the latent means"),
            "β": st.column_config.NumberColumn(format="%g"),
            **{
                name: st.column_config.NumberColumn(format="%.2f", help=SCORE_HELP[key])
                for key, name in actions.SCORE_COLUMNS.items()
            },  # fmt: skip
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
    picked = st.multiselect("Runs", names, key="runs_compare", placeholder="Choose runs to compare")
    if not picked:
        return
    read = lambda n: [m for m in rf.read_metrics(rf.run_path(runs_root(), n)) if m.get("type") == "epoch"]  # noqa: E731
    epochs_of = {n: read(n) for n in picked}
    numbers = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    recorded = {k for epochs in epochs_of.values() for m in epochs for k, v in m.items()
                if numbers(v) and k not in ("epoch", "step", "time")}  # fmt: skip
    metrics = [k for k in CURVES if k in recorded] + sorted(recorded - set(CURVES))  # any recorded metric
    c1, c2, c3 = st.columns([2, 1, 1])
    metric = c1.selectbox("Curve", metrics, format_func=lambda k: CURVES.get(k, k.replace("_", " ")), key="runs_curve")
    x = c2.selectbox("Against", list(CURVE_AXES), format_func=CURVE_AXES.get, key="runs_curve_x")
    smoothing = c3.slider("Smoothing", 0.0, 0.95, 0.0, 0.05, key="runs_smoothing",
                          help="An exponential moving average of the curve (weight of the past); 0: none.")  # fmt: skip
    chart(curves_figure(epochs_of, metric, names, x, smoothing), key="runs_compare_chart")


def notes_section(run_dir: Path, runs: list[dict]) -> None:
    """The run's tags and note: kept in its folder (notes.json), carried by its zip, shown in the table."""
    notes = rf.read_notes(run_dir)
    known = sorted({t for r in runs for t in rf.read_notes(r["path"])["tags"]} | set(notes["tags"]))
    with st.expander(f"Tags and note · {plain(', '.join(notes['tags'])) or 'none yet'}", icon=":material/sell:"):
        with st.form(key="runs_notes_form", border=False):
            tags = st.multiselect("Tags", known, default=notes["tags"], accept_new_options=True,
                                  key=f"runs_tags_{run_dir.name}", max_selections=MAX_TAGS,
                                  placeholder="Type a tag and press Enter, or pick one")  # fmt: skip
            note = st.text_area("Note", notes["note"], key=f"runs_note_{run_dir.name}", max_chars=MAX_NOTE,
                                placeholder="What this run tried, what it showed")  # fmt: skip
            if st.form_submit_button("Save", icon=":material/save:"):
                try:
                    rf.write_notes(run_dir, {"tags": tags, "note": note})
                except (ValueError, OSError) as e:
                    st.error(str(e))
                else:
                    st.rerun()  # the table shows the tags at once


def known_factors(run_dir: Path) -> list[str]:
    """The names of the factors the run's data was generated from ([] for data without, or a broken config)."""
    try:
        return factors_of(rf.load_data_config(run_dir).name)
    except (ValueError, FileNotFoundError):
        return []


def evaluate_section(run_dir: Path) -> None:
    st.subheader(f"Evaluate {run_dir.name}")
    if not rf.has_model(run_dir):
        st.info(f"{run_dir.name} has no saved model yet: it saves one after its first epoch.")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    k = c1.select_slider(
        "IWAE samples per test item (K)",
        IWAE_CHOICES,
        value=IWAE_K,
        key="runs_iwae_k",
        help="More samples give a tighter log-likelihood bound and take proportionally longer.",
    )
    factors = known_factors(run_dir)  # read from the config: the data itself loads only on Evaluate
    scored = bool(factors) and c1.toggle(
        "Disentanglement scores", value=True, key="runs_disentanglement",
        help="MIG, the β-VAE and FactorVAE scores, DCI and SAP against the data's known factors "
        f"({', '.join(factors)}); about a minute more.",
    )  # fmt: skip
    if c2.button("Evaluate", key="runs_evaluate", type="primary", icon=":material/analytics:"):
        bar = st.progress(0.0, text="Loading the model and data…")
        try:
            evaluate_run(
                run_dir,
                iwae_k=k,
                dataset=dataset_for(run_dir),
                progress=lambda f, m: bar.progress(min(1.0, max(0.0, f)), text=m),
                disentanglement=scored,
            )
        except (ValueError, FileNotFoundError) as e:
            st.error(str(e))
        else:
            st.rerun()  # the table above shows the new figures too
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
    if scores := ev.get("disentanglement"):
        disentanglement_scores(scores)
    chart(kl_figure(ev), key="runs_kl_chart")
    st.caption("Two measures of a dimension, which need not agree: it is *active* when its posterior mean varies "
               "across items (variance over 0.01, Burda et al.), and the bars are its average KL from the prior, "
               "how much it carries per item. A dimension whose mean moves a little can be active with a KL near "
               "zero.")  # fmt: skip


SCORE_HELP = {
    "mig": "mutual information gap: per factor, how much more the best dimension knows of it than the second",
    "beta_vae": "accuracy of telling which factor two batches share from their codes' differences",
    "factor_vae": "accuracy of naming the factor held fixed from the dimension that varies least",
    "dci_disentanglement": "how much each dimension is about one factor only (gradient-boosted trees)",
    "dci_completeness": "how much each factor is held by one dimension only",
    "dci_informativeness": "how well the codes predict the factors (test accuracy)",
    "sap": "per factor, the gap in accuracy between the best and second-best single dimension",
}


def disentanglement_scores(scores: dict) -> None:
    """The disentanglement scores of an evaluation (vae.analysis.disentanglement), 0 to 1, higher is better."""
    st.markdown(f"**Disentanglement** against the data's factors ({', '.join(scores.get('factors', []))})")
    cols = st.columns(len(actions.SCORE_COLUMNS))
    for col, (key, name) in zip(cols, actions.SCORE_COLUMNS.items(), strict=True):
        value = scores.get(key)
        col.metric(name, "—" if value is None else f"{value:.2f}", help=SCORE_HELP[key])


def manage_section(run_dir: Path, active: bool) -> None:
    name = run_dir.name
    st.subheader(f"Manage {name}")
    actions.show_message("manage")
    busy = "Stop the training first." if active else None
    c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
    key = f"runs_new_name_{name}"
    c1.text_input("New name", value=name, key=key)
    c1.button("Rename", key="runs_rename", on_click=actions.rename, args=(name, key), disabled=active, help=busy)
    try:
        data = actions.zip_for_download(run_dir)
    except ValueError as e:  # a planted link or pipe in the run: refused, never followed
        c2.caption(str(e))
    else:
        st.session_state[ZIP_KEY] = data
        c2.download_button(
            "Download .zip",
            data=data,
            file_name=f"{name}.zip",
            mime="application/zip",
            key="runs_download",
            icon=":material/download:",
            on_click="ignore",
            help=f"The run's {', '.join(ZIP_FILES)} (those it has) and its latent map's history",
        )
    with c3:
        delete_control(name, busy)


def delete_control(name: str, busy: str | None) -> None:
    """Delete… then "Yes, delete" / "Cancel"; ``busy`` (a sentence) disables it while the run trains."""
    if st.session_state.get("runs_confirm_delete") == name:
        st.warning(f"Delete {plain(name)} and all its files? This cannot be undone.")
        a, b = st.columns(2)
        a.button("Yes, delete", key="runs_delete_yes", type="primary", on_click=actions.delete, args=(name,))
        b.button("Cancel", key="runs_delete_no", on_click=lambda: st.session_state.pop("runs_confirm_delete"))
    else:
        st.button("Delete…", key="runs_delete", icon=":material/delete:", disabled=busy is not None, help=busy,
                  on_click=lambda: st.session_state.update(runs_confirm_delete=name))  # fmt: skip


def broken_section(run: dict) -> None:
    """A broken entry of the runs folder (a link, a hand-made folder with an odd name, a config that does not
    read): why, and Delete, which removes that entry itself (a link, never what it points to)."""
    st.subheader(f"Manage {plain(run['name'])}")
    actions.show_message("manage")
    st.caption(
        f"This run is broken: {plain((run.get('message') or 'it cannot be read').rstrip('.'))}. It can only be deleted."
    )
    delete_control(run["name"], None)


def import_section() -> None:
    st.subheader("Upload a run")
    key = f"runs_upload_{st.session_state.get(actions.UPLOADS_KEY, 0)}"
    st.file_uploader(
        f"A run .zip made by Download ({' and '.join(ZIP_REQUIRED)}; optionally "
        f"{', '.join(n for n in ZIP_FILES if n not in ZIP_REQUIRED)} and its latent map's history). It keeps the "
        "run's own name unless a run here has it.",
        type=["zip"],
        key=key,
        on_change=actions.import_upload,
        args=(key,),
        max_upload_size=st.get_option("server.maxUploadSize"),  # the limit the server enforces
    )
    actions.show_message("import")


# ---------------------------------------------------------------- the page

st.title("Runs")
runs = listing.list_runs(runs_root())
for r in runs:
    if r["state"] != "broken":
        r["state"] = jobs.refresh_status(r["path"]).get("state", r["state"])
if not runs:
    actions.show_message("manage")  # e.g. the last run was just deleted
    st.info("No runs yet: train one on the Train page, or upload a run .zip below.")
else:
    table_section(runs)
    compare_section(runs)
    run_dir = current_run()
    chosen = next((r for r in runs if r["name"] == state.selected_run_name()), None)
    if run_dir is None and chosen is not None and chosen["state"] == "broken":
        st.divider()
        broken_section(chosen)
    if run_dir is not None:
        st.divider()
        notes_section(run_dir, runs)
        evaluate_section(run_dir)
        collapse_section(run_dir, [m for m in rf.read_metrics(run_dir) if m.get("type") == "epoch"])
        manage_section(run_dir, jobs.refresh_status(run_dir).get("state") in jobs.ACTIVE_STATES)
st.divider()
import_section()
