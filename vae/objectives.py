"""ELBO terms and the importance-weighted bound: pure functions of tensors.

All quantities are in nats per example: summed over data and latent dimensions, one value per
row of the batch (callers average over examples).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import ModelConfig, TrainConfig

LOG_2PI = math.log(2 * math.pi)


def log_likelihood(x: torch.Tensor, params: torch.Tensor, likelihood: str, log_sigma: torch.Tensor) -> torch.Tensor:
    """log p(x|z) summed over data dimensions, (B,).

    ``params`` are logits for ``"bernoulli"`` (targets may be grey levels in [0, 1], the usual
    practice for grey images) or the mean for ``"gaussian"`` with std exp(log_sigma).
    """
    if likelihood == "bernoulli":
        ll = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
    elif likelihood == "gaussian":
        ll = -0.5 * ((x - params) * torch.exp(-log_sigma)) ** 2 - log_sigma - 0.5 * LOG_2PI
    else:
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian'; got {likelihood!r}.")
    return ll.flatten(1).sum(1)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic KL(q(z|x) || N(0, I)) per latent dimension, (B, latent_dim)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic KL to the standard normal prior, summed over latent dimensions, (B,)."""
    return kl_per_dim(mu, logvar).sum(1)


def elbo_terms(
    model,
    x: torch.Tensor,
    beta: float = 1.0,
    generator: torch.Generator | None = None,
    free_bits: float = 0.0,
    eps: torch.Tensor | None = None,
) -> dict:
    """One-sample ELBO parts for a batch.

    Returns tensors of shape (B,): ``recon`` (-log p(x|z)), ``kl`` and ``elbo`` (= -recon - kl),
    plus the scalar training ``loss`` = mean(recon) + beta * KL term. The KL term is mean(kl); with
    ``free_bits`` (nats), each latent dimension's batch-mean KL counts as at least ``free_bits`` (Kingma et al.
    2016), so the optimiser gains nothing by pushing a dimension's KL below it: the standard remedy for
    posterior collapse. The reported ``kl`` and ``elbo`` are always the true ones. ``eps`` (B, latent_dim) is the
    reparameterisation's noise when given (drawn from ``generator`` otherwise); ``model`` may be wrapped in
    DistributedDataParallel.
    """
    params, mu, logvar, _ = model(x, generator, eps=eps)
    inner = getattr(model, "module", model)  # DistributedDataParallel keeps the VAE in .module
    recon = -log_likelihood(x, params, inner.cfg.likelihood, inner.log_sigma)
    per_dim = kl_per_dim(mu, logvar)  # (B, latent_dim)
    kl = per_dim.sum(1)
    kl_term = per_dim.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl.mean()
    return {"recon": recon, "kl": kl, "elbo": -(recon + kl), "loss": recon.mean() + beta * kl_term}


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def iwae_bound(
    model, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 100
) -> torch.Tensor:
    """Importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x), (B,) in nats.

    With K=1 it is the ELBO; it rises towards log p(x) as K grows (Burda et al. 2015). Samples are
    drawn ``chunk`` at a time so memory stays bounded for large K.
    """
    if k < 1:
        raise ValueError(f"K must be at least 1; got {k}.")
    mu, logvar = model.encode(x)  # (B, L)
    parts = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        eps = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps  # (n, B, L)
        params = model.decoder_params(z.reshape(-1, mu.shape[1]))  # (n * B, *input_shape)
        x_rep = x.unsqueeze(0).expand(n, *x.shape).reshape(-1, *x.shape[1:])
        log_px = log_likelihood(x_rep, params, model.cfg.likelihood, model.log_sigma).view(n, -1)  # (n, B)
        log_pz = log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))  # (n, B)
        log_qz = log_normal_diag(z, mu, logvar)  # (n, B)
        parts.append(log_px + log_pz - log_qz)
    log_w = torch.cat(parts, 0)  # (K, B)
    return torch.logsumexp(log_w, 0) - math.log(k)


def divergence_message(model_cfg: ModelConfig, cfg: TrainConfig, epoch: int, step: int) -> str:
    """A sentence naming the likely cause of a NaN/inf loss and a fix."""
    msg = (
        f"Training diverged: the loss became NaN or infinite at epoch {epoch + 1}, step {step}. "
        f"The learning rate {cfg.lr:g} is the likely cause; try {cfg.lr / 10:g} or lower."
    )
    if model_cfg.likelihood == "gaussian" and model_cfg.learn_variance:
        msg += " A learned Gaussian variance can also collapse: try a fixed variance."
    return msg + " The last good checkpoint is kept."
