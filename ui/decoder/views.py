"""What the Decode page shows of a point: the decoded item, the traversal grid, and their downloads."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from vae.analysis.latent import traversal_latents
from vae.data import Dataset
from vae.models import VAE

from ..pictures import decode, enlargement, feature_names, grid_picture, labelled_grid, picture
from .point import INDEX_KEY, LIMIT, MODE_KEY, ss

TRAVERSAL_STEPS = 9
DISPLAY_PX, CELL_PX = 256, 64  # on-screen side of the decoded image and of a traversal cell
DECODED_ALT = "decoded image"
TRAVERSAL_KEY = "decode_traversal"  # the traversal's decoded items, (rows * steps, *item_shape)


def show_decoded(item: np.ndarray, ds: Dataset, name: str) -> None:
    """The decoded item: an enlarged picture (images) or a feature table in original units (vectors)."""
    if ds.is_image:
        png = picture(item, scale=enlargement(item.shape, DISPLAY_PX))
        cols = st.columns(2 if ss.get(MODE_KEY) == "item" else 1)
        cols[0].image(png, caption="Decoded", alt=DECODED_ALT, output_format="PNG")
        if len(cols) > 1:
            original = ds.x_test[int(ss.get(INDEX_KEY, 0))].numpy()
            shown = picture(original, scale=enlargement(original.shape, DISPLAY_PX))
            cols[1].image(shown, caption="Test item", output_format="PNG")
        download_png(png, name)
    else:
        table = pd.DataFrame({"decoded": ds.to_original_units(item[None])[0]}, index=feature_names(ds, item.size))
        st.dataframe(table, width="content")
        st.download_button(
            "Download CSV",
            table.T.to_csv(index=False),
            file_name=f"{name}-decoded.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )


def show_traversal(model: VAE, ds: Dataset, z: np.ndarray, shown: Sequence[int], name: str) -> None:
    """Each shown dimension swept from -LIMIT to +LIMIT, the others held at ``z``: one row per dimension."""
    steps = np.linspace(-LIMIT, LIMIT, TRAVERSAL_STEPS, dtype=np.float32)
    items = decode(model, traversal_latents(z, shown, steps))  # (len(shown) * steps, *item_shape)
    ss[TRAVERSAL_KEY] = items
    st.subheader("Traversal")
    rows = ", ".join(f"z{d}" for d in shown)
    st.caption(f"Rows top to bottom: {rows}. Columns: {-LIMIT:+g} … {LIMIT:+g}; other dimensions held where they are.")
    if ds.is_image:
        png = grid_picture(items, ncol=TRAVERSAL_STEPS, scale=enlargement(items.shape, CELL_PX))
        title = f"{name}: each row one latent dimension from {-LIMIT:+g} to {LIMIT:+g}, the others held"
        png = labelled_grid(png, [f"z{d}" for d in shown], [f"{v:+.1f}" for v in steps], title)
        st.image(png, alt="traversal grid", output_format="PNG")
        st.download_button(
            "Download grid PNG",
            png,
            file_name=f"{name}-traversal.png",
            mime="image/png",
            on_click="ignore",
            icon=":material/download:",
        )
    else:
        values = ds.to_original_units(items.reshape(len(items), -1))  # (rows * steps, D)
        index = [f"z{d} = {v:+.2f}" for d in shown for v in steps]
        table = pd.DataFrame(values, index=index, columns=feature_names(ds, values.shape[1]))
        st.dataframe(table, height=320)
        st.download_button(
            "Download traversal CSV",
            table.to_csv(),
            file_name=f"{name}-traversal.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
        )


def download_png(png: bytes, name: str, label: str = "Download PNG") -> None:
    st.download_button(
        label, png, file_name=f"{name}-decoded.png", mime="image/png", on_click="ignore", icon=":material/download:"
    )
