"""Every Plotly figure of the app, as plain functions of plain values (no Streamlit calls)."""

from __future__ import annotations

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from vae.projection import LatentProjector

from .maps import click_positions, map_box
from .text import chart_text

PALETTE = plotly.colors.qualitative.D3
CURVES = {
    "test_elbo": "test ELBO",
    "train_elbo": "train ELBO",
    "test_recon": "test reconstruction (−log p(x|z))",
    "test_kl": "test KL",
}


CHART_CONFIG = {"displaylogo": False, "showSendToCloud": False}  # plotly.js 4 offers "Share chart…" (an upload)


def chart(fig: go.Figure, **kwargs):
    """``st.plotly_chart`` with the house's mode bar: no upload to Plotly's cloud, the PNG download kept."""
    return st.plotly_chart(fig, config=CHART_CONFIG, **kwargs)


# ---------------------------------------------------------------- training curves


def loss_figure(steps: list[dict]) -> go.Figure:
    """Training loss, reconstruction and KL per logging window against (fractional) epochs."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [m["epoch"] for m in steps]
    for key, name in (("loss", "loss (−ELBO with β)"), ("recon", "reconstruction")):
        fig.add_trace(go.Scatter(x=x, y=[m.get(key) for m in steps], name=name, mode="lines"), secondary_y=False)
    fig.add_trace(
        go.Scatter(x=x, y=[m.get("kl") for m in steps], name="KL (right axis)", mode="lines"), secondary_y=True
    )
    fig.update_yaxes(title_text="nats per item", secondary_y=False)
    # from 0, so a dead KL looks dead (auto-ranged, 0.003-0.023 looked lively), with round ticks
    fig.update_yaxes(
        title_text="KL, nats",
        secondary_y=True,
        showgrid=False,
        rangemode="tozero",
        nticks=6,
        tickmode="auto",
        tickformat=".3~g",
    )  # its own round ticks from 0, not the left axis's
    return _layout(fig, "Training objective")


KL_PARTS = (("index_code_mi", "index-code mutual information"), ("total_correlation", "total correlation"),
            ("dimension_wise_kl", "dimension-wise KL"))  # fmt: skip


def kl_parts_figure(steps: list[dict]) -> go.Figure:
    """β-TCVAE's KL split three ways per logging window (its training batches' estimates), against epochs."""
    fig = go.Figure()
    x = [m["epoch"] for m in steps]
    for key, name in KL_PARTS:
        fig.add_trace(go.Scatter(x=x, y=[m.get(key) for m in steps], name=name, mode="lines"))
    fig.update_yaxes(title_text="nats per item", rangemode="tozero")
    return _layout(fig, "The KL's three parts (β weighs the total correlation)")


def elbo_figure(epochs: list[dict]) -> go.Figure:
    """Train and test ELBO after each epoch (higher is better)."""
    fig = go.Figure()
    x = [m["epoch"] for m in epochs]
    for key, name in (("train_elbo", "train ELBO"), ("test_elbo", "test ELBO")):
        fig.add_trace(go.Scatter(x=x, y=[m.get(key) for m in epochs], name=name, mode="lines+markers"))
    fig.update_yaxes(title_text="nats per item (higher is better)")
    fig.update_xaxes(tick0=1, dtick=max(1, round(max(x, default=1) / 8)))  # whole epochs
    return _layout(fig, "ELBO per epoch")


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.22, "yanchor": "top", "x": 0, "xanchor": "left"},  # clear of the mode bar
        uirevision="keep",  # zoom and hidden traces survive the live refresh
    )
    fig.update_xaxes(title_text="epoch")
    return fig


# ---------------------------------------------------------------- comparing runs


CURVE_AXES = {"epoch": "epoch", "step": "step", "elapsed_s": "training time (s)"}


def smoothed(values: list, weight: float) -> list:
    """An exponential moving average of ``values`` (None kept as gaps), debiased like TensorBoard's: 0 is none."""
    out, mean, seen = [], 0.0, 0
    for v in values:
        if v is None:
            out.append(None)
            continue
        seen += 1
        mean = weight * mean + (1 - weight) * float(v)
        out.append(mean / (1 - weight**seen) if weight > 0 else float(v))
    return out


