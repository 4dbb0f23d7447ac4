"""The KL split three ways (``vae.analysis.decompose``): checked against closed forms and against the KL itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae.analysis.decompose import kl_decomposition
from vae.objectives import kl_per_dim


def test_codes_of_a_factorised_gaussian_have_no_total_correlation():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(2000, 3)) * np.array([1.0, 0.5, 2.0])  # independent dimensions of unequal scale
    parts = kl_decomposition(mu, np.full(mu.shape, math.log(0.3)))
    assert abs(parts["total_correlation"]) < 0.03, parts


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_the_total_correlation_of_a_correlated_gaussian_is_its_closed_form(rho):
    """q(z) = N(0, C + s²I) when the means are N(0, C) and every posterior has variance s²: its total correlation is
    ½(Σ log Σᵢᵢ − log det Σ)."""
    rng = np.random.default_rng(1)
    cov, s2 = np.array([[1.0, rho], [rho, 1.0]]), 0.3
    mu = rng.multivariate_normal([0.0, 0.0], cov, size=3000)
    total = cov + s2 * np.eye(2)
    closed = 0.5 * (np.log(np.diag(total)).sum() - np.log(np.linalg.det(total)))
    parts = kl_decomposition(mu, np.full(mu.shape, math.log(s2)))
    assert parts["total_correlation"] == pytest.approx(closed, abs=0.04), (parts, closed)


def test_the_three_parts_add_up_to_the_models_mean_kl(run_data):
    """On a real model (digits): MI + TC + dimension-wise KL is a Monte Carlo estimate of the mean KL(q(z|x) ‖ p(z)),
    equal to its closed form within a few standard errors."""
    _, model, ds = run_data
    mu, logvar = model.embed(ds.x_test.float())
    parts = kl_decomposition(mu, logvar, seed=3)
    three = parts["index_code_mi"] + parts["total_correlation"] + parts["dimension_wise_kl"]
    assert parts["kl"] == pytest.approx(three)
    per_item = kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).sum(1).numpy()  # closed form, (N,)
    # the spread of one-sample estimates log q(z|x) - log p(z) around each item's KL bounds the error of their mean
    rng = np.random.default_rng(0)
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)
    log_ratio = (-0.5 * (logvar + (z - mu) ** 2 / np.exp(logvar)) + 0.5 * z**2).sum(1)
    se = np.std(log_ratio - per_item) / math.sqrt(len(mu))
    assert abs(parts["kl"] - per_item.mean()) < 4 * se + 1e-3, (parts, per_item.mean(), se)
    assert parts["index_code_mi"] <= math.log(len(mu)) + 1e-6  # the mutual information of N items is at most log N


def test_bad_input_is_a_sentence():
    with pytest.raises(ValueError, match="two"):
        kl_decomposition(np.zeros((5, 2)), np.zeros((5, 3)))
