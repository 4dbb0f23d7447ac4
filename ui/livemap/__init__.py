"""The Train page's latent map while its run trains, drawn by the browser (livemap.js beside this file).

Mounted once in the live panel's fragment; the browser then polls the run's feed (``ui.served``, ``part=map``)
every 2 s with the stamp of the frames it holds, and gets nothing back (204) until a frame lands or a UMAP frame
is fitted; then every frame so far as bytes (``frames_bytes``), and it glides the items to their new places.
The slider and Play replay the frames; a click follows an item, which comes back as the state value ``follow``.
After training the page draws the Plotly replay (``ui.figures.history_figure``), following the same item.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import streamlit as st

from vae.analysis import history

from .. import served
from ..cache import dataset_for, history_view
from ..maps import label_groups
from ..pictures import label_name

FRONTEND = Path(__file__).resolve().parent
MAGIC = b"LELIVEMP"

_component = st.components.v2.component(
    "latent_explorer_live_map",
    js=(FRONTEND.parent / "livepanel" / "feed.js").read_text() + (FRONTEND / "livemap.js").read_text(),
    css=(FRONTEND / "livemap.css").read_text(),
)


def frames_bytes(view: dict, names: list[str] | None, note: str | None = None) -> bytes:
    """A history view's frames for livemap.js: MAGIC, a uint32 JSON length, the JSON, padding to 4 bytes, float32
    layouts (frames, items, 2). ``note``: a sentence above the map (how many UMAP frames wait)."""
    ids = np.asarray(view["indices"])
    groups = label_groups(view["labels"], names, len(ids))
    group_of = np.zeros(len(ids), dtype=np.int64)
    for g, (rows, _, _) in enumerate(groups):
        group_of[rows] = g
    axis = "UMAP" if view["method"] == "umap" else "aligned PCA"
    meta = {
        "ids": ids.astype(int).tolist(),
        "labels": None if view["labels"] is None else group_of.tolist(),
        "groups": [{"name": name, "colour": colour} for _, name, colour in groups],
        "captions": list(view["captions"]),
        "pictures": view["pictures"],
        "axis": axis,
        "method": view["method"],
        "note": note,
    }
    text = json.dumps(meta, separators=(",", ":")).encode()
    head = MAGIC + struct.pack("<I", len(text)) + text
    layouts = np.stack([np.asarray(layout, dtype=np.float32) for layout in view["layouts"]])
    return head + bytes(-len(head) % 4) + np.ascontiguousarray(layouts, dtype="<f4").tobytes()


@st.cache_resource(max_entries=8, show_spinner=False)
def _bytes(path: str, stamp: str, names: tuple, note: str | None, _view: dict) -> bytes:
    """``frames_bytes`` once per new frame (every page watching the run asks at every poll)."""
    return frames_bytes(_view, list(names) or None, note)


def label_names(run_dir: Path, labels) -> list[str] | None:
    """The names of a history's labels (its dataset's; their numbers where the dataset cannot be read)."""
    if labels is None:
        return None
    try:
        ds = dataset_for(run_dir)
        return [label_name(ds, y) for y in range(int(labels.max()) + 1)]
    except (ValueError, FileNotFoundError):
        return [str(y) for y in range(int(labels.max()) + 1)]


def umap_sentence(view: dict, live: bool = False) -> str:
    """How many of a history's UMAP frames are fitted, and what the map shows meanwhile (live: without the fit's
    progress, which would change the live map's bytes at every step of a fit)."""
    _, message = view.get("umap_progress", (0.0, "starting"))
    fitted, n = len(view["layouts"]) - view["umap_missing"], len(view["layouts"])
    shown = "the map shows those so far" if fitted and live else "the PCA frames stand in meanwhile"
    where = "in the background" if live else f"in the background ({message})"
    return f"UMAP frames: {fitted} of {n} fitted; the rest are being fitted {where}, and {shown}."


