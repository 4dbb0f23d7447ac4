"""The Compare page: two runs of the same data side by side (AppTest). Run B is an exactly equivalent copy of
"digits-small" (its latent dimensions permuted and sign-flipped), so every measure must say "the same" and the
linear map must carry A's code to the code B decodes identically."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from apptest import open_app

from vae.runs import folder as rf

PERMUTATION = [2, 0, 3, 1]
SIGNS = torch.tensor([1.0, -1.0, -1.0, 1.0])


@pytest.fixture
def twin(runs):
    """ "digits-twin": digits-small with latent dimension j of the copy = SIGNS[j] * dimension PERMUTATION[j]."""
    shutil.copytree(runs / "digits-small", runs / "digits-twin")
    model = rf.load_model(runs / "digits-twin")
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    head_w, head_b = sd["encoder.net.2.weight"], sd["encoder.net.2.bias"]  # rows: mu (4), then logvar (4)
    latent = 4
    mu_rows = torch.tensor(PERMUTATION)
    sd["encoder.net.2.weight"] = torch.cat([head_w[mu_rows] * SIGNS[:, None], head_w[latent + mu_rows]])
    sd["encoder.net.2.bias"] = torch.cat([head_b[mu_rows] * SIGNS, head_b[latent + mu_rows]])
    sd["decoder.net.0.weight"] = sd["decoder.net.0.weight"][:, mu_rows] * SIGNS[None, :]
    model.load_state_dict(sd)
    rf.save_model(runs / "digits-twin", model)
    return runs / "digits-twin"


def open_compare(b: str | None = None):
    at = open_app("compare", state={"run": "digits-small", **({"compare_b": b} if b else {})})
    assert not at.exception, at.exception
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_run_against_its_exact_twin_is_the_same_space_and_decodes_the_same_through_the_map(runs, twin):
    at = open_compare()
    assert at.session_state["compare_pair"] == ("digits-small", "digits-twin")  # B: the other run on these data
    m = metrics(at)
    assert m["Linear CKA"] == "1.00" and m["10 neighbours shared"] == "100%"
    assert m["Procrustes disparity"] == "0.00" and m["Linear map R²"] == "1.00"
    assert any("arbitrary up to rotation" in c.value for c in at.caption)
    # a click on an item of A's map decodes it through both models
    click = {"selection": {"points": [{"curve_number": 0, "customdata": 7}]}}
    at.session_state["compare_chart_A"] = click
    at.run()
    assert not at.exception, at.exception
    pictures = at.session_state["compare_decoded"]
    a, carried = pictures["A's decode"], pictures["B's decode (linear map)"]
    assert np.abs(a - carried).max() < 1 / 255  # the map found the signed permutation
    at.radio(key="compare_carry").set_value("same raw z")
    at.session_state["compare_chart_A"] = click  # the chart's selection, as the browser keeps it
    at.run()
    raw = at.session_state["compare_decoded"]["B's decode (same raw z)"]
    assert np.abs(a - raw).max() > 0.05  # the same numbers mean something else in B
    assert not any(d.value is not None and "setting" in d.value.columns for d in at.dataframe)  # nothing differs


def test_a_selection_on_one_map_is_highlighted_on_both_with_its_label_counts(runs, twin):
    at = open_compare()
    at.session_state["compare_chart_B"] = {"selection": {"points": [
        {"curve_number": 0, "customdata": i} for i in (3, 5, 9)]}}  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    assert "**3 items selected**, highlighted on both maps." in [m.value for m in at.markdown]
    assert any(c.value.startswith("Label counts: ") for c in at.caption)


def test_only_runs_on_the_same_data_are_offered_and_a_lone_run_gets_a_sentence(runs):
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs.folder import new_run
    from vae.train import train

    cfg = DataConfig(name="sprites", size=16, count=200)
    ds = load_dataset(cfg)
    other = new_run(runs, "sprites-tiny", ds, cfg, latent_dim=2, hidden=(16,),
                    train_cfg=TrainConfig(epochs=1, batch_size=64, threads=1))  # fmt: skip
    assert train(other, dataset=ds)["state"] == "finished"
    at = open_compare()
    assert any("No other run on digits" in i.value for i in at.info)  # the sprites run is not offered
    assert not at.metric


def test_the_overlay_draws_each_items_move_from_a_to_b_and_the_twins_do_not_move(runs, twin):
    import json as _json

    at = open_compare()
    at.radio(key="compare_view").set_value("overlay").run()
    assert not at.exception, at.exception
    (spec,) = [_json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    from specs import array

    lines, a, b = spec["data"][:3]
    assert a["name"] == "A: digits-small" and b["name"] == "B: digits-twin"
    xs, ys = array(lines["x"]).reshape(-1, 3), array(lines["y"]).reshape(-1, 3)  # from, to, gap
    assert len(xs) == 300  # a sample of the 360 test items
    moves = np.hypot(xs[:, 1] - xs[:, 0], ys[:, 1] - ys[:, 0])
    diameter = np.ptp(array(a["x"]))
    assert moves.max() < 1e-4 * diameter  # the same space: B's map turned onto A's puts every item in place


def test_runs_of_different_latent_sizes_compare_through_the_linear_map_only(runs, small_run):
    small_run(runs, "digits-three", latent_dim=3, hidden=(32,), epochs=3)  # A has 4 dimensions, B 3
    at = open_compare("digits-three")
    assert metrics(at)["Linear CKA"] != "" and len(at.get("plotly_chart")) >= 2  # no traceback: both maps drawn
    at.session_state["compare_chart_A"] = {"selection": {"points": [{"curve_number": 0, "customdata": 7,
                                                                      "point_index": 0}]}}  # fmt: skip
    at.session_state["compare_last"] = "A"
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key="compare_carry").options == ["linear map"]  # no rotation, no raw z between 4 and 3 dims
    assert "B's decode (linear map)" in at.session_state["compare_decoded"]
