"""Explore's browser-drawn map in a real browser: the decoder runs under the pointer, on empty space and on
points, at display rate; a click pins a spot or an item and reaches Python; the PCA map stands in while
UMAP fits.

Pointer positions come from Plotly's own axes (``_fullLayout.xaxis._offset + l2p(x)``); the component
records the map position it decoded last (``data-x``, ``data-y``), and the test compares its canvas with
torch's decode of ``inverse_lookup`` there. Speeds are printed (run with -s), never asserted.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from browser import E2E_RUN, selected_run, shot, wait_idle
from playwright.sync_api import expect

from vae.data import load_dataset
from vae.projection import LatentProjector
from vae.runs import folder as rf
from vae.web import decoder as webdecoder

PLOT = ".lem-plot"
READY = """() => { const gd = document.querySelector('.lem-plot');
  return !!(gd && gd._fullLayout && gd._fullData && document.querySelector('.lem').dataset.map); }"""
# The plot area on screen and, for each label, its points' pixel positions (page coordinates).
GEOMETRY = """() => {
  const gd = document.querySelector('.lem-plot');
  gd.scrollIntoView({block: 'center', behavior: 'instant'});  // the map is taller than the view: bring it in
  const r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const left = r.left + xa._offset, top = r.top + ya._offset;
  const t = gd._fullData[0], lem = gd.__lem;  // the points, one trace in a shuffled order, and each one's label
  const traces = lem.names.map((name, c) => {
    const mine = [...t.x.keys()].filter(p => lem.category[p] === c);
    return {name, px: mine.map(p => left + xa.l2p(t.x[p])), py: mine.map(p => top + ya.l2p(t.y[p])),
            rows: mine.map(p => lem.rows[p])};
  });
  const lg = gd.querySelector('.legend'), box = lg ? lg.getBoundingClientRect() : null;  // over the plot's corner
  const legend = box ? [box.left, box.top, box.right, box.bottom] : null;
  return {left, top, width: xa._length, height: ya._length, traces, legend,
          title: xa.title.text, map: document.querySelector('.lem').dataset.map};
}"""
# What the component shows: the decoded canvas's RGBA bytes, the position it decoded, the hovered item.
SHOWN = """(sel) => {
  const c = document.querySelector(sel), root = document.querySelector('.lem');
  const rgba = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return {rgba: Array.from(rgba), w: c.width, h: c.height, x: Number(root.dataset.x), y: Number(root.dataset.y),
          draws: Number(root.dataset.draws || 0), item: root.dataset.item ?? null, hidden: c.hidden};
}"""


def open_explore(page, app_url, method: str = "PCA"):
    page.goto(app_url)
    page.get_by_role("heading", name="Latent Explorer").wait_for()
    wait_idle(page)
    page.get_by_role("link", name="Explore").first.click()
    page.get_by_role("heading", name="Explore the latent map").wait_for()
    assert selected_run(page) == E2E_RUN
    if method == "PCA":
        page.get_by_text("PCA", exact=True).click()
    page.wait_for_function(
        "(m) => { const gd = document.querySelector('.lem-plot');"
        " return !!(gd && gd._fullLayout) && gd._fullLayout.xaxis.title.text === m + ' 1'; }",
        arg=method,
        timeout=180_000,
    )
    page.wait_for_function(READY)
    wait_idle(page)


def wait_points(page, n: int) -> None:
    """Wait until the browser's map shows ``n`` data points (the new map, not the one it replaces)."""
    page.wait_for_function(
        "(n) => { const gd = document.querySelector('.lem-plot'); return !!(gd && gd._fullData) &&"
        " gd._fullData[0].name === 'points' && gd._fullData[0].x.length === n; }",
        arg=n,
    )
    wait_idle(page)


def projector(runs_dir, geometry) -> LatentProjector:
    key = geometry["map"].split("/", 1)[1]  # "<run>@<checkpoint>/<map key>"
    return LatentProjector.load(runs_dir / E2E_RUN / "projections" / f"{key}.npz")


