"""The encoder's distribution on the pages: an item's q(z|x) (its samples on the map, decoded, its σ per
dimension), the model's prior (N(0, I), or a VampPrior's mixture) against the codes, and pictures sampled from it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st
import torch

from vae.analysis import posterior
from vae.images import make_grid, png_bytes
from vae.projection import LatentProjector

from .figures import chart, prior_histograms, sigma_figure
from .pictures import decode, enlargement

CLOUD = 100  # samples of a pinned item's q(z|x) placed on the map
STRIP = 8  # of them decoded beside the decoded mean
PRIOR_ON_MAP = 1000  # prior samples overlaid on the map
PSEUDO_SHOWN = 32  # a VampPrior's pseudo-inputs shown, with what the decoder draws at their components' means
PRIOR_OPEN_KEY = "explore_prior_open"  # the prior section is open (measured and drawn only then)
MISMATCH_ITEMS = 5000  # items the prior-against-codes number is measured on (a fixed subsample)
GRID = 16  # "Sample from the prior": pictures per grid
MISMATCH_HELP = (
    "KL of the moment-matched Gaussian: fit one Gaussian to the codes (one sample of each item's q(z|x)) and "
    "measure its KL from the prior (N(0, I), or a learned prior's own moment-matched Gaussian) in nats; 0 when "
    "the codes spread like the prior. Holes: the share of "
    "prior samples whose nearest code is farther than 95 % of codes are from their own nearest code; about 5 % "
    "when codes and prior match, more where the prior puts mass that no item uses (samples from there decode "
    "to things unlike the data)."
)


def item_cloud(proj: LatentProjector | None, mu: np.ndarray, logvar: np.ndarray, seed: int) -> dict:
    """An item's q(z|x): CLOUD samples (K, L), their map positions (K, 2) and, on a PCA map, its 2σ ellipse
    (without a map, ``proj`` None: the samples alone)."""
    samples = posterior.sample_posterior(mu, logvar, CLOUD, seed=seed)  # (K, L)
    if proj is None:
        return {"samples": samples, "xy": None, "ellipse": None}
    xy = proj.transform(samples, approximate=True)  # UMAP: by nearest codes, milliseconds
    return {"samples": samples, "xy": xy, "ellipse": ellipse(proj, mu, logvar) if proj.method == "pca" else None}


def ellipse(proj: LatentProjector, mu: np.ndarray, logvar: np.ndarray, points: int = 64) -> np.ndarray:
    """The 2σ ellipse of q(z|x) projected by PCA: N(Cμ, C diag(σ²) Cᵀ) on the map, (points, 2)."""
    c = np.asarray(proj.components_, dtype=np.float64)  # (2, L)
    centre = proj.transform(np.asarray(mu, dtype=np.float32)[None])[0].astype(np.float64)
    cov = (c * posterior.sigma(logvar).astype(np.float64) ** 2) @ c.T  # (2, 2)
    values, vectors = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, points)
    circle = np.stack([np.cos(t), np.sin(t)])  # (2, points)
    return (centre[:, None] + 2 * vectors @ (np.sqrt(np.maximum(values, 0))[:, None] * circle)).T


def overlays(cloud: dict | None, prior_xy: np.ndarray | None, components_xy: np.ndarray | None = None) -> list[dict]:
    """Map overlays (drawn under the markers): the pinned item's samples and ellipse, prior samples, a learned
    prior's components."""
    out = []
    if prior_xy is not None:
        out.append({"name": "prior samples", "xy": prior_xy.tolist(), "colour": "rgba(80,80,80,0.45)", "size": 4})
    if components_xy is not None:
        out.append({"name": "prior components", "xy": components_xy.tolist(), "colour": "black", "size": 7,
                    "symbol": "x"})  # fmt: skip
    if cloud is not None and cloud["xy"] is not None:
        out.append({"name": "q(z|x) samples", "xy": cloud["xy"].tolist(), "colour": "rgba(0,0,0,0.55)", "size": 5})
        if cloud["ellipse"] is not None:
            out.append({"name": "q(z|x) 2σ", "xy": cloud["ellipse"].tolist(), "colour": "black", "line": True})
    return out


def show_item_posterior(
    model, mu: np.ndarray, logvar: np.ndarray, cloud: dict, kl: np.ndarray | None, key: str = "explore", y=None
) -> None:
    """Beside a pinned item: its decoded mean and samples of q(z|x) in a strip, and σ per dimension (the strip
    in ``{key}_strip``, the chart keyed ``{key}_sigma``); ``y``: a conditional VAE's class for the item."""
    st.markdown("**What the encoder is unsure of**")
    decoded = decode(model, np.concatenate([mu[None], cloud["samples"][:STRIP]]).astype(np.float32), y)
    if decoded.ndim == 4:
        strip = make_grid(decoded, 3, pad=1, fill=1.0)  # the mean top left, then the samples
        st.image(png_bytes(strip, scale=enlargement(strip.shape, 200)),
                 caption=f"decoded mean (top left), then {STRIP} samples of q(z|x)", output_format="PNG")  # fmt: skip
        st.session_state[f"{key}_strip"] = decoded
    chart(sigma_figure(mu, posterior.sigma(logvar), kl), key=f"{key}_sigma")
    where = ""
    if cloud.get("xy") is not None:
        where = "On the map: grey dots are samples of q(z|x)" + (
            ", the ring its 2σ ellipse. " if cloud["ellipse"] is not None else " (placed by their nearest codes). "
        )
    st.caption(where + "σ per dimension: near 1, as under the prior, where this item tells the dimension nothing; "
               "small where the encoder is sure.")  # fmt: skip


