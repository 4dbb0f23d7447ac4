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

import numpy as np
import torch

from ..objectives import kl_parts

MAX_ITEMS = 2000  # items the estimate uses: its cost grows with their square


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
    parts = {k: float(v.mean()) for k, v in kl_parts(z, mu_t, lv_t, n, chunk).items()}
    mi, tc, dwkl = parts["mi"], parts["tc"], parts["dwkl"]
    return {"index_code_mi": mi, "total_correlation": tc, "dimension_wise_kl": dwkl, "kl": mi + tc + dwkl}
