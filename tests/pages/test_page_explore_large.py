"""Explore with a large map: its codes are encoded in the background with a progress bar, kept with the run, and the
next visit opens the map without encoding again (the threshold lowered so that digits' 1,797 items are "large")."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from apptest import open_app

import ui.cache
import ui.codes


@pytest.fixture
def large(monkeypatch):
    """Maps of 1,000 items or more are large; the background encoding waits for the returned event to start."""
    monkeypatch.setattr(ui.cache, "BACKGROUND_CODES", 1000)
    go = threading.Event()
    encode = ui.cache.encode_rows

    def held(*args, **kwargs):
        assert go.wait(60)
        return encode(*args, **kwargs)

    monkeypatch.setattr(ui.cache, "encode_rows", held)
    return go


def test_a_large_map_is_encoded_in_the_background_then_kept_with_the_run(runs, run_data, large):
    run, model, ds = run_data
    state = {"explore_method": "PCA", "explore_split": "all", "explore_browser": False}
    at = open_app("explore", state=state)
    n = ds.split_size("all")
    bars = at.get("progress")
    assert len(bars) == 1 and f"Encoding the {n:,} items of this map once, in the background" in bars[0].proto.text
    assert "explore_map" not in at.session_state  # no map until the codes exist
    assert not list((run / "projections").glob("codes-*.npy"))

    large.set()  # the encoding goes on; the page's poller would rerun it when done
    deadline = time.time() + 60
    while time.time() < deadline and not list((run / "projections").glob("codes-*.npy")):
        time.sleep(0.1)
    time.sleep(0.2)
    at.run()
    assert not at.exception, at.exception
    assert not at.get("progress")
    shown = at.session_state["explore_map"]
    assert shown["size"] == n and shown["split"] == "all"
    (kept,) = (run / "projections").glob("codes-*.npy")
    both = np.load(kept)
    mu, logvar = model.embed_split(ds, "all")
    np.testing.assert_allclose(both[0], mu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(both[1], logvar, rtol=1e-5, atol=1e-5)

    ui.cache.latent_params.clear()  # a new server: the codes come from the run's folder, nothing encoded
    large.clear()
    again = open_app("explore", state=state)
    assert not again.get("progress") and again.session_state["explore_map"]["size"] == n
