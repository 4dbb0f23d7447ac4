"""Disentanglement scores: a code equal to the sprites' factors scores near the top, the same code under a random
rotation clearly lower; every score is deterministic for a seed; a real sprites model gets every score from the
library and the command line; data without factors gets a sentence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from apptest import open_app
from scipy.stats import special_ortho_group

from vae.analysis.disentanglement import (
    KEYS,
    GroundTruth,
    beta_vae_score,
    dci,
    discretize,
    factor_classes,
    factor_vae_score,
    mig,
    sap,
    sprite_truth,
)
from vae.config import DataConfig
from vae.data import load_dataset
from vae.data.sprites import generate_sprites

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def factors() -> tuple[np.ndarray, np.ndarray]:
    """The real sprites' factor values (train, test): 3 shapes, 6 scales, 40 rotations, 32 x, 32 y."""
    _, f = generate_sprites(1500, size=16, seed=0)
    return f[:1000], f[1000:]


def standardised(f: np.ndarray) -> np.ndarray:
    return (f - f.mean(0)) / f.std(0)


ROTATION = special_ortho_group.rvs(5, random_state=0)  # a random rotation of the 5-d code


def test_factor_classes_and_bins():
    classes = factor_classes(np.array([[0.5, 3.0], [0.1, 3.0], [0.5, 7.0]]))
    np.testing.assert_array_equal(classes, [[1, 0], [0, 0], [1, 1]])
    bins = discretize(np.linspace(0, 1, 100)[:, None], bins=20)
    assert bins.min() == 1 and bins.max() == 20 and np.all(np.bincount(bins[:, 0])[1:] == 5)


def test_mig_is_high_for_the_factors_themselves_and_clearly_lower_rotated(factors):
    _, test = factors
    code = standardised(test)
    exact, rotated = mig(code, test), mig(code @ ROTATION, test)
    assert exact > 0.75, exact  # below 1 only because 20 bins cannot hold 32 or 40 values
    assert rotated < exact / 2, (exact, rotated)
    assert mig(np.random.default_rng(0).normal(size=code.shape), test) < 0.05


@pytest.mark.slow
def test_dci_and_sap_are_high_for_the_factors_and_lower_rotated(factors):
    train, test = factors[0][:200], factors[1]
    exact = dci(standardised(train), train, standardised(test), test, trees=25)
    rotated = dci(standardised(train) @ ROTATION, train, standardised(test) @ ROTATION, test, trees=25)
    assert exact["dci_disentanglement"] > 0.9 and exact["dci_completeness"] > 0.9, exact
    assert rotated["dci_disentanglement"] < exact["dci_disentanglement"] - 0.3, (exact, rotated)
    assert exact["dci_informativeness"] > rotated["dci_informativeness"] - 0.05
    sap_exact = sap(standardised(train), train, standardised(test), test)
    sap_rotated = sap(standardised(train) @ ROTATION, train, standardised(test) @ ROTATION, test)
    assert sap_exact > sap_rotated + 0.1, (sap_exact, sap_rotated)


def identity_truth() -> GroundTruth:
    """A generator whose observations are the factor classes themselves (5 factors)."""
    return GroundTruth((3, 6, 8, 8, 8), lambda classes: torch.as_tensor(np.asarray(classes, dtype=np.float32)))


def test_batch_scores_are_perfect_for_the_factors_and_lower_rotated():
    truth = identity_truth()

    def exact(x):
        return x.numpy()

    def rotated(x):
        return x.numpy() @ ROTATION

    small = {"n_train": 300, "n_eval": 150}
    assert factor_vae_score(truth, exact, **small) == 1.0
    assert factor_vae_score(truth, rotated, **small) < 0.8
    assert beta_vae_score(truth, exact, **small) > 0.95
    assert beta_vae_score(truth, rotated, **small) < beta_vae_score(truth, exact, **small)


@pytest.mark.slow
def test_scores_are_deterministic_for_a_seed(factors):
    train, test = factors[0][:400], factors[1][:200]
    code_train, code_test = standardised(train) @ ROTATION, standardised(test) @ ROTATION
    few = train[:, :2], test[:, :2]  # shape and scale only: DCI's trees per class are what takes the time
    assert dci(code_train, few[0], code_test, few[1], seed=3) == dci(code_train, few[0], code_test, few[1], seed=3)
    assert sap(code_train, train, code_test, test) == sap(code_train, train, code_test, test)
    truth = identity_truth()

    def rotated(x):
        return x.numpy() @ ROTATION

    small = {"n_train": 100, "n_eval": 50}
    assert factor_vae_score(truth, rotated, seed=1, **small) == factor_vae_score(truth, rotated, seed=1, **small)
    assert beta_vae_score(truth, rotated, seed=1, **small) == beta_vae_score(truth, rotated, seed=1, **small)


