"""Decode while dragging: the Decode page's in-browser decoder (a Streamlit v2 component: core.js + panel.js here).

The decoder's weights go to the browser once per checkpoint as raw bytes (vae/web/decoder.py packs them):
they ride in an element of their own whose content never changes, and Streamlit does not re-send an
unchanged element. The panel element carries only JSON: the point, the slider dimensions and a
``version`` that Python bumps whenever it moves the point itself (start, reset, random), so the browser
knows to adopt it; otherwise the browser keeps its own, newer point. On release the browser sends the
point back (state ``z``); a decoder the browser cannot run fires ``failed`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from vae.models import VAE
from vae.runs import folder as rf
from vae.web import decoder as webdecoder

from ..cache import model_for
from ..conditional import chosen

FRONTEND = Path(__file__).resolve().parent  # core.js, panel.js and panel.css sit beside this file


def module(own: Path) -> str:
    """A component's JS: the shared decoder (core.js) followed by the component's own code ``own``.

    Streamlit v2 components arrive as one inline module each, with nothing to import from, so every
    component that decodes carries core.js; they share its registry through ``globalThis``.
    """
    return (FRONTEND / "core.js").read_text() + "\n" + own.read_text()


_component = st.components.v2.component(
    "latent_explorer_decoder", js=module(FRONTEND / "panel.js"), css=(FRONTEND / "panel.css").read_text()
)


def unsupported(model: VAE) -> str | None:
    """Why this model decodes on the server only (a sentence), or None."""
    return webdecoder.browser_unsupported(model)


def model_id(run_dir: Path, checkpoint: str) -> str:
    """The browser decoder's name: the run at its checkpoint (a conditional VAE's: with the class it draws)."""
    return _named(run_dir, checkpoint, chosen(model_for(run_dir)))


def _named(run_dir: Path, checkpoint: str, label: int | None) -> str:
    return f"{run_dir.name}@{checkpoint}" + ("" if label is None else f"#class{label}")


def weights(path: str, checkpoint: str) -> bytes:
    """The decoder of run ``path`` at ``checkpoint`` packed for the browser (a conditional VAE's: of the class
    chosen in the sidebar)."""
    return _weights(path, checkpoint, chosen(model_for(Path(path))))


@st.cache_data(max_entries=8, show_spinner="Packing the decoder for the browser…")
def _weights(path: str, checkpoint: str, label: int | None) -> bytes:
    run_dir = Path(path)
    return webdecoder.export_decoder(model_for(run_dir), _named(run_dir, checkpoint, label), label)


def released(key: str) -> dict | None:
    """The point the browser last sent back ({"version", "z"}), or None."""
    state = st.session_state.get(key)
    value = state.get("z") if hasattr(state, "get") else None
    return value if isinstance(value, dict) else None


def failure(key: str) -> str | None:
    """The reason the browser gave for not running the decoder, if it just did."""
    state = st.session_state.get(key)
    value = state.get("failed") if hasattr(state, "get") else None
    return str(value) if value else None


def panel(
    run_dir: Path,
    *,
    z: Sequence[float],
    version: int,
    dims: Sequence[int],
    labels: Sequence[str],
    pad: tuple[int, int],
    limit: float,
    px: int,
    key: str,
    on_release: Callable[[], None],
    on_failed: Callable[[], None],
) -> None:
    """Sliders for ``dims``, a pad over the ``pad`` dimensions and the image, all decoded in the browser."""
    # one reading of the checkpoint for both mounts: a run saving meanwhile must not leave the panel
    # waiting for weights tagged with another id
    checkpoint = rf.checkpoint_id(run_dir)
    _component(
        data={
            "id": model_id(run_dir, checkpoint),
            "version": version,
            "z": [float(v) for v in z],
            "dims": [int(d) for d in dims],
            "labels": list(labels),
            "pad": [int(pad[0]), int(pad[1])],
            "limit": limit,
            "step": 0.01,
            "px": px,
        },
        key=key,
        default={"z": None},
        on_z_change=on_release,
        on_failed_change=on_failed,
    )
    _component(data=weights(str(run_dir), checkpoint), key=f"{key}_weights")