def empty_spots(geometry, n: int) -> list[tuple[float, float]]:
    """``n`` pixel positions inside the plot and off its legend, each far from every data point and from each
    other."""
    pts = np.column_stack([np.concatenate([t["px"] for t in geometry["traces"]]),
                           np.concatenate([t["py"] for t in geometry["traces"]])])  # fmt: skip
    xs = np.linspace(geometry["left"] + 30, geometry["left"] + geometry["width"] - 30, 40)
    ys = np.linspace(geometry["top"] + 30, geometry["top"] + geometry["height"] - 30, 40)
    cand = np.array([(x, y) for x in xs for y in ys])
    if geometry["legend"]:  # a click on the legend is the legend's, not the map's
        x0, y0, x1, y1 = geometry["legend"]
        inside = (cand[:, 0] > x0 - 10) & (cand[:, 0] < x1 + 10) & (cand[:, 1] > y0 - 10) & (cand[:, 1] < y1 + 10)
        cand = cand[~inside]
    gap = np.min(np.hypot(*(cand[:, None, :] - pts[None, :, :]).transpose(2, 0, 1)), axis=1)
    chosen: list[np.ndarray] = []
    for i in np.argsort(-gap):
        if all(np.hypot(*(cand[i] - c)) > 60 for c in chosen):
            chosen.append(cand[i])
        if len(chosen) == n:
            break
    assert gap[np.argsort(-gap)[0]] > 15, "the map has no empty space"
    return [(float(x), float(y)) for x, y in chosen]


def isolated_point(geometry, name: str) -> tuple[float, float]:
    """The pixel of label ``name``'s point farthest from every other point (a click there picks exactly it)."""
    _, x, y = isolated(geometry, name)
    return x, y


def isolated(geometry, name: str) -> tuple[int, float, float]:
    """Label ``name``'s point farthest from every other point: its place among the label's points and its pixel."""
    trace = next(t for t in geometry["traces"] if t["name"] == name)
    pts = np.column_stack([trace["px"], trace["py"]])
    others = np.column_stack([np.concatenate([t["px"] for t in geometry["traces"]]),
                              np.concatenate([t["py"] for t in geometry["traces"]])])  # fmt: skip
    d = np.hypot(*(pts[:, None, :] - others[None, :, :]).transpose(2, 0, 1))
    d[d == 0] = np.inf
    k = int(np.argmax(d.min(axis=1)))
    return k, float(pts[k, 0]), float(pts[k, 1])


def hover(page, x: float, y: float) -> dict:
    """Move the pointer to (x, y) and wait for the component to decode there."""
    before = page.evaluate(SHOWN, ".lem-decoded")["draws"]
    page.mouse.move(x, y)
    page.wait_for_function("(n) => Number(document.querySelector('.lem').dataset.draws) > n", arg=before)
    return page.evaluate(SHOWN, ".lem-decoded")


def pixels(shown: dict, channels: int) -> np.ndarray:
    rgba = np.asarray(shown["rgba"], dtype=np.uint8).reshape(shown["h"], shown["w"], 4)
    return rgba[..., :channels].transpose(2, 0, 1)  # (C, H, W)


def test_hover_decodes_empty_space_and_shows_the_item_under_the_pointer(page, app_url, runs_dir):
    open_explore(page, app_url)
    geometry = page.evaluate(GEOMETRY)
    proj = projector(runs_dir, geometry)
    model = rf.load_model(runs_dir / E2E_RUN)
    empty = ".lem-decoded.lem-empty"
    assert page.locator(empty).count() == 1  # before any pointer: an empty frame, not a black square
    for x, y in empty_spots(geometry, 3):
        shown = hover(page, x, y)
        assert page.locator(empty).count() == 0
        xy = np.array([shown["x"], shown["y"]])  # where the component decoded: where the pointer is
        np.testing.assert_allclose(xy, to_map(geometry, proj, x, y), atol=0.02 * np.ptp(proj.embedding_, axis=0).max())
        z = proj.inverse_lookup(xy, method="grid")
        want = webdecoder.expected_pixels(model, z[None, :])[0]  # (C, H, W) uint8
        got = pixels(shown, want.shape[0])
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, "the browser drew something else there"
        assert shown["item"] in ("", None)  # empty space: no item shown
    shot(page, "mapview-hover-empty")

    # an item: the most isolated point of label 0, so Plotly's hover picks exactly it
    ds = load_dataset(rf.load_data_config(runs_dir / E2E_RUN))
    k, x, y = isolated(geometry, "0")
    row = next(t for t in geometry["traces"] if t["name"] == "0")["rows"][k]  # label 0's k-th point: this test item
    assert ds.y_test[row] == 0
    page.mouse.move(x, y)
    page.wait_for_function("(r) => document.querySelector('.lem').dataset.item === String(r)", arg=row)
    item = page.evaluate(SHOWN, ".lem-item")
    assert not item["hidden"]
    want = np.round(ds.x_test[row].numpy() * 255).astype(int)
    assert np.abs(pixels(item, want.shape[0]).astype(int) - want).max() <= 1
    page.get_by_text(f"test item #{row}").wait_for()
    shot(page, "mapview-hover-item")