def curves_figure(
    epochs_of: dict[str, list[dict]], key: str, every: list[str], x: str = "epoch", smoothing: float = 0.0
) -> go.Figure:
    """One line per run: ``key`` of its epoch records (``epochs_of[name]``) against ``x`` (``CURVE_AXES``),
    smoothed by an exponential moving average of weight ``smoothing`` (the raw values faint behind).

    Each run keeps its colour (by its place in ``every``) whichever runs are shown.
    """
    fig, longest = go.Figure(), 1
    for name, epochs in epochs_of.items():
        rows = [m for m in epochs if isinstance(m.get(x), (int, float))]
        longest = max([longest] + [m["epoch"] for m in rows])
        xs, ys = [m[x] for m in rows], [m.get(key) for m in rows]
        colour = PALETTE[every.index(name) % len(PALETTE)] if name in every else None
        if smoothing > 0:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": 1}, opacity=0.3,
                                     showlegend=False, hoverinfo="skip", legendgroup=name))  # fmt: skip
            ys = smoothed(ys, smoothing)
        fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers" if smoothing == 0 else "lines",
                                 line={"color": colour}, legendgroup=name))  # fmt: skip
    label = CURVES.get(key, key.replace("_", " "))
    better = "higher" if key.endswith("elbo") else "lower" if key.endswith(("loss", "recon", "kl")) else ""
    fig.update_layout(
        title=f"{label} per {'epoch' if x == 'epoch' else 'epoch, against ' + CURVE_AXES[x]}",
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        xaxis_title=CURVE_AXES[x],
        yaxis_title=f"{label} ({better} is better)" if better else label,
    )
    if x == "epoch":
        fig.update_xaxes(tick0=1, dtick=max(1, round(longest / 8)))  # whole epochs
    return fig


def kl_figure(ev: dict) -> go.Figure:
    """KL per latent dimension, active dimensions (Burda's criterion) in colour."""
    kl = ev.get("kl_per_dim", [])
    var = ev.get("mean_variance") or [1.0] * len(kl)
    active = [v > 0.01 for v in var]
    fig = go.Figure(
        go.Bar(
            x=[f"z{i}" for i in range(len(kl))],
            y=kl,
            marker_color=["#1f77b4" if a else "#c7c7c7" for a in active],
            hovertemplate="%{x}: %{y:.3f} nats<extra></extra>",
        )
    )
    fig.update_layout(
        title="KL per latent dimension (grey: inactive)",
        height=300,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        yaxis_title="nats",
    )
    return fig


# ---------------------------------------------------------------- maps


def add_overlays(fig: go.Figure, extra: list | None) -> None:
    """``ui.posterior.overlays`` as traces: dots or lines, out of the legend, no hover."""
    for o in extra or []:
        xy = np.asarray(o["xy"], dtype=np.float32).reshape(-1, 2)
        fig.add_trace(
            go.Scattergl(
                x=xy[:, 0], y=xy[:, 1], mode="lines" if o.get("line") else "markers", name=o["name"],
                legendgroup="overlay", showlegend=False, hoverinfo="skip", line=dict(color=o["colour"], width=1.5),
                marker=dict(size=o.get("size", 5), color=o["colour"]),
            )
        )  # fmt: skip


