"""Encoders, decoders and the VAE module.

The model surface is four verbs on tensors: ``encode(x) -> (mu, logvar)``, ``reparameterize``,
``decode(z)`` (the mean of p(x|z), shaped like the data) and ``forward`` (what training needs); and three on whole
arrays, batched and without gradients, returning numpy: ``embed``, ``reconstruct``, ``decode_numpy``.
``decoder_params(z)`` gives the raw decoder output: logits for a Bernoulli likelihood, the mean
for a Gaussian one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .config import ModelConfig
from .progress import counted


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _joined(a: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """``a`` (B, n) with the condition ``c`` (B, classes) appended, or ``a`` itself without one."""
    return a if c is None else torch.cat([a, c], 1)


class MLPEncoder(nn.Module):
    """Flatten (and append the one-hot class of a conditional model), hidden ReLU layers, then one linear head
    giving (mu, logvar)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = _mlp([cfg.input_dim + cfg.conditions, *cfg.hidden, 2 * cfg.latent_dim])

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_joined(x.flatten(1), c))  # (B, 2 * latent_dim)


class MLPDecoder(nn.Module):
    """Mirror of the encoder: latent (with the one-hot class) -> reversed hidden layers -> input_dim, reshaped."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.shape = cfg.input_shape
        self.net = _mlp([cfg.latent_dim + cfg.conditions, *reversed(cfg.hidden), cfg.input_dim])

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_joined(z, c)).view(-1, *self.shape)  # (B, *input_shape)


class ConvEncoder(nn.Module):
    """Stride-2 4x4 convolutions (one per entry of ``channels``), then a linear head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c_in, side, _ = cfg.input_shape
        layers: list[nn.Module] = []
        for c_out in cfg.channels:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c_in, side = c_out, side // 2
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * side * side + cfg.conditions, 2 * cfg.latent_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv(x)  # (B, channels[-1], side / 2^L, side / 2^L)
        return self.head(_joined(h.flatten(1), c))  # (B, 2 * latent_dim)