def fitted_so_far(view: dict) -> dict:
    """A history view in UMAP while some frames wait for theirs: the frames fitted so far (their first ones).
    The live map shows these rather than every frame in PCA, which it would have to swap for UMAP's places
    whenever the fits catch up, and back at the next frame."""
    k = len(view["umap_fitted"])
    pictures = view["pictures"][:k] if view["pictures"] else None
    return {**view, "layouts": view["umap_fitted"], "captions": view["captions"][:k], "pictures": pictures,
            "method": "umap", "umap_missing": 0}  # fmt: skip


def live_view(run_dir: Path, method: str) -> tuple[dict, str | None] | None:
    """What the live map shows of the run's history in ``method`` (in UMAP, the frames fitted so far, starting the
    fits of the rest) and the note above it; None before the first frame."""
    view = history_view(run_dir, method)
    if view is None:
        return None
    note = None
    if view["umap_missing"]:
        note = umap_sentence(view, live=True)
        if view["umap_fitted"]:
            view = fitted_so_far(view)
    return view, note


def feed(run_dir: Path, method: str, have: str, url: str) -> served.Answer:
    """The run's frames in ``method`` for the browser that holds the frames stamped ``have``: nothing (204) while
    they are the same, else every frame as bytes, with their stamp (header ``X-Stamp``); each frame's picture as a
    URL of the run's feed (``url``, ``picture``), which the browser asks once, when it shows that frame."""
    if method not in ("pca", "umap"):
        return served.Answer(400, "method must be pca or umap.")
    found = live_view(run_dir, method)
    if found is None:
        return served.Answer(204, b"")
    view, note = found
    stamp = json.dumps([view["stamp"], view["method"], len(view["layouts"]), note])
    stamp = hashlib.sha256(stamp.encode()).hexdigest()[:20]
    if stamp == have:
        return served.Answer(204, b"")
    if view["pictures"]:  # the pictures by URL: the frames' data URIs came to 12 KB a frame, sent at every frame
        versions = [p.stat().st_mtime_ns for p in history.frame_paths(run_dir)[: len(view["pictures"])]]
        view = {**view, "pictures": [f"{url}&part=samples&frame={k}&v={v}" for k, v in enumerate(versions)]}
    data = _bytes(str(run_dir), stamp, tuple(label_names(run_dir, view["labels"]) or ()), note, view)
    return served.Answer(200, data, "application/octet-stream", {"X-Stamp": stamp})


def samples(run_dir: Path, frame: str | None) -> served.Answer:
    """Frame ``frame``'s decoded prior samples as a JPEG (the browser keeps it: its URL names the frame file's
    version)."""
    paths = history.frame_paths(run_dir)
    if not frame or not frame.isdigit() or int(frame) >= len(paths):
        return served.Answer(400, f"frame must be a frame's number, 0 to {len(paths) - 1}.")
    jpegs = history.sample_jpegs([history.frames(run_dir)[int(frame)]])
    if not jpegs:
        return served.Answer(404, "The run's frames hold no pictures.")
    return served.Answer(200, jpegs[0], "image/jpeg", {"Cache-Control": "private, max-age=86400"})


def show(feed_url: str, method: str, ids, follow: int | None, key: str) -> int | None:
    """Mount the live map polling ``feed_url`` for the frames in ``method``, ring on ``follow``; the item the
    person follows on it now (its id, one of ``ids``), or ``follow`` when they have not clicked it."""
    data = {"feed": f"{feed_url}&part=map&method={method}", "follow": follow}
    _component(data=data, key=key, default={"follow": follow}, on_follow_change=lambda: None)
    return followed(key, ids, follow)


def followed(key: str, ids, follow: int | None) -> int | None:
    """The item followed on the live map under ``key``: an id of ``ids`` from the browser, None when the person
    clicked away from every item, ``follow`` before any click. Anything malformed is ignored."""
    state = st.session_state.get(key)
    if not hasattr(state, "get") or "follow" not in state:
        return follow
    value = state.get("follow")
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and int(value) in set(map(int, ids)):
        return int(value)
    return follow
