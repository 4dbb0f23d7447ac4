"""Disentanglement scores on data with known factors: MIG, the β-VAE score, the FactorVAE score, DCI and SAP.

Each score follows the definition of disentanglement_lib (Locatello et al. 2019, ``evaluation/metrics/``):

- **MIG** (Chen et al. 2018): each latent dimension's means discretised into 20 equal-width histogram bins;
  the mutual information of every dimension with every factor; per factor, the gap between the two most
  informative dimensions divided by the factor's entropy; averaged over factors. 0 to 1.
- **β-VAE score** (Higgins et al. 2017): pairs of batches that share one factor's value; the mean absolute
  difference of their codes is a feature vector; a logistic regression predicts which factor was shared.
  Its held-out accuracy (chance: 1 / factors).
- **FactorVAE score** (Kim & Mnih 2018): batches with one factor fixed; the dimension whose variance (over the
  batch, divided by its variance over all data) is least votes for that factor; a majority-vote classifier from
  dimension to factor; its held-out accuracy. Dimensions whose standard deviation is below 0.05 are ignored.
- **DCI** (Eastwood & Williams 2018): a gradient-boosted classifier per factor from the codes; its feature
  importances form a dimension × factor matrix. Disentanglement: 1 minus each dimension's entropy over factors,
  weighted by the dimension's importance; completeness: 1 minus each factor's entropy over dimensions, weighted;
  informativeness: the classifiers' mean test accuracy.
- **SAP** (Kumar et al. 2018): a linear classifier from each single dimension to each factor; per factor,
  the gap in test accuracy between the best and second-best dimension; averaged.

Factors are treated as discrete (each distinct value a class), as disentanglement_lib does for dSprites.
MIG, DCI and SAP read latent means of the dataset's own splits; the β-VAE and FactorVAE scores need batches
with a factor held fixed, drawn from the data's generator (``GroundTruth``; the sprites have one).
Everything is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sklearn
import torch
from scipy.stats import entropy as scipy_entropy
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from ..data.sprites import SPRITE_FACTORS, SPRITE_GRIDS, render_sprite_classes
from ..progress import Progress, part, report
from ..runs.schema import SCORE_KEYS

Represent = Callable[[torch.Tensor], np.ndarray]  # observations (n, *item_shape) -> latent means (n, D)

KEYS = SCORE_KEYS  # evaluation.json's scores, as its schema names them
BINS = 20
PRUNE_STD = 0.05  # FactorVAE: dimensions with a smaller standard deviation over the data are left out


# ---------------------------------------------------------------- factors as classes


def factor_classes(factors: np.ndarray) -> np.ndarray:
    """Factor values (N, K) -> integer classes (N, K): each column's distinct values numbered 0, 1, ..."""
    factors = np.asarray(factors)
    return np.column_stack([np.unique(col, return_inverse=True)[1] for col in factors.T]).astype(np.int64)


