"""What the Explore map can colour its points by: the label, the split, and per-item numbers (reconstruction error,
the item's KL, mean σ, how well the map kept its neighbourhood, the sprites' known factors).

``offered`` lists the columns a map can show; ``values`` computes one (in the map's row order); the browser gets
it as a column blob (``vae.web.mapgrid.pack_column``) and draws a legend (categories) or a colour bar (numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from vae.analysis.posterior import sigma
from vae.data import Dataset
from vae.objectives import kl_divergence

LABEL = "label"
SPLIT = "split"
RECON = "reconstruction error"
KL = "KL of the item"
SIGMA = "mean σ"
KEPT = "neighbourhood kept"
FACTOR = "factor: "  # + the factor's name (the sprites)
# Viridis: ordered light to dark and readable with the common colour-vision deficiencies
VIRIDIS = ((0.0, "#440154"), (0.25, "#3b528b"), (0.5, "#21918c"), (0.75, "#5ec962"), (1.0, "#fde725"))
SPLIT_COLOURS = (("train", "#4e79a7"), ("test", "#f28e2b"))
HELP = {
    LABEL: "Each label its own colour; click a legend entry to show only that label (the rest turn grey).",
    SPLIT: "Training items and test items.",
    RECON: "Squared error between the item and the reconstruction of its mean code, summed over its pixels.",
    KL: "KL(q(z|x) ‖ N(0, I)) of the item in nats: how far its posterior is from the prior.",
    SIGMA: "The mean over dimensions of the item's posterior standard deviation.",
    KEPT: "The share of the item's 10 nearest latent neighbours that are among its 10 nearest on the map: "
    "yellow (1) all kept, purple (0) the map tore them apart.",
}


@dataclass(frozen=True)
class Column:
    """One colouring: ``values`` (N,) in the map's rows, with ``categories`` ((name, colour) pairs; values are
    their places) or, for numbers, None and the scale's ``range``."""

    name: str
    values: np.ndarray
    categories: tuple[tuple[str, str], ...] | None = None
    range: tuple[float, float] | None = None  # a number column's fixed scale (None: its values' own)


def offered(ds: Dataset, split: str, labelled: bool, n: int, max_kept: int) -> list[str]:
    """The columns a map of ``n`` items of ``split`` can be coloured by (the first is the default)."""
    out = [LABEL] if labelled else []
    if split == "all":
        out.append(SPLIT)
    out += [RECON, KL, SIGMA]
    if n <= max_kept:
        out.append(KEPT)
    out += [FACTOR + f for f in ds.factor_names or []] if ds.split_factors(split) is not None else []
    return out


def help_text(name: str) -> str:
    return HELP.get(name, "The known factor the sprite was drawn with.")


def values(
    name: str,
    *,
    ds: Dataset,
    split: str,
    idx: np.ndarray,
    logvars: np.ndarray,
    codes: np.ndarray,
    recon: Callable[[], np.ndarray],
    kept: Callable[[], np.ndarray],
) -> Column:
    """Column ``name`` for the map of items ``idx`` of ``split`` (codes and log-variances (N, L) in its rows);
    ``recon()`` and ``kept()`` compute the costly ones on demand. ValueError for a name not offered."""
    if name == SPLIT:
        in_test = (np.asarray(idx) >= len(ds.x_train)).astype(np.float32) if split == "all" else None
        if in_test is None:
            raise ValueError("Colouring by split needs the map of both splits (train + test).")
        return Column(name, in_test, SPLIT_COLOURS)
    if name == RECON:
        return Column(name, np.asarray(recon(), dtype=np.float32))
    if name == KL:
        kl = kl_divergence(torch.as_tensor(codes), torch.as_tensor(logvars)).numpy()  # the closed form, per item
        return Column(name, kl.astype(np.float32))
    if name == SIGMA:
        return Column(name, sigma(logvars).mean(axis=1).astype(np.float32))
    if name == KEPT:
        return Column(name, np.asarray(kept(), dtype=np.float32), range=(0.0, 1.0))  # a share: 1 at the top
    if name.startswith(FACTOR):
        factors = ds.split_factors(split)
        names = list(ds.factor_names or [])
        factor = name[len(FACTOR) :]
        if factors is None or factor not in names:
            raise ValueError(f"This data has no factor called {factor!r}.")
        return Column(name, factors[np.asarray(idx), names.index(factor)].astype(np.float32))
    raise ValueError(f"The map cannot be coloured by {name!r}.")
