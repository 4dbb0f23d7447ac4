"""How far to trust a map: UMAP beats a random projection on real codes; an exactly kept neighbourhood scores 1."""

import numpy as np
import pytest
import torch

from vae.analysis.fidelity import map_fidelity, neighbour_preservation
from vae.data import load_dataset
from vae.projection import LatentProjector
from vae.runs import folder as rf


@pytest.fixture(scope="module")
def digit_codes(trained_runs) -> np.ndarray:
    run = trained_runs / "digits-small"
    ds = load_dataset(rf.load_data_config(run))
    mu, _ = rf.load_model(run).embed(torch.cat([ds.x_train, ds.x_test]).float())
    return mu  # (1797, 4)


@pytest.mark.slow
def test_umap_scores_higher_than_a_random_projection_on_real_codes(digit_codes):
    umap = LatentProjector(method="umap").fit(digit_codes).embedding_
    random = digit_codes @ np.random.default_rng(0).normal(size=(digit_codes.shape[1], 2))
    good, bad = map_fidelity(digit_codes, umap), map_fidelity(digit_codes, random)
    for measure in ("trustworthiness", "continuity", "knn_preservation"):
        assert good[measure] > bad[measure], (measure, good, bad)
    assert good["n"] == len(digit_codes) and good["k"] == 10


def test_an_item_whose_neighbourhood_is_kept_exactly_scores_one():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(60, 5))
    layout = rng.normal(size=(60, 2)) * 100  # a scrambled map ...
    cluster = np.arange(11)  # ... except item 0 and its 10 nearest codes, moved together to an empty spot
    codes[cluster] = codes[0] + rng.normal(scale=1e-3, size=(11, 5))
    layout[cluster] = [1e4, 1e4] + rng.normal(scale=1e-3, size=(11, 2))
    kept = neighbour_preservation(codes, layout)
    assert kept[0] == 1.0 and kept.shape == (60,)
    assert neighbour_preservation(codes, codes[:, :2] * 0 + layout).mean() < 1.0


def test_a_perfect_map_of_two_dimensional_codes_scores_one_everywhere():
    codes = np.random.default_rng(1).normal(size=(200, 2))
    f = map_fidelity(codes, codes * 3.0 + 1.0)  # the same neighbours: a scaled, shifted copy
    assert f["trustworthiness"] == pytest.approx(1.0) and f["continuity"] == pytest.approx(1.0)
    assert f["knn_preservation"] == pytest.approx(1.0)


def test_a_map_must_match_its_codes():
    with pytest.raises(ValueError, match="one each"):
        map_fidelity(np.zeros((30, 3)), np.zeros((29, 2)))
    with pytest.raises(ValueError, match="needs more than"):
        neighbour_preservation(np.zeros((15, 3)), np.zeros((15, 2)))
