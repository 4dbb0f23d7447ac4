"""Explore's server-drawn map in a real browser (the "Decode under the pointer" toggle off, as for models the
browser cannot decode): the map draws, a click on a point shows that item and its reconstruction, a click on
empty space decodes that spot and marks it with a star. The browser-drawn map: test_browser_mapview.py.

Clicks land on the pixel of a data point (or of an invisible click-grid point) computed from Plotly's
own axes (``_fullLayout.xaxis._offset + l2p(x)``). Latencies are printed (run with -s), never asserted.
"""

from __future__ import annotations

import time

from browser import E2E_RUN, display_toggle, selected_run, shot, wait_idle

# The point of trace c farthest from every click-grid point (trace 0) and every other label's point: a click there
# cannot be taken for the grid or for a point drawn over it.
JS_CLEAR_POINT = """(c) => {
  const gd = document.querySelector('.js-plotly-plot'), r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, t = gd._fullData[c], grid = gd._fullData[0];
  const others = gd._fullData.filter((o, k) => k !== c);  // the click grid and the other labels' points
  let best = -1, pick = 0;
  for (let i = 0; i < t.x.length; i++) {
    const px = xa.l2p(t.x[i]), py = ya.l2p(t.y[i]);
    let near = Infinity;
    for (const o of others) for (let j = 0; j < o.x.length; j++)
      near = Math.min(near, Math.hypot(xa.l2p(o.x[j]) - px, ya.l2p(o.y[j]) - py));
    if (near > best) { best = near; pick = i; }
  }
  return {x: r.left + xa._offset + xa.l2p(t.x[pick]), y: r.top + ya._offset + ya.l2p(t.y[pick]), name: t.name,
          dx: t.x[pick], dy: t.y[pick]};
}"""
# The click-grid point (trace 0) farthest from every data point, away from the plot's edges.
JS_EMPTY = """() => {
  const gd = document.querySelector('.js-plotly-plot'), r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const px = (t, i) => [xa.l2p(t.x[i]), ya.l2p(t.y[i])];
  const data = [];
  for (const t of gd._fullData.slice(1)) if (t.showlegend) for (let i = 0; i < t.x.length; i++) data.push(px(t, i));
  const grid = gd._fullData[0];
  let best = -1, pick = -1;
  for (let i = 0; i < grid.x.length; i++) {
    const [gx, gy] = px(grid, i);
    if (gx < 40 || gy < 40 || gx > xa._length - 40 || gy > ya._length - 40) continue;
    let near = Infinity;
    for (const [dx, dy] of data) near = Math.min(near, Math.hypot(dx - gx, dy - gy));
    if (near > best) { best = near; pick = i; }
  }
  const [gx, gy] = px(grid, pick);
  return {x: r.left + xa._offset + gx, y: r.top + ya._offset + gy, gap: best, dx: grid.x[pick], dy: grid.y[pick]};
}"""


def on_plot(page, js: str, arg=None):
    """``js(arg)`` on the drawn chart, once there is one: Streamlit swaps the chart's element out for a moment
    when the page reruns, and an evaluate landing then would find no plot."""
    guarded = (
        "(a) => { const gd = document.querySelector('.js-plotly-plot');"
        f" return gd && gd._fullData && gd._fullLayout ? ({js})(a) : null; }}"
    )
    return page.wait_for_function(guarded, arg=arg).json_value()


