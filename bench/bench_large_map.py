"""The map of every sprite: 737,280 items encoded, mapped (PCA; UMAP fitted on a sample, the rest placed), and drawn.

    python -m bench large_map [--quick]

An MLP VAE (latent 10) trains for one epoch on the sprites' full factor grid (``--data sprites --count 737280``;
``--quick``: 36,864, and this process's UMAP sample 10,000). In this process, on a fresh load: the data, every item
encoded (``embed_split``, 16,384 at a time), the PCA map with its inverse grid, the UMAP map (fitted on a seeded sample
of ``FIT_MOST`` codes, the rest placed by umap's transform; the times of the parts from its progress reports) with its
inverse grid, and the peak resident memory. ``python -m vae embed RUN --method umap --split all`` end to end (a fresh
process). Then the app (`streamlit run app.py`) in headless Chromium (software WebGL: a pessimistic figure for
panning): Explore's first visit to the map of every item (codes encoded in the background, then the PCA map), a second
tab once the codes are kept, and, on maps of 10,000, 147,456 (the test split) and 737,280 points, panning (an in-page
drag, one pointer move per animation frame; the frames that show the view moved counted), the pointer on a point →
that item named and → the decoder's picture (``bench.bench_mapview``'s probe), and the tab's JS heap; the UMAP map of
every item through the app; the server's resident memory. Baselines, in the same run: the 10,000-point map, the largest
subsample offered before this; and the three maps again on a server where Plotly draws every map's points
(``LATENT_EXPLORER_POINTS_LAYER_AT=0``), as before the map's own points layer (ui/mapview/points.js), which takes maps
past 5,000 points by default. Asserts nothing.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np

from bench import common
from bench.bench_mapview import hover_latencies, js_heap_mb, pan
from bench.report import cpu_pressure_total
from harness.serving import chromium, missing_browser, start_app, stop_server, wait_healthy
from vae.runs import folder as rf

TITLE = "## The map of every sprite: 737,280 items encoded, mapped and drawn"
COMMAND = "python -m bench large_map [--quick]"
VIEWPORT = {"width": 1440, "height": 900}
RUN = "sprites-grid"
MAP_S = 600_000  # ms: the longest a map may take to appear
# how many points the browser map draws, and its x axis title ("" / 0 while there is none)
SHOWN = """() => { const gd = document.querySelector('.lem-plot');
  if (!gd || !gd._fullData || !gd._fullLayout) return [0, ''];
  const p = gd._fullData.find((t) => t.name === 'points');  // a large map's points are its layer's (points.js)
  return [p ? Number(gd.dataset.layer || 0) || p.x.length : 0, String(gd._fullLayout.xaxis.title.text || '')]; }"""
DRAWN = "([n, title]) => { const [k, t] = (" + SHOWN + ")(); return k === n && t.startsWith(title); }"
LAYER = "() => Number(document.querySelector('.lem-plot').dataset.layer || 0) > 0"  # drawn by points.js


def explore_url(url: str, method: str, split: str, points: str) -> str:
    query = {
        "run": RUN,
        "explore_method": method,
        "explore_split": split,
        f"explore_points_{'all' if split == 'train + test' else split}": points,
    }  # noqa: E501
    return f"{url}/explore?{urllib.parse.urlencode(query)}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def library(run_dir: Path, quick: bool) -> dict:
    """Load, encode, PCA and UMAP maps in this process, each timed; UMAP's parts from its progress reports."""
    from vae.data import load_dataset
    from vae.projection import LatentProjector, estimator

    if quick:
        estimator.FIT_MOST = 10_000
    out: dict = {}
    model = rf.load_model(run_dir)
    out["load_s"], ds = common.timed(lambda: load_dataset(rf.load_data_config(run_dir)))
    out["encode_s"], (mu, _) = common.timed(lambda: model.embed_split(ds, "all"))
    out["n"], out["n_test"] = len(mu), ds.split_size("test")
    out["pca_s"], _ = common.timed(lambda: LatentProjector(method="pca").fit(mu).fit_inverse_grid(48))
    marks: list[tuple[float, str]] = []
    proj = LatentProjector(method="umap", random_state=0)
    t0 = time.perf_counter()
    proj.fit(mu, progress=lambda f, m: marks.append((time.perf_counter() - t0, m)))
    out["umap_s"] = time.perf_counter() - t0
    first_placed = next((t for t, m in marks if m.startswith("placed")), None)
    out["sample"] = len(proj.umap_.embedding_)
    out["umap_fit_s"] = first_placed  # the sample's fit and the first chunk placed (umap's transform compiles there)
    out["umap_place_s"] = None if first_placed is None else out["umap_s"] - first_placed
    out["grid_s"], _ = common.timed(lambda: proj.fit_inverse_grid(48))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def app(runs: Path, n_all: int, n_test: int, hovers: int) -> dict:
    """Explore on the map of every item, then maps of three sizes, through a served app and Chromium."""
    out: dict = {"views": {}}
    rng = np.random.default_rng(0)
    url, proc = start_app(runs)
    try:
        wait_healthy(url, proc)
        with chromium() as browser:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            t = time.perf_counter()
            page.goto(explore_url(url, "PCA", "train + test", f"all ({n_all:,})"))
            page.locator('[data-testid="stProgress"], .lem-plot').first.wait_for(timeout=MAP_S)
            if page.locator('[data-testid="stProgress"]').count():  # a map under 100,000 items is encoded at once
                out["progress_s"] = time.perf_counter() - t
            page.wait_for_function(DRAWN, arg=[n_all, "PCA"], timeout=MAP_S)
            out["first_visit_s"] = time.perf_counter() - t
            second = browser.new_context(viewport=VIEWPORT).new_page()
            t = time.perf_counter()
            second.goto(explore_url(url, "PCA", "train + test", f"all ({n_all:,})"))
            second.wait_for_function(DRAWN, arg=[n_all, "PCA"], timeout=MAP_S)
            out["second_tab_s"] = time.perf_counter() - t
            page.context.close()
            out["views"] = views(second, url, n_all, n_test, hovers, rng)
            out["server_rss_mb"] = rss_mb(proc.pid)
            common.log("large_map: the UMAP map of every item through the app")
            t = time.perf_counter()
            second.goto(explore_url(url, "UMAP", "train + test", f"all ({n_all:,})"))
            second.wait_for_function(DRAWN, arg=[n_all, "UMAP"], timeout=MAP_S)
            out["app_umap_s"] = time.perf_counter() - t
            out["server_rss_after_umap_mb"] = rss_mb(proc.pid)
    finally:
        stop_server(proc)
    common.log("large_map: the baseline, every map's points drawn by Plotly")
    with common.environment(LATENT_EXPLORER_POINTS_LAYER_AT="0"):  # the layer never takes the points
        url, proc = start_app(runs)
    try:
        wait_healthy(url, proc)
        with chromium() as browser:
            out["plotly_views"] = views(browser.new_context(viewport=VIEWPORT).new_page(), url, n_all, n_test, hovers,
                                        np.random.default_rng(0))  # fmt: skip
    finally:
        stop_server(proc)
    return out


