"""ELBO terms, the importance-weighted bound and each model family's training objective: pure functions of tensors.

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
    y: torch.Tensor | None = None,
) -> dict:
    """One-sample ELBO parts for a batch (``y``: the items' labels, which a conditional VAE is given).

    Returns tensors of shape (B,): ``recon`` (-log p(x|z)), ``kl`` and ``elbo`` (= -recon - kl),
    plus the scalar training ``loss`` = mean(recon) + beta * KL term. The KL term is mean(kl); with
    ``free_bits`` (nats), each latent dimension's batch-mean KL counts as at least ``free_bits`` (Kingma et al.
    2016), so the optimiser gains nothing by pushing a dimension's KL below it: the standard remedy for
    posterior collapse. The reported ``kl`` and ``elbo`` are always the true ones. A learned prior (the VampPrior)
    has no closed-form KL: it is log q(z|x) - log p(z) at the sample, and free bits do not apply. ``eps``
    (B, latent_dim) is the reparameterisation's noise when given (drawn from ``generator`` otherwise); ``model``
    may be wrapped in DistributedDataParallel.
    """
    params, mu, logvar, z = model(x, generator, eps=eps, y=y)
    inner = getattr(model, "module", model)  # DistributedDataParallel keeps the VAE in .module
    recon = -log_likelihood(x, params, inner.cfg.likelihood, inner.log_sigma)
    if inner.learned_prior:  # a VampPrior: no closed form, the KL is log q(z|x) - log p(z) at the sample
        kl = log_normal_diag(z, mu, logvar) - inner.log_prior(z)
        return {"recon": recon, "kl": kl, "elbo": -(recon + kl), "loss": recon.mean() + beta * kl.mean()}
    per_dim = kl_per_dim(mu, logvar)  # (B, latent_dim)
    kl = per_dim.sum(1)
    kl_term = per_dim.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl.mean()
    return {"recon": recon, "kl": kl, "elbo": -(recon + kl), "loss": recon.mean() + beta * kl_term}


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def iwae_bound(
    model, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 100, y=None
) -> torch.Tensor:
    """Importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x), (B,) in nats.

    With K=1 it is the ELBO; it rises towards log p(x) as K grows (Burda et al. 2015). Samples are
    drawn ``chunk`` at a time so memory stays bounded for large K. ``y``: a conditional VAE's labels (then the
    bound is of log p(x | y)).
    """
    if k < 1:
        raise ValueError(f"K must be at least 1; got {k}.")
    mu, logvar = model.encode(x, y)  # (B, L)
    parts = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        eps = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps  # (n, B, L)
        y_n = None if y is None else torch.as_tensor(y).repeat(n)  # z's rows are sample-major
        params = model.decoder_params(z.reshape(-1, mu.shape[1]), y_n)  # (n * B, *input_shape)
        parts.append(log_weights(model, x, params, mu, logvar, z)[0])
    log_w = torch.cat(parts, 0)  # (K, B)
    return torch.logsumexp(log_w, 0) - math.log(k)


def log_weights(model, x: torch.Tensor, params: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Importance log-weights log p(x, z_k) - log q(z_k|x), (K, B), of samples ``z`` (K, B, L) whose decoder outputs
    are ``params`` (K * B, *input_shape); and log p(x|z_k) alone, (K, B). ``model`` is the (unwrapped) VAE."""
    k = z.shape[0]
    x_rep = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
    log_px = log_likelihood(x_rep, params, model.cfg.likelihood, model.log_sigma).view(k, -1)  # (K, B)
    return log_px + model.log_prior(z) - log_normal_diag(z, mu, logvar), log_px


