"""Driving the app's pages in Chromium for bench/bench_interaction.py (Playwright's async API).

Each helper waits for the page to show the result of an input and returns times taken inside the page with
``performance.now()`` (milliseconds): the ``PROBE`` init script records the time of every ``mousedown`` and
navigation ``keydown`` and the moment the watched pictures have all loaded with new sources; the map helpers
watch Plotly's own figure state frame by frame. Serving the app and launching Chromium is ``harness.serving``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.serving import APP, IDLE_JS

try:
    from playwright.async_api import TimeoutError as PlaywrightTimeout
except ImportError:  # bench_interaction.run() says what is missing
    PlaywrightTimeout = TimeoutError

TIMEOUT_MS = 60_000  # one interaction; a slow shared machine can take seconds
CLICK_TIMEOUT_MS = 20_000  # a click that picked the item already shown never shows a new picture
MAP_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1400, "height": 1000}

DECODED = 'img[alt="decoded image"]'
SERVER_MAP = "/explore?explore_browser=false"  # Explore with its server-drawn map (the toggle is in the URL)
BROWSER_TOGGLE = "Decode in the browser while dragging"  # the Decode page's in-browser decoder, where present
SLIDERS = '[data-testid="stMain"] [class*="st-key-decode_dim_"] input[type="range"]'  # the latent dimensions' sliders
BROWSER_RANGES = "input.le-range"  # the in-browser decoder's sliders (ui/decoder/panel.js)
DRAWS = "globalThis.__latentExplorerDecoders.drawTimes"  # when the browser decoder drew (ui/decoder/core.js)
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
  const gd = document.querySelector('.js-plotly-plot');
  gd.scrollIntoView({block: 'center', behavior: 'instant'});  // a tall map: bring it into the view
  const r = gd.getBoundingClientRect();
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


@dataclass(frozen=True)
class View:
    """A state of the Explore page's widgets: split radio, Points option, the number of points drawn."""

    split: str
    option: str  # the Points option's text
    n: int  # points drawn
    size: int | None  # what the page passes to ui.cache.latent_means (None: the whole split)
    method: str = "PCA"


# ---------------------------------------------------------------- pages and waits


async def new_context(browser):
    """A browser context (its own session and cookies) whose pages all run ``PROBE`` first."""
    context = await browser.new_context(viewport=VIEWPORT)
    await context.add_init_script(PROBE)
    return context


async def wait_idle(page, timeout: float = MAP_TIMEOUT_MS) -> None:
    """``ui.serving.wait_idle`` for the async API."""
    await page.wait_for_selector(APP, timeout=timeout)
    await page.wait_for_function(IDLE_JS, timeout=timeout)


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
    """A new page of ``context`` at ``url`` (interactions time out after TIMEOUT_MS)."""
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
    """Wait until the map's x-axis reads ``title`` ("UMAP 1", "PCA 1")."""
    await page.wait_for_function(
        "(t) => { const gd = document.querySelector('.js-plotly-plot');"
        " return !!(gd && gd._fullLayout) && gd._fullLayout.xaxis.title.text === t; }",
        arg=title,
        timeout=MAP_TIMEOUT_MS,
    )


async def open_explore(context, url: str, view: View, default: View):
    """A new Explore page of the app at ``url``, turned from its ``default`` view to ``view``, map drawn.

    The page draws the map in the browser by default (a toggle); it is switched off: a click on the map then
    goes to the server and back, the path this benchmark times (bench/bench_mapview.py times the browser's).
    """
    page = await open_page(context, f"{url}{SERVER_MAP}")
    await wait_map(page, default)
    await settle(page)
    await choose_view(page, view, default)
    await wait_map(page, view)
    await settle(page)
    return page


async def open_decode(context, url: str):
    """The Decode page decoding on the server: Streamlit sliders, a new picture per released step.

    Where the page offers in-browser decoding (a toggle, on by default), it is switched off: a step then
    goes to the server and back, which is what this benchmark times.
    """
    page = await open_page(context, f"{url}/decode")
    toggle = page.get_by_role("switch", name=BROWSER_TOGGLE)
    await page.locator(DECODED).or_(toggle).first.wait_for(timeout=MAP_TIMEOUT_MS)  # the toggle comes first
    if await toggle.count() and await toggle.is_checked():
        await page.get_by_text(BROWSER_TOGGLE, exact=True).click()
    await page.locator(DECODED).wait_for(timeout=MAP_TIMEOUT_MS)
    await settle(page)
    await page.evaluate("(s) => window.__bench.watch(s)", DECODED)
    await page.locator(SLIDERS).first.focus()
    return page


async def open_decode_in_browser(context, url: str):
    """The Decode page as it opens by default: its sliders decode in the browser (no server round trip)."""
    page = await open_page(context, f"{url}/decode")
    await page.locator(BROWSER_RANGES).first.wait_for(timeout=MAP_TIMEOUT_MS)
    await page.wait_for_function(f"() => {DRAWS}.length > 0", timeout=MAP_TIMEOUT_MS)  # the first picture
    await settle(page)
    return page


# ---------------------------------------------------------------- timed interactions


async def browser_slider_steps(page, count: int, lost: list[int]) -> list[float]:
    """Press an arrow key on the browser decoder's first slider ``count`` times, one at a time; ms from keydown
    to the redrawn picture (the decoder's own record of its draws)."""
    out = []
    for i in range(count):
        await page.locator(BROWSER_RANGES).first.focus()
        before = await page.evaluate(f"() => [window.__bench.inputs.length, {DRAWS}.length]")
        await page.keyboard.press("ArrowRight" if i % 8 < 4 else "ArrowLeft")
        try:
            await page.wait_for_function(f"() => {DRAWS}.length > {before[1]}", timeout=TIMEOUT_MS)
        except PlaywrightTimeout:
            lost.append(1)
            continue
        key, drawn = await page.evaluate(f"() => [window.__bench.inputs[{before[0]}], {DRAWS}[{before[1]}]]")
        out.append(drawn - key)
    return out


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