def views(page, url: str, n_all: int, n_test: int, hovers: int, rng: np.random.Generator) -> dict:
    """Maps of three sizes opened in ``page``, each panned, pointed at and weighed."""
    out = {}
    small = 10_000 if n_test > 10_000 else 2_000  # a subsample the page offers for the test split
    for label, split, points, n in (
        (f"{small:,}", "test", f"{small:,}", small),
        (f"{n_test:,}", "test", f"all ({n_test:,})", n_test),
        (f"{n_all:,}", "train + test", f"all ({n_all:,})", n_all),
    ):
        common.log(f"large_map: {label} points in the browser")
        t = time.perf_counter()
        page.goto(explore_url(url, "PCA", split, points))
        page.wait_for_function(DRAWN, arg=[n, "PCA"], timeout=MAP_S)
        view = {"load_s": time.perf_counter() - t, "layer": page.evaluate(LAYER)}
        page.wait_for_timeout(500)
        view["pan_fps"] = pan(page)
        view["hover"] = hover_latencies(page, hovers, rng)
        view["heap"] = js_heap_mb(page)
        out[label] = view
    return out


def run(quick: bool = False) -> str:
    if missing := missing_browser():
        return f"{TITLE}\n\nNot measured: this machine lacks {', '.join(missing)}.\n"
    count = 36_864 if quick else 737_280
    t0, p0 = time.perf_counter(), cpu_pressure_total()
    with tempfile.TemporaryDirectory(prefix="bench-large-map-") as tmp:
        runs = Path(tmp)
        env = {"LATENT_EXPLORER_WARM_UMAP": "0"}  # the map's own points layer takes maps as by default
        common.log(f"large_map: training on {count:,} sprites for one epoch")
        args = ["--data", "sprites", "--count", str(count), "--latent", "10", "--epochs", "1", "--name", RUN]
        train_s, _ = common.timed(lambda: common.vae_cli(runs, "train", *args))
        common.log("large_map: load, encode, PCA and UMAP in this process")
        lib = library(runs / RUN, quick)
        common.log("large_map: vae embed --method umap --split all")
        out_file = runs / "embedding.npz"
        cli_s, text = common.timed(lambda: common.vae_cli(runs, "embed", RUN, "--method", "umap", "--split", "all",
                                                          "--out", str(out_file), "--json"))  # fmt: skip
        cli = json.loads(text)
        with common.environment(**env):
            seen = app(runs, lib["n"], lib["n_test"], hovers=10 if quick else 40)
    p1, wall = cpu_pressure_total(), time.perf_counter() - t0
    pressure = None if p0 is None or p1 is None else (p1 - p0) / 1e6 / wall
    return report(lib, cli, cli_s, train_s, seen, quick, wall, pressure)


