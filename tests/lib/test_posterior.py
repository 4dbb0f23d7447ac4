"""vae.analysis.posterior: an item's q(z|x) sampled, prior samples, and the prior against the aggregate posterior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae.analysis import posterior
from vae.analysis.evaluate import kl_per_dimension
from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.runs import folder as rf
from vae.runs.folder import new_run
from vae.train import train


def test_an_items_cloud_has_the_encoders_mean_and_spread(run_data):
    """On a real model's item: the sample mean and standard deviation of K samples lie within sampling error
    (4 standard errors, a fixed seed) of the encoder's μ and σ, dimension by dimension."""
    _, model, ds = run_data
    mu, logvar = model.embed(ds.x_test[7:8])
    k = 4000
    cloud = posterior.sample_posterior(mu[0], logvar[0], k, seed=3).astype(np.float64)
    s = posterior.sigma(logvar[0]).astype(np.float64)
    assert cloud.shape == (k, model.cfg.latent_dim)
    assert np.all(np.abs(cloud.mean(axis=0) - mu[0]) < 4 * s / np.sqrt(k))  # standard error of a mean
    assert np.all(np.abs(cloud.std(axis=0, ddof=1) - s) < 4 * s / np.sqrt(2 * (k - 1)))  # ... of a std (normal)
    assert not np.allclose(cloud[0], cloud[1])  # samples, not copies of μ
    np.testing.assert_array_equal(cloud, posterior.sample_posterior(mu[0], logvar[0], k, seed=3))  # repeatable


def test_with_sigma_forced_to_zero_the_cloud_is_the_mean_and_decodes_to_it(run_data):
    """A constructed encoder whose log-variance head outputs -200 (σ = e^-100): every sample is μ."""
    _, model, ds = run_data
    model = type(model)(model.cfg)
    model.load_state_dict(rf.load_model(run_data[0]).state_dict())
    head = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    latent = model.cfg.latent_dim
    with torch.no_grad():
        head.weight[latent:] = 0.0
        head.bias[latent:] = -200.0
    mu, logvar = model.embed(ds.x_test[:1])
    cloud = posterior.sample_posterior(mu[0], logvar[0], 50)
    np.testing.assert_array_equal(cloud, np.repeat(mu.astype(np.float32), 50, axis=0))
    with torch.inference_mode():
        decoded = model.decode(torch.from_numpy(cloud)).numpy()
        mean = model.decode(torch.from_numpy(mu)).numpy()
    np.testing.assert_allclose(decoded, np.repeat(mean, 50, axis=0), atol=1e-6)  # a batch of 50 vs of 1


def test_the_mismatch_is_zero_for_prior_like_codes_and_grows_when_they_shift():
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((5000, 4))
    exact = np.full_like(mu, -np.inf)  # σ = 0: the aggregate posterior's samples are the codes themselves
    same = posterior.prior_mismatch(mu, exact, seed=1)
    assert same["kl_moment_matched"] < 0.01  # sampling error of 5,000 codes in 4 dimensions
    assert abs(same["hole_share"] - same["expected_hole_share"]) < 0.02
    kls, holes = [], []
    for shift in (0.5, 1.0, 2.0):
        far = posterior.prior_mismatch(mu + shift, exact, seed=1)
        kls.append(far["kl_moment_matched"])
        holes.append(far["hole_share"])
    np.testing.assert_allclose(kls, [0.5 * 4 * s**2 for s in (0.5, 1.0, 2.0)], rtol=0.05)  # ½ |m|² for a shift
    assert same["hole_share"] < holes[0] < holes[1] < holes[2]


def test_codes_in_a_flat_subspace_are_infinitely_far_from_the_prior():
    codes = np.column_stack([np.linspace(-1, 1, 100), np.zeros(100)])
    assert posterior.moment_matched_kl(codes) == float("inf")


@pytest.mark.parametrize(("n", "temperature"), [(0, 1.0), (3, -1.0), (3, float("nan")), (2.5, 1.0)])
def test_prior_sampling_refuses_nonsense(n, temperature):
    with pytest.raises(ValueError):
        posterior.sample_prior(n, 4, temperature)


def test_prior_samples_scale_with_the_temperature():
    cold = posterior.sample_prior(2000, 8, temperature=0.5, seed=2)
    warm = posterior.sample_prior(2000, 8, temperature=1.0, seed=2)
    np.testing.assert_allclose(cold, 0.5 * warm, rtol=1e-6)
    assert abs(warm.std() - 1.0) < 0.05


def test_inactive_dimensions_keep_the_prior_for_every_item(tmp_path):
    """A real run with inactive units (digits, 16 latent dimensions, 30 epochs: about half fall silent):
    in every dimension whose KL is near zero, every item's μ is near 0 and its σ near 1."""
    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    run = new_run(tmp_path, "inactive", ds, cfg, latent_dim=16, hidden=(128,),
                  train_cfg=TrainConfig(epochs=30, batch_size=64, lr=3e-3, threads=1))  # fmt: skip
    assert train(run, dataset=ds)["state"] == "finished"
    model = rf.load_model(run)
    kl = kl_per_dimension(model, ds.x_test)
    silent = np.flatnonzero(kl < 0.01)
    assert len(silent) >= 3, kl  # the run has inactive units to check
    mu, logvar = model.embed(ds.x_test)
    s = posterior.sigma(logvar)
    assert np.abs(mu[:, silent]).max() < 0.5
    assert 0.8 < s[:, silent].min() and s[:, silent].max() < 1.2
    active = np.flatnonzero(kl > 0.1)
    assert np.median(s[:, active]) < np.median(s[:, silent]) - 0.2  # active ones are surer: what the σ bars show
