"""Measuring a trained VAE honestly: test ELBO, IWAE log-likelihood, KL per dimension, active
units, reconstruction error and the k-NN accuracy of the latent means.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..config import IWAE_K
from ..models import VAE
from ..objectives import elbo_terms, iwae_bound, kl_per_dim
from ..progress import Progress, part, report
from ..runs import folder as rf
from .decompose import MAX_ITEMS, kl_decomposition
from .disentanglement import check_factors, disentanglement_scores


def device_of(model: VAE) -> torch.device:
    """Where the model's weights are: batches go there, results come back to the CPU."""
    return next(model.parameters()).device


@torch.inference_mode()
def elbo(model: VAE, x: torch.Tensor, batch: int = 1000, seed: int = 0, y=None) -> dict:
    """Mean one-sample ELBO and its parts in nats per example: elbo, recon (-log p(x|z)), kl (``y``: the items'
    labels, which a conditional VAE is given)."""
    device = device_of(model)
    g = torch.Generator(device=device).manual_seed(seed)
    tot = {"elbo": 0.0, "recon": 0.0, "kl": 0.0}
    for i in range(0, len(x), batch):
        t = elbo_terms(model, x[i : i + batch].to(device), 1.0, g, y=_rows(y, i, batch, device))
        for k in tot:
            tot[k] += float(t[k].sum())
    return {k: v / len(x) for k, v in tot.items()}


def _rows(y, start: int, batch: int, device) -> torch.Tensor | None:
    """A batch's labels (None stays None)."""
    return None if y is None else torch.as_tensor(y)[start : start + batch].to(device)


ACTIVATION_BUDGET = 50_000_000  # floats the decoder's layer outputs may hold at once during IWAE (200 MB)


@torch.inference_mode()
def decode_floats(model: VAE) -> int:
    """How many floats one decode's layer outputs hold (measured on one latent point)."""
    sizes: list[int] = []
    leaves = [m for m in model.decoder.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel())) for m in leaves]
    try:
        z = torch.zeros(1, model.cfg.latent_dim, device=device_of(model))
        model.decoder_params(z, 0 if model.conditional else None)
    finally:
        for h in hooks:
            h.remove()
    return max(1, sum(sizes))