def map_figure(
    proj, groups, point_xy, ring_xy, backdrop, axis_title, kept: np.ndarray | None = None, extra: list | None = None
) -> go.Figure:
    """The map: the click grid (trace 0), one trace per label group (1..G), the ``extra`` overlays
    (``ui.posterior.overlays``), then the ring and star markers.

    With ``kept`` (N,), points are coloured by how much of their neighbourhood the map keeps (0 red, 1 green).
    """
    emb = proj.embedding_  # (N, 2)
    grid = click_positions(proj).astype(np.float32)  # float32 halves what each rerun sends
    hidden = dict(marker=dict(opacity=0.0))
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(
            x=grid[:, 0], y=grid[:, 1], mode="markers", name="map", showlegend=False, hoverinfo="none",
            marker=dict(size=6, opacity=0.0), selected=hidden, unselected=hidden,
        )
    )  # fmt: skip
    for rows, name, colour in groups:
        fig.add_trace(
            go.Scattergl(
                x=emb[rows, 0], y=emb[rows, 1], mode="markers", name=chart_text(name), customdata=rows,
                hovertemplate=f"{chart_text(name)}<br>#%{{customdata}}<extra></extra>",
                marker=dict(size=6, color=colour, opacity=0.8) if kept is None else dict(
                    size=6, color=kept[rows], colorscale="RdYlGn", cmin=0, cmax=1, opacity=0.9,
                    colorbar=dict(title="kept", len=0.5) if name == groups[0][1] else None,
                    showscale=name == groups[0][1]),
                selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=0.8)),
            )
        )  # fmt: skip
    add_overlays(fig, extra)
    for xy, symbol, size, colour in ((ring_xy, "circle-open", 18, "black"), (point_xy, "star", 20, "gold")):
        if xy is not None:
            fig.add_trace(
                go.Scattergl(
                    x=[xy[0]], y=[xy[1]], mode="markers", showlegend=False, hoverinfo="skip",
                    marker=dict(symbol=symbol, size=size, color=colour, line=dict(width=2, color="black")),
                )
            )  # fmt: skip
    x0, x1, y0, y1 = map_box(proj)
    if kept is not None:
        fig.update_layout(showlegend=False)  # the colour bar takes the legend's place; hover still names the label
    fig.update_layout(
        height=560, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="label", uirevision="map",
        xaxis=dict(range=[x0, x1], title=f"{axis_title} 1", zeroline=False),
        yaxis=dict(range=[y0, y1], title=f"{axis_title} 2", zeroline=False),
    )  # fmt: skip
    if backdrop:
        fig.update_xaxes(showgrid=False).update_yaxes(showgrid=False)
        fig.add_layout_image(
            source=backdrop, xref="x", yref="y", x=x0, y=y1, sizex=x1 - x0, sizey=y1 - y0,
            sizing="stretch", opacity=0.6, layer="below",
        )  # fmt: skip
    return fig


def sigma_figure(mu: np.ndarray, sigma: np.ndarray, kl: np.ndarray | None = None) -> go.Figure:
    """An item's posterior σ per latent dimension (bars), against the prior's σ = 1 (a dashed line)."""
    dims = [f"z{d}" for d in range(len(sigma))]
    hover = [f"μ {m:.2f} · σ {s:.2f}" + ("" if kl is None else f" · KL {kl[d]:.2f} on average")
             for d, (m, s) in enumerate(zip(mu, sigma, strict=True))]  # fmt: skip
    fig = go.Figure(go.Bar(x=dims, y=sigma, hovertext=hover, hoverinfo="text", marker_color=PALETTE[0]))
    fig.add_hline(y=1.0, line_dash="dash", line_color="grey", annotation_text="prior", annotation_position="top left")
    fig.update_layout(height=200, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(title="σ", rangemode="tozero"))
    return fig