def discretize(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each dimension of ``codes`` (N, D) cut into ``bins`` equal-width bins over its own range -> (N, D) ints."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins)[1][:-1]
        out[:, d] = np.digitize(codes[:, d], edges)
    return out


def mutual_information(discrete: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Mutual information (nats) of every discrete code column with every factor: (D, K)."""
    return np.array([[mutual_info_score(classes[:, k], discrete[:, d]) for k in range(classes.shape[1])]
                     for d in range(discrete.shape[1])])  # fmt: skip


def _top_two_gap(matrix: np.ndarray) -> np.ndarray:
    """Per column of a (D, K) matrix: its largest value minus its second largest (the largest alone if D = 1)."""
    ordered = np.sort(matrix, axis=0)[::-1]
    second = ordered[1] if len(ordered) > 1 else np.zeros(matrix.shape[1])
    return ordered[0] - second


# ---------------------------------------------------------------- scores from codes and factors


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> float:
    """Mutual information gap of latent means ``codes`` (N, D) against ``factors`` (N, K)."""
    classes = factor_classes(factors)
    info = mutual_information(discretize(codes, bins), classes)  # (D, K)
    entropy = np.array([mutual_info_score(c, c) for c in classes.T])  # (K,)
    kept = entropy > 0  # a factor constant over these items says nothing
    return float(np.mean(_top_two_gap(info)[kept] / entropy[kept])) if kept.any() else 0.0


DCI_TREES = 100  # boosting stages of DCI's trees: scikit-learn's default, as disentanglement_lib uses


def dci(codes_train, factors_train, codes_test, factors_test, seed: int = 0, trees: int = DCI_TREES) -> dict:
    """DCI disentanglement, completeness and informativeness (gradient-boosted trees, scikit-learn's defaults;
    ``trees`` boosting stages)."""
    if not (np.isfinite(codes_train).all() and np.isfinite(codes_test).all()):
        raise ValueError("The codes hold values that are not finite numbers, so DCI cannot be scored.")
    y_train, y_test = factor_classes(factors_train), _classes_like(factors_train, factors_test)
    importance = np.zeros((codes_train.shape[1], y_train.shape[1]))  # (D, K)
    accuracy = []
    for k in range(y_train.shape[1]):
        # thousands of small trees (one per class and stage): scikit-learn's per-tree argument checks cost a
        # fifth of the time; the inputs are checked once here, and the scores are the same without them
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            model = GradientBoostingClassifier(n_estimators=trees, random_state=seed).fit(codes_train, y_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy.append(float(np.mean(model.predict(codes_test) == y_test[:, k])))
    return {
        "dci_disentanglement": _weighted_one_minus_entropy(importance),
        "dci_completeness": _weighted_one_minus_entropy(importance.T),
        "dci_informativeness": float(np.mean(accuracy)),
    }


def _weighted_one_minus_entropy(importance: np.ndarray) -> float:
    """Rows of a non-negative (R, C) matrix: 1 - entropy (base C) of each row, weighted by the row's share."""
    if importance.shape[1] < 2:
        return 1.0
    per_row = 1.0 - scipy_entropy(importance.T + 1e-11, base=importance.shape[1])  # (R,)
    total = importance.sum()
    weights = importance.sum(axis=1) / total if total > 0 else np.full(len(importance), 1 / len(importance))
    return float(np.sum(per_row * weights))


def sap(codes_train, factors_train, codes_test, factors_test) -> float:
    """Separated attribute predictability: a linear SVM per (dimension, factor) on that dimension alone."""
    y_train, y_test = factor_classes(factors_train), _classes_like(factors_train, factors_test)
    scores = np.zeros((codes_train.shape[1], y_train.shape[1]))  # (D, K): test accuracy
    for d in range(codes_train.shape[1]):
        for k in range(y_train.shape[1]):
            if len(np.unique(y_train[:, k])) < 2:
                continue
            svm = LinearSVC(C=0.01, class_weight="balanced").fit(codes_train[:, d : d + 1], y_train[:, k])
            scores[d, k] = np.mean(svm.predict(codes_test[:, d : d + 1]) == y_test[:, k])
    return float(np.mean(_top_two_gap(scores)))


def _classes_like(reference: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``factors`` numbered as ``factor_classes(reference)`` numbers them (-1: a value the reference lacks)."""
    out = np.full(np.shape(factors), -1, dtype=np.int64)
    for k, col in enumerate(np.asarray(reference).T):
        values = np.unique(col)
        pos = np.clip(np.searchsorted(values, factors[:, k]), 0, len(values) - 1)
        out[:, k] = np.where(values[pos] == factors[:, k], pos, -1)
    return out


# ---------------------------------------------------------------- scores that need the data's generator


@dataclass(frozen=True)
class GroundTruth:
    """A generator of observations from factor classes: ``sizes[k]`` classes for factor k, and ``render``."""

    sizes: tuple[int, ...]
    render: Callable[[np.ndarray], torch.Tensor]  # (n, K) classes -> (n, *item_shape) observations

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor combinations (n, K), every factor uniform over its classes."""
        return np.column_stack([rng.integers(0, size, n) for size in self.sizes])

    def codes(self, classes: np.ndarray, represent: Represent, chunk: int = 4096) -> np.ndarray:
        """Latent means (n, D) of the observations of ``classes`` (n, K), rendered and encoded a chunk at a time."""
        return np.concatenate([represent(self.render(classes[i : i + chunk])) for i in range(0, len(classes), chunk)])


def beta_vae_score(truth: GroundTruth, represent: Represent, seed: int = 0, batch: int = 64,
                   n_train: int = 1000, n_eval: int = 500) -> float:  # fmt: skip
    """Held-out accuracy of a logistic regression telling which factor a pair of batches shared."""
    rng = np.random.default_rng(seed)

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        shared = rng.integers(0, len(truth.sizes), n)
        a, b = truth.sample(n * batch, rng), truth.sample(n * batch, rng)
        rows = np.repeat(shared, batch)
        b[np.arange(n * batch), rows] = a[np.arange(n * batch), rows]
        za, zb = truth.codes(a, represent), truth.codes(b, represent)  # (n * batch, D)
        return np.abs(za - zb).reshape(n, batch, -1).mean(axis=1), shared

    x_train, y_train = points(n_train)
    x_eval, y_eval = points(n_eval)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return float(model.score(x_eval, y_eval))


def factor_vae_score(truth: GroundTruth, represent: Represent, seed: int = 0, batch: int = 64,
                     n_train: int = 800, n_eval: int = 400, n_variance: int = 5000) -> float:  # fmt: skip
    """Held-out accuracy of the majority vote from "least-varying dimension" to "the factor held fixed"."""
    rng = np.random.default_rng(seed)
    scale = np.var(truth.codes(truth.sample(n_variance, rng), represent), axis=0, ddof=1)  # (D,)
    active = np.flatnonzero(np.sqrt(scale) >= PRUNE_STD)
    if not len(active):
        return 0.0

    def votes(n: int) -> np.ndarray:
        out = np.zeros((len(truth.sizes), len(scale)), dtype=np.int64)  # (K, D)
        fixed = rng.integers(0, len(truth.sizes), n)
        classes = truth.sample(n * batch, rng).reshape(n, batch, -1)
        classes[np.arange(n), :, fixed] = classes[np.arange(n), 0, fixed][:, None]
        z = truth.codes(classes.reshape(n * batch, -1), represent).reshape(n, batch, -1)
        local = np.var(z[:, :, active], axis=1, ddof=1) / scale[active]  # (n, active)
        np.add.at(out, (fixed, active[np.argmin(local, axis=1)]), 1)
        return out

    train = votes(n_train)
    vote = np.argmax(train, axis=0)  # (D,): each dimension's factor
    held = votes(n_eval)
    return float(held[vote, np.arange(len(scale))].sum() / held.sum())


# ---------------------------------------------------------------- a model and its data


FACTORS = {"sprites": SPRITE_FACTORS}  # the datasets generated from known factors, and the factors' names


def known_factors(data_name: str) -> list[str]:
    """The names of the factors dataset ``data_name`` is generated from ([] for data without known factors)."""
    return list(FACTORS.get(data_name, []))


def sprite_truth(size: int) -> GroundTruth:
    """The sprites' generator: factor classes (shape, scale, rotation, x, y indices) -> (n, 1, size, size)."""
    return GroundTruth(tuple(len(g) for g in SPRITE_GRIDS),
                       lambda classes: torch.from_numpy(render_sprite_classes(classes, size)))  # fmt: skip


def ground_truth(dataset) -> GroundTruth | None:
    """The generator behind ``dataset`` where it has one (the sprites), else None."""
    return sprite_truth(int(dataset.item_shape[-1])) if getattr(dataset, "name", None) == "sprites" else None


def check_factors(dataset) -> None:
    """ValueError, in a sentence, unless ``dataset`` carries known factors for both splits."""
    if dataset.factors_train is None or dataset.factors_test is None:
        raise ValueError(
            f"The {dataset.name} data has no known factors of variation, so disentanglement cannot be scored: "
            "it needs data generated from known factors, such as the sprites (--data sprites)."
        )


def _subsample(n: int, most: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, most, replace=False)) if n > most else np.arange(n)


def disentanglement_scores(model, dataset, seed: int = 0, max_train: int = 2000, max_test: int = 1000,
                           progress: Progress | None = None, dci_trees: int = DCI_TREES) -> dict:  # fmt: skip
    """Every score of this module for a model on a dataset with factors (``KEYS``; None where one cannot be
    computed, with the reason under ``notes``). Raises ValueError, in a sentence, for data without factors.

    MIG reads the means of at most ``max_test`` test items; DCI and SAP train on at most ``max_train`` training
    items and test on those (DCI's trees take about 10 s per 1,000 training codes here, most of it the 40
    rotation classes; ``dci_trees`` boosting stages).
    """

    check_factors(dataset)
    rng = np.random.default_rng(seed)
    train = _subsample(len(dataset.x_train), max_train, rng)
    test = _subsample(len(dataset.x_test), max_test, rng)
    report(progress, 0.0, "encoding")
    z_train = model.embed_split(dataset, "train", train)[0]
    z_test = model.embed_split(dataset, "test", test)[0]
    f_train, f_test = dataset.factors_train[train], dataset.factors_test[test]
    out: dict = {"factors": list(dataset.factor_names or []), "n_train": len(train), "n_test": len(test)}
    report(progress, 0.1, "MIG")
    out["mig"] = mig(z_test, f_test)
    report(progress, 0.15, "SAP")
    out["sap"] = sap(z_train, f_train, z_test, f_test)
    report(progress, 0.3, "DCI")
    out.update(dci(z_train, f_train, z_test, f_test, seed=seed, trees=dci_trees))
    truth = ground_truth(dataset)
    if truth is None or model.conditional:
        out.update(beta_vae=None, factor_vae=None)
        out["notes"] = ["the β-VAE and FactorVAE scores need the data's generator, which only the sprites have"
                        if truth is None else "the β-VAE and FactorVAE scores encode generated batches, which have "
                        "no labels to give a conditional VAE"]  # fmt: skip
    else:

        def represent(x: torch.Tensor) -> np.ndarray:
            return model.embed(x)[0]

        report(progress, 0.7, "β-VAE score")
        out["beta_vae"] = beta_vae_score(truth, represent, seed=seed)
        report(part(progress, 0.85, 1.0), 0.0, "FactorVAE score")
        out["factor_vae"] = factor_vae_score(truth, represent, seed=seed)
    report(progress, 1.0, "done")
    return out