def to_map(geometry, proj, x: float, y: float) -> np.ndarray:
    """A page pixel inside the plot as map coordinates, from the axes' ranges (linear axes)."""
    x0, x1 = proj.grid_x_[0], proj.grid_x_[-1]
    y0, y1 = proj.grid_y_[0], proj.grid_y_[-1]
    fx = (x - geometry["left"]) / geometry["width"]
    fy = (y - geometry["top"]) / geometry["height"]
    return np.array([x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)])


def test_a_pointer_sweep_redraws_many_times(page, app_url):
    open_explore(page, app_url)
    g = page.evaluate(GEOMETRY)
    page.mouse.move(g["left"] + 5, g["top"] + g["height"] / 2)
    before = page.evaluate(SHOWN, ".lem-decoded")["draws"]
    start = time.perf_counter()
    moves = 0
    while (elapsed := time.perf_counter() - start) < 1.5:
        f = elapsed / 1.5
        page.mouse.move(g["left"] + 5 + f * (g["width"] - 10), g["top"] + g["height"] * (0.2 + 0.6 * f))
        moves += 1
    draws = page.evaluate(SHOWN, ".lem-decoded")["draws"] - before
    print(f"\n1.5 s sweep: {moves} pointer moves, {draws} redraws")
    assert draws >= 20


def test_click_pins_a_star_and_an_item_for_python(page, app_url, runs_dir):
    open_explore(page, app_url)
    g = page.evaluate(GEOMETRY)
    x, y = empty_spots(g, 1)[0]
    page.mouse.click(x, y)
    page.get_by_text("Decoded map point", exact=True).wait_for()
    page.wait_for_function(
        "() => { const gd = document.querySelector('.lem-plot'); const t = gd._fullData[gd._fullData.length - 1];"
        " return t.marker.symbol === 'star' && t.x.length === 1; }"
    )
    star = page.evaluate(
        "() => { const gd = document.querySelector('.lem-plot'); const t = gd._fullData[gd._fullData.length - 1];"
        " return [t.x[0], t.y[0]]; }"
    )
    proj = projector(runs_dir, g)
    np.testing.assert_allclose(star, to_map(g, proj, x, y), atol=0.02 * np.ptp(proj.embedding_, axis=0).max())
    wait_idle(page)
    shot(page, "mapview-pinned-star")

    page.mouse.click(*isolated_point(g, "3"))  # a point of label 3
    page.get_by_text("Label: 3", exact=True).wait_for()
    page.get_by_text("reconstruction (decoded mean)").wait_for()
    wait_idle(page)
    shot(page, "mapview-pinned-item")

    page.mouse.click(x, y)  # back to the spot, and on to Decode with it
    page.get_by_text("Decoded map point", exact=True).wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Open in Decode").click()
    page.wait_for_url("**/decode*")  # its point follows in the query (?z=)