def prior_histograms(codes: np.ndarray, columns: int = 4, prior: np.ndarray | None = None) -> go.Figure:
    """One panel per latent dimension: a histogram of the codes (density) and the prior's density: N(0, 1), or
    with ``prior`` samples (a learned prior) their histogram's outline."""
    latent = codes.shape[1]
    rows = -(-latent // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[f"z{d}" for d in range(latent)],
                        horizontal_spacing=0.04, vertical_spacing=0.5 / max(rows, 1))  # fmt: skip
    grid = np.linspace(-4, 4, 81)
    density = np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    edges = np.arange(-4, 4.01, 0.25)
    for d in range(latent):
        r, c = d // columns + 1, d % columns + 1
        fig.add_trace(go.Histogram(x=codes[:, d], histnorm="probability density", xbins=dict(start=-4, end=4,
                      size=0.25), marker_color=PALETTE[0], opacity=0.7, name="codes", showlegend=d == 0,
                      legendgroup="codes"), row=r, col=c)  # fmt: skip
        if prior is None:
            x, y, name, shape = grid, density, "prior N(0, 1)", "linear"
        else:  # the learned prior's samples, as a density outline on the codes' bins
            y = np.histogram(prior[:, d], bins=edges, density=False)[0] / (len(prior) * 0.25)
            x, name, shape = (edges[:-1] + edges[1:]) / 2, "the learned prior", "hvh"
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color="black", width=1.5, shape=shape),
                      name=name, showlegend=d == 0, legendgroup="prior"), row=r, col=c)  # fmt: skip
    fig.update_xaxes(range=[-4, 4], showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=120 * rows + 80, margin=dict(l=10, r=10, t=60, b=10), bargap=0.02,
                      legend=dict(orientation="h", x=0, y=1, yanchor="top", yref="container"))  # fmt: skip
    return fig


def path_figure(proj: LatentProjector, positions: np.ndarray, extra: list | None = None) -> go.Figure:
    """The map's points in grey, the ``extra`` overlays (the endpoints' q(z|x)) and the interpolation path from
    A to B, (steps, 2) positions."""
    emb = proj.embedding_
    steps = len(positions)
    text = ["A"] + [""] * (steps - 2) + ["B"]
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(
            x=emb[:, 0], y=emb[:, 1], mode="markers", name="map", hoverinfo="skip",
            marker=dict(size=5, color="lightgrey"),
        )
    )  # fmt: skip
    add_overlays(fig, extra)
    fig.add_trace(
        go.Scatter(
            x=positions[:, 0], y=positions[:, 1], mode="lines+markers+text", name="path", text=text,
            textposition="top center", textfont=dict(size=16), line=dict(color="black", width=1.5),
            marker=dict(size=10, color=np.arange(steps), colorscale="Viridis", line=dict(width=1, color="black")),
            hovertemplate="step %{customdata}<extra></extra>", customdata=np.arange(steps),
        )
    )  # fmt: skip
    axis = proj.method.upper()
    fig.update_layout(
        height=420, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
        xaxis_title=f"{axis} 1", yaxis_title=f"{axis} 2",
    )  # fmt: skip
    return fig


# ---------------------------------------------------------------- the latent map's history


