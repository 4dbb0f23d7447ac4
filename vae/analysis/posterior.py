"""The encoder's distribution, not only its mean: q(z|x) per item, the prior N(0, I), and how far apart they are.

A VAE's encoder gives each item a diagonal Gaussian q(z|x) = N(μ, diag σ²); training decodes samples
μ + σ·ε of it, and generation decodes samples of the prior N(0, I). The aggregate posterior q(z) is the
mixture of every item's q(z|x): where the prior puts mass and q(z) does not ("holes"), prior samples
decode to things unlike the data. All functions here are pure numpy on arrays the caller encoded
(``vae.analysis.evaluate.encode`` gives μ and log σ²), seeded for repeatable pictures.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

HOLE_QUANTILE = 0.95  # a prior sample is "in a hole" when its nearest code is farther than 95 % of codes'


def sigma(logvar: np.ndarray) -> np.ndarray:
    """Standard deviations from log-variances (any shape)."""
    return np.exp(0.5 * np.asarray(logvar, dtype=np.float64)).astype(np.float32)


MAX_SAMPLES = 100_000  # samples of one item's q(z|x): (K, latent_dim) floats held at once


def sample_posterior(mu: np.ndarray, logvar: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """``k`` samples μ + σ·ε of one item's q(z|x): (k, latent_dim) float32, ε ~ N(0, I) from ``seed``."""
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    s = sigma(logvar).reshape(-1).astype(np.float64)
    if mu.shape != s.shape:
        raise ValueError(f"μ and log σ² must have the same size; got {mu.size} and {s.size}.")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_SAMPLES:
        raise ValueError(f"The number of samples must be a whole number from 1 to {MAX_SAMPLES:,}; got {k!r}.")
    eps = np.random.default_rng(seed).standard_normal((int(k), mu.size))
    return (mu + s * eps).astype(np.float32)


def _check_prior_request(n, temperature) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"The number of samples must be a whole number of at least 1; got {n!r}.")
    if not np.isfinite(temperature) or not 0.0 <= temperature <= 10.0:
        raise ValueError(f"The temperature must be a number from 0 to 10; got {temperature!r}.")


def sample_prior(n: int, latent_dim: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` samples of the prior N(0, I) scaled by ``temperature`` (the scale of ε): (n, latent_dim) float32."""
    _check_prior_request(n, temperature)
    eps = np.random.default_rng(seed).standard_normal((int(n), int(latent_dim)))
    return (temperature * eps).astype(np.float32)


def model_prior_samples(model, n: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` samples of ``model``'s own prior (N(0, I), or a VampPrior's mixture), ε scaled by ``temperature``:
    (n, latent_dim) float32; for N(0, I) the same numbers as ``sample_prior``."""
    _check_prior_request(n, temperature)
    return model.sample_prior(int(n), float(temperature), seed)


def aggregate_samples(mu: np.ndarray, logvar: np.ndarray, seed: int = 0) -> np.ndarray:
    """One sample of each item's q(z|x): together, samples of the aggregate posterior q(z), (N, latent_dim)."""
    mu = np.asarray(mu, dtype=np.float64)
    eps = np.random.default_rng(seed).standard_normal(mu.shape)
    return (mu + sigma(logvar).astype(np.float64) * eps).astype(np.float32)


def moment_matched_kl(codes: np.ndarray, prior: np.ndarray | None = None) -> float:
    """KL( N(m, S) || N(0, I) ) in nats, where m and S are the mean and covariance of ``codes`` (N, L); with
    ``prior`` samples (a learned prior), the KL to their own moment-matched Gaussian instead of N(0, I).

    Zero when the codes are distributed like the prior (to sampling error); it grows as they shift, shrink,
    stretch or correlate: ½ (tr S + m·m − L − log det S) against N(0, I).
    """
    z = np.asarray(codes, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"Codes must be (N, latent_dim) with N >= 2; got shape {z.shape}.")
    m = z.mean(axis=0)
    cov = np.atleast_2d(np.cov(z, rowvar=False))
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")  # the codes live in a flat subspace: infinitely far from N(0, I)
    if prior is None:
        return float(0.5 * (np.trace(cov) + m @ m - z.shape[1] - logdet))
    p = np.asarray(prior, dtype=np.float64)
    m_p, cov_p = p.mean(axis=0), np.atleast_2d(np.cov(p, rowvar=False))
    sign_p, logdet_p = np.linalg.slogdet(cov_p)
    if sign_p <= 0:
        return float("inf")
    d = m_p - m
    inv = np.linalg.inv(cov_p)
    return float(0.5 * (np.trace(inv @ cov) + d @ inv @ d - z.shape[1] + logdet_p - logdet))


def hole_share(codes: np.ndarray, prior: np.ndarray, quantile: float = HOLE_QUANTILE) -> float:
    """The share of prior samples whose nearest code is farther than ``quantile`` of codes are from their own
    nearest other code: prior mass where no data lives. About 1 − quantile when codes and prior match."""
    codes = np.asarray(codes, dtype=np.float64)
    tree = cKDTree(codes)
    own, _ = tree.query(codes, k=2)  # (N, 2): itself, then its nearest other code
    gap = np.quantile(own[:, 1], quantile)
    dist, _ = tree.query(np.asarray(prior, dtype=np.float64), k=1)
    return float(np.mean(dist > gap))


def prior_mismatch(mu: np.ndarray, logvar: np.ndarray, seed: int = 0, model=None) -> dict:
    """How far the aggregate posterior is from the prior: the moment-matched KL (nats) and the hole share.

    ``mu``, ``logvar`` (N, L): the encoder's outputs for N items. Sampled once with ``seed``. ``model``: whose
    prior (a VampPrior's mixture is measured against its own samples' moments); None: N(0, I).
    """
    codes = aggregate_samples(mu, logvar, seed)
    learned = model is not None and getattr(model, "learned_prior", False)
    if learned:
        prior = model_prior_samples(model, len(codes), seed=seed + 1)
    else:
        prior = sample_prior(len(codes), codes.shape[1], seed=seed + 1)
    return {
        "kl_moment_matched": moment_matched_kl(codes, prior if learned else None),
        "hole_share": hole_share(codes, prior),
        "expected_hole_share": 1.0 - HOLE_QUANTILE,
        "items": int(len(codes)),
    }
