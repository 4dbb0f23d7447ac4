"""Interaction latency of the app in headless Chromium: map drawn, slider step, map click, many sessions.

    python bench/bench_interaction.py [--quick]

Prints one markdown section (progress goes to stderr); ``run(quick)`` returns the same text for
bench/run_all.py. What it does:

1. trains a run in a temporary runs folder with the command line: the default MLP, one epoch of Fashion-MNIST
   (Debian's ``/usr/share/datasets/fashion-mnist``; test split cut to 4,000 images) or, with ``--quick`` or
   without Fashion-MNIST, ten epochs of scikit-learn's digits; then caches every map the pages will show, in a
   child process running the page's own ``ui.latent_means`` and ``vae.projection.cached_projection``, so page
   loads time the page, not UMAP;
2. starts two ``streamlit run app.py`` servers on 127.0.0.1: Streamlit's defaults, and the same with
   ``--runner.postScriptGC false`` (the app freezes the garbage collector once at start-up in both);
3. drives Debian's Chromium with Playwright (async API) and times each interaction inside the page with
   ``performance.now()``: from navigation start or from the input's ``mousedown`` / ``keydown`` to the animation
   frame in which the map shows the expected points, or to the moment the new picture has loaded:
   a) Explore: page load in a new tab to the default map, then in that tab the 10,000- and 60,000-point maps;
   b) Decode: slider step (arrow key) to the new decoded image (server-side decoding);
   c) Explore: click on a data point to its decoded reconstruction, and to the map redrawn with the point ringed;
   d) b and c on both servers, alternating in blocks;
   e) eight browser contexts stepping sliders at once while a training runs in another process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    from playwright.async_api import TimeoutError as PlaywrightTimeout
except ImportError:  # run() says what is missing
    PlaywrightTimeout = TimeoutError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # the shared way to run the app and Chromium
from browser import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, wait_healthy  # noqa: E402

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
RUN = "bench-interaction"
BATCH = 128  # the command line's default batch size (both trainings use it)
# Below 4,096 points umap-learn finds neighbours exactly, skipping pynndescent, whose numba code takes ~25 s to
# compile in every new process: caching the page's default UMAP map of the test split then takes seconds.
MAX_TEST = 4000
COMMAND = "python bench/bench_interaction.py [--quick]"
SERVERS = {"default": [], "gc_off": ["--runner.postScriptGC", "false"]}
SERVER_NAMES = {"default": "Streamlit defaults", "gc_off": "`--runner.postScriptGC false`"}
TIMEOUT_MS = 60_000  # one interaction; a slow shared machine can take seconds
CLICK_TIMEOUT_MS = 20_000  # a click that picked the item already shown never shows a new picture
MAP_TIMEOUT_MS = 120_000

DECODED = 'img[alt="decoded image"]'
BROWSER_TOGGLE = "Decode in the browser while dragging"  # the Decode page's in-browser decoder, where present
SLIDERS = '[data-testid="stMain"] input[type="range"]'
SIDE_IMAGES = '[data-testid="stMain"] [data-testid="stImage"] img'  # Explore: original + reconstruction

# Installed in every page before its own scripts: input times (capture phase, so Plotly's handlers cannot
# hide them) and the times at which the pictures matching __bench.sel had all loaded with new sources.
PROBE = """(() => {
  const B = (window.__bench = {inputs: [], done: [], sel: null, last: null});
  const sig = () => {
    const imgs = [...document.querySelectorAll(B.sel)];
    if (!imgs.length || !imgs.every((i) => i.complete && i.naturalWidth > 0)) return null;
    return imgs.map((i) => i.src).join('|');
  };
  const check = () => {
    if (!B.sel) return;
    const s = sig();
    if (s && s !== B.last) { B.last = s; B.done.push(performance.now()); }
  };
  B.watch = (sel) => { B.sel = sel; B.last = sig(); B.done = []; B.inputs = []; };
  document.addEventListener('mousedown', () => B.inputs.push(performance.now()), true);
  const keys = /^(Arrow|Home$|End$|Page)/;
  document.addEventListener('keydown', (e) => { if (keys.test(e.key)) B.inputs.push(performance.now()); }, true);
  document.addEventListener('load', check, true);
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true,
                                                 attributeFilter: ['src']});
})();"""
# How many data points the map shows (the traces after the click grid) and its x-axis title.
MAP_STATE = """const mapState = () => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullData || !gd._fullLayout) return null;
  let n = 0;
  for (const t of gd._fullData.slice(1)) if (t.showlegend !== false) n += t.x.length;
  return {n, title: gd._fullLayout.xaxis.title.text};
};"""
# The frame in which the map shows n points under this axis title: returns that time.
MAP_DRAWN = (
    "([n, title]) => {"
    + MAP_STATE
    + "const s = mapState(); return !!s && s.n === n && s.title === title ? performance.now() : false; }"
)
# Arm a per-frame watcher before an input: __bench.mapAt becomes the first frame that shows n points.
ARM_MAP = (
    "([n, title]) => {"
    + MAP_STATE
    + """const B = window.__bench; B.mapAt = null;
  const tick = () => {
    const s = mapState();
    if (s && s.n === n && s.title === title) B.mapAt = performance.now(); else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
)
# Page pixel of point i of trace c (Plotly's own axes: plot box + axis offset + l2p).
POINT_XY = """([c, i]) => {
  const gd = document.querySelector('.js-plotly-plot'), r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, t = gd._fullData[c];
  const j = i % t.x.length;
  return {x: r.left + xa._offset + xa.l2p(t.x[j]), y: r.top + ya._offset + ya.l2p(t.y[j])};
}"""
# Where the map's markers are (the ring of a selected item, the star of a decoded spot), as text.
MARKS = """const marks = () => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullData) return null;
  return gd._fullData.filter((t) => t.marker && ['circle-open', 'star'].includes(t.marker.symbol))
    .map((t) => `${t.marker.symbol}:${t.x[0]},${t.y[0]}`).join(' ');
};"""
MARKS_NOW = "() => {" + MARKS + "return marks(); }"
MARKS_MOVED = "(old) => {" + MARKS + "const m = marks(); return m !== null && m !== old ? performance.now() : false; }"
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def log(msg: str) -> None:
    print(f"[bench_interaction {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class View:
    """A state of the Explore page's widgets: split radio, Points option, the number of points drawn."""

    split: str
    option: str  # the Points option's text
    n: int  # points drawn
    size: int | None  # what the page passes to ui.latent_means (None: the whole split)
    method: str = "PCA"


@dataclass
class Plan:
    data: str
    epochs: int
    default_view: View  # what the page opens with (UMAP, test split, at most 5,000 points)
    views: tuple[View, View]  # two maps reached from the default view by widgets; the second by one click
    loads: int  # page loads (each followed by both views)
    clicks: int  # per view and server
    steps: int  # slider steps per server
    contexts: int  # concurrent sessions under load
    load_steps: int  # slider steps per concurrent session
    maps: tuple[tuple[str, str, int | None], ...]  # (method, split, size) the pages show on the way
    max_test: int | None = None  # test images kept (the default map's size)
    rounds: int = 3  # A/B blocks per server
    notes: list[str] = field(default_factory=list)


def have_fashion() -> bool:
    return (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file()


def make_plan(quick: bool, interactions: int | None, contexts: int | None) -> Plan:
    n = interactions or (5 if quick else 30)
    rounds = 1 if n < 6 else 3  # A/B blocks per server
    n = math.ceil(n / rounds) * rounds
    k = contexts or 8
    common = dict(loads=n, clicks=n, steps=n, contexts=k, load_steps=math.ceil(max(n, 32 if n >= 30 else n) / k))
    common["rounds"] = rounds
    if quick or not have_fashion():
        plan = Plan(
            data="digits",
            epochs=10,
            default_view=View("test", "all (360)", 360, None, "UMAP"),
            views=(View("test", "all (360)", 360, None), View("train", "all (1,437)", 1437, None)),
            maps=(("UMAP", "test", None), ("PCA", "test", None), ("PCA", "train", None)),
            **common,
        )
        if not quick:
            plan.notes.append(f"Fashion-MNIST was not found in {FASHION_DIR}: scikit-learn's digits were used.")
        return plan
    return Plan(
        data="fashion-mnist",
        epochs=1,
        max_test=MAX_TEST,
        default_view=View("test", "all (4,000)", 4000, None, "UMAP"),
        views=(View("train", "10,000", 10_000, 10_000), View("train", "all (60,000)", 60_000, None)),
        maps=(
            ("UMAP", "test", None),  # the page's default view: without it the page would fit UMAP
            ("PCA", "test", None),  # on the way from the default view to the timed ones
            ("PCA", "train", 5000),
            ("PCA", "train", 10_000),
            ("PCA", "train", None),
        ),
        **common,
    )


# ---------------------------------------------------------------- preparation (child processes)


def python_env(runs: Path) -> dict:
    return {**os.environ, "LATENT_EXPLORER_RUNS": str(runs), "PYTHONPATH": str(ROOT)}


def train_run(runs: Path, plan: Plan) -> dict:
    """Train the benchmark's run with the command line; returns its JSON summary."""
    cmd = [sys.executable, "-m", "vae", "--runs-dir", str(runs), "train", "--data", plan.data]
    cmd += ["--epochs", str(plan.epochs), "--name", RUN, "--json"]
    if plan.max_test:
        cmd += ["--max-test", str(plan.max_test)]
    out = subprocess.run(cmd, cwd=ROOT, env=python_env(runs), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"training the benchmark run failed: {out.stdout[-500:]} {out.stderr[-1500:]}")
    return json.loads(out.stdout)


def precompute_child(run_dir: str, views_json: str) -> None:
    """(Child process.) Cache each view's map exactly as the Explore page would compute it."""
    sys.path.insert(0, str(ROOT))
    import logging

    logging.disable(logging.WARNING)  # "No runtime found": the cached loaders work without a server
    import ui
    from app_pages.explore import INVERSE_GRID, METHODS, PROJECTIONS
    from vae import run as rf
    from vae.projection import cached_projection, projection_key

    run = Path(run_dir)
    checkpoint = rf.checkpoint_id(run)
    for method, split, size in json.loads(views_json):
        t = time.perf_counter()
        codes, _ = ui.latent_means(str(run), checkpoint, split, size)  # the page's own cached encoder
        m = METHODS[method]
        key = projection_key(checkpoint, {"method": m}, len(codes), split)
        cached_projection(run / PROJECTIONS, key, codes, {"method": m}, grid_resolution=INVERSE_GRID)
        print(f"  {method} {split} {len(codes):,} points: {time.perf_counter() - t:.1f} s", file=sys.stderr)


def precompute_maps(runs: Path, plan: Plan) -> None:
    cmd = [sys.executable, __file__, "--precompute", str(runs / RUN), json.dumps(plan.maps)]
    subprocess.run(cmd, cwd=ROOT, env=python_env(runs), check=True, stdout=subprocess.DEVNULL)


def gc_child() -> None:
    """(Child process.) One full collection with the app's modules loaded, without and with its freeze."""
    sys.path.insert(0, str(ROOT))
    import logging

    logging.disable(logging.WARNING)

    def collect_ms() -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            gc.collect()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3

    import ui  # what app.py imports before it calls ui.freeze_gc_once()

    out = {"objects_before_freeze": len(gc.get_objects()), "no_freeze_ms": collect_ms()}
    ui.freeze_gc_once()
    out["frozen"] = gc.get_freeze_count()
    import app_pages.explore  # noqa: F401 - its imports (pandas, plotly); its body runs only as a page

    out.update(after_freeze_ms=collect_ms(), objects_after_freeze=len(gc.get_objects()))
    print(json.dumps(out))


def measure_gc(runs: Path) -> dict:
    cmd = [sys.executable, __file__, "--gc-child"]
    out = subprocess.run(cmd, cwd=ROOT, env=python_env(runs), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- servers and the background training


class Server:
    """``streamlit run app.py`` over ``runs`` with extra options (tests/e2e/browser.py's ``start_server``:
    127.0.0.1, headless, its own process group, its log in artifacts/e2e/streamlit-<port>.log)."""

    def __init__(self, runs: Path, name: str, extra: list[str]):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = start_server(runs, self.port, extra)

    def wait_healthy(self, timeout: float = 90.0) -> None:
        wait_healthy(self.url, self.proc, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group start_server made for this server
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Training:
    """A training (default MLP, the command line's defaults; Fashion-MNIST where present) beside the sessions."""

    def __init__(self, tmp: Path, data: str):
        self.data = data
        self.runs = tmp / "background-runs"  # its own folder: new sessions keep picking the benchmark run
        cmd = [sys.executable, "-m", "vae", "--runs-dir", str(self.runs), "train", "--data", data]
        epochs = "200" if data == "fashion-mnist" else "3000"  # outlasts the sessions; stopped afterwards
        cmd += ["--epochs", epochs, "--name", "background", "--json"]
        self.metrics = self.runs / "background" / "metrics.jsonl"
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=python_env(self.runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def steps(self) -> list[dict]:
        if not self.metrics.is_file():
            return []
        lines = self.metrics.read_text().splitlines()
        return [r for r in map(json.loads, lines[:-1] if lines else []) if r.get("type") == "step"]

    async def wait_stepping(self, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while len(self.steps()) < 2:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the background training did not start")
            await asyncio.sleep(0.2)

    def examples_per_s(self, since: float) -> float | None:
        """Training throughput from its last step line before ``since`` (wall clock) to its latest one."""
        rows = self.steps()
        before = [r for r in rows if r["time"] <= since]
        first, last = (before[-1] if before else rows[0]), rows[-1]
        if last["time"] <= first["time"]:
            return None
        return (last["step"] - first["step"]) * BATCH / (last["time"] - first["time"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # it saves a checkpoint and exits
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- browser helpers


async def wait_idle(page, timeout: float = MAP_TIMEOUT_MS) -> None:
    await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    await page.wait_for_function(IDLE, timeout=timeout)


async def settle(page) -> None:
    """Streamlit idle, then two animation frames: the page has finished reacting to the last input."""
    await wait_idle(page)
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


async def wait_map(page, view: View) -> float:
    """Wait for the frame in which the map shows ``view``; returns that time (page clock, ms)."""
    arg = [view.n, f"{view.method} 1"]
    handle = await page.wait_for_function(MAP_DRAWN, arg=arg, polling="raf", timeout=MAP_TIMEOUT_MS)
    return float(await handle.json_value())


async def open_page(context, url: str):
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    return page


async def choose_view(page, view: View, current: View | None) -> None:
    """Click the widgets that turn the Explore page from ``current`` into ``view``, waiting between clicks.

    Widgets are found by their keys (Streamlit gives each keyed widget the class ``st-key-<key>``).
    """
    if current is None or current.method != view.method:
        await page.locator(".st-key-explore_method").get_by_text(view.method, exact=True).click()
        await wait_title(page, f"{view.method} 1")
        await settle(page)
    if current is None or current.split != view.split:
        await page.locator(".st-key-explore_split").get_by_text(view.split, exact=True).click()
        await page.locator(f".st-key-explore_points_{view.split}").wait_for(timeout=MAP_TIMEOUT_MS)
        await settle(page)
    box = page.locator(f".st-key-explore_points_{view.split}")
    if await box.get_by_role("combobox").input_value() != view.option:
        await box.click()
        await page.get_by_role("option", name=view.option, exact=True).click()


async def wait_title(page, title: str) -> None:
    await page.wait_for_function(
        "(t) => { const gd = document.querySelector('.js-plotly-plot');"
        " return !!(gd && gd._fullLayout) && gd._fullLayout.xaxis.title.text === t; }",
        arg=title,
        timeout=MAP_TIMEOUT_MS,
    )


async def open_explore(context, server: Server, view: View, default: View):
    page = await open_page(context, f"{server.url}/explore")
    await wait_map(page, default)
    await settle(page)
    await choose_view(page, view, default)
    await wait_map(page, view)
    await settle(page)
    return page


async def open_decode(context, server: Server):
    """The Decode page decoding on the server: Streamlit sliders, a new picture per released step.

    Where the page offers in-browser decoding (a toggle, on by default), it is switched off: a step then
    goes to the server and back, which is what this benchmark times.
    """
    page = await open_page(context, f"{server.url}/decode")
    toggle = page.get_by_role("switch", name=BROWSER_TOGGLE)
    await page.locator(DECODED).or_(toggle).first.wait_for(timeout=MAP_TIMEOUT_MS)  # the toggle comes first
    if await toggle.count() and await toggle.is_checked():
        await page.get_by_text(BROWSER_TOGGLE, exact=True).click()
    await page.locator(DECODED).wait_for(timeout=MAP_TIMEOUT_MS)
    await settle(page)
    await page.evaluate("(s) => window.__bench.watch(s)", DECODED)
    await page.locator(SLIDERS).first.focus()
    return page


async def slider_steps(page, count: int, lost: list[int]) -> list[float]:
    """Press an arrow key ``count`` times, one at a time; ms from keydown to the new decoded image."""
    out = []
    for _ in range(count):
        await page.locator(SLIDERS).first.focus()
        before = await page.evaluate("() => [window.__bench.inputs.length, window.__bench.done.length]")
        value = float(await page.locator(SLIDERS).first.input_value())
        await page.keyboard.press("ArrowRight" if value < 2.5 else "Home")
        try:
            await page.wait_for_function(f"() => window.__bench.done.length > {before[1]}", timeout=TIMEOUT_MS)
        except PlaywrightTimeout:  # an identical picture (an inactive step) or a lost rerun: counted, not timed
            lost.append(1)
            await settle(page)
            continue
        key, done = await page.evaluate(f"() => [window.__bench.inputs[{before[0]}], window.__bench.done[{before[1]}]]")
        out.append(done - key)
        await settle(page)
    return out


async def map_clicks(page, count: int, start: int, lost: list[int]) -> tuple[list[float], list[float]]:
    """Click ``count`` data points; ms from mousedown to the decoded picture loaded, and to the map's marker."""
    await page.evaluate("(s) => window.__bench.watch(s)", SIDE_IMAGES)
    to_image, to_mark = [], []
    for k in range(start, start + count):
        trace = 1 + k % 10  # trace 0 is the invisible click grid; 1..10 the labels
        pos = await page.evaluate(POINT_XY, [trace, k * 7919])
        marks = await page.evaluate(MARKS_NOW)
        n_in, n_done = await page.evaluate("() => [window.__bench.inputs.length, window.__bench.done.length]")
        await page.mouse.click(pos["x"], pos["y"])
        try:
            await page.wait_for_function(f"() => window.__bench.done.length > {n_done}", timeout=CLICK_TIMEOUT_MS)
            handle = await page.wait_for_function(MARKS_MOVED, arg=marks, polling="raf", timeout=CLICK_TIMEOUT_MS)
        except PlaywrightTimeout:  # the click picked the item already shown (no new picture): counted, not timed
            lost.append(1)
            await settle(page)
            continue
        down, done = await page.evaluate(f"() => [window.__bench.inputs[{n_in}], window.__bench.done[{n_done}]]")
        to_image.append(done - down)
        to_mark.append(float(await handle.json_value()) - down)
        await settle(page)
    return to_image, to_mark


async def switch_view(page, view: View, current: View) -> float:
    """Click the widgets that lead to ``view``; ms from the last click's mousedown to the frame showing its map."""
    await page.evaluate(ARM_MAP, [view.n, f"{view.method} 1"])
    await choose_view(page, view, current)
    await page.wait_for_function("() => window.__bench.mapAt !== null", timeout=MAP_TIMEOUT_MS)
    drawn, down = await page.evaluate("() => [window.__bench.mapAt, window.__bench.inputs.at(-1)]")
    await settle(page)
    return drawn - down


# ---------------------------------------------------------------- the measurements


@dataclass
class Results:
    loads: list[float] = field(default_factory=list)
    switches: dict = field(default_factory=dict)  # view.n -> [ms]
    clicks: dict = field(default_factory=dict)  # (server, view.n) -> [ms] to image
    rings: dict = field(default_factory=dict)  # (server, view.n) -> [ms] to ring
    steps: dict = field(default_factory=dict)  # server -> [ms]
    load_steps: list[float] = field(default_factory=list)
    lost: dict = field(default_factory=dict)  # what -> count
    seconds: dict = field(default_factory=dict)  # part -> wall seconds
    training: dict = field(default_factory=dict)
    browser: str = ""


async def measure_maps(browser, server: Server, plan: Plan, res: Results) -> None:
    """Fresh tabs: page load to the default map, then the two timed views, each the first time this tab draws it.

    (Streamlit's browser keeps large messages it has seen by hash, so a map drawn again in the same tab
    arrives without its data: switching back and forth would time that cache, not what a page load sends.)
    """
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    await context.add_init_script(PROBE)
    for i in range(plan.loads + 1):  # the first round (browser cache, server caches) is not counted
        page = await open_page(context, f"{server.url}/explore")
        drawn = await wait_map(page, plan.default_view)  # ms since navigation start (performance.timeOrigin)
        await settle(page)
        current, times = plan.default_view, [drawn]
        for view in plan.views:
            times.append(await switch_view(page, view, current))
            current = view
        if i:
            res.loads.append(times[0])
            for view, ms in zip(plan.views, times[1:], strict=True):
                res.switches.setdefault(view.n, []).append(ms)
        await page.close()
    await context.close()


async def measure_explore(browser, servers: dict, plan: Plan, res: Results) -> None:
    """Clicks on the smaller map on both servers, alternating in blocks; then clicks on the larger map on the
    default server."""
    small, large = plan.views
    pages = {}
    for name, server in servers.items():
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        await context.add_init_script(PROBE)
        pages[name] = await open_explore(context, server, small, plan.default_view)
    per_block = plan.clicks // plan.rounds
    for r in range(plan.rounds):
        for name in servers if r % 2 == 0 else reversed(list(servers)):
            lost = res.lost.setdefault(f"click {name} {small.n:,}", [])
            img, mark = await map_clicks(pages[name], per_block, r * per_block, lost)
            res.clicks.setdefault((name, small.n), []).extend(img)
            res.rings.setdefault((name, small.n), []).extend(mark)
    await pages.pop("gc_off").context.close()
    page = pages["default"]
    await choose_view(page, large, small)
    await wait_map(page, large)
    await settle(page)
    img, mark = await map_clicks(page, plan.clicks, 0, res.lost.setdefault(f"click default {large.n:,}", []))
    res.clicks[("default", large.n)], res.rings[("default", large.n)] = img, mark
    await page.context.close()


async def measure_decode(browser, servers: dict, plan: Plan, res: Results) -> None:
    pages = {}
    for name, server in servers.items():
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        await context.add_init_script(PROBE)
        pages[name] = await open_decode(context, server)
    per_block = plan.steps // plan.rounds
    for r in range(plan.rounds):
        for name in servers if r % 2 == 0 else reversed(list(servers)):
            lost = res.lost.setdefault(f"step {name}", [])
            res.steps.setdefault(name, []).extend(await slider_steps(pages[name], per_block, lost))
    for page in pages.values():
        await page.context.close()


async def measure_load(browser, server: Server, plan: Plan, tmp: Path, res: Results) -> None:
    """``plan.contexts`` sessions step a slider at once while a training runs in another process."""
    training = Training(tmp, "fashion-mnist" if have_fashion() else "digits")  # starts while the pages open
    contexts = []
    try:
        for _ in range(plan.contexts):
            contexts.append(await browser.new_context(viewport={"width": 1400, "height": 1000}))
            await contexts[-1].add_init_script(PROBE)
        pages = await asyncio.gather(*(open_decode(c, server) for c in contexts))
        log(f"{len(pages)} Decode pages open")
        await training.wait_stepping()
        log("training is stepping")
        start = time.time()
        lost = res.lost.setdefault("step under load", [])
        results = await asyncio.gather(*(slider_steps(p, plan.load_steps, lost) for p in pages))
        end = time.time()
        while training.steps()[-1]["time"] < end and training.proc.poll() is None and time.time() < end + 10:
            await asyncio.sleep(0.2)  # a step line after the last step: the window covers the sessions
        res.load_steps = [ms for r in results for ms in r]
        res.training.update(during=training.examples_per_s(start), data=training.data)
        log(f"{len(res.load_steps)} steps under load in {end - start:.0f} s")
    finally:
        training.stop()
        for c in contexts:
            await c.close()


async def failure_shots(browser, part: str) -> None:
    """Screenshots of every open page into $BENCH_INTERACTION_SHOTS (when set), to see why a part failed."""
    folder = os.environ.get("BENCH_INTERACTION_SHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for i, context in enumerate(browser.contexts):
        for j, page in enumerate(context.pages):
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(Path(folder) / f"{part}-{i}-{j}.png"), full_page=True)
                log(f"failure screenshot: {folder}/{part}-{i}-{j}.png ({page.url})")


async def measure(plan: Plan, tmp: Path, servers: dict, res: Results) -> None:
    from playwright.async_api import async_playwright

    for s in servers.values():
        s.wait_healthy()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        res.browser = browser.version
        parts = [
            ("page loads", lambda: measure_maps(browser, servers["default"], plan, res)),
            ("explore", lambda: measure_explore(browser, servers, plan, res)),
            ("decode", lambda: measure_decode(browser, servers, plan, res)),
            ("load", lambda: measure_load(browser, servers["default"], plan, tmp, res)),
        ]
        for part, job in parts:
            t = time.perf_counter()
            log(f"{part}…")
            try:
                await job()
            except Exception:
                await failure_shots(browser, part)
                raise
            res.seconds[part] = time.perf_counter() - t
        await browser.close()


# ---------------------------------------------------------------- the report


def pct(xs: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (numpy's default); p50 is the median."""
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def fmt(xs: list[float]) -> tuple[str, str, str]:
    if not xs:
        return "0", "–", "–"
    return str(len(xs)), f"{pct(xs, 0.5):,.0f}", f"{pct(xs, 0.95):,.0f}"


def times(n: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``; ``once`` for one time."""
    if word == "time" and n == 1:
        return "once"
    return f"{n} {word}{'' if n == 1 else 's'}"


def lost_note(res: Results) -> str:
    lost = {k: len(v) for k, v in res.lost.items() if v}
    if not lost:
        return ""
    items = ", ".join(f"{k}: {v}" for k, v in lost.items())
    return f"\nInteractions after which no new picture came (not timed; a click on the item already shown): {items}.\n"


def report(plan: Plan, res: Results, prep: dict, gcinfo: dict) -> str:
    small, large = plan.views
    d = plan.default_view
    data = "Fashion-MNIST" if plan.data == "fashion-mnist" else "scikit-learn's digits"
    bg = "Fashion-MNIST" if res.training.get("data") == "fashion-mnist" else "digits"
    cells = lambda xs: " | ".join(fmt(xs))  # noqa: E731
    clicks = lambda name, v: res.clicks.get((name, v.n), [])  # noqa: E731
    marks = lambda name, v: res.rings.get((name, v.n), [])  # noqa: E731
    lines = [
        "## Interaction in headless Chromium",
        "",
        f"Debian's Chromium {res.browser} (headless, software WebGL) driven by Playwright against "
        f"`streamlit run app.py` on 127.0.0.1; {os.cpu_count()} CPU cores shared with other work, so read the "
        "numbers as rough. Model: the default MLP (784-400-20-400-784) trained "
        f"{times(plan.epochs, 'epoch')} on {data} with `python -m vae train` (test −ELBO "
        f"{-prep['test_elbo']:.1f} nats). Every map the pages show was "
        "cached on disk beforehand with the page's own code (`ui.latent_means` + "
        "`vae.projection.cached_projection`), so no projection is fitted while timing. Times are taken inside "
        "the page with `performance.now()`: from navigation start, or from the `mousedown` / `keydown` of the "
        "input, to the animation frame in which the map shows the expected points, or to the moment the new "
        "picture has loaded. Milliseconds.",
        *[f"\n{note}" for note in plan.notes],
        "",
        "### Explore: map drawn, map clicks (Streamlit defaults)",
        "",
        "| interaction | points | n | p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| open Explore in a new tab → map drawn (its default view: UMAP of the {d.split} split) | {d.n:,} | "
        f"{cells(res.loads)} |",
    ]
    for v in plan.views:
        lines.append(
            f"| then, in that tab, choose *{v.method} · {v.split} · {v.option}* → map drawn | {v.n:,} | "
            f"{cells(res.switches.get(v.n, []))} |"
        )
    for v in plan.views:
        lines.append(f"| click a point → its decoded reconstruction loaded | {v.n:,} | {cells(clicks('default', v))} |")
        lines.append(f"| click a point → map redrawn with the point ringed | {v.n:,} | {cells(marks('default', v))} |")
    cut = (
        f" The test split was cut to {plan.max_test:,} images (`--max-test`): below 4,096 points umap-learn skips "
        "pynndescent, whose numba code takes about 25 s to compile in every new process, so caching the default "
        "UMAP map beforehand stays cheap."
        if plan.max_test
        else ""
    )
    whole = (
        f" The page shows one split at a time: its largest map is the {large.n:,}-image train split, not the "
        "70,000 images of train and test together."
        if plan.data == "fashion-mnist"
        else ""
    )
    lines += [
        "",
        "Baseline: the first row, a page load at the page's default view. The split and the number of points "
        "are widgets without URL parameters and a new tab starts at the default view, so the "
        f"{small.n:,}- and {large.n:,}-point maps are timed in each of those tabs right after its page load, "
        "from the `mousedown` on the widget that completes the choice to the frame that shows the new map: a "
        "whole-page rerun, the figure sent and drawn for the first time in that tab (Streamlit's browser keeps "
        "large messages it has seen by hash, so going back to a map already drawn in the tab is faster and is "
        "not what a page load pays). A page load straight into such a map would add the new session's start, "
        f"which the first row includes.{whole}{cut} Page loads reuse one "
        "browser context (a warm HTTP cache) after an uncounted first round. Clicks land on data points placed "
        "with Plotly's own axes (`getBoundingClientRect` + `_fullLayout.xaxis._offset` + `l2p`), in a tab kept "
        f"open at the {small.n:,}-point map, later switched to the {large.n:,}-point one.",
        "",
        "### Streamlit's garbage collection after each run: on (default) and off",
        "",
        f"| interaction | n | {SERVER_NAMES['default']}: p50 ms | p95 ms | n | {SERVER_NAMES['gc_off']}: p50 ms "
        "| p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| Decode: slider step (arrow key) → new decoded image | {cells(res.steps.get('default', []))} | "
        f"{cells(res.steps.get('gc_off', []))} |",
        f"| Explore, {small.n:,} points: click a point → decoded reconstruction loaded | "
        f"{cells(clicks('default', small))} | {cells(clicks('gc_off', small))} |",
        f"| Explore, {small.n:,} points: click a point → map redrawn with the point ringed | "
        f"{cells(marks('default', small))} | {cells(marks('gc_off', small))} |",
        "",
        f"Baseline: {SERVER_NAMES['default']}, where `runner.postScriptGC` is on and Streamlit runs a full "
        "`gc.collect()` after every script and fragment run. Both servers run the same app, which always freezes "
        "the collector once per process (`app.py` calls `ui.freeze_gc_once()` after importing `ui`, which "
        "brings in torch, numpy, plotly and `vae`; nothing turns that off), so the one difference between the "
        "columns is that post-run collection; automatic generational collections happen in both. What the "
        "collection still walks is what came after the freeze (pandas and the pages' modules, the session's "
        "objects): in a separate process holding the app's modules, a full collection took "
        f"{gcinfo['no_freeze_ms']:.0f} ms before the freeze ({gcinfo['objects_before_freeze']:,} tracked objects) "
        f"and {gcinfo['after_freeze_ms']:.1f} ms after it plus the Explore page's imports "
        f"({gcinfo['objects_after_freeze']:,} unfrozen objects). The two servers ran side by side, measured in "
        f"alternating blocks ({plan.rounds} per server and interaction). The Decode page was used with its "
        "in-browser decoding switched off where it has that toggle: each step is decoded on the server.",
        "",
        f"### {plan.contexts} sessions at once while a model trains",
        "",
        "| sessions | beside them | n | p50 ms | p95 ms |",
        "| --- | --- | ---: | ---: | ---: |",
        f"| 1 | nothing | {cells(res.steps.get('default', []))} |",
        f"| {plan.contexts}, each in its own browser context | a {bg} training (default MLP, 2 threads) | "
        f"{cells(res.load_steps)} |",
    ]
    during, alone = res.training.get("during"), prep.get("examples_per_s")
    speed = ""
    if during and alone and res.training.get("data") == plan.data:
        speed = (
            f" Over the seconds the sessions stepped, the training ran at {during:,.0f} examples/s; alone "
            f"(training the benchmark's model before any server started) it ran at {alone:,.0f}."
        )
    elif during:
        speed = f" Over the seconds the sessions stepped, the training ran at {during:,.0f} examples/s."
    lines += [
        "",
        "Baseline: the single-session Decode step of the previous table (same server, Streamlit defaults, "
        f"nothing beside it). Each of the {plan.contexts} sessions presses an arrow key on its own Decode page "
        f"and waits for its own new image, {times(plan.load_steps, 'time')}, all at once, while "
        "`python -m vae train` runs in another process (its own runs folder, so new sessions still open the "
        "benchmark's run; stopped afterwards)." + speed,
        lost_note(res),
        f"Reproduce alone: `{COMMAND}` (prints this section; `--quick`: digits, about 5 interactions each). "
        "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in res.seconds.items()) + ".",
    ]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def run(quick: bool = False, *, interactions: int | None = None, contexts: int | None = None) -> str:
    """Run the benchmark and return its markdown section.

    ``quick``: digits instead of Fashion-MNIST and about 5 interactions each (the smoke test passes
    smaller ``interactions`` and ``contexts``). Needs Debian's Chromium at /usr/bin/chromium.
    """
    missing = [] if Path(CHROMIUM).exists() else [f"{CHROMIUM} (apt-get install chromium)"]
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright; never `playwright install`)")
    if missing:
        return f"## Interaction in headless Chromium\n\nSkipped: missing {' and '.join(missing)}.\n"
    plan = make_plan(quick, interactions, contexts)
    res = Results()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-interaction-") as tmp_name:
        tmp = Path(tmp_name)
        runs = tmp / "runs"
        t = time.perf_counter()
        log(f"training the benchmark run ({plan.data}, {plan.epochs} epochs)…")
        prep = train_run(runs, plan)
        rows = map(json.loads, (runs / RUN / "metrics.jsonl").read_text().splitlines())
        epochs = [r for r in rows if r.get("type") == "epoch"]
        if epochs:
            prep["examples_per_s"] = epochs[-1].get("examples_per_s")
        res.seconds["training"] = time.perf_counter() - t
        t = time.perf_counter()
        gcinfo = measure_gc(runs)
        res.seconds["gc probe"] = time.perf_counter() - t
        servers = {name: Server(runs, name, extra) for name, extra in SERVERS.items()}  # boot meanwhile
        try:
            t = time.perf_counter()
            log("caching the maps…")
            precompute_maps(runs, plan)
            res.seconds["maps"] = time.perf_counter() - t
            asyncio.run(measure(plan, tmp, servers, res))
        finally:
            for server in servers.values():
                server.stop()
    res.seconds["total"] = time.perf_counter() - start
    log(f"done in {res.seconds['total']:.0f} s")
    return report(plan, res, prep, gcinfo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits and about 5 interactions each")
    parser.add_argument("--precompute", nargs=2, metavar=("RUN_DIR", "VIEWS"), help=argparse.SUPPRESS)
    parser.add_argument("--gc-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.precompute:
        precompute_child(*args.precompute)
    elif args.gc_child:
        gc_child()
    else:
        with contextlib.redirect_stdout(sys.stderr):  # only the markdown goes to stdout
            text = run(quick=args.quick)
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