def test_the_sprites_generator_draws_the_factors_it_is_given():
    truth = sprite_truth(16)
    classes = np.array([[0, 5, 0, 16, 16], [0, 5, 0, 16, 16], [1, 0, 10, 0, 31]])
    images = truth.render(classes)
    assert images.shape == (3, 1, 16, 16) and images.dtype == torch.float32
    assert torch.equal(images[0], images[1]) and not torch.equal(images[0], images[2])
    assert truth.sizes == (3, 6, 40, 32, 32)


@pytest.fixture(scope="module")
def sprites_run(tmp_path_factory) -> Path:
    from vae.config import TrainConfig
    from vae.runs.folder import new_run
    from vae.train import train

    cfg = DataConfig(name="sprites", size=16, count=400)  # DCI's trees cost about 10 s per 1,000 training codes
    ds = load_dataset(cfg)
    run = new_run(tmp_path_factory.mktemp("runs"), "sprites-small", ds, cfg, latent_dim=5, hidden=(128,),
                  train_cfg=TrainConfig(epochs=8, batch_size=64, lr=3e-3, threads=1))  # fmt: skip
    assert train(run, dataset=ds)["state"] == "finished"
    return run


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_command_line_reports_every_score_under_its_key(sprites_run, capsys):
    from vae.cli.main import main

    assert main(["evaluate", str(sprites_run), "--iwae", "0", "--disentanglement", "--json"]) == 0  # in this process
    out = json.loads(capsys.readouterr().out)
    scores = out["disentanglement"]
    for key in KEYS:
        assert 0.0 <= scores[key] <= 1.0, (key, scores)
    assert scores["beta_vae"] > 1 / 5  # better than chance among 5 factors
    assert scores["factors"] == ["shape", "scale", "rotation", "x", "y"]
    assert "test_elbo" in out
    from vae.runs import folder as rf

    assert rf.read_evaluation(sprites_run)["disentanglement"] == scores  # the Runs page reads them from here


@pytest.mark.slow
def test_data_without_factors_gets_a_sentence(trained_runs):
    done = cli("evaluate", str(trained_runs / "digits-small"), "--iwae", "0", "--disentanglement")
    assert done.returncode != 0
    assert "no known factors" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_runs_page_scores_a_sprites_run_and_shows_them_beside_the_others(sprites_run, monkeypatch):

    monkeypatch.setenv("LATENT_EXPLORER_RUNS", str(sprites_run.parent))
    at = open_app("runs", timeout=300)
    assert at.toggle(key="runs_disentanglement").value  # offered, on, for data with factors
    at.select_slider(key="runs_iwae_k").set_value(10)
    at.button(key="runs_evaluate").click().run()
    assert not at.exception and not at.error
    from vae.runs import folder as rf

    scores = rf.read_evaluation(sprites_run)["disentanglement"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["MIG"] == f"{scores['mig']:.2f}"
    assert metrics["DCI completeness"] == f"{scores['dci_completeness']:.2f}"
    row = at.dataframe[0].value.iloc[0]
    assert row["SAP"] == pytest.approx(scores["sap"]) and row["FactorVAE score"] == pytest.approx(scores["factor_vae"])


def test_a_run_without_factors_is_not_offered_the_scores_and_its_table_has_no_score_columns(runs):

    at = open_app("runs")
    assert not at.exception
    assert "runs_disentanglement" not in [getattr(e, "key", None) for e in at.main]
    assert "MIG" not in at.dataframe[0].value.columns


def test_an_evaluation_with_scores_that_are_not_numbers_is_flagged():
    from vae.runs.schema import evaluation_problem

    ev = {"test_elbo": -1.0, "test_recon": 1.0, "test_kl": 0.0, "active_units": 1, "latent_dim": 1, "n_test": 1,
          "kl_per_dim": [0.0], "mean_variance": [0.0]}  # fmt: skip
    assert evaluation_problem(ev) is None
    assert evaluation_problem({**ev, "disentanglement": {**dict.fromkeys(KEYS, 0.5), "beta_vae": None}}) is None
    for bad in ({"mig": "<b>1</b>"}, [1, 2]):
        assert evaluation_problem({**ev, "disentanglement": bad}) == "its disentanglement scores are not numbers"


@pytest.mark.slow
def test_embed_writes_the_sprites_factors_as_columns(sprites_run, tmp_path):
    import pandas as pd

    from vae.runs import folder as rf

    target = tmp_path / "sprites.csv"
    done = cli("embed", str(sprites_run), "--method", "pca", "--split", "all", "--out", str(target), "--json")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(target)
    names = ["factor_shape", "factor_scale", "factor_rotation", "factor_x", "factor_y"]
    assert list(table.columns[-5:]) == names
    ds = load_dataset(rf.load_data_config(sprites_run))
    both = np.concatenate([ds.factors_train, ds.factors_test])
    np.testing.assert_allclose(table[names].to_numpy(), both, rtol=1e-5)  # row for row, train then test