@st.cache_data(max_entries=8, show_spinner="Comparing the prior with the codes…")
def mismatch(path: str, key: str, _mu: np.ndarray, _logvar: np.ndarray, _model=None) -> dict:
    """``vae.analysis.posterior.prior_mismatch`` on a fixed subsample of map ``key``'s items (cached per map;
    ``_model``: whose prior, the map's own checkpoint)."""
    rows = mismatch_rows(len(_mu))
    return posterior.prior_mismatch(_mu[rows], _logvar[rows], seed=0, model=_model)


def mismatch_rows(n: int) -> np.ndarray:
    """The fixed subsample (at most MISMATCH_ITEMS of ``n`` items) the prior panel measures and draws."""
    return np.random.default_rng(0).permutation(n)[:MISMATCH_ITEMS]


def prior_name(model) -> str:
    return f"the learned VampPrior ({model.cfg.pseudo_inputs} components)" if model.learned_prior else "N(0, I)"


def prior_positions(proj: LatentProjector, model) -> np.ndarray:
    """PRIOR_ON_MAP samples of the model's prior placed on the map, (P, 2) (fixed seed: the same every run)."""
    z = posterior.model_prior_samples(model, PRIOR_ON_MAP, seed=7)
    return proj.transform(z, approximate=True)


def component_positions(proj: LatentProjector, model) -> np.ndarray | None:
    """A VampPrior's component means placed on the map, (K, 2); None for N(0, I)."""
    if not model.learned_prior:
        return None
    mu, _ = model.embed(model.pseudo_inputs().detach())
    return proj.transform(mu, approximate=True)


def pseudo_input_strip(model) -> None:
    """A VampPrior's first pseudo-inputs over what the decoder draws at their components' means."""
    with torch.inference_mode():
        pseudo = model.pseudo_inputs()[:PSEUDO_SHOWN].float().cpu().numpy()
    if pseudo.ndim != 4:
        st.caption("The pseudo-inputs are table rows; their components are the black crosses on the map.")
        return
    mu, _ = model.embed(pseudo)
    pair = np.concatenate([pseudo, model.decode_numpy(mu)])
    st.image(png_bytes(make_grid(pair, min(16, len(pseudo))), scale=enlargement(pseudo.shape[1:], 44)),
             output_format="PNG")  # fmt: skip
    st.caption(f"The first {len(pseudo)} of {model.cfg.pseudo_inputs} learned pseudo-inputs (above) and what the "
               "decoder draws at their components' means (below): the prior is the mixture of the encoder's "
               "posteriors at these inputs.")  # fmt: skip


def prior_section(run_dir, key: str, mu: np.ndarray, logvar: np.ndarray, proj: LatentProjector, model) -> None:
    """The prior against the aggregate posterior: the mismatch numbers, histograms per dimension, the toggle;
    for a VampPrior its pseudo-inputs, decoded, and its components on the map."""
    name = prior_name(model)
    section = st.expander(f"The prior {name} against the codes", icon=":material/blur_on:", key=PRIOR_OPEN_KEY,
                          on_change="rerun")  # fmt: skip
    with section:
        st.toggle("Show prior samples on the map (grey dots)", key="explore_prior",
                  help=f"{PRIOR_ON_MAP:,} samples of {name}, placed like new codes"
                  + (" (by their nearest codes on a UMAP map)." if proj.method == "umap" else "."))  # fmt: skip
        if model.learned_prior:
            st.toggle("Show the prior's components on the map (black crosses)", key="explore_components")
        if not section.open:  # the rest only while open: ~170 ms of the server per rerun, and a chart to draw
            return
        if model.learned_prior:
            pseudo_input_strip(model)
        m = mismatch(str(run_dir), key, mu, logvar, model)
        st.caption(
            f"KL of the codes' moment-matched Gaussian from the prior: **{m['kl_moment_matched']:.2f} nats** · "
            f"prior samples in holes: **{m['hole_share']:.0%}** (≈ {m['expected_hole_share']:.0%} if they matched)"
            f" · {m['items']:,} items.", help=MISMATCH_HELP,
        )  # fmt: skip
        rows = mismatch_rows(len(mu))  # a 70,000-item map would otherwise send 1.4 M values each rerun
        codes = posterior.aggregate_samples(mu[rows], logvar[rows], seed=0)
        prior = posterior.model_prior_samples(model, len(rows), seed=1) if model.learned_prior else None
        chart(prior_histograms(codes, prior=prior), key="explore_prior_histograms")
        st.caption(f"Each dimension's codes (one sample of each item's q(z|x), at most {MISMATCH_ITEMS:,} items) "
                   "against the prior's density.")  # fmt: skip


def sample_grid(model, temperature: float, seed: int, on_open: Callable[[np.ndarray], None]) -> None:
    """GRID decoded samples of the prior at ``temperature``, each with a button that opens it in Decode."""
    z = posterior.model_prior_samples(model, GRID, temperature, seed)  # (GRID, L)
    decoded = decode(model, z)
    st.session_state["decode_prior_samples"] = z
    if decoded.ndim != 4:
        st.caption("This model decodes table rows: open a sample to see its values.")
    cols = st.columns(8)
    for i in range(GRID):
        with cols[i % 8]:
            if decoded.ndim == 4:
                st.image(png_bytes(decoded[i], scale=enlargement(decoded[i].shape, 90)), output_format="PNG")
            st.button("Open", key=f"decode_prior_open_{i}", on_click=on_open, args=(z[i],), width="stretch",
                      help="Make this sample the point decoded above.")  # fmt: skip