IMAGES_LOADED = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
  .every(img => img.complete && img.naturalWidth > 0)"""
# The chart shows a marker of this symbol at data position (dx, dy): the map has redrawn after a click.
MARKER_AT = """([symbol, dx, dy]) => {
  const gd = document.querySelector('.js-plotly-plot');  // null for a moment while Streamlit redraws
  return !!(gd && gd._fullData) && gd._fullData.some(t => t.marker && t.marker.symbol === symbol
    && Math.abs(t.x[0] - dx) < 1e-3 * (1 + Math.abs(dx)) && Math.abs(t.y[0] - dy) < 1e-3 * (1 + Math.abs(dy)));
}"""


def open_home(page, app_url):
    """The home page, fully drawn."""
    page.goto(app_url)
    page.get_by_role("heading", name="Latent Explorer").wait_for()
    wait_idle(page)


def open_explore(page, app_url, server: bool = True):
    open_home(page, app_url)
    page.get_by_role("link", name="Explore").first.click()
    page.get_by_role("heading", name="Explore the latent map").wait_for()
    assert selected_run(page) == E2E_RUN
    if server:
        display_toggle(page, "Decode under the pointer")
        page.wait_for_url("**explore_browser=false*")
        # the browser-drawn map is gone and the server's chart drawn (a busy machine can show the old map a while)
        page.wait_for_function("() => !document.querySelector('.lem') && !!document.querySelector('.js-plotly-plot')")
        wait_idle(page)


def wait_for_map(page, method: str, timeout: float = 30_000):
    page.get_by_text(f"{method} of 360 latent means", exact=False).wait_for(timeout=timeout)
    page.wait_for_function(  # the chart on screen is this method's (not the one it replaces)
        "(m) => { const gd = document.querySelector('.js-plotly-plot');"
        " return gd && gd._fullLayout && gd._fullLayout.xaxis.title.text === m + ' 1'; }",
        arg=method,
        timeout=timeout,
    )
    wait_idle(page, timeout)


# Plotly is hovering the point (dx, dy) of trace c, the one its click will then report.
HOVERING = """([c, dx, dy]) => { const gd = document.querySelector('.js-plotly-plot'), h = gd && gd._hoverdata;
  return !!(h && h.length) && h[0].curveNumber === c && h[0].x === dx && h[0].y === dy; }"""


def aim(page, js: str, arg=None, trace: int = 0) -> dict:
    """Point at the spot ``js(arg)`` gives on the chart, and return it once Plotly hovers that point of ``trace``.
    The chart can still move as the page settles (a line above it going: the map shifts under a computed spot and
    a click there decodes empty space), so the spot is computed again until the pointer is on it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        pos = on_plot(page, js, arg)
        page.mouse.move(pos["x"] + 4, pos["y"] + 4)  # off and on again: a pointer already there moves no hover
        page.mouse.move(pos["x"], pos["y"])
        try:
            page.wait_for_function(HOVERING, arg=[trace, pos["dx"], pos["dy"]], timeout=3000)
            return pos
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"Plotly never hovered the point of trace {trace} at {pos}")


def click_and_wait(page, pos, text: str, marker: str) -> float:
    """Click, wait for the side panel's heading (the seconds this took are returned) and the map's marker."""
    start = time.perf_counter()
    page.mouse.click(pos["x"], pos["y"])
    page.get_by_text(text, exact=True).wait_for()
    seconds = time.perf_counter() - start
    page.wait_for_function(MARKER_AT, arg=[marker, pos["dx"], pos["dy"]])
    wait_idle(page)
    return seconds


def test_pca_map_point_click_shows_the_item_and_empty_click_decodes_a_star(page, app_url):
    open_explore(page, app_url)
    page.get_by_text("PCA", exact=True).click()  # UMAP (the default) keeps fitting in the background
    wait_for_map(page, "PCA")
    shot(page, "explore-pca-map")
    assert on_plot(page, "() => document.querySelector('.js-plotly-plot')._fullData.length") == 11  # grid + 10

    latencies = []
    for trace, label in ((1, "0"), (4, "3"), (8, "7")):
        pos = aim(page, JS_CLEAR_POINT, trace, trace)
        assert pos["name"] == label
        latencies.append(click_and_wait(page, pos, f"Label: {label}", "circle-open"))
        page.get_by_text("reconstruction (decoded mean)").wait_for()
    # original, reconstruction, q(z|x) samples, then the 12 nearest neighbours
    assert page.locator('[data-testid="stImage"] img').count() == 3 + 12
    page.wait_for_function(IMAGES_LOADED)
    shot(page, "explore-point-selected")

    empty = aim(page, JS_EMPTY)
    assert empty["gap"] > 10  # pixels from the nearest data point: a click there hits the grid
    latencies.append(click_and_wait(page, empty, "Decoded map point", "star"))
    page.wait_for_function(IMAGES_LOADED)
    assert page.locator('[data-testid="stImage"] img').count() == 1  # the decoded point
    assert page.get_by_role("button", name="Open in Decode").is_visible()
    shot(page, "explore-empty-decoded")
    print(f"\nclick -> new panel (s): points {[round(t, 3) for t in latencies[:3]]}, empty {latencies[3]:.3f}")

    page.get_by_role("button", name="Open in Decode").click()
    page.wait_for_url("**/decode*")  # its point follows in the query (?z=)


def test_umap_map_the_default_projection(page, app_url):
    """The default UMAP map (compiles numba code the first time in a server: tens of seconds)."""
    open_explore(page, app_url)
    start = time.perf_counter()
    wait_for_map(page, "UMAP", timeout=180_000)
    print(f"\nUMAP map shown after {time.perf_counter() - start:.1f} s")
    shot(page, "explore-umap-map")
    empty = aim(page, JS_EMPTY)
    click_and_wait(page, empty, "Decoded map point", "star")
    display_toggle(page, "Decoded backdrop")
    page.wait_for_function(
        "() => { const gd = document.querySelector('.js-plotly-plot');"
        " return !!(gd && gd._fullLayout) && gd._fullLayout.images.length === 1; }"
    )
    wait_idle(page)
    shot(page, "explore-umap-backdrop")
