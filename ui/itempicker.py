"""Choose a test item by its picture (Decode's and Interpolate's item pickers): a label filter and a table of the
items' thumbnails, where a click on a row picks that item. The number box beside it stays, for any item by its
number; a pick sets that box."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import streamlit as st
import torch

from vae.data import Dataset
from vae.images import png_bytes

from .pictures import enlargement, label_name

SHOWN = 120  # rows in the table: the first test items of the chosen label
ANY = "any label"


def _fingerprint(ds: Dataset) -> tuple:
    """What tells two datasets apart for the table's cache (the dataset object itself is not hashed)."""
    return ds.name, ds.source, tuple(ds.x_test.shape), float(ds.x_test[:64].sum())


@st.cache_data(max_entries=16, show_spinner=False)
def _table(_ds: Dataset, fingerprint: tuple, label: int | None, shown: int) -> tuple[pd.DataFrame, int]:
    """The first ``shown`` test items of ``label`` (None: any) with their thumbnails, and how many there are."""
    y = None if _ds.y_test is None else _ds.y_test.numpy()
    matching = np.arange(len(_ds.x_test)) if label is None or y is None else np.flatnonzero(y == label)
    rows = matching[:shown]
    items = _ds.x_test[torch.as_tensor(rows, dtype=torch.int64)].numpy()
    scale = enlargement(_ds.item_shape, 40)
    table = {"item": rows, "picture": [
        "data:image/png;base64," + base64.b64encode(png_bytes(x, scale=scale)).decode() for x in items]}  # fmt: skip
    if y is not None:
        table["label"] = [label_name(_ds, int(y[r])) for r in rows]
    return pd.DataFrame(table), len(matching)


def browse(ds: Dataset, key: str, target: str) -> int | None:
    """An expander holding a label filter and the test items' thumbnails. Returns the item picked by a click on its
    row in this run (once per pick), having set the number box ``target`` to it, else None: call it before that box
    is drawn. Table rows (not images) are drawn for data without pictures."""
    if not ds.is_image or not len(ds.x_test):
        return None
    with st.expander("Browse the test items by picture", icon=":material/grid_view:"):
        label = None
        if ds.y_test is not None:
            names = [label_name(ds, y) for y in range(int(ds.y_test.max()) + 1)]
            choice = st.selectbox("Label", [ANY, *names], key=f"{key}_label")
            label = None if choice == ANY else names.index(choice)
        table, matching = _table(ds, _fingerprint(ds), label, SHOWN)
        event = st.dataframe(
            table, key=f"{key}_table_{label}", on_select="rerun", selection_mode="single-row", hide_index=True,
            row_height=48, height=min(48 * len(table) + 40, 340),
            column_config={"item": st.column_config.NumberColumn("item #", format="%d"),
                           "picture": st.column_config.ImageColumn("picture", width="small")},
        )  # fmt: skip
        which = "" if label is None else " of this label"
        shown = (
            f"All {matching:,} test items" if len(table) == matching else f"The first {len(table):,} of {matching:,}"
        )
        st.caption(f"{shown}{which}: click a row to pick that item; the number box takes any item.")
    rows = list(event.selection.rows) if event is not None else []
    if not rows or not 0 <= rows[0] < len(table):
        return None
    picked = int(table["item"].iloc[rows[0]])
    seen = f"{key}_seen"
    if st.session_state.get(seen) == (label, picked):  # the same click, read again on a later rerun
        return None
    st.session_state[seen] = (label, picked)
    st.session_state[target] = picked
    return picked