def test_pca_stands_in_while_umap_fits_then_umap_replaces_it(page, app_url):
    """The train split's UMAP map (no other test draws it): the PCA map is on screen first."""
    page.add_init_script(
        "setInterval(() => { const gd = document.querySelector('.lem-plot'); const t = gd && gd._fullLayout"
        " && gd._fullLayout.xaxis.title.text; const seen = (window.__titles ??= []);"
        " if (t && seen[seen.length - 1] !== t) seen.push(t); }, 25);"
    )
    open_explore(page, app_url, method="UMAP")  # drawn and shown: UMAP
    page.get_by_text("train", exact=True).click()
    start = time.perf_counter()
    page.wait_for_function("() => (window.__titles || []).join(',').endsWith('UMAP 1,PCA 1,UMAP 1')", timeout=180_000)
    print(f"\ntrain split: PCA stand-in, then UMAP after {time.perf_counter() - start:.1f} s")
    page.get_by_text("UMAP of 1,437 latent means", exact=False).wait_for()
    wait_idle(page)
    shot(page, "mapview-umap-train")


def pin_a_spot_on_both_splits(page, app_url: str) -> None:
    """Explore's PCA map of train + test with a spot of empty space pinned (its star in the URL)."""
    open_explore(page, app_url)  # PCA
    page.get_by_text("train + test", exact=True).click()
    wait_points(page, 1797)
    x, y = empty_spots(page.evaluate(GEOMETRY), 1)[0]
    page.mouse.click(x, y)
    page.get_by_text("Decoded map point", exact=True).wait_for()
    page.wait_for_url("**pin=*")


def test_a_copied_link_opens_the_same_view_with_its_pinned_point(browser, page, app_url):
    pin_a_spot_on_both_splits(page, app_url)
    link = page.url
    assert "explore_method=PCA" in link and "explore_split=train" in link  # the run: left out while it is the default
    pinned = page.evaluate("() => document.querySelector('.lem-plot')._fullData.at(-1).x[0]")

    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()  # a new session
    other.goto(link)
    other.get_by_text("Decoded map point", exact=True).wait_for(timeout=60_000)
    wait_points(other, 1797)
    assert selected_run(other) == E2E_RUN
    star = other.evaluate("() => document.querySelector('.lem-plot')._fullData.at(-1).x[0]")
    assert abs(star - pinned) < 1e-4 * (1 + abs(pinned))  # the same star, from the link alone
    shot(other, "mapview-from-link")
    other.context.close()


def test_bad_link_values_fall_back_to_defaults_with_a_sentence(page, app_url):
    page.add_init_script(  # every toast's text, kept: they fade after a few seconds
        "window.__toasts = []; new MutationObserver(() => document.querySelectorAll('[data-testid=stToast]')"
        ".forEach(t => { if (!window.__toasts.includes(t.innerText)) window.__toasts.push(t.innerText); }))"
        ".observe(document, {subtree: true, childList: true});"
    )
    page.goto(f"{app_url}/explore?run=nope&explore_method=TSNE&explore_split=-3&explore_points_test=abc&pin=1,x")
    page.get_by_role("heading", name="Explore the latent map").wait_for()
    wait_idle(page)
    page.wait_for_function("() => window.__toasts.length >= 5")
    toasts = " ".join(page.evaluate("() => window.__toasts"))
    for words in ("the run “nope”", "the projection “TSNE”", "the split “-3”", "points “abc”", "“1,x”"):
        assert words in toasts, toasts
    assert page.locator('[data-testid="stException"]').count() == 0
    assert selected_run(page) == E2E_RUN
    page.wait_for_function(READY, timeout=60_000)  # the default map (UMAP, or PCA standing in for it)
    shot(page, "mapview-bad-link")


CLOUD = """() => { const gd = document.querySelector('.lem-plot');
  const t = gd && gd._fullData && gd._fullData.find(t => t.name === 'q(z|x) samples');
  return t ? Array.from(t.x).join(',') : null; }"""
STRIP = '[data-testid="stImage"]:has-text("samples of q(z|x)") img'