class ConvDecoder(nn.Module):
    """Linear to a small feature map, then stride-2 transposed convolutions back to the image."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c_img, side, _ = cfg.input_shape
        chans = list(reversed(cfg.channels))
        self.start = (chans[0], side // 2 ** len(chans), side // 2 ** len(chans))
        self.fc = nn.Linear(cfg.latent_dim + cfg.conditions, math.prod(self.start))
        layers: list[nn.Module] = [nn.ReLU()]
        for i, c_in in enumerate(chans):
            c_out = chans[i + 1] if i + 1 < len(chans) else c_img
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i + 1 < len(chans):
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(_joined(z, c)).view(-1, *self.start)  # (B, C_last, s, s)
        return self.deconv(h)  # (B, C, H, W)


PRIOR_CHUNK = 1024  # latent points scored against the VampPrior's components at once (1024 × 500 × L floats)


class VAE(nn.Module):
    """A VAE with a diagonal Gaussian posterior and a prior: the standard normal, or for the ``vampprior`` family
    the mixture of the encoder's posteriors at K learned pseudo-inputs (Tomczak & Welling 2018).

    The prior's verbs: ``log_prior(z)`` and ``sample_prior(n)``; ``prior_components()`` the mixture's (mu, logvar).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.arch == "conv":
            self.encoder, self.decoder = ConvEncoder(cfg), ConvDecoder(cfg)
        else:
            self.encoder, self.decoder = MLPEncoder(cfg), MLPDecoder(cfg)
        log_sigma = torch.full((1,), math.log(cfg.sigma))
        if cfg.likelihood == "gaussian" and cfg.learn_variance:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        if cfg.family == "vampprior":  # the pseudo-inputs, shaped like items (drawn from the global seed)
            start = torch.randn(cfg.pseudo_inputs, *cfg.input_shape) * 0.1
            self.pseudo = nn.Parameter(start + 0.5 if cfg.likelihood == "bernoulli" else start)

    # ---- the prior

    @property
    def learned_prior(self) -> bool:
        return self.cfg.family == "vampprior"

    @torch.no_grad()
    def start_pseudo_inputs(self, x: torch.Tensor, seed: int) -> None:
        """A fresh VampPrior's pseudo-inputs set to items of ``x`` drawn with ``seed`` (Tomczak & Welling's
        initialisation from data: the prior starts where the data are, not at noise); nothing for other families."""
        if self.learned_prior and len(x):
            rows = torch.randint(len(x), (len(self.pseudo),), generator=torch.Generator().manual_seed(seed))
            self.pseudo.copy_(x[rows.to(x.device)].to(self.pseudo.dtype))

    def pseudo_inputs(self) -> torch.Tensor:
        """The VampPrior's pseudo-inputs, (K, *input_shape); kept in [0, 1] for Bernoulli data like the items."""
        return torch.clamp(self.pseudo, 0.0, 1.0) if self.cfg.likelihood == "bernoulli" else self.pseudo

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior mixture's component means and log-variances, (K, latent_dim) each (VampPrior only)."""
        return self.encode(self.pseudo_inputs())

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the latent dimension, shaped like ``z`` without its last axis."""
        if not self.learned_prior:
            return -0.5 * (math.log(2 * math.pi) + z.pow(2)).sum(-1)
        mu, logvar = self.prior_components()  # (K, L)
        flat = z.reshape(-1, z.shape[-1])
        out = []
        for i in range(0, len(flat), PRIOR_CHUNK):
            zc = flat[i : i + PRIOR_CHUNK, None, :]  # (C, 1, L) against (K, L)
            per = -0.5 * (math.log(2 * math.pi) + logvar + (zc - mu).pow(2) * torch.exp(-logvar)).sum(-1)  # (C, K)
            out.append(torch.logsumexp(per, 1) - math.log(len(mu)))
        return torch.cat(out).view(z.shape[:-1]) if out else flat.new_zeros(z.shape[:-1])

    def prior_points(self, eps: torch.Tensor) -> torch.Tensor:
        """Points of the prior made from fixed noise ``eps`` (S, L): ``eps`` itself under N(0, I); under a VampPrior,
        the i-th row through the i-th component (cycling), ``mu_i + sigma_i * eps_i``: the pictures' samples."""
        if not self.learned_prior:
            return eps
        mu, logvar = self.prior_components()
        rows = torch.arange(len(eps)) % len(mu)
        return mu[rows] + torch.exp(0.5 * logvar[rows]) * eps

    @torch.inference_mode()
    def sample_prior(self, n: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
        """``n`` samples of the prior with ε scaled by ``temperature``: (n, latent_dim) float32 numpy. N(0, I) is
        ``temperature`` times the seed's standard normals; the VampPrior draws a component uniformly for each, then
        its Gaussian with the same normals."""
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((int(n), self.cfg.latent_dim))
        if not self.learned_prior:
            return (temperature * eps).astype(np.float32)
        mu, logvar = (t.double().cpu().numpy() for t in self.prior_components())
        pick = rng.integers(len(mu), size=int(n))
        return (mu[pick] + np.exp(0.5 * logvar[pick]) * eps * temperature).astype(np.float32)

    # ---- the condition: a conditional VAE's encoder and decoder both take the item's label, one-hot

    @property
    def conditional(self) -> bool:
        return self.cfg.conditions > 0

    def condition(self, y, n: int, like: torch.Tensor) -> torch.Tensor | None:
        """The one-hot condition (n, classes) for labels ``y`` (one label for all n rows, or n of them), in
        ``like``'s dtype and device; None for an unconditional model (which ignores ``y``)."""
        if not self.conditional:
            return None
        if y is None:
            raise ValueError("This conditional VAE needs a label for what it encodes or decodes (the class).")
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long().to(like.device)
        if y.ndim == 0:
            y = y.expand(n)
        if len(y) != n or int(y.min()) < 0 or int(y.max()) >= self.cfg.classes:
            raise ValueError(f"Labels must be {n} class numbers from 0 to {self.cfg.classes - 1}.")
        return nn.functional.one_hot(y, self.cfg.classes).to(like.dtype)

    def encode(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, logvar)``, each (B, latent_dim) (a conditional VAE: given labels ``y``)."""
        h = self.encoder(x, self.condition(y, len(x), x))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterize(
        mu: torch.Tensor,
        logvar: torch.Tensor,
        generator: torch.Generator | None = None,
        eps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One sample ``mu + sigma * eps`` per row, differentiable in mu and logvar (``eps``: drawn here if None)."""
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def decoder_params(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Raw decoder output: logits (Bernoulli) or mean (Gaussian), (B, *input_shape) (labels ``y``: a
        conditional VAE's classes)."""
        return self.decoder(z, self.condition(y, len(z), z))

    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Mean of p(x|z) in data space, (B, *input_shape): pixel probabilities or vector means."""
        out = self.decoder_params(z, y)
        return torch.sigmoid(out) if self.cfg.likelihood == "bernoulli" else out

    # ---- the model's verbs on whole arrays: in batches, without gradients, on the model's device and in its
    # precision; the results come back to the CPU as numpy (every page, analysis and command uses these). A
    # conditional VAE takes labels ``y``: one for every row, or one per row.

    def _batches(self, a: torch.Tensor | np.ndarray, batch: int, y=None):
        """(rows, their labels) ``batch`` rows at a time; the labels None, one for all, or one per row."""
        p = next(self.parameters())
        a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
        per_row = y is not None and np.ndim(y) > 0
        if per_row:
            y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        for i in range(0, len(a), batch):
            yield a[i : i + batch].to(device=p.device, dtype=p.dtype), y[i : i + batch] if per_row else y

    @torch.inference_mode()
    def embed(self, x: torch.Tensor | np.ndarray, y=None, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances of every row of ``x`` (N, *input_shape): each (N, latent_dim)."""
        parts = [self.encode(xb, yb) for xb, yb in self._batches(x, batch, y)]
        if not parts:
            empty = np.zeros((0, self.cfg.latent_dim), dtype=np.float32)
            return empty, empty.copy()
        return (torch.cat([m for m, _ in parts]).cpu().numpy(),
                torch.cat([v for _, v in parts]).cpu().numpy())  # fmt: skip

    def split_labels(self, ds, split: str, rows=None) -> np.ndarray | None:
        """The labels a conditional VAE is given with a dataset split's items (all, or ``rows`` of it), (N,); None
        for every other model; a sentence when the data have none."""
        if not self.conditional:
            return None
        labels = ds.split_labels(split)
        if labels is None:
            raise ValueError("This conditional VAE is given each item's label, and these items have none.")
        return labels if rows is None else labels[np.asarray(rows, dtype=np.int64)]

    def embed_split(
        self, ds, split: str, rows=None, progress=None, chunk: int = 16_384
    ) -> tuple[np.ndarray, np.ndarray]:
        """``embed`` of a dataset split's items (all, or ``rows`` of it), each with its label where it needs one: read
        ``chunk`` items at a time (a split of 737,280 sprites is never copied whole), ``progress`` told after each."""
        rows = np.arange(ds.split_size(split)) if rows is None else np.asarray(rows, dtype=np.int64)
        mu = np.empty((len(rows), self.cfg.latent_dim), dtype=np.float32)
        logvar = np.empty_like(mu)
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            mu[i : i + len(part)], logvar[i : i + len(part)] = self.embed(
                ds.split_items(split, part).float(), self.split_labels(ds, split, part)
            )
            counted(progress, i + len(part), len(rows), f"encoded {i + len(part):,} of {len(rows):,} items")
        return mu, logvar

    @torch.inference_mode()
    def decode_numpy(self, z: torch.Tensor | np.ndarray, y=None, batch: int = 1000) -> np.ndarray:
        """The decoded means of latent rows ``z`` (N, latent_dim), or of one code (latent_dim,): (N, *input_shape)."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float32)) if not isinstance(z, torch.Tensor) else torch.atleast_2d(z)
        out = [self.decode(zb, yb).cpu() for zb, yb in self._batches(z, batch, y)]
        return torch.cat(out).numpy() if out else np.zeros((0, *self.cfg.input_shape), dtype=np.float32)

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor | np.ndarray, y=None, batch: int = 1000) -> np.ndarray:
        """The decoded posterior means of the rows of ``x``: (N, *input_shape)."""
        out = [self.decode(self.encode(xb, yb)[0], yb).cpu() for xb, yb in self._batches(x, batch, y)]
        return torch.cat(out).numpy() if out else np.zeros((0, *self.cfg.input_shape), dtype=np.float32)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, eps: torch.Tensor | None = None, y=None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(decoder_params, mu, logvar, z)`` for one posterior sample per input (noise ``eps`` if given);
        with ``eps`` of shape (K, B, latent_dim), K samples per input: z (K, B, L), decoder_params (K * B, ...).
        ``y``: a conditional VAE's labels, (B,)."""
        mu, logvar = self.encode(x, y)
        if eps is not None and eps.ndim == 3:
            z = mu + torch.exp(0.5 * logvar) * eps
            k = eps.shape[0]
            y_k = None if y is None or np.ndim(y) == 0 else torch.as_tensor(y).repeat(k)  # z's rows: sample-major
            return self.decoder_params(z.reshape(-1, mu.shape[1]), y if y_k is None else y_k), mu, logvar, z
        z = self.reparameterize(mu, logvar, generator, eps)
        return self.decoder_params(z, y), mu, logvar, z


def build_model(cfg: ModelConfig) -> VAE:
    """A freshly initialised VAE for ``cfg``."""
    return VAE(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_state_dict(model: VAE, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Raise a clear error unless ``tensors`` has exactly the model's names and shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{where} does not match the model its config describes: missing {missing[:3]}, unexpected {extra[:3]} "
            f"({len(missing)} missing, {len(extra)} unexpected)."
        )
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape) or tensors[k].dtype != v.dtype:
            raise ValueError(
                f"{where}: tensor {k} has shape {tuple(tensors[k].shape)} ({tensors[k].dtype}) but the config "
                f"implies {tuple(v.shape)} ({v.dtype})."
            )
