"""Frozen, validated configuration dataclasses: the model, the data and the training run.

Every config is plain data: it validates itself on creation (a ``ValueError`` naming the
field, the allowed values and what was received), and round-trips through ``to_dict`` /
``from_dict`` so a run folder's ``config.json`` can rebuild its own model.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

CONFIG_VERSION = 1

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
# the model families: the objective (and, for some, the prior or what the decoder takes) on the same networks
FAMILIES = ("vae", "cvae", "beta-tcvae", "iwae", "vampprior")
FAMILY_TEXT = {
    "vae": "The ELBO: reconstruction plus β times the KL to the prior (β-VAE for β ≠ 1).",
    "cvae": "Conditional VAE: the encoder and the decoder both see the item's label, so z is free to hold the "
    "style and the label says the class (Sohn et al. 2015); needs labelled data.",
    "beta-tcvae": "β-TCVAE: the KL split into index-code information, total correlation and dimension-wise KL, "
    "with β weighting only the total correlation (Chen et al. 2018).",
    "iwae": "IWAE: trains on the K-sample importance-weighted bound, tighter than the ELBO (Burda et al. 2016); "
    "β, warm-up and free bits do not apply.",
    "vampprior": "VampPrior: the prior is learned, a mixture of the encoder's posteriors at K learned pseudo-inputs "
    "(Tomczak & Welling 2018), so it can take the shape of the codes; its KL is estimated at the sample "
    "(free bits do not apply).",
}
VAMP_PSEUDO_INPUTS = 500  # the VampPrior's components (Tomczak & Welling's default)
MAX_PSEUDO_INPUTS = 5000
MAX_CLASSES = 1000  # a conditional VAE's labels (one-hot inputs)
TRAIN_IWAE_K = 5  # importance samples of the IWAE family's training bound
PRECISIONS = ("fp32", "bf16", "fp64")  # TrainConfig.precision
CONV_SIZES = (28, 32, 64)
MAX_INPUT = 4 * 1024 * 1024  # values per item (a 3×1024×1024 image is 3.1 M)
MAX_LATENT = 128
MAX_PARAMETERS = 200_000_000  # an MLP's weights (800 MB in float32), checked from the config before allocating
IWAE_K = 100  # importance samples of the evaluation's log-likelihood estimate (Burda et al. 2016)
MAX_IWAE_K = 10_000  # at most: K = 1,000 takes 2-3 minutes on Fashion-MNIST's test set on 2 cores
LEGACY_ADAM_BETA2 = 0.999  # torch's default, which every run trained with before TrainConfig.adam_beta2


def _fail(cls: str, name: str, allowed: str, got: Any) -> None:
    raise ValueError(f"{cls}.{name} must be {allowed}; got {got!r}.")


def _check_int(cls: str, name: str, value: Any, lo: int, hi: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        allowed = f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"
        _fail(cls, name, allowed, value)


def _check_float(
    cls: str, name: str, value: Any, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False
) -> None:
    span = f"a number in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):  # "0.001" in a config.json is text
        _fail(cls, name, span, value)
    v = float(value)
    if v != v or v > hi or v < lo or (open_lo and v == lo) or (open_hi and v == hi):
        _fail(cls, name, span, value)


class _Serialisable:
    """Shared ``to_dict`` / ``from_dict`` for the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} must be a JSON object; got {type(data).__name__}.")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"{cls.__name__} has no field(s) {', '.join(unknown)}; known fields are {', '.join(sorted(names))}."
            )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelConfig(_Serialisable):
    """Architecture of a VAE.

    ``input_shape`` is ``(C, H, W)`` for images or ``(D,)`` for vectors. ``hidden`` are the MLP
    layer widths (encoder order; the decoder mirrors them; ``()`` gives a linear model).
    ``channels`` are the conv encoder's channel counts, one stride-2 layer each.
    """

    input_shape: tuple[int, ...] = (1, 8, 8)
    arch: str = "mlp"
    latent_dim: int = 20
    hidden: tuple[int, ...] = (400,)
    channels: tuple[int, ...] = (32, 64)
    likelihood: str = "bernoulli"
    learn_variance: bool = False
    sigma: float = 1.0
    family: str = "vae"  # FAMILIES; runs recorded before families existed read as "vae"
    pseudo_inputs: int = VAMP_PSEUDO_INPUTS  # the VampPrior's components (read only by that family)
    classes: int = 0  # the labels a conditional VAE is given (one-hot); 0 for every other family

    def mlp_parameters(self) -> int:
        """About how many weights the MLP has (encoder and mirrored decoder), from the config alone."""
        dims = [math.prod(self.input_shape), *self.hidden]
        body = sum(a * b for a, b in zip(dims, dims[1:], strict=False))
        return 2 * body + 3 * dims[-1] * self.latent_dim + 2 * dims[0]

    def __post_init__(self) -> None:
        n = "ModelConfig"
        shape = self.input_shape
        if not (isinstance(shape, tuple) and len(shape) in (1, 3) and all(isinstance(s, int) and s > 0 for s in shape)):
            _fail(n, "input_shape", "(C, H, W) or (D,) of positive integers", shape)
        if math.prod(shape) > MAX_INPUT:  # checked before any layer is sized: absurd shapes overflow torch
            _fail(n, "input_shape", f"at most {MAX_INPUT:,} values per item", shape)
        if self.arch not in ARCHS:
            _fail(n, "arch", f"one of {', '.join(ARCHS)}", self.arch)
        _check_int(n, "latent_dim", self.latent_dim, 1, MAX_LATENT)
        if not (isinstance(self.hidden, tuple) and len(self.hidden) <= 4):
            _fail(n, "hidden", "a list of at most 4 layer widths", self.hidden)
        for h in self.hidden:
            _check_int(n, "hidden", h, 1, 4096)
        if self.arch == "mlp" and (count := self.mlp_parameters()) > MAX_PARAMETERS:
            _fail(n, "hidden", f"widths giving at most {MAX_PARAMETERS:,} weights with this input "
                               f"(these give {count:,})", self.hidden)  # fmt: skip
        if not (isinstance(self.channels, tuple) and 1 <= len(self.channels) <= 4):
            _fail(n, "channels", "a list of 1 to 4 channel counts", self.channels)
        for c in self.channels:
            _check_int(n, "channels", c, 1, 512)
        if self.likelihood not in LIKELIHOODS:
            _fail(n, "likelihood", f"one of {', '.join(LIKELIHOODS)}", self.likelihood)
        if not isinstance(self.learn_variance, bool):
            _fail(n, "learn_variance", "true or false", self.learn_variance)
        _check_float(n, "sigma", self.sigma, 0.0, 100.0, open_lo=True)
        if self.family not in FAMILIES:
            _fail(n, "family", f"one of {', '.join(FAMILIES)}", self.family)
        _check_int(n, "pseudo_inputs", self.pseudo_inputs, 1, MAX_PSEUDO_INPUTS)
        _check_int(n, "classes", self.classes, 0, MAX_CLASSES)
        if self.family == "cvae" and self.classes < 2:
            _fail(n, "classes", "at least 2 for the conditional VAE (it needs labelled data)", self.classes)
        if self.arch == "conv":
            if len(shape) != 3:
                _fail(n, "input_shape", "an image shape (C, H, W) for the conv architecture", shape)
            c, h, w = shape
            if c not in (1, 3) or h != w or h not in CONV_SIZES:
                _fail(n, "input_shape", f"1 or 3 channels of a square image of side {CONV_SIZES} for conv", shape)
            if h % (2 ** len(self.channels)) != 0:
                _fail(n, "channels", f"at most {_max_halvings(h)} layers for images of side {h}", self.channels)

    @property
    def input_dim(self) -> int:
        out = 1
        for s in self.input_shape:
            out *= s
        return out

    @property
    def conditions(self) -> int:
        """Inputs the condition adds to the encoder's and the decoder's linear layer: the classes of a
        conditional VAE, else 0."""
        return self.classes if self.family == "cvae" else 0

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


