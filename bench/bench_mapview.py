"""Explore's map in the browser: pointer → decoded picture latency, redraws/s, page load and JS heap.

    python -m bench mapview [--quick]

A Fashion-MNIST MLP VAE (quick: digits) is trained for one epoch, `streamlit run app.py` serves it on
127.0.0.1 (UMAP warm-up off), and Playwright drives Debian's Chromium on the Explore page, PCA maps only:
the test split (10,000 points) and train + test (70,000). For each map, in the browser path ("Decode under
the pointer" on): the pointer jumps to positions spread over the map, half on data points and half on empty
space, one move at a time; a capturing ``pointermove`` listener records each event's time and the latency is
the end of the next decode-and-paint the component records (``__latentExplorerDecoders.drawTimes``), all
timed inside the page. Then a 2 s continuous sweep counts redraws per second. A fresh tab is timed from
navigation to the map drawn, then from Home back to Explore (which keeps PCA, the split and the points), and
its JS heap measured (CDP, after a forced garbage collection).

Baseline, in the same run: the server path (toggle off), where a click on empty space reruns the script and
the side panel shows a new picture under "Decoded map point"; timed in the page from mousedown to the new
picture loaded.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import common
from bench.report import cpu_pressure_total
from harness.serving import chromium, display_toggle, serving, wait_idle
from vae.runs import folder as rf

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # run() fails at the browser launch with its own message
    PlaywrightTimeout = TimeoutError

TITLE = "## Explore's map in the browser: pointer → decoded picture, redraws, page load, heap"
COMMAND = "python -m bench mapview [--quick]"
VIEWPORT = {"width": 1400, "height": 1000}
SWEEP_S = 2.0
PAN_S = 3.0
MAP_TIMEOUT_MS = 180_000

SERVER_TOGGLE = "Decode under the pointer"
SERVER_CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
SIDE_IMAGES = '[data-testid="stMain"] [data-testid="stImage"] img'
POINT_HEADING = "Decoded map point"

# The browser map: the id it shows (or "") and how many data points its points trace holds.
LEM_STATE = """() => {
  const gd = document.querySelector('.lem-plot'), root = document.querySelector('.lem');
  if (!gd || !gd._fullLayout || !gd._fullData || !root) return null;
  const points = gd._fullData.find((t) => t.name === 'points');
  const n = points ? Number(gd.dataset.layer || 0) || points.x.length : 0;  // a large map's: its layer's (points.js)
  return {map: root.dataset.map || '', n, title: gd._fullLayout.xaxis.title.text};
}"""
# The frame in which the browser map shows n points of a PCA map other than `old`.
LEM_DRAWN = "(n) => { const s = (" + LEM_STATE + ")(); return !!s && s.n === n && !!s.map && s.title === 'PCA 1'; }"
LEM_ID = "() => document.querySelector('.lem')?.dataset.map || ''"
# The server chart (trace 0 is its click grid) shows n points.
SERVER_DRAWN = """(n) => {
  const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (!gd || !gd._fullData || !gd._fullLayout) return false;
  let k = 0;
  for (const t of gd._fullData.slice(1)) if (t.showlegend !== false) k += t.x.length;
  return k === n;
}"""
# The server chart's size and first data point, as text ("" while there is none).
SERVER_SHOWN = """() => {
  const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (!gd || !gd._fullData || gd._fullData.length < 2) return '';
  const t = gd._fullData[1];
  return `${gd._fullData.reduce((k, d) => k + (d.showlegend !== false ? d.x.length : 0), 0)}:${t.x[0]},${t.y[0]}`;
}"""
# Plot area and every data point's page pixel; with grid=true, trace 0 is the server chart's click grid.
GEOMETRY = """([sel, grid]) => {
  const gd = document.querySelector(sel);
  gd.scrollIntoView({block: 'center', behavior: 'instant'});  // the map is taller than the view: bring it in
  const r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const left = r.left + xa._offset, top = r.top + ya._offset;
  const px = (t) => Array.from(t.x, (v) => left + xa.l2p(v)), py = (t) => Array.from(t.y, (v) => top + ya.l2p(v));
  const lem = document.querySelector('.lem'), layer = Number(gd.dataset.layer || 0);
  const data = grid ? gd._fullData.slice(1).filter((t) => t.showlegend !== false)
           : layer ? [lem.parentElement.__latentMap.map]  // a large map's points: drawn by its own layer (points.js)
                   : gd._fullData.filter((t) => t.name === 'points');  // the browser map: one trace of points
  const out = {left, top, width: xa._length, height: ya._length,
               px: data.flatMap(px), py: data.flatMap(py)};
  if (grid) { out.gx = px(gd._fullData[0]); out.gy = py(gd._fullData[0]); }
  return out;
}"""
# an in-page drag over the plot, one move per animation frame, counting the frames that show the view moved (the
# axes' ranges changed since the frame before: Plotly redraws its WebGL scene, or the layer's picture moves, with them)
PAN = """(seconds) => new Promise((done) => {
  const gd = document.querySelector('.lem-plot');
  const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
  let x = r.left + r.width / 2, y = r.top + r.height / 2, i = 0, frames = 0, last = '';
  const at = (type, buttons) => { const el = document.elementFromPoint(x, y);
    el.dispatchEvent(new MouseEvent(type, {bubbles: true, cancelable: true, clientX: x, clientY: y, button: 0,
                                           buttons, view: window})); };
  at('mousedown', 1);
  const t0 = performance.now();
  const step = () => {
    const view = JSON.stringify([gd._fullLayout.xaxis.range, gd._fullLayout.yaxis.range]);
    if (view !== last) { frames += 1; last = view; }
    if (performance.now() - t0 > seconds * 1000) {
      at('mouseup', 0);
      done({draws: frames, seconds: (performance.now() - t0) / 1000});
      return;
    }
    i += 1; x += Math.floor(i / 40) % 2 ? -3 : 3; y += Math.floor(i / 25) % 2 ? -2 : 2;
    at('mousemove', 1);
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
})"""
# Record every pointermove over the browser map (capture phase, before Plotly and the component see it) and
# every change of the hovered item; idempotent per page.
HOVER_PROBE = """() => {
  if (window.__mv) { window.__mv.events = []; window.__mv.items = []; return; }
  const M = (window.__mv = {events: [], items: []});
  document.addEventListener('pointermove', (e) => {
    if (e.target.closest && e.target.closest('.lem-plot')) M.events.push({now: performance.now(), ts: e.timeStamp});
  }, true);
  new MutationObserver(() => {
    const root = document.querySelector('.lem');
    const v = root ? root.dataset.item || '' : '', whole = root ? root.dataset.itemWhole === '1' : false;
    const last = M.items[M.items.length - 1];
    if (!last || last.v !== v || last.whole !== whole) M.items.push({t: performance.now(), v, whole});
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-item', 'data-item-whole']});
}"""
HOVER_RESULTS = """() => { const r = globalThis.__latentExplorerDecoders;
  return {events: window.__mv.events, items: window.__mv.items, times: r.drawTimes.slice(), ms: r.drawMs.slice()}; }"""
DRAWS = "() => Number(document.querySelector('.lem').dataset.draws || 0)"
ITEM = "() => document.querySelector('.lem').dataset.item || ''"
WHOLE = "() => document.querySelector('.lem').dataset.itemWhole === '1'"
# whether the map on screen asks the server for its items' whole pictures (its pixels did not travel whole)
FETCHES = """() => { const s = document.querySelector('.lem').parentElement.__latentMap;
  return !!(s && s.data && s.data.items && !(s.map.pixels && s.map.pixelScale === 1)); }"""
# Bytes the parsed maps hold in typed arrays (each map's blob, one buffer, plus its x / y copies): the
# map on screen, and all maps the page keeps.
MAP_BYTES = """() => {
  const shown = document.querySelector('.lem')?.dataset.map;
  let mine = 0, total = 0;
  for (const m of (globalThis.__latentExplorerMaps?.maps ?? new Map()).values()) {
    const k = m.grid.buffer.byteLength + m.x.byteLength + m.y.byteLength;
    total += k;
    if (m.id === shown) mine = k;
  }
  return [mine, total];
}"""
# Server clicks: the time of each mousedown, and each time the side panel's pictures have all loaded with new
# sources (with whether the "Decoded map point" heading was on the page then).
CLICK_PROBE = """(sel) => {
  const C = (window.__clicks = {downs: [], done: [], last: null});
  const sig = () => {
    const imgs = [...document.querySelectorAll(sel)];
    if (!imgs.length || !imgs.every((i) => i.complete && i.naturalWidth > 0)) return null;
    return imgs.map((i) => i.src).join('|');
  };
  const heading = () => [...document.querySelectorAll('[data-testid="stMain"] h3')]
    .some((h) => h.textContent.trim() === 'Decoded map point');
  C.last = sig();
  const check = () => {
    const s = sig();
    if (s && s !== C.last) { C.last = s; C.done.push({t: performance.now(), point: heading()}); }
  };
  document.addEventListener('mousedown', () => C.downs.push(performance.now()), true);
  document.addEventListener('load', check, true);
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                       attributeFilter: ['src']});
}"""


@dataclass(frozen=True)
class View:
    """One map: the Split radio's label, the Points option's text, the number of points drawn."""

    split: str
    option: str
    n: int


@dataclass(frozen=True)
class Settings:
    data: list[str]  # `python -m vae train` data arguments
    views: tuple[View, ...]
    hovers: int  # pointer jumps per map (half on points, half on empty space)
    clicks: int  # server-path clicks per map


def settings(quick: bool) -> Settings:
    if quick:
        views = (View("test", "all (360)", 360), View("train + test", "all (1,797)", 1_797))
        return Settings(["--data", "digits", "--latent", "8", "--hidden", "64"], views, hovers=20, clicks=4)
    views = (View("test", "all (10,000)", 10_000), View("train + test", "all (70,000)", 70_000))
    return Settings(["--data", "fashion-mnist", "--latent", "20", "--hidden", "400"], views, hovers=80, clicks=10)


# ---------------------------------------------------------------- the page's controls


def shown(page, server: bool) -> str:
    """Which map is on screen: the browser map's id, or the server chart's size and first point ("" if none)."""
    return page.evaluate(SERVER_SHOWN if server else LEM_ID)


def choose(page, view: View, server: bool = False) -> float:
    """Set the Split radio and Points selectbox to ``view``; wait for its map. Returns the seconds from the
    last control change to the map drawn (the browser map; with ``server``, Streamlit's chart)."""
    t = time.perf_counter()
    group = page.get_by_role("radiogroup", name="Split")
    if not group.get_by_role("radio", name=view.split, exact=True).is_checked():
        old = shown(page, server)
        group.get_by_text(view.split, exact=True).click()
        t = time.perf_counter()
        # another split is another map: once it is drawn, the Points box is the new split's
        page.wait_for_function(
            f"(old) => ({SERVER_SHOWN if server else LEM_ID})() !== old", arg=old, timeout=MAP_TIMEOUT_MS
        )
        wait_idle(page, MAP_TIMEOUT_MS)
    box = page.get_by_role("combobox", name="Points")
    if box.input_value() != view.option:
        box.click()
        option = page.get_by_role("option", name=view.option, exact=True)
        option.wait_for()
        option.click()
        t = time.perf_counter()
    if server:
        page.wait_for_function(SERVER_DRAWN, arg=view.n, timeout=MAP_TIMEOUT_MS)
    else:
        page.wait_for_function(LEM_DRAWN, arg=view.n, timeout=MAP_TIMEOUT_MS)
    seconds = time.perf_counter() - t
    wait_idle(page, MAP_TIMEOUT_MS)
    return seconds


def open_explore_pca(page, url: str) -> None:
    """A fresh Explore page switched to PCA (the default UMAP map starts fitting in the background)."""
    page.goto(url + "/explore")
    page.get_by_role("heading", name="Explore the latent map").wait_for()
    page.get_by_role("radiogroup", name="Projection").get_by_text("PCA", exact=True).click()
    page.wait_for_function("() => { const gd = document.querySelector('.lem-plot');"
                           " return !!(gd && gd._fullLayout) && gd._fullLayout.xaxis.title.text === 'PCA 1'; }",
                           timeout=MAP_TIMEOUT_MS)  # fmt: skip
    wait_idle(page, MAP_TIMEOUT_MS)


def wait_background_umap(run_dir: Path, timeout: float = 240.0) -> float:
    """Wait for the UMAP map the first visit to Explore started (it lands in the run's projections folder)."""
    t = time.perf_counter()
    folder = rf.projections_dir(run_dir)
    while time.perf_counter() - t < timeout:
        if any(folder.glob("umap-*.npz")):
            time.sleep(0.5)  # the worker finishes writing and lets go of the CPU
            return time.perf_counter() - t
        time.sleep(0.25)
    common.log(f"mapview: the background UMAP fit did not finish within {timeout:.0f} s; measuring anyway")
    return float("nan")


# ---------------------------------------------------------------- where to point


def spread(cand: np.ndarray, score: np.ndarray, n: int, min_gap: float) -> np.ndarray:
    """Up to ``n`` of the candidate positions, best ``score`` first, each ``min_gap`` px from those chosen."""
    chosen: list[np.ndarray] = []
    for i in np.argsort(-score):
        if all(np.hypot(*(cand[i] - c)) >= min_gap for c in chosen):
            chosen.append(cand[i])
            if len(chosen) == n:
                break
    return np.array(chosen)


def empty_spots(g: dict, n: int, inset: float, grid: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions inside the plot far from every data point (the server chart's grid points when
    ``grid``), spread apart; and each one's distance to the nearest data point, px."""
    from scipy.spatial import cKDTree

    pts = np.column_stack([g["px"], g["py"]])
    if grid:
        cand = np.column_stack([g["gx"], g["gy"]])
    else:
        xs = np.linspace(g["left"] + inset, g["left"] + g["width"] - inset, 60)
        ys = np.linspace(g["top"] + inset, g["top"] + g["height"] - inset, 60)
        cand = np.array([(x, y) for x in xs for y in ys])
    inside = (
        (cand[:, 0] >= g["left"] + inset)
        & (cand[:, 0] <= g["left"] + g["width"] - inset)
        & (cand[:, 1] >= g["top"] + inset)
        & (cand[:, 1] <= g["top"] + g["height"] - inset)
    )
    cand = cand[inside]
    gap = cKDTree(pts).query(cand)[0]
    chosen = spread(cand, gap, n, min_gap=min(g["width"], g["height"]) / 8)
    return chosen, cKDTree(pts).query(chosen)[0]


def point_spots(g: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` data points' pixels, chosen at random (inside the plot area)."""
    pts = np.column_stack([g["px"], g["py"]])
    inside = (
        (pts[:, 0] > g["left"] + 2)
        & (pts[:, 0] < g["left"] + g["width"] - 2)
        & (pts[:, 1] > g["top"] + 2)
        & (pts[:, 1] < g["top"] + g["height"] - 2)
    )
    pts = pts[inside]
    return pts[rng.choice(len(pts), size=min(n, len(pts)), replace=False)]


# ---------------------------------------------------------------- the browser path


def hover_latencies(page, n: int, rng: np.random.Generator) -> dict:
    """Jump the pointer to n positions (points and empty space alternately), one draw at a time."""
    g = page.evaluate(GEOMETRY, [".lem-plot", False])
    empty, gaps = empty_spots(g, n // 2, inset=12)
    on_points = point_spots(g, n - len(empty), rng)
    targets: list[tuple[str, np.ndarray]] = []
    for i in range(max(len(empty), len(on_points))):
        targets += [("point", on_points[i])] if i < len(on_points) else []
        targets += [("empty", empty[i])] if i < len(empty) else []
    page.mouse.move(g["left"] - 20, g["top"] - 20)  # start outside the plot area
    page.wait_for_timeout(100)
    page.evaluate(HOVER_PROBE)
    fetches = page.evaluate(FETCHES)
    for kind, (x, y) in targets:
        before = page.evaluate(f"() => [({DRAWS})(), ({ITEM})()]")
        page.mouse.move(float(x), float(y))
        page.wait_for_function(f"() => ({DRAWS})() > {before[0]}")
        try:  # Plotly's (throttled) hover shows the item under the pointer, or none on empty space
            if kind == "point":
                page.wait_for_function(f"(old) => !!({ITEM})() && ({ITEM})() !== old", arg=before[1], timeout=1_000)
                if fetches:  # and its whole picture, asked of the server (ui/served.py)
                    page.wait_for_function(WHOLE, timeout=1_000)
            else:
                page.wait_for_function(f"() => !({ITEM})()", timeout=500)
        except PlaywrightTimeout:
            pass
    r = page.evaluate(HOVER_RESULTS)
    events, times, items = r["events"], np.array(r["times"]), r["items"]
    if len(events) != len(targets):
        common.log(f"mapview: {len(targets)} moves but {len(events)} pointermove events")
    lat = {"point": [], "empty": [], "queue": [], "item": [], "whole": []}
    for k, ((kind, _), ev) in enumerate(zip(targets, events, strict=False)):
        after = times[times > ev["now"]]
        if len(after):
            lat[kind].append(float(after[0] - ev["ts"]))  # from the event's own timestamp: input queueing too
        lat["queue"].append(ev["now"] - ev["ts"])
        nxt = events[k + 1]["now"] if k + 1 < len(events) else float("inf")
        if kind == "point":
            shown = [it["t"] for it in items if ev["now"] < it["t"] < nxt and it["v"]]
            if shown:
                lat["item"].append(shown[0] - ev["ts"])
            whole = [it["t"] for it in items if ev["now"] < it["t"] < nxt and it["v"] and it.get("whole")]
            if whole:  # the item's whole picture drawn (from the map's pixels, or the server's)
                lat["whole"].append(whole[0] - ev["ts"])
    lat["ms"] = r["ms"][-len(targets) :]
    lat["empty_gap_px"] = float(np.median(gaps)) if len(gaps) else float("nan")
    lat["n_point"], lat["n_empty"] = len(on_points), len(empty)
    return lat


def pan(page) -> float:
    page.mouse.move(5, 5)
    r = page.evaluate(PAN, PAN_S)
    return r["draws"] / r["seconds"]


def sweep(page) -> tuple[float, float]:
    """A continuous 2 s diagonal sweep over the plot: (redraws/s, pointer moves/s sent)."""
    g = page.evaluate(GEOMETRY, [".lem-plot", False])
    x0, y0, w, h = g["left"] + 5, g["top"] + 5, g["width"] - 10, g["height"] - 10
    page.mouse.move(x0, y0 + 0.2 * h)
    page.wait_for_timeout(100)
    before = page.evaluate(DRAWS)
    moves, t0 = 0, time.perf_counter()
    while (t := time.perf_counter() - t0) < SWEEP_S:
        f = t / SWEEP_S
        page.mouse.move(x0 + f * w, y0 + h * (0.2 + 0.6 * f))
        moves += 1
    elapsed = time.perf_counter() - t0
    return (page.evaluate(DRAWS) - before) / elapsed, moves / elapsed


def js_heap_mb(page) -> tuple[float, float, float]:
    """The page's JS heap in use after a forced garbage collection (Chrome DevTools Protocol), and the bytes
    of the parsed map on screen and of all the maps it keeps (typed arrays: outside that heap); MB."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.enable")
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    cdp.detach()
    this, kept = page.evaluate(MAP_BYTES)
    return metrics["JSHeapUsedSize"] / 1e6, this / 1e6, kept / 1e6


def fresh_tab(browser, url: str, view: View) -> dict:
    """A new browser context (nothing cached in it; the server's maps are warm): navigate to Explore, set
    PCA, the split and the points as soon as each responds; then go Home and back to Explore, which keeps
    those choices. Seconds from navigation to the map drawn ("tab_s"), from choosing the points ("points_s"),
    from the Explore link back to the map drawn ("back_s"); then ``js_heap_mb`` ("heap")."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(60_000)
    try:
        t = time.perf_counter()
        open_explore_pca(page, url)
        out = {"points_s": choose(page, view), "tab_s": time.perf_counter() - t}
        nav = page.locator('[data-testid="stSidebarNav"]')
        nav.get_by_role("link", name="Home", exact=True).click()
        page.wait_for_function("() => !document.querySelector('.lem')")
        wait_idle(page)
        t = time.perf_counter()
        nav.get_by_role("link", name="Explore", exact=True).click()
        page.wait_for_function(LEM_DRAWN, arg=view.n, timeout=MAP_TIMEOUT_MS)
        out["back_s"] = time.perf_counter() - t
        wait_idle(page)
        out["heap"] = js_heap_mb(page)
        return out
    finally:
        page.context.close()


# ---------------------------------------------------------------- the server path (baseline)


def server_clicks(page, n: int) -> tuple[list[float], int, float]:
    """Click n empty spots of the server chart: (click → new picture ms for each, clicks that showed an
    item instead or nothing, median px from the spot to the nearest data point)."""
    g = page.evaluate(GEOMETRY, [SERVER_CHART, True])
    spots, gaps = empty_spots(g, n, inset=40, grid=True)
    page.evaluate(CLICK_PROBE, SIDE_IMAGES)
    out, missed = [], 0
    for x, y in spots:
        done_before = page.evaluate("() => window.__clicks.done.length")
        page.mouse.click(float(x), float(y))
        try:
            page.wait_for_function(f"() => window.__clicks.done.length > {done_before}", timeout=20_000)
        except PlaywrightTimeout:  # a click that picked nothing new: counted, not timed
            missed += 1
            continue
        wait_idle(page)
        page.wait_for_timeout(200)  # the chart redraws its star after the picture
        c = page.evaluate("() => window.__clicks")
        down, done = c["downs"][-1], c["done"][done_before]
        if done["point"]:
            out.append(done["t"] - down)
        else:
            missed += 1
        common.log(f"mapview: server click {done['t'] - down:.0f} ms ({'decoded point' if done['point'] else 'no'})")
    return out, missed, float(np.median(gaps)) if len(gaps) else float("nan")


# ---------------------------------------------------------------- the section


def pq(values: list[float], digits: int = 0) -> str:
    q = common.quantile
    return f"{common.fmt(q(values, 0.5), digits)} / {common.fmt(q(values, 0.95), digits)}"


def run(quick: bool = False) -> str:
    """The browser map section as markdown."""
    s = settings(quick)
    name = "mapview-digits" if quick else "mapview-fashion"
    rng = np.random.default_rng(0)
    res: dict[int, dict] = {v.n: {} for v in s.views}
    t0, p0 = time.perf_counter(), cpu_pressure_total()
    with tempfile.TemporaryDirectory(prefix="bench-mapview-") as tmp:
        runs = Path(tmp)
        common.log(f"mapview: training {name} for one epoch")
        common.vae_cli(runs, "train", *s.data, "--epochs", "1", "--threads", "2", "--name", name)
        with (
            common.environment(LATENT_EXPLORER_WARM_UMAP="0"),
            serving(runs) as url,
            chromium() as browser,
        ):
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(60_000)
            common.log("mapview: Explore, PCA")
            open_explore_pca(page, url)
            umap_s = wait_background_umap(runs / name)
            common.log(f"mapview: the default UMAP map (first visit) finished in the background after {umap_s:.1f} s")
            for v in s.views:
                r = res[v.n]
                common.log(f"mapview: {v.n:,} points ({v.split}), browser path")
                r["first_s"] = choose(page, v)
                r["hover"] = hover_latencies(page, s.hovers, rng)
                r["fps"], r["moves"] = sweep(page)
                r["pan_fps"] = pan(page)
            common.log("mapview: server path (baseline)")
            display_toggle(page, SERVER_TOGGLE)
            for v in reversed(s.views):  # the last map is on screen: no new map to compute first
                common.log(f"mapview: {v.n:,} points, server clicks")
                page.wait_for_timeout(200)
                choose(page, v, server=True)
                res[v.n]["clicks"] = server_clicks(page, s.clicks)
            page.context.close()
            for v in s.views:
                common.log(f"mapview: {v.n:,} points, fresh tab")
                res[v.n]["tab"] = fresh_tab(browser, url, v)
                common.log(f"mapview: fresh tab {res[v.n]['tab']}")
    p1, wall = cpu_pressure_total(), time.perf_counter() - t0
    pressure = (p1 - p0) / 1e6 / wall if p0 is not None and p1 is not None else None
    return report(s, res, quick, pressure)


def report(s: Settings, res: dict[int, dict], quick: bool, pressure: float | None = None) -> str:
    views = s.views
    headers = ["measurement"] + [f"{v.n:,} points ({v.split}, PCA)" for v in views]

    def row(label: str, cell) -> list[str]:
        return [label] + [cell(res[v.n]) for v in views]

    rows = [
        row("pointer on a data point → decoded picture drawn, p50 / p95 ms (n)",
            lambda r: f"**{pq(r['hover']['point'], 1)}** ({len(r['hover']['point'])})"),
        row("pointer on empty space → decoded picture drawn, p50 / p95 ms (n)",
            lambda r: f"**{pq(r['hover']['empty'], 1)}** ({len(r['hover']['empty'])})"),
        row("pointer on a data point → that item named, p50 / p95 ms (n)",
            lambda r: f"{pq(r['hover']['item'], 1)} ({len(r['hover']['item'])})"),
        row("pointer on a data point → that item's whole picture drawn (70,000: asked of the server), p50 / p95 ms (n)",
            lambda r: f"{pq(r['hover']['whole'], 1)} ({len(r['hover']['whole'])})"),
        row("… input delivery in those (event timestamp → listener; Chromium aligns moves to frames), p50 / p95 ms",
            lambda r: pq(r["hover"]["queue"], 1)),
        row("one draw (grid lookup + decode + paint), p50 / p95 ms",
            lambda r: pq(r["hover"]["ms"], 2)),
        row(f"pan: frames/s that show the view moved (a {PAN_S:g} s drag, one pointer move per frame)",
            lambda r: f"**{r['pan_fps']:.1f}**"),
        row(f"redraws/s in a {SWEEP_S:g} s sweep (pointer moves/s sent)",
            lambda r: f"**{r['fps']:.1f}** ({r['moves']:.0f})"),
        row("Baseline: server path, click on empty space → decoded picture, p50 / p95 ms (n)",
            lambda r: f"{pq(r['clicks'][0])} ({len(r['clicks'][0])})"),
        row("choose split / Points → browser map drawn, first time (server computes the map), s",
            lambda r: common.fmt(r["first_s"], 2)),
        row("fresh tab: navigate to Explore, choose PCA, split, points → map drawn, s",
            lambda r: common.fmt(r["tab"]["tab_s"], 2)),
        row("… of which after choosing Points (map bytes sent, parsed, drawn), s",
            lambda r: common.fmt(r["tab"]["points_s"], 2)),
        row("then Home → Explore (PCA, split and points kept) → map drawn, s",
            lambda r: f"**{common.fmt(r['tab']['back_s'], 2)}**"),
        row("JS heap of that tab after a forced GC, MB",
            lambda r: common.fmt(r["tab"]["heap"][0], 1)),
        row("… plus typed arrays outside it: this map's / all maps the tab keeps (at most 3), MB",
            lambda r: f"{r['tab']['heap'][1]:.1f} / {r['tab']['heap'][2]:.1f}"),
    ]  # fmt: skip
    notes = []
    for v in views:
        h, (_, missed, gap) = res[v.n]["hover"], res[v.n]["clicks"]
        notes.append(
            f"{v.n:,} points: empty-space positions lay a median {h['empty_gap_px']:.0f} px from the nearest point "
            f"(server clicks: {gap:.0f} px; {missed} of {s.clicks} clicks showed no new decoded point)."
        )
    if pressure is not None:
        notes.append(
            f"CPU contention during this section: some task waited for a CPU {100 * pressure:.0f} % of the wall time "
            "(Linux PSI, machine-wide: this section's own browser, server and Playwright share the cores too)."
        )
    dataset = "digits (quick)" if quick else "Fashion-MNIST"
    return "\n".join(
        [
            TITLE,
            "",
            f"{dataset}, MLP VAE trained for one epoch; PCA maps only (no waiting for UMAP), headless Chromium "
            "with software WebGL on the same machine as the server. The pointer jumps to positions spread over "
            f"the map ({s.hovers} per map, half on random data points, half on the emptiest spots), one move at a "
            "time; latency is from the `pointermove` event's timestamp to the end of the decode-and-paint that "
            "follows it (the component coalesces moves to one draw per animation frame), measured inside the "
            "page, as is the hovered item shown beside it: past 5,000 points the map's own WebGL layer "
            "(ui/mapview/points.js) draws them and names the item under the pointer (up to 5,000, Plotly and its "
            "hover event); up to 10,000 items their pictures come with the map, past that the page asks the "
            "server for the whole picture of the item it points at (ui/served.py; a 14×14 thumbnail meanwhile). "
            "A pan: an in-page drag, one pointer "
            "move per animation frame, counting the frames that show the view moved. "
            'Baseline: the server path ("Decode under the pointer" off, Streamlit\'s chart), click on empty '
            'space → the new picture under "Decoded map point" loaded, timed in the page from mousedown. '
            "Page loads: a new browser context (server caches warm) and, in it, Home → Explore again.",
            "",
            common.table(headers, rows),
            "",
            *[f"- {n}" for n in notes],
            "- Redraws/s cannot exceed the pointer moves/s Playwright manages to send (one round trip per move; "
            "fewer when the machine is busy); Chromium delivers at most one pointer move per frame.",
            "",
            f"Reproduce alone: `{COMMAND}`.",
        ]
    )


if __name__ == "__main__":
    common.main(run, __doc__)
