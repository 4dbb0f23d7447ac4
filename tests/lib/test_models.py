"""Shapes over a grid of tiny configs, and the objectives' maths."""

import math

import pytest
import torch

from vae.config import ModelConfig
from vae.models import build_model
from vae.objectives import elbo_terms, iwae_bound, kl_divergence, kl_per_dim, log_likelihood

CONFIGS = [
    ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,)),
    ModelConfig(input_shape=(1, 28, 28), latent_dim=5, hidden=(32, 16)),
    ModelConfig(input_shape=(7,), latent_dim=3, hidden=(), likelihood="gaussian", learn_variance=True),
    ModelConfig(input_shape=(1, 28, 28), arch="conv", latent_dim=4, channels=(4, 8)),
    ModelConfig(input_shape=(3, 32, 32), arch="conv", latent_dim=1, channels=(4, 4, 8)),
    ModelConfig(input_shape=(1, 64, 64), arch="conv", latent_dim=128, channels=(2, 4, 4, 8)),
    ModelConfig(input_shape=(3, 64, 64), arch="mlp", latent_dim=8, hidden=(8,)),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.arch}-{'x'.join(map(str, c.input_shape))}-z{c.latent_dim}")
def test_shapes(cfg):
    model = build_model(cfg)
    x = torch.rand(3, *cfg.input_shape)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, cfg.latent_dim)
    z = model.reparameterize(mu, logvar)
    assert z.shape == (3, cfg.latent_dim)
    assert model.decode(z).shape == (3, *cfg.input_shape)
    params, mu2, _, z2 = model(x)
    assert params.shape == x.shape and z2.shape == mu2.shape
    terms = elbo_terms(model, x)
    assert terms["recon"].shape == terms["kl"].shape == (3,)
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bernoulli_decode_is_a_probability():
    model = build_model(CONFIGS[0])
    out = model.decode(torch.randn(10, 2) * 5)
    assert out.min() >= 0 and out.max() <= 1


def test_learned_variance_is_a_parameter_and_fixed_is_not():
    learned = build_model(CONFIGS[2])
    fixed = build_model(ModelConfig(input_shape=(7,), likelihood="gaussian", sigma=0.5))
    assert any(n == "log_sigma" for n, _ in learned.named_parameters())
    assert not any(n == "log_sigma" for n, _ in fixed.named_parameters())
    assert math.isclose(float(fixed.log_sigma), math.log(0.5), rel_tol=1e-6)


def test_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(1, 3), torch.randn(1, 3) * 0.5
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 3)
    log_q = (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).sum(1)
    log_p = (-0.5 * (math.log(2 * math.pi) + z**2)).sum(1)
    mc = float((log_q - log_p).mean())
    assert abs(mc - float(kl_divergence(mu, logvar))) < 0.02
    assert kl_per_dim(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0


def test_gaussian_likelihood_matches_torch_distributions():
    x, mean = torch.randn(4, 6), torch.randn(4, 6)
    log_sigma = torch.tensor([0.3])
    ours = log_likelihood(x, mean, "gaussian", log_sigma)
    ref = torch.distributions.Normal(mean, log_sigma.exp()).log_prob(x).sum(1)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_bernoulli_likelihood_matches_torch_distributions():
    x = (torch.rand(4, 6) > 0.5).float()
    logits = torch.randn(4, 6)
    ours = log_likelihood(x, logits, "bernoulli", torch.zeros(1))
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(1)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_iwae_bound_rises_with_k_and_k1_is_the_elbo():
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,)))
    x = torch.rand(64, 1, 8, 8)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        elbo = torch.stack([elbo_terms(model, x, 1.0, g)["elbo"] for _ in range(200)]).mean()
        k1 = torch.stack([iwae_bound(model, x, 1, g) for _ in range(200)]).mean()
        k10 = iwae_bound(model, x, 10, g).mean()
        k500 = iwae_bound(model, x, 500, g, chunk=64).mean()
    assert abs(float(elbo - k1)) < 0.05 * abs(float(elbo))
    assert k1 < k10 < k500
    with pytest.raises(ValueError, match="K must be at least 1"):
        iwae_bound(model, x, 0)