def _max_halvings(side: int) -> int:
    k = 0
    while side % 2 == 0 and k < 4:
        side //= 2
        k += 1
    return k


@dataclass(frozen=True)
class DataConfig(_Serialisable):
    """Which data a run trains on.

    ``name`` is a registered dataset (``digits``, ``fashion-mnist``, ``mnist``, ``sprites``) or
    ``file`` for a user's file or folder given by ``path``. ``root`` overrides where IDX files are
    looked for. ``max_train`` / ``max_test`` take a fixed-seed subset.
    """

    name: str = "digits"
    path: str | None = None
    root: str | None = None
    label_column: str | None = None
    size: int | None = None
    count: int | None = None
    test_fraction: float = 0.2
    split_seed: int = 0
    max_train: int | None = None
    max_test: int | None = None

    def __post_init__(self) -> None:
        n = "DataConfig"
        if not isinstance(self.name, str) or not self.name:
            _fail(n, "name", "a dataset name", self.name)
        for name in ("path", "root", "label_column"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or "\0" in value or len(value) > 4096):
                _fail(n, name, "text naming a file, folder or column, or null", value)
        if self.name == "file" and not self.path:
            _fail(n, "path", "the path of a file or folder when name is 'file'", self.path)
        if self.size is not None:
            _check_int(n, "size", self.size, 4, 256)
        if self.count is not None:
            _check_int(n, "count", self.count, 2, 1_000_000)
        _check_float(n, "test_fraction", self.test_fraction, 0.0, 0.9, open_lo=True)
        _check_int(n, "split_seed", self.split_seed, 0)
        for name in ("max_train", "max_test"):
            v = getattr(self, name)
            if v is not None:
                _check_int(n, name, v, 1)


