"""The Home page through AppTest: on a fresh install it trains the demo (the digits preset) and opens Explore."""

from pathlib import Path

import pytest
from apptest import open_app

from vae.config import DEMO_DATA, preset
from vae.runs import folder as rf
from vae.runs import jobs, listing

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_trains_the_preset_in_the_background_then_opens_explore(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(runs))
    at = open_app(timeout=60)
    assert at.button[0].label == "Train a demo model"
    at.button[0].click().run()
    assert not at.exception, at.exception
    (demo,) = [runs / name for name in listing.run_names(runs)]
    model_cfg, train_cfg, data_cfg = rf.load_config(demo)
    p = preset(DEMO_DATA)
    assert (data_cfg.name, model_cfg.latent_dim, model_cfg.hidden, train_cfg) == (
        DEMO_DATA,
        p.latent_dim,
        p.hidden,
        p.train,
    )
    assert jobs.refresh_status(demo)["state"] in (*jobs.ACTIVE_STATES, "finished")  # a process trains it
    assert jobs.wait(demo, timeout=120)["state"] == "finished"
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explore the latent map"  # the finished demo opens its map


@pytest.mark.parametrize("installed", [True, False])
def test_home_preloads_plotly_only_where_the_package_ships_it(monkeypatch, tmp_path, installed):
    """While the demo trains, Home sends plotly.min.js to the tab for Explore's first map; a plotly package
    without the file (the maps then fall back to the server) must not break Home."""
    from ui import mapview

    sent = []
    monkeypatch.setattr(mapview, "_component", lambda data, key: sent.append((bytes(data[:8]), key)))
    if not installed:
        monkeypatch.setattr(mapview, "PLOTLY_JS", tmp_path / "plotly.min.js")  # no such file
    mapview.preload_plotly()
    assert sent == ([(mapview.PLOTLY_MAGIC, "mapview_plotly_preload")] if installed else [])
