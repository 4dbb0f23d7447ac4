"""Comparing two runs' latent spaces (``vae.analysis.compare``, ``python -m vae compare``) on real digits models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vae.analysis.compare import compare_runs, config_diff, fit_linear_map, linear_cka, similarity
from vae.cli.main import main
from vae.data import load_dataset
from vae.runs import folder as rf
from vae.runs.fileio import save_tensors

RUN = "digits-small"


def equivalent_copy(run, dest, perm: np.ndarray, signs: np.ndarray):
    """A copy of ``run`` whose latent dimensions are permuted and sign-flipped in the encoder's head and the
    decoder's first layer: the very same model, in other coordinates (z' = signs * z[perm])."""
    shutil.copytree(run, dest)
    state = rf.load_model(run).state_dict()
    L = len(perm)
    head_w, head_b = "encoder.net.2.weight", "encoder.net.2.bias"  # (2L, H): μ rows, then log σ² rows
    w, b = state[head_w].clone(), state[head_b].clone()
    s = torch.as_tensor(signs, dtype=w.dtype)
    w[:L], b[:L] = s[:, None] * state[head_w][:L][perm], s * state[head_b][:L][perm]
    w[L:], b[L:] = state[head_w][L:][perm], state[head_b][L:][perm]  # a variance has no sign
    state[head_w], state[head_b] = w, b
    state["decoder.net.0.weight"] = state["decoder.net.0.weight"][:, perm] * s[None, :]  # (H, L)
    save_tensors(dest / rf.MODEL_FILE, state)
    return dest


@pytest.fixture
def pair(runs):
    rng = np.random.default_rng(3)
    perm, signs = rng.permutation(4), np.array([1.0, -1.0, -1.0, 1.0])
    return runs / RUN, equivalent_copy(runs / RUN, runs / "same-model", perm, signs), perm, signs


def test_a_run_against_itself_is_identical_on_every_measure(runs):
    out = compare_runs(runs / RUN, runs / RUN)
    assert out["cka"] == pytest.approx(1.0) and out["knn_jaccard"] == 1.0
    assert out["procrustes_disparity"] == pytest.approx(0.0, abs=1e-9) and out["linear_map_r2"] == pytest.approx(1.0)
    assert out["n_items"] == 360 and out["split"] == "test" and out["config_diff"] == {}


def test_the_same_model_in_permuted_signed_coordinates_is_recognised_and_carried_back(pair):
    run_a, run_b, perm, signs = pair
    out = compare_runs(run_a, run_b)
    assert out["cka"] == pytest.approx(1.0, abs=1e-6) and out["knn_jaccard"] == 1.0
    ds = load_dataset(rf.load_data_config(run_a))
    ma, mb = rf.load_model(run_a), rf.load_model(run_b)
    a, b = ma.embed(ds.x_test.float())[0], mb.embed(ds.x_test.float())[0]
    np.testing.assert_allclose(b, signs * a[:, perm], atol=1e-5)
    carry = fit_linear_map(a, b)
    expected = np.zeros((4, 4))
    expected[perm, np.arange(4)] = signs  # b[:, i] = signs[i] * a[:, perm[i]]
    np.testing.assert_allclose(carry.weight, expected, atol=1e-4)
    with torch.inference_mode():
        z = torch.as_tensor(a[:50], dtype=torch.float32)
        own = ma.decode(z)
        carried = mb.decode(torch.as_tensor(carry(a[:50]), dtype=torch.float32))
        raw = mb.decode(z)
    assert (own - carried).abs().max() <= 1 / 255  # A's code carried into B's space: B draws what A draws
    assert (own - raw).abs().max() > 0.1  # the same raw z means something else in B's coordinates


def test_two_seeds_of_one_recipe_are_alike_but_not_the_same_and_the_command_line_agrees(runs, capsys):
    from vae.config import DataConfig, TrainConfig
    from vae.runs.folder import new_run
    from vae.train import train

    ds = load_dataset(DataConfig(name="digits"))
    other = new_run(runs, "seed-1", ds, DataConfig(name="digits"), latent_dim=4, hidden=(64,),
                    train_cfg=TrainConfig(epochs=15, batch_size=64, lr=3e-3, threads=1, seed=1))  # fmt: skip
    assert train(other, dataset=ds)["state"] == "finished"
    lib = compare_runs(runs / RUN, other)
    assert 0 < lib["cka"] < 1 and 0 < lib["knn_jaccard"] < 1 and 0 < lib["procrustes_disparity"] < 1
    assert lib["config_diff"] == {"train.seed": [0, 1]}
    assert main(["--runs-dir", str(runs), "compare", RUN, "seed-1", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    for key in ("cka", "knn_jaccard", "procrustes_disparity", "linear_map_r2", "n_items", "split", "config_diff"):
        assert cli[key] == pytest.approx(lib[key]) if isinstance(lib[key], float) else cli[key] == lib[key], key


def test_runs_of_other_data_without_weights_or_broken_are_a_sentence(runs, capsys, tmp_path):
    from vae.config import DataConfig, TrainConfig
    from vae.runs.folder import new_run

    sprites = DataConfig(name="sprites", size=16, count=1000)
    other = new_run(runs, "sprites", load_dataset(sprites), sprites, latent_dim=4, train_cfg=TrainConfig(epochs=1))
    shutil.copy(runs / RUN / rf.MODEL_FILE, other / rf.MODEL_FILE)
    assert main(["--runs-dir", str(runs), "compare", RUN, "sprites", "--json"]) == 2
    assert "different data" in json.loads(capsys.readouterr().out)["error"]
    (other / rf.MODEL_FILE).unlink()
    assert main(["--runs-dir", str(runs), "compare", RUN, "sprites", "--json"]) == 2
    assert "no saved weights" in json.loads(capsys.readouterr().out)["error"]
    shutil.copytree(runs / RUN, runs / "broken")
    (runs / "broken" / rf.CONFIG_FILE).write_text("{")
    assert main(["--runs-dir", str(runs), "compare", RUN, "broken", "--json"]) == 2
    assert "not valid JSON" in json.loads(capsys.readouterr().out)["error"]


def test_the_measures_on_codes_of_known_relation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 5))
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    same = similarity(a, 2.5 * a @ rotation + 3.0)
    assert same["cka"] == pytest.approx(1.0) and same["knn_jaccard"] == 1.0
    assert same["procrustes_disparity"] == pytest.approx(0.0, abs=1e-9) and same["linear_map_r2"] == pytest.approx(1)
    unrelated = similarity(a, rng.normal(size=(400, 3)))
    assert unrelated["cka"] < 0.1 and unrelated["knn_jaccard"] < 0.1 and unrelated["procrustes_disparity"] > 0.9
    assert linear_cka(a, a[:, :2]) == pytest.approx(np.linalg.norm(a[:, :2].T @ (a - a.mean(0))) ** 2 / (
        np.linalg.norm((a - a.mean(0)).T @ (a - a.mean(0))) * np.linalg.norm(
            (a[:, :2] - a[:, :2].mean(0)).T @ (a[:, :2] - a[:, :2].mean(0)))), rel=1e-9)  # fmt: skip
    with pytest.raises(ValueError, match="same items"):
        linear_cka(a, a[:10])
    with pytest.raises(ValueError, match="one size"):
        fit_linear_map(a, a[:, :3], orthogonal=True)
    assert config_diff({"t": {"beta": 1, "lr": 1}}, {"t": {"beta": 4, "lr": 1}}) == {"t.beta": [1, 4]}


def test_a_pca_maps_inverse_is_the_codes_projection_and_turns_with_the_map(pair):
    """The Compare page decodes a spot of either map through its PCA map's exact inverse: an item's place gives its
    code projected onto the map's plane (as scikit-learn's PCA does it), also for B's map turned onto A's; for the
    same model in other coordinates the two maps coincide and a spot on B's, carried into A's space by the rotation,
    is A's code at the same spot."""
    from sklearn.decomposition import PCA

    from vae.projection.sequence import pca2, pca_plane

    run_a, run_b, _, _ = pair
    ds = load_dataset(rf.load_data_config(run_a))
    rows = np.arange(len(ds.x_test))  # 360 digits
    a = rf.load_model(run_a).embed_split(ds, "test", rows)[0].astype(np.float64)
    b = rf.load_model(run_b).embed_split(ds, "test", rows)[0].astype(np.float64)
    plane_a = pca_plane(a)
    plane_b = pca_plane(b).turned_onto(plane_a.layout)
    np.testing.assert_array_equal(plane_a.layout, pca2(a))
    for plane, codes in ((plane_a, a), (plane_b, b)):
        pca = PCA(2).fit(codes)
        np.testing.assert_allclose(plane.inverse(plane.layout), pca.inverse_transform(pca.transform(codes)), atol=1e-9)
    np.testing.assert_allclose(plane_b.layout, plane_a.layout, atol=1e-4)  # one model: one map once turned
    spots = np.random.default_rng(0).uniform(plane_a.layout.min(0), plane_a.layout.max(0), size=(20, 2))
    back = fit_linear_map(b, a, orthogonal=True)
    np.testing.assert_allclose(back(plane_b.inverse(spots)), plane_a.inverse(spots), atol=1e-4)
