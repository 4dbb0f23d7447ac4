"""A conditional VAE's class on the pages: one choice in the sidebar, read by every page that decodes.

The encoder of a conditional VAE is given each item's own label (its codes hold the style, not the class); what the
decoder draws depends on the class it is given, chosen once in the sidebar for the whole app.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from vae.models import VAE

CLASS = "cvae_class"  # the class every page's decodes are given
STYLE_NOTE = (
    "A conditional VAE's codes hold the style, not the class (the decoder is given the class), so on this map the "
    "classes mix: items that sit together share a style (slant, thickness, size) whatever their label."
)


def class_names(classes: int, ds) -> list[str]:
    """A conditional VAE's ``classes`` by name (the data's label names, else their numbers)."""
    names = [str(n) for n in (ds.label_names or [])]
    return names[:classes] + [str(i) for i in range(len(names), classes)]


def chosen(model: VAE) -> int | None:
    """The class the pages decode with (the sidebar's choice, 0 until one is made); None for other models."""
    if not model.conditional:
        return None
    return valid(st.session_state.get(CLASS, 0), model.cfg.classes)


def valid(value, classes: int) -> int:
    return int(value) if isinstance(value, (int, np.integer)) and 0 <= value < classes else 0


def picker(run_dir: Path) -> None:
    """The sidebar's class choice, for a conditional run only (nothing for others, or a run that cannot load)."""
    from vae.runs import folder as rf

    from .cache import dataset_for

    try:
        classes = rf.load_config(run_dir)[0].conditions
        names = class_names(classes, dataset_for(run_dir)) if classes else []
    except (FileNotFoundError, ValueError):
        return
    if not classes:
        return
    if CLASS in st.session_state and valid(st.session_state[CLASS], classes) != st.session_state[CLASS]:
        st.session_state[CLASS] = 0  # another run's class beyond this run's classes
    st.sidebar.selectbox("Class to decode", range(classes), format_func=lambda i: names[i], key=CLASS,
                         help="This run is a conditional VAE: the decoder draws the class chosen here, in the "
                         "style the point in latent space gives.")  # fmt: skip


def every_class(model: VAE, ds, z: np.ndarray, key: str = "decode_every_class") -> np.ndarray | None:
    """Same style, every class: the point ``z`` (L,) decoded once for each class, in one labelled row (images);
    returns the decodes (classes, *item_shape), kept in ``st.session_state[key]``; None for other models."""
    from vae.images import make_grid, png_bytes

    from .pictures import enlargement, labelled_grid

    if not model.conditional:
        return None
    classes = model.cfg.classes
    decoded = model.decode_numpy(np.repeat(np.asarray(z, dtype=np.float32)[None], classes, 0), np.arange(classes))
    st.session_state[key] = decoded
    st.markdown("**Same style, every class**")
    if decoded.ndim != 4:
        st.caption("This model decodes table rows; choose the class in the sidebar to see each one.")
        return decoded
    png = png_bytes(make_grid(decoded, classes, pad=1, fill=1.0), scale=enlargement(decoded.shape, 72))
    st.image(labelled_grid(png, [""], class_names(classes, ds)), output_format="PNG")
    st.caption("This point's style (z) given to the decoder with each class in turn: what changes is the class.")
    return decoded