def aggregate_log_densities(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """log q(z_i) and log q(z_i,d) per dimension, (M,) and (M, D), of the aggregate posterior q(z) = E_n q(z|n) at
    samples ``z`` (M, D) drawn one per item from posteriors (``mu``, ``logvar``) of M items of a dataset of
    ``dataset_size``: minibatch stratified sampling (Chen et al. 2018) weights the item's own posterior 1/N and each
    of the others (N-1)/(N(M-1)); exact when the M items are the whole dataset. Differentiable."""
    m = len(z)
    n = max(int(dataset_size), m)
    log_own = -math.log(n)
    log_other = math.log(n - 1) - math.log(n) - math.log(m - 1) if m > 1 else -math.inf
    log_qz, log_qzd = [], []
    for start in range(0, m, chunk):
        rows = torch.arange(start, min(m, start + chunk), device=z.device)
        per_dim = -0.5 * (LOG_2PI + logvar[None] + (z[rows, None, :] - mu[None]) ** 2 * torch.exp(-logvar[None]))
        weight = torch.full((len(rows), m), log_other, dtype=z.dtype, device=z.device)
        weight[torch.arange(len(rows), device=z.device), rows] = log_own
        log_qz.append(torch.logsumexp(weight + per_dim.sum(2), dim=1))  # (C,)
        log_qzd.append(torch.logsumexp(weight[:, :, None] + per_dim, dim=1))  # (C, D)
    return torch.cat(log_qz), torch.cat(log_qzd)


def kl_parts(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int, chunk: int = 256) -> dict:
    """The KL term split three ways at samples ``z`` (Chen et al. 2018), each (M,) per item, in nats:
    ``mi`` (index-code mutual information), ``tc`` (total correlation), ``dwkl`` (dimension-wise KL); they sum to
    log q(z|n) - log p(z), the one-sample estimate of KL(q(z|n) ‖ N(0, I))."""
    log_qz, log_qzd = aggregate_log_densities(z, mu, logvar, dataset_size, chunk)
    log_qz_n = log_normal_diag(z, mu, logvar)
    log_pz = log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    return {"mi": log_qz_n - log_qz, "tc": log_qz - log_qzd.sum(1), "dwkl": log_qzd.sum(1) - log_pz}


def family_terms(
    model,
    x: torch.Tensor,
    family: str,
    beta: float = 1.0,
    free_bits: float = 0.0,
    eps: torch.Tensor | None = None,
    dataset_size: int | None = None,
    y: torch.Tensor | None = None,
) -> dict:
    """One training step's terms for a model family (``vae.config.FAMILIES``): what ``elbo_terms`` returns
    (``recon``, ``kl``, ``elbo`` per item from the first sample, and the scalar ``loss``), and for ``beta-tcvae``
    the KL's three parts ``mi``, ``tc``, ``dwkl`` per item.

    ``vae``: the ELBO with β and free bits; ``cvae``: the same, encoder and decoder given the labels ``y``;
    ``vampprior``: the ELBO with β against the learned prior.
    ``beta-tcvae``: recon + MI + β·TC + dimension-wise KL, estimated on
    the batch as a sample of ``dataset_size`` items. ``iwae``: minus the importance-weighted bound of the K
    samples whose noise ``eps`` (K, B, latent_dim) holds (with K = 1 exactly the one-sample ELBO, its KL taken at
    the sample: the ELBO's loss at β = 1 in expectation).
    """
    if family in ("vae", "cvae", "vampprior"):  # a VampPrior's KL, a CVAE's labels: elbo_terms' own
        return elbo_terms(model, x, beta, None, free_bits, eps=eps, y=y)
    inner = getattr(model, "module", model)  # DistributedDataParallel keeps the VAE in .module
    if family == "beta-tcvae":
        params, mu, logvar, z = model(x, None, eps=eps, y=y)
        recon = -log_likelihood(x, params, inner.cfg.likelihood, inner.log_sigma)
        kl = kl_divergence(mu, logvar)
        parts = kl_parts(z, mu, logvar, dataset_size or len(x))
        loss = recon.mean() + parts["mi"].mean() + beta * parts["tc"].mean() + parts["dwkl"].mean()
        return {"recon": recon, "kl": kl, "elbo": -(recon + kl), "loss": loss, **parts}
    if family == "iwae":
        if eps is None or eps.ndim != 3:
            raise ValueError("The IWAE family needs its samples' noise as (K, batch, latent_dim).")
        k = eps.shape[0]
        params, mu, logvar, z = model(x, None, eps=eps, y=y)  # K samples per item through the (DDP-wrapped) forward
        log_w, log_px = log_weights(inner, x, params, mu, logvar, z)  # (K, B) each
        bound = torch.logsumexp(log_w, 0) - math.log(k)  # (B,)
        recon = -log_px[0]
        kl = kl_divergence(mu, logvar)
        return {"recon": recon, "kl": kl, "elbo": -(recon + kl), "loss": -bound.mean(), "iwae": bound}
    raise ValueError(f"Unknown model family {family!r}.")


def divergence_message(model_cfg: ModelConfig, cfg: TrainConfig, epoch: int, step: int) -> str:
    """A sentence naming the likely cause of a NaN/inf loss and a fix."""
    msg = (
        f"Training diverged: the loss became NaN or infinite at epoch {epoch + 1}, step {step}. "
        f"The learning rate {cfg.lr:g} is the likely cause; try {cfg.lr / 10:g} or lower."
    )
    if model_cfg.likelihood == "gaussian" and model_cfg.learn_variance:
        msg += " A learned Gaussian variance can also collapse: try a fixed variance."
    return msg + " The last good checkpoint is kept."