@torch.inference_mode()
def iwae_log_likelihood(
    model: VAE,
    x: torch.Tensor,
    k: int = IWAE_K,
    batch: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    y=None,
) -> float:
    """Mean importance-weighted estimate of log p(x) with ``k`` samples (nats per example; of log p(x | y) for a
    conditional VAE given the labels ``y``).

    Batches are sized by what the decoder holds: a conv decoder's feature maps take ten times an MLP's
    memory per decode, and 100k conv decodes at once took 9.8 GB (``ACTIVATION_BUDGET``).
    """
    batch = batch or max(1, min(len(x), ACTIVATION_BUDGET // (min(k, 100) * decode_floats(model))))
    device = device_of(model)
    g = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    for i in range(0, len(x), batch):
        total += float(iwae_bound(model, x[i : i + batch].to(device), k, g, y=_rows(y, i, batch, device)).sum())
        if progress:
            progress(min(1.0, (i + batch) / len(x)), f"IWAE K={k}: {min(i + batch, len(x))}/{len(x)}")
    return total / len(x)


@torch.inference_mode()
def kl_per_dimension(model: VAE, x: torch.Tensor, batch: int = 1000, y=None) -> np.ndarray:
    """Mean KL(q(z_d|x) || N(0,1)) of each latent dimension over ``x``, (latent_dim,)."""
    mu, logvar = model.embed(x, y, batch=batch)
    return kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).numpy()


def active_units(mu: np.ndarray, threshold: float = 0.01) -> tuple[int, np.ndarray]:
    """Burda et al. (2015): dimension d is active if Cov_x(E_q[z_d|x]) > threshold.

    Returns the count and the per-dimension variances of the posterior means.
    """
    var = np.var(np.asarray(mu, dtype=np.float64), axis=0)
    return int((var > threshold).sum()), var


@torch.inference_mode()
def reconstruction_errors(model: VAE, x: torch.Tensor, batch: int = 1000, y=None) -> np.ndarray:
    """Each example's squared error between ``x`` and the decoded posterior mean, summed over dimensions (N,)."""
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(device_of(model)).float()
        yb = _rows(y, i, batch, xb.device)
        mu, _ = model.encode(xb, yb)
        out.append((model.decode(mu, yb) - xb).pow(2).flatten(1).sum(1).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def reconstruction_error(model: VAE, x: torch.Tensor, batch: int = 1000, y=None) -> float:
    """Mean squared error per example between ``x`` and the decoded posterior mean, summed over dimensions."""
    return float(reconstruction_errors(model, x, batch, y).sum() / len(x))


def knn_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int = 10
) -> float:
    """Accuracy of a k-nearest-neighbour classifier (Euclidean) fitted on train, scored on test."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(train_x)), n_jobs=1)
    clf.fit(np.asarray(train_x).reshape(len(train_x), -1), np.asarray(train_y))
    return float(clf.score(np.asarray(test_x).reshape(len(test_x), -1), np.asarray(test_y)))


def evaluate_model(
    model: VAE, dataset, iwae_k: int = IWAE_K, knn_k: int = 10, progress: Progress | None = None, seed: int = 0
) -> dict:
    """All the measures on the test split (k-NN uses the training split's latent means as reference)."""
    t0 = time.perf_counter()
    x_test = dataset.x_test.float()
    y_test = model.split_labels(dataset, "test")  # a conditional VAE's measures are given the labels
    report(progress, 0.0, "test ELBO")
    out: dict = {"n_test": len(x_test)}
    parts = elbo(model, x_test, seed=seed, y=y_test)
    out.update(test_elbo=parts["elbo"], test_recon=parts["recon"], test_kl=parts["kl"])
    mu, logvar = model.embed(x_test, y_test)
    out["kl_per_dim"] = kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).tolist()
    n_active, variances = active_units(mu)
    out.update(active_units=n_active, latent_dim=int(mu.shape[1]), mean_variance=variances.tolist())
    rows = np.random.default_rng(seed).permutation(len(mu))[:MAX_ITEMS]  # the KL split three ways (Chen et al.)
    parts3 = kl_decomposition(mu[rows], logvar[rows], dataset_size=len(mu), seed=seed)
    out.update({k: parts3[k] for k in ("index_code_mi", "total_correlation", "dimension_wise_kl")})
    out["recon_mse"] = reconstruction_error(model, x_test, y=y_test)
    if iwae_k:
        out["iwae_k"] = iwae_k
        out["iwae_ll"] = iwae_log_likelihood(model, x_test, iwae_k, seed=seed, progress=part(progress, 0.1, 0.9),
                                             y=y_test)  # fmt: skip
        if y_test is not None:
            out["iwae_conditional"] = True  # log p(x | y): the label given, not log p(x)
    if dataset.y_train is not None and dataset.y_test is not None:
        report(progress, 0.9, "k-NN accuracy")
        mu_train, _ = model.embed_split(dataset, "train")
        out["knn_k"] = knn_k
        out["knn_accuracy"] = knn_accuracy(mu_train, dataset.y_train.numpy(), mu, dataset.y_test.numpy(), knn_k)
    out["seconds"] = time.perf_counter() - t0
    report(progress, 1.0, "done")
    return out


def evaluate_run(
    run_dir: str | Path,
    iwae_k: int = IWAE_K,
    knn_k: int = 10,
    dataset=None,
    progress: Progress | None = None,
    disentanglement: bool = False,
    device: str = "cpu",
) -> dict:
    """Evaluate a run's saved model on its own data; the result is also written to ``evaluation.json``.

    ``disentanglement``: also the scores of ``vae.analysis.disentanglement`` (under that key), for data with known
    factors; other data raises ValueError (a sentence) before anything is computed. ``device``: where the model
    runs (``vae.distributed.resolve_device``: auto, cpu or cuda); the data stays on the CPU, a batch at a time.
    """
    from ..data import load_dataset
    from ..distributed import resolve_device

    run_dir = Path(run_dir)
    model = rf.load_model(run_dir).to(resolve_device(device))
    if dataset is None:
        dataset = load_dataset(rf.load_data_config(run_dir))
    if disentanglement:
        check_factors(dataset)
    share = 0.6 if disentanglement else 1.0
    out = evaluate_model(model, dataset, iwae_k=iwae_k, knn_k=knn_k, progress=part(progress, 0.0, share))
    if disentanglement:
        t0 = time.perf_counter()
        out["disentanglement"] = disentanglement_scores(model, dataset, progress=part(progress, share, 1.0))
        out["seconds"] += time.perf_counter() - t0  # the whole evaluation's time
    out["checkpoint"] = rf.checkpoint_id(run_dir)
    out["device"] = str(device_of(model))
    out["time"] = time.time()
    rf.write_evaluation(run_dir, out)
    return out