@dataclass(frozen=True)
class TrainConfig(_Serialisable):
    """How a run trains: optimiser, schedule, objective weights and bookkeeping."""

    epochs: int = 10
    batch_size: int = 256
    lr: float = 3e-3
    seed: int = 0
    beta: float = 1.0
    warmup_epochs: float = 0.0
    threads: int = 2
    log_every: int = 50
    grid_size: int = 8
    weight_decay: float = 0.0
    probe_size: int = 2000  # test items whose codes are recorded as training goes (vae.analysis.history); 0: none
    free_bits: float = 0.0  # nats: each latent dimension's KL counts as at least this (0: off)
    precision: str = "fp32"  # "bf16": the forward pass under bfloat16 autocast (weights and Adam stay float32);
    # "fp64": float64 throughout (slow; for checks that must not depend on a kernel's summation order)
    lr_schedule: str = "constant"  # "cosine": linear warm-up over lr_warmup_epochs, then cosine decay to 0
    lr_warmup_epochs: float = 0.0
    adam_beta2: float = 0.95  # Adam's second-moment decay; runs recorded before this field trained with 0.999
    iwae_k: int = TRAIN_IWAE_K  # importance samples per item of the IWAE family's training bound

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """As ``_Serialisable.from_dict``; a run recorded before ``adam_beta2`` existed reads as the 0.999 it
        trained with (so its resume and its record stay true)."""
        if isinstance(data, dict) and "adam_beta2" not in data:
            data = {**data, "adam_beta2": LEGACY_ADAM_BETA2}
        return super().from_dict(data)

    def beta_at(self, progress: float) -> float:
        """β after ``progress`` epochs: a linear warm-up from 0 over ``warmup_epochs``, then ``beta``."""
        if self.warmup_epochs <= 0:
            return self.beta
        return self.beta * min(1.0, progress / self.warmup_epochs)

    def lr_at(self, step: int, total_steps: int, steps_per_epoch: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based) of ``total_steps``: a function of the step
        alone, so a resumed run continues the same schedule."""
        if self.lr_schedule == "constant":
            return self.lr
        warm = self.lr_warmup_epochs * steps_per_epoch
        if step < warm:
            return self.lr * (step + 1) / warm
        left = (step - warm) / max(1.0, total_steps - warm)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, left)))

    def __post_init__(self) -> None:
        n = "TrainConfig"
        if self.precision not in PRECISIONS:
            raise ValueError(f"{n}.precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}.")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"{n}.lr_schedule must be 'constant' or 'cosine'; got {self.lr_schedule!r}.")
        _check_int(n, "epochs", self.epochs, 1, 10_000)
        _check_int(n, "batch_size", self.batch_size, 1, 65_536)
        _check_float(n, "lr", self.lr, 0.0, 1.0, open_lo=True)
        _check_int(n, "seed", self.seed, 0, 2**31 - 1)
        _check_float(n, "beta", self.beta, 0.0, 1000.0)
        _check_float(n, "warmup_epochs", self.warmup_epochs, 0.0, 10_000.0)
        _check_int(n, "threads", self.threads, 1, 256)
        _check_int(n, "log_every", self.log_every, 1)
        _check_int(n, "grid_size", self.grid_size, 1, 16)
        _check_float(n, "weight_decay", self.weight_decay, 0.0, 1.0)
        _check_int(n, "probe_size", self.probe_size, 0, 10_000)
        _check_float(n, "free_bits", self.free_bits, 0.0, 10.0)
        _check_float(n, "lr_warmup_epochs", self.lr_warmup_epochs, 0.0, 10_000.0)
        _check_float(n, "adam_beta2", self.adam_beta2, 0.0, 1.0, open_hi=True)
        _check_int(n, "iwae_k", self.iwae_k, 1, 1000)


# ---------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """A dataset's starting point: the model's size (its input shape comes from the data) and the training.

    The Train page fills its form from ``preset(dataset)``; the Home page's demo is ``preset(DEMO_DATA)``.
    """

    latent_dim: int = ModelConfig.latent_dim
    hidden: tuple[int, ...] = ModelConfig.hidden
    train: TrainConfig = TrainConfig()


DEMO_DATA = "digits"  # the Home page's one-click demo model trains on this dataset, with its preset
PRESETS = {
    # One thread: as fast as two for these tiny batches (identical ELBO, 6.6 s against 6.7 s for the demo here),
    # and the other core is left to the page and to compiling UMAP for the first map.
    "digits": Preset(
        latent_dim=8, hidden=(128,), train=TrainConfig(epochs=40, batch_size=64, lr=3e-3, log_every=10, threads=1)
    ),
    "sprites": Preset(latent_dim=10),
}


def preset(dataset: str) -> Preset:
    """The preset of a dataset (the config defaults where it has none)."""
    return PRESETS.get(dataset, Preset())


def watched_threads(threads: int, procs: int = 1, cores: int | None = None) -> int:
    """Torch threads per process for a training the app starts on a machine of ``cores`` (default: this one's).

    Several processes share the cores out. One process keeps its ``threads`` but leaves a core to the app's
    server and the browser watching it where it would take them all: on 2 cores a 2-thread training lost a fifth
    to a third of its pace to the open Train page (``python -m bench live_map``), 1 thread none that shows, while
    1 thread trains the default MLP at 0.73-1.11 of 2 threads' pace alone on an AMD EPYC (about 0.9 in most runs),
    0.82-0.93 on an Intel Xeon, and, watched, faster than 2 in every run."""
    cores = max(1, cores or os.cpu_count() or 1)
    if procs > 1:
        return max(1, cores // procs)
    return max(1, min(threads, cores - 1))