def test_pinned_items_show_their_posterior_cloud_and_samples(page, app_url):
    open_explore(page, app_url)
    g = page.evaluate(GEOMETRY)
    page.mouse.click(*isolated_point(g, "3"))
    page.get_by_text("Label: 3", exact=True).wait_for()
    page.wait_for_function(CLOUD)
    cloud = page.evaluate(CLOUD)
    assert len(cloud.split(",")) == 100  # the item's q(z|x), sampled and placed on the map
    page.locator(STRIP).wait_for()
    strip = page.locator(STRIP).get_attribute("src")
    wait_idle(page)
    shot(page, "mapview-posterior")

    page.mouse.click(*isolated_point(g, "7"))
    page.get_by_text("Label: 7", exact=True).wait_for()
    page.wait_for_function("(old) => { const c = (" + CLOUD + ")(); return c && c !== old; }", arg=cloud)
    expect(page.locator(STRIP)).not_to_have_attribute("src", strip)  # the new item's samples, decoded
    shot(page, "mapview-posterior-second")


# Every URL the page's history was given (pushState, replaceState) and every Back, in order, with the time.
HISTORY_LOG = """(() => {
window.__history = [];
const note = (what, url) => window.__history.push([what, String(url), Math.round(performance.now())]);
for (const f of ["pushState", "replaceState"]) {
  const original = history[f];
  history[f] = function (...a) { note(f, a[2]); return original.apply(this, a); };
}
addEventListener("popstate", () => note("popstate", location.href));
})();"""


def link_values(url: str) -> tuple[str, dict]:
    """A page's path and its query's values."""
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)


def test_back_after_open_in_decode_returns_to_the_view_in_one_press(page, app_url):
    """Each page visit is one history entry holding its view: Back from Decode reopens Explore as it was."""
    page.add_init_script(HISTORY_LOG)  # what wrote the URL, for the failure's message
    pin_a_spot_on_both_splits(page, app_url)
    view, entries = page.url, page.evaluate("history.length")
    page.get_by_role("button", name="Open in Decode").first.click()
    page.get_by_role("heading", name="Decode", exact=True).wait_for()
    page.wait_for_url("**/decode?**z=*")
    wait_idle(page)
    assert page.evaluate("history.length") == entries + 1  # one entry for the visit to Decode
    page.go_back()
    # one press: Explore with its projection, split and pinned spot (the link's values; the order Streamlit writes
    # them in is not the view)
    page.get_by_role("heading", name="Explore the latent map").wait_for()
    deadline = time.time() + 30
    while link_values(page.url) != link_values(view) and time.time() < deadline:
        page.wait_for_timeout(200)
    assert link_values(page.url) == link_values(view), (page.url, view, page.evaluate("() => window.__history"))
    page.get_by_text("Decoded map point", exact=True).wait_for()
    wait_points(page, 1797)
    shot(page, "mapview-back-from-decode")