def history_figure(layouts: list[np.ndarray], groups: list[tuple[np.ndarray, str, str]], captions: list[str],
                   ids: np.ndarray, pictures: list[str] | None = None,
                   follow: int | None = None, axis: str = "aligned PCA") -> go.Figure:  # fmt: skip
    """The aligned frames as a Plotly animation: one trace per label group, the last frame shown, a slider over
    the frames and a play button (both run in the browser); items keep their ``ids``, so they glide.

    ``pictures``: a picture per frame (PNG data URIs: the decoded prior samples), shown beside the map and
    animated with it. ``follow``: an item id whose path is drawn (a ring where it is, a trail of where it was).
    """
    row_of = {int(i): k for k, i in enumerate(ids)}
    followed = row_of.get(int(follow)) if follow is not None else None

    def traces(k: int) -> list:
        layout = layouts[k].astype(np.float32)  # half the bytes of float64, and more than enough for a screen
        out = [
            go.Scatter(x=layout[rows, 0], y=layout[rows, 1], ids=ids[rows].astype(str), mode="markers",
                       name=chart_text(name), marker=dict(size=5, color=colour, opacity=0.8), customdata=ids[rows],
                       hovertemplate=f"{chart_text(name)}<br>#%{{customdata}}<extra></extra>")
            for rows, name, colour in groups
        ]  # fmt: skip
        if followed is not None:
            trail = np.array([lay[followed] for lay in layouts[: k + 1]], dtype=np.float32)  # (k + 1, 2)
            out += [go.Scatter(x=trail[:, 0], y=trail[:, 1], mode="lines", name=f"#{follow}'s path", hoverinfo="skip",
                               line=dict(color="black", width=1.5), showlegend=False),
                    go.Scatter(x=trail[-1:, 0], y=trail[-1:, 1], mode="markers", name=f"#{follow}", hoverinfo="skip",
                               marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color="black", width=2)),
                               showlegend=False)]  # fmt: skip
        if pictures:
            out.append(go.Image(source=pictures[k], hoverinfo="skip", xaxis="x2", yaxis="y2"))
        return out

    last = len(layouts) - 1
    everything = np.concatenate(layouts)
    pad = 0.05 * np.ptp(everything, axis=0).max()
    lo, hi = everything.min(0) - pad, everything.max(0) + pad
    if pictures:  # the map left, the decoded samples right
        fig = make_subplots(rows=1, cols=2, column_widths=[0.64, 0.36], horizontal_spacing=0.04)
    else:
        fig = go.Figure()
    fig.add_traces(traces(last))
    fig.frames = [go.Frame(data=traces(k), name=str(k)) for k in range(len(layouts))]
    redraw = bool(pictures)  # an image changes only on a redraw (points still glide)
    go_to = lambda k, ms: [[str(k)], {"mode": "immediate", "frame": {"duration": ms, "redraw": redraw},  # noqa: E731
                                       "transition": {"duration": ms}}]  # fmt: skip
    play = {"frame": {"duration": 500, "redraw": redraw}, "fromcurrent": True, "transition": {"duration": 400}}
    fig.update_layout(
        height=500, margin={"l": 10, "r": 10, "t": 30, "b": 10}, uirevision="history", legend_title_text="label",
        xaxis=dict(range=[lo[0], hi[0]], title=f"{axis} 1", zeroline=False),
        yaxis=dict(range=[lo[1], hi[1]], title=f"{axis} 2", zeroline=False),
        sliders=[dict(active=last, x=0.2, len=0.8, y=0, yanchor="top", pad={"t": 45}, currentvalue={"prefix": ""},
                      steps=[dict(method="animate", label=c.split(" · test")[0], args=go_to(k, 300))
                             for k, c in enumerate(captions)])],
        updatemenus=[dict(type="buttons", direction="left", x=0, y=0, xanchor="left", yanchor="top", pad={"t": 70},
                          showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate", args=[[None], {"mode": "immediate"}])])],
    )  # fmt: skip
    if pictures:
        fig.update_xaxes(visible=False, row=1, col=2)
        fig.update_yaxes(visible=False, row=1, col=2)
        fig.add_annotation(text="decoded prior samples (the same points each frame)", showarrow=False,
                           xref="x2 domain", yref="y2 domain", x=0.5, y=1.06)  # fmt: skip
    return fig


def kl_heat_figure(epochs: list[dict]) -> go.Figure:
    """KL of each latent dimension (rows) after each epoch (columns): where the code's information lives, and
    which dimensions fall to zero (posterior collapse)."""
    rows = [e for e in epochs if isinstance(e.get("test_kl_per_dim"), list)]
    z = np.array([e["test_kl_per_dim"] for e in rows], dtype=float).T  # (latent_dim, epochs)
    fig = go.Figure(
        go.Heatmap(z=z, x=[e["epoch"] for e in rows], y=[f"z{d}" for d in range(len(z))], colorscale="Viridis",
                   colorbar=dict(title="nats"), hovertemplate="%{y}, epoch %{x}: %{z:.3f} nats<extra></extra>")
    )  # fmt: skip
    fig.update_layout(title="KL per latent dimension and epoch", height=max(220, 120 + 14 * len(z)),  # room for the bar
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis_title="epoch", uirevision="keep")  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    return fig
