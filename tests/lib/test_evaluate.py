"""Evaluation, checked against an external oracle: probabilistic PCA's exact log-likelihood."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from vae.analysis.evaluate import active_units, elbo, evaluate_run, iwae_log_likelihood, knn_accuracy
from vae.config import DataConfig, TrainConfig
from vae.data import Dataset, load_dataset
from vae.runs import folder as rf
from vae.runs.folder import new_run
from vae.train import train


def gaussian_data(n=4000, d=10, q=2, seed=0):
    """Data drawn from a probabilistic-PCA model: x = W z + b + 0.5 eps."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, q)) * np.array([3.0, 1.5])
    return (rng.normal(size=(n, q)) @ w.T + rng.normal(size=d) + 0.5 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.slow
def test_linear_gaussian_vae_matches_probabilistic_pca(tmp_path):
    """A VAE with a linear Gaussian decoder (isotropic learned noise) is a pPCA model, so its
    log-likelihood is at most pPCA's maximum (scikit-learn ``PCA.score``): the ELBO must stay below
    it, and the IWAE estimate must rise towards it as K grows."""
    x_np = gaussian_data()
    ppca = PCA(n_components=2).fit(x_np).score(x_np)  # exact mean log-likelihood at the MLE
    x = torch.from_numpy(x_np)
    ds = Dataset("gaussian", x, x, None, None, None, "pPCA data", "generated", "gaussian")
    run = new_run(
        tmp_path,
        "linear",
        ds,
        DataConfig(),
        latent_dim=2,
        hidden=(),
        likelihood="gaussian",
        learn_variance=True,
        train_cfg=TrainConfig(epochs=400, batch_size=200, lr=1e-2, threads=1, log_every=1000),
    )
    assert train(run, dataset=ds)["state"] == "finished"
    model = rf.load_model(run)
    bound = elbo(model, x)["elbo"]
    iw = {k: iwae_log_likelihood(model, x, k, seed=1) for k in (1, 10, 100, 1000)}
    assert bound < ppca
    assert iw[1] < iw[10] < iw[100] + 0.002 and iw[100] <= iw[1000] + 0.002
    assert iw[1000] <= ppca + 0.01  # a lower bound, up to Monte-Carlo noise
    assert ppca - iw[1000] < 0.03  # ... and nearly tight: the VAE found the pPCA solution
    assert ppca - iw[1000] < (ppca - bound) / 3
    assert abs(float(model.log_sigma.detach().exp()) - 0.5) < 0.03  # the noise level that generated the data


def test_active_units_counts_dimensions_whose_means_vary():
    rng = np.random.default_rng(0)
    mu = np.column_stack([rng.normal(size=500), 0.001 * rng.normal(size=500), rng.normal(size=500) * 0.5])
    n, var = active_units(mu)
    assert n == 2 and var.shape == (3,)
    assert active_units(mu, threshold=0.5)[0] == 1


def test_knn_accuracy_on_digit_pixels_is_high_and_on_shuffled_labels_is_chance():
    ds = load_dataset(DataConfig(name="digits"))
    xtr, xte = ds.x_train.flatten(1).numpy(), ds.x_test.flatten(1).numpy()
    ytr, yte = ds.y_train.numpy(), ds.y_test.numpy()
    assert knn_accuracy(xtr, ytr, xte, yte) > 0.9
    shuffled = np.random.default_rng(0).permutation(ytr)
    assert knn_accuracy(xtr, shuffled, xte, yte) < 0.3


def test_evaluate_run_reports_every_measure(tmp_path):
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    run = new_run(tmp_path, "d", ds, cfg, latent_dim=8, hidden=(64,), train_cfg=TrainConfig(epochs=5, lr=3e-3))
    train(run, dataset=ds)
    out = evaluate_run(run, iwae_k=50, dataset=ds)
    assert out["n_test"] == len(ds.x_test)
    assert out["iwae_ll"] > out["test_elbo"]  # the tighter bound
    assert abs(out["test_elbo"] + out["test_recon"] + out["test_kl"]) < 1e-3
    assert len(out["kl_per_dim"]) == 8 and min(out["kl_per_dim"]) >= 0
    assert 0 <= out["active_units"] <= 8
    assert 0.3 < out["knn_accuracy"] <= 1.0
    assert out["recon_mse"] > 0
    assert rf.read_json(run / "evaluation.json")["checkpoint"] == rf.checkpoint_id(run)