def test_a_path_drawn_on_the_map_plays_the_decoders_pictures_along_it_and_downloads_as_a_gif(page, app_url, runs_dir):
    """The mode bar's "Draw open freeform" tool: a path dragged across the map becomes 32 spots evenly along it, from
    its start to its end; the browser's frames equal torch's decodes of the inverse grid's codes there (1/255), they
    play in the panel over the map, and the page offers the same film as a GIF. Drawing pins nothing."""
    import io

    from PIL import Image

    open_explore(page, app_url)
    g = page.evaluate(GEOMETRY)
    page.locator('.lem-plot .modebar-btn[data-title="Draw open freeform"]').click()
    corners = [(0.2, 0.25), (0.45, 0.7), (0.8, 0.6)]  # fractions of the plot area
    path = [(g["left"] + fx * g["width"], g["top"] + fy * g["height"]) for fx, fy in corners]
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=15)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('.lem').dataset.films === '1'")
    film = page.evaluate("() => { const f = document.querySelector('.lem-plot').__lem.film;"
                         " return {points: f.points, w: f.frames[0].width, h: f.frames[0].height,"
                         " frames: f.frames.map((i) => Array.from(i.data))}; }")  # fmt: skip
    spots = np.asarray(film["points"])
    assert spots.shape == (32, 2)
    proj = projector(runs_dir, g)
    tol = 0.02 * np.ptp(proj.embedding_, axis=0).max()
    np.testing.assert_allclose(spots[0], to_map(g, proj, *path[0]), atol=tol)  # from the path's start ...
    np.testing.assert_allclose(spots[-1], to_map(g, proj, *path[-1]), atol=tol)  # ... to its end
    steps = np.hypot(*np.diff(spots, axis=0).T)
    step = np.median(steps)  # evenly along the path: equal steps, but for the one cutting its corner (a chord)
    assert steps.max() <= 1.001 * step and np.count_nonzero(steps < 0.999 * step) <= 1
    model = rf.load_model(runs_dir / E2E_RUN)
    want = webdecoder.expected_pixels(model, proj.inverse_lookup(spots, method="grid"))  # (32, C, H, W) uint8
    got = np.asarray(film["frames"], dtype=np.uint8).reshape(32, film["h"], film["w"], 4)[..., :1].transpose(0, 3, 1, 2)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, "the film shows other pictures than the decoder's"
    expect(page.locator(".lem-film")).to_be_visible()
    page.get_by_text("Along your path", exact=False).first.wait_for()
    wait_idle(page)
    shot(page, "mapview-path-film")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the film (GIF)").click()
    gif = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert gif.n_frames == 32
    scale = gif.size[0] // want.shape[-1]
    for k in (0, 31):
        gif.seek(k)
        shown = np.asarray(gif.convert("L"))[::scale, ::scale]
        assert np.abs(shown.astype(int) - want[k, 0].astype(int)).max() <= 1
    assert page.get_by_text("Decoded map point", exact=True).count() == 0  # the drag pinned nothing


# The items drawn as pictures on the map: each sprite's row, place and picture (its PNG's bytes, base64).
SPRITES = """() => (document.querySelector('.lem-plot').layout.images || [])
  .filter((im) => String(im.name || '').startsWith('sprite '))
  .map((im) => ({row: Number(im.name.slice(7)), x: im.x, y: im.y, png: im.source.split(',')[1]}))"""


def test_zoomed_in_far_enough_the_items_are_drawn_as_their_pictures(page, app_url, runs_dir):
    """The Projector's sprite mode: zoomed onto a corner of the map holding at most 150 points, each point in view
    carries its own picture (pixel-equal to the data) at its place; zoomed out again, the pictures go."""
    import base64
    import io

    from PIL import Image

    open_explore(page, app_url)
    assert page.evaluate(SPRITES) == []  # 360 points in view: dots only
    g = page.evaluate(GEOMETRY)
    proj = projector(runs_dir, g)
    xy = proj.embedding_
    centre = np.median(xy, axis=0)
    half = 0.25 * np.ptp(xy, axis=0)
    inside = np.flatnonzero((np.abs(xy - centre) <= half).all(axis=1))
    assert 0 < len(inside) <= 150
    view = [[float(centre[d] - half[d]), float(centre[d] + half[d])] for d in (0, 1)]  # x and y ranges
    page.evaluate("([x, y]) => Plotly.relayout(document.querySelector('.lem-plot'),"
                  " {'xaxis.range': x, 'yaxis.range': y})", view)  # fmt: skip
    page.wait_for_function("(n) => document.querySelector('.lem').dataset.sprites === String(n)", arg=len(inside))
    sprites = page.evaluate(SPRITES)
    ds = load_dataset(rf.load_data_config(runs_dir / E2E_RUN))
    assert sorted(s["row"] for s in sprites) == sorted(inside.tolist())  # the map's rows are the test items
    for s in sprites[:10]:
        np.testing.assert_allclose([s["x"], s["y"]], xy[s["row"]], atol=1e-5)
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(s["png"]))).convert("L"), dtype=int)
        assert np.abs(shown - np.round(ds.x_test[s["row"]].numpy()[0] * 255)).max() <= 1
    wait_idle(page)
    shot(page, "mapview-sprites")
    page.evaluate("() => Plotly.relayout(document.querySelector('.lem-plot'), {'xaxis.autorange': true,"
                  " 'yaxis.autorange': true})")  # fmt: skip
    page.wait_for_function("() => document.querySelector('.lem').dataset.sprites === '0'")
    assert page.evaluate(SPRITES) == []