def report(lib: dict, cli: dict, cli_s: float, train_s: float, seen: dict, quick: bool, wall: float, pressure) -> str:
    f = common.fmt
    lines = [
        TITLE, "",
        f"Measured with `{COMMAND}`{' (quick)' if quick else ''}: {lib['n']:,} sprites, an MLP VAE (latent 10) trained "
        f"for one epoch ({f(train_s, 0)} s with the data's generation), 2 cores, no GPU; Chromium's WebGL is software "
        "(SwiftShader) here, so the panning figures are pessimistic for a machine with a GPU.", "",
        "### In the library (one process, fresh)", "",
        common.table(["step", "seconds"], [
            ["load the data (generate the sprites)", f(lib["load_s"], 1)],
            [f"encode all {lib['n']:,} items (16,384 at a time)", f(lib["encode_s"], 1)],
            ["PCA map + its 48×48 inverse grid", f(lib["pca_s"], 2)],
            [f"UMAP: fit on a seeded sample of {lib['sample']:,} (and place the first chunk)", f(lib["umap_fit_s"], 1)],
            [f"UMAP: place the other {lib['n'] - lib['sample']:,} with the fitted map", f(lib["umap_place_s"], 1)],
            ["UMAP: its 48×48 inverse grid (from the sample)", f(lib["grid_s"], 1)],
            ["**UMAP, every item placed** (`vae embed --method umap --split all`, fresh process, end to end)",
             f"**{f(cli_s, 0)}** ({f(cli['seconds'], 0)} in the map)"],
            ["UMAP, every item placed, through the app (choose UMAP → the UMAP map drawn in the browser)",
             f"**{f(seen['app_umap_s'], 0)}**"],
        ]), "",
        f"Peak resident memory of that process: {f(lib['peak_rss_mb'], 0)} MB. The app's server: "
        f"{f(seen['server_rss_mb'], 0)} MB with the maps below, {f(seen['server_rss_after_umap_mb'], 0)} MB after "
        "the UMAP map (the UMAP fit itself runs in the map worker, a process of its own).", "",
        "### In the app (Explore, Chromium)", "",
        "First visit to the map of every item: "
        + (f"the encoding's progress bar after {f(seen['progress_s'], 1)} s (the server loads the data first), "
           if "progress_s" in seen else "encoded at once (under 100,000 items), ")
        + f"the PCA map drawn after **{f(seen['first_visit_s'], 1)} s**; a second "
        f"tab, with the codes kept: **{f(seen['second_tab_s'], 1)} s** to the map drawn.", "",
    ]  # fmt: skip
    lines += views_table(seen["views"], "points drawn by"), ""
    lines += [
        "The baseline, in the same run: a server where Plotly's scattergl draws every map's points "
        "(`LATENT_EXPLORER_POINTS_LAYER_AT=0`), as every map was drawn before the map's own points layer "
        "(ui/mapview/points.js), which takes maps of more than 5,000 points by default. During a pan the layer "
        "moves its last picture with Plotly's axes and draws afresh once the pointer rests, so a pan's frames are "
        "Plotly's own (its axes and small traces; SVG, no WebGL scene, while nothing is pinned or overlaid).", "",
        views_table(seen["plotly_views"], "points drawn by"), "",
    ]  # fmt: skip
    lines.append(f"Took {common.duration(wall)}" + (f"; some task waited for a CPU {pressure:.0%} of that time (Linux "
                 "PSI, machine-wide: this benchmark's own server, browser and map worker share the 2 cores)."
                 if pressure is not None else "."))  # fmt: skip
    return "\n".join(lines) + "\n"


def views_table(views: dict, drawn_by: str) -> str:
    f = common.fmt
    rows = [
        [drawn_by, *("the layer" if v["layer"] else "Plotly" for v in views.values())],
        ["open the map (URL → drawn), s", *(f(v["load_s"], 1) for v in views.values())],
        ["pan: frames/s that show the view moved (one pointer move per frame)",
         *(f(v["pan_fps"], 1) for v in views.values())],
        ["pointer on a point → that item named, p50 / p95 ms",
         *(f"{f(common.quantile(v['hover']['item'], .5), 0)} / {f(common.quantile(v['hover']['item'], .95), 0)}"
           for v in views.values())],
        ["pointer on a point → that item's whole picture drawn (past 10,000 items: asked of the server), p50 / p95 ms",
         *(f"{f(common.quantile(v['hover']['whole'], .5), 0)} / {f(common.quantile(v['hover']['whole'], .95), 0)}"
           for v in views.values())],
        ["pointer → the decoder's picture drawn, p50 / p95 ms",
         *(f"{f(common.quantile(v['hover']['point'], .5), 0)} / {f(common.quantile(v['hover']['point'], .95), 0)}"
           for v in views.values())],
        ["JS heap after a forced GC (+ the map's typed arrays), MB",
         *(f"{f(v['heap'][0], 0)} (+{f(v['heap'][1], 0)})" for v in views.values())],
    ]  # fmt: skip
    return common.table(["measurement", *(f"{k} points" for k in views)], rows)


if __name__ == "__main__":
    common.main(run, __doc__)
