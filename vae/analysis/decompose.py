"""The KL term split three ways (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs"):

    E_n[ KL(q(z|n) ‖ p(z)) ] = I(n; z)  +  KL(q(z) ‖ Π_d q(z_d))  +  Σ_d KL(q(z_d) ‖ p(z_d))
                               index-code   total correlation       dimension-wise KL
                               mutual info.

estimated with one sample z_i ~ q(z|n_i) per item and the aggregate posterior q(z) = (1/N) Σ_n q(z|n) evaluated on
the M items at hand, weighted as minibatch stratified sampling does for a dataset of N items (exact when the M
items are the whole dataset). Every run with a factorised Gaussian posterior has the three numbers, so any two
runs can be compared on them (``evaluate`` reports them in nats on the test split).
"""

from __future__ import annotations

import math

import numpy as np
import torch

LOG_2PI = math.log(2 * math.pi)
MAX_ITEMS = 2000  # items the estimate uses: its cost grows with their square


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) per dimension, broadcast."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar))


def kl_decomposition(
    mu: np.ndarray, logvar: np.ndarray, dataset_size: int | None = None, seed: int = 0, chunk: int = 256
) -> dict[str, float]:
    """``index_code_mi``, ``total_correlation`` and ``dimension_wise_kl`` (nats) of codes with posterior means
    ``mu`` and log-variances ``logvar`` (M, D) of M items of a dataset of ``dataset_size`` (default M); and
    ``kl`` = their sum, the Monte Carlo estimate of the mean KL(q(z|n) ‖ N(0, I)) the three split."""
    mu_t = torch.as_tensor(np.asarray(mu), dtype=torch.float64)
    lv_t = torch.as_tensor(np.asarray(logvar), dtype=torch.float64)
    if mu_t.ndim != 2 or mu_t.shape != lv_t.shape or len(mu_t) < 2:
        raise ValueError(f"mu and logvar must be two (items, dimensions) arrays of at least 2 items; got "
                         f"{tuple(mu_t.shape)} and {tuple(lv_t.shape)}.")  # fmt: skip
    m = len(mu_t)
    n = max(int(dataset_size or m), m)
    g = torch.Generator().manual_seed(seed)
    z = mu_t + torch.exp(0.5 * lv_t) * torch.randn(mu_t.shape, generator=g, dtype=torch.float64)  # (M, D)
    # stratified weights: the item's own posterior counts 1/N, each of the others (N-1)/(N(M-1)) (1/M when N = M)
    log_own, log_other = -math.log(n), math.log(n - 1) - math.log(n) - math.log(m - 1)
    log_qz, log_qzd = torch.empty(m, dtype=torch.float64), torch.empty_like(mu_t)
    for start in range(0, m, chunk):
        rows = slice(start, min(m, start + chunk))
        per_dim = _log_normal(z[rows, None, :], mu_t[None], lv_t[None])  # (C, M, D): log q(z_i,d | n_j)
        weight = torch.full((per_dim.shape[0], m), log_other, dtype=torch.float64)
        weight[torch.arange(per_dim.shape[0]), torch.arange(rows.start, rows.stop)] = log_own
        log_qz[rows] = torch.logsumexp(weight + per_dim.sum(2), dim=1)
        log_qzd[rows] = torch.logsumexp(weight[:, :, None] + per_dim, dim=1)
    log_qz_n = _log_normal(z, mu_t, lv_t).sum(1)
    log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    mi = float((log_qz_n - log_qz).mean())
    tc = float((log_qz - log_qzd.sum(1)).mean())
    dwkl = float((log_qzd.sum(1) - log_pz).mean())
    return {"index_code_mi": mi, "total_correlation": tc, "dimension_wise_kl": dwkl, "kl": mi + tc + dwkl}
