"""The sidebar's run picker, shared by every page: the choice survives page switches."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vae.runs import folder as rf
from vae.runs import jobs, listing

from . import conditional, state
from .notice import epochs_done
from .runtime import runs_root
from .text import plain
from .training import alarm


def run_picker() -> Path | None:
    """Sidebar select box over the runs, with the selected run's state; returns the selected run folder."""
    names = listing.run_names(runs_root())  # every full rerun draws this: names only, no metrics parsed
    state.check_link(state.RUN, names, "the run")
    chosen = state.selected_run_name()
    if chosen not in names:
        state.select_run(names[0] if names else None)  # none yet, or deleted meanwhile (another tab)
        if chosen:
            st.toast(
                f"Run {chosen} is gone (deleted or renamed elsewhere)" + (f"; showing {names[0]}." if names else ".")
            )
    with st.sidebar:
        if not names:
            st.caption("No runs yet: train one on the Train page.")
            return None
        st.selectbox(
            "Run", names, key=state.RUN, bind="query-params",
            help="The model every page uses. New trainings are added here.",
        )  # fmt: skip
        run = current_run()
        if run is not None:
            if jobs.refresh_status(run).get("state") in jobs.ACTIVE_STATES:
                st.fragment(run_every=2.0)(_run_caption)(run)  # keeps the state fresh while it trains
            else:
                _run_caption(run)
    if run is not None:
        conditional.picker(run)  # a conditional VAE's class, for every page's decodes
    return run


def _run_caption(run: Path) -> None:
    """One line under the picker: the run's state, epoch and data (or why its files cannot be read)."""
    status = jobs.refresh_status(run)
    try:
        _, train_cfg, data_cfg = rf.load_config(run)
    except (ValueError, FileNotFoundError) as e:
        st.caption(f"broken: {e}")
        return
    flagged = alarm(run, status)
    flag = f" · **:orange[{flagged[0]}]**" if flagged else ""  # a collapsed or diverged run says so here too
    done = epochs_done(status, train_cfg.epochs)
    st.caption(f"{status.get('state', 'unknown')}{flag} · {done} · {plain(rf.data_label(data_cfg))}")


def current_run() -> Path | None:
    """The selected run's folder, or None (no runs, or it was deleted meanwhile)."""
    name = state.selected_run_name()
    if not name:
        return None
    try:
        path = rf.run_path(runs_root(), name)
    except ValueError:
        return None
    return path if rf.is_run(path) else None
