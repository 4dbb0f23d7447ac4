"""A large map's points drawn by the map's own WebGL layer (ui/mapview/points.js) in a real browser: every point at
its place in its label's colour, the item under the pointer found, a box selection holding exactly the points inside
it, a pan that moves the picture with the axes and draws it afresh at rest.

A server of this module's own takes the layer from 100 points (``$LATENT_EXPLORER_POINTS_LAYER_AT``; the app's
default is 5,000), so the digits run's 360-point test map goes through it; and its maps carry their items' pixels
up to 100 items only (``$LATENT_EXPLORER_PICTURES_UP_TO``; the app's default is 10,000), so the page asks the server
for the pictures it shows (ui/served.py), as on a map of 737,280 sprites.
"""

from __future__ import annotations

import os
import re
from unittest import mock

import numpy as np
import pytest
from browser import E2E_RUN, serving, shot, wait_idle

from vae.data import load_dataset
from vae.runs import folder as rf

LAYER_AT = 100
PICTURES_UP_TO = 100
DRAWN = """() => { const gd = document.querySelector('.lem-plot');
  return !!(gd && gd.dataset.layerDraws && document.querySelector('.lem').dataset.map); }"""
# The map as the component holds it: each map point's data place, row and label, where it lies on the page, and
# the layer's pixels (un-premultiplied RGBA, read through a 2-D canvas) at those places.
STATE = """() => {
  const s = document.querySelector('.lem').parentElement.__latentMap, gd = s.plot;
  gd.scrollIntoView({block: 'center', behavior: 'instant'});
  const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const glc = gd.querySelector('.lem-layer canvas'), copy = document.createElement('canvas');
  [copy.width, copy.height] = [glc.width, glc.height];
  const ctx = copy.getContext('2d'); ctx.drawImage(glc, 0, 0);
  const ratio = glc.width / xa._length, n = s.map.n, rgba = [];
  const px = [], py = [];
  for (let k = 0; k < n; k++) {
    const [u, v] = [xa.l2p(s.map.x[k]), ya.l2p(s.map.y[k])];
    px.push(r.left + xa._offset + u); py.push(r.top + ya._offset + v);
    const inside = u >= 0 && v >= 0 && u < xa._length && v < ya._length;
    rgba.push(inside ? Array.from(ctx.getImageData(Math.floor(u * ratio), Math.floor(v * ratio), 1, 1).data) : null);
  }
  return {n, x: Array.from(s.map.x), y: Array.from(s.map.y), rows: Array.from(s.map.rows),
          category: Array.from(s.map.category), colours: s.map.categories.map((c) => c.colour), px, py, rgba,
          opacity: s.layer.opacity, traced: gd._fullData[0].x.filter((v) => v !== null).length,
          layer: Number(gd.dataset.layer),
          draws: Number(gd.dataset.layerDraws), range: [xa.range.slice(), ya.range.slice()],
          area: [r.left + xa._offset, r.top + ya._offset, xa._length, ya._length]};
}"""


# The layer's alpha at plot-area positions (CSS px from its top-left corner).
ALPHA = """(spots) => { const c = document.querySelector('.lem-layer canvas'), d = document.createElement('canvas');
  [d.width, d.height] = [c.width, c.height]; const ctx = d.getContext('2d'); ctx.drawImage(c, 0, 0);
  const ratio = c.width / c.getBoundingClientRect().width;
  return spots.map(([u, v]) => ctx.getImageData(Math.floor(u * ratio), Math.floor(v * ratio), 1, 1).data[3]); }"""


@pytest.fixture(scope="module")
def layer_url(runs_dir):
    settings = {"LATENT_EXPLORER_POINTS_LAYER_AT": str(LAYER_AT), "LATENT_EXPLORER_PICTURES_UP_TO": str(PICTURES_UP_TO)}
    with mock.patch.dict(os.environ, settings):
        with serving(runs_dir) as url:  # the server reads the setting from the environment it starts with
            yield url


@pytest.fixture
def explore(page, layer_url):
    """Explore's PCA map of the digits run's test items, drawn by the layer, in a fresh browser context."""
    page.set_default_timeout(60_000)
    page.goto(f"{layer_url}/explore?run={E2E_RUN}&explore_method=PCA")
    page.wait_for_function(DRAWN, timeout=90_000)
    wait_idle(page)
    return page


def rgb(colour: str) -> np.ndarray:
    """A '#rrggbb' or 'rgb(r, g, b)' colour as three numbers."""
    if colour.startswith("#"):
        return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.array([float(v) for v in re.findall(r"[\d.]+", colour)[:3]])


def label_counts(page) -> dict[str, int]:
    """The selection's label counts as the page writes them under the map ("Label counts: 3: 12, 7: 4.")."""
    caption = page.get_by_text("Label counts:")
    caption.wait_for(timeout=30_000)
    wait_idle(page)
    text = caption.inner_text().removeprefix("Label counts:")
    return {name: int(count.replace(",", "")) for name, count in re.findall(r"(\S+): ([\d,]+)", text)}


def lonely(state: dict, far: float = 8.0) -> list[int]:
    """Map points with no other point within ``far`` px on the page, inside the plot area."""
    p = np.column_stack([state["px"], state["py"]])
    d = np.linalg.norm(p[:, None] - p[None], axis=2) + np.eye(len(p)) * 1e9
    inside = np.array([c is not None for c in state["rgba"]])
    return [k for k in np.flatnonzero((d.min(axis=1) > far) & inside)]


def test_the_layer_draws_every_point_at_its_place_in_its_labels_colour(explore):
    state = explore.evaluate(STATE)
    shot(explore, "explore-points-layer")
    assert state["layer"] == state["n"] == 360 and state["traced"] == 0  # the layer's points; Plotly's trace empty
    alone = lonely(state)
    assert len(alone) >= 20
    for k in alone:  # a point with no neighbour over it: its label's colour at the opacity the map uses
        r, g, b, a = state["rgba"][k]
        colour = rgb(state["colours"][state["category"][k]])
        assert np.abs(np.array([r, g, b]) - colour).max() <= 3, (k, state["rgba"][k], colour)
        assert abs(a - 255 * state["opacity"]) <= 3
    # and nothing where no point is: the layer is clear there, over Plotly's background
    left, top, w, h = state["area"]
    p = np.column_stack([state["px"], state["py"]])
    spots = [(u, v) for u in np.linspace(left + 5, left + w - 5, 12) for v in np.linspace(top + 5, top + h - 5, 12)]
    clear = [(u - left, v - top) for u, v in spots if np.linalg.norm(p - (u, v), axis=1).min() > 10][:20]
    assert len(clear) >= 5
    assert explore.evaluate(ALPHA, clear) == [0] * len(clear)


# The picture under "Item" as the page drew it: its grey levels (the red channel), row by row.
ITEM_PICTURE = """() => { const c = document.querySelector('.lem-item');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return {w: c.width, h: c.height, grey: Array.from({length: c.width * c.height}, (_, i) => d[4 * i])}; }"""


def test_pointing_at_a_point_of_the_layer_shows_that_items_whole_picture_asked_of_the_server(explore, runs_dir,
                                                                                            layer_url):  # fmt: skip
    """The map carries no pixels (360 items, more than this server's 100): each item pointed at is named at once
    and its picture, asked of the server, is the data's own (pixel-equal); one request per item, none twice. The
    server answers the map on screen only, and sensible rows only: a status and a sentence otherwise. Zoomed in,
    the items drawn as pictures on the map come from the server too."""
    state = explore.evaluate(STATE)
    assert explore.evaluate("() => document.querySelector('.lem').parentElement.__latentMap.map.pixels") is None
    ds = load_dataset(rf.load_data_config(runs_dir / E2E_RUN))
    fetched = []
    explore.on("request", lambda r: fetched.append(r.url) if "/api/items?" in r.url else None)
    for k in lonely(state)[:5]:
        row = state["rows"][k]
        explore.mouse.move(state["px"][k], state["py"][k])
        explore.wait_for_function(
            "(row) => { const d = document.querySelector('.lem').dataset;"
            " return d.item === String(row) && d.itemWhole === '1'; }", arg=row, timeout=5000,
        )  # fmt: skip
        assert explore.locator(".lem-item").is_visible()
        picture = explore.evaluate(ITEM_PICTURE)
        want = np.round(ds.x_test[row].numpy()[0] * 255)
        assert (picture["h"], picture["w"]) == want.shape
        assert np.abs(np.array(picture["grey"]).reshape(want.shape) - want).max() <= 1, row
    explore.mouse.move(state["px"][lonely(state)[0]], state["py"][lonely(state)[0]])  # an item seen before
    explore.wait_for_timeout(300)
    assert len(fetched) == 5  # one request per new item; the page keeps what it got
    items_route_answers(explore.evaluate("() => document.querySelector('.lem').dataset.map"), layer_url)
    sprites_come_from_the_server(explore, state, ds)  # and zoomed in, the items drawn on the map come from it too


def sprites_come_from_the_server(explore, state: dict, ds) -> None:
    """The sprite mode on a map without pixels: zoomed in, the items in view are asked of the server in batches and
    drawn at their places, each pixel-equal to the data."""
    import base64
    import io

    from PIL import Image

    xy = np.column_stack([state["x"], state["y"]])
    centre, half = np.median(xy, axis=0), 0.25 * np.ptp(xy, axis=0)
    inside = np.flatnonzero((np.abs(xy - centre) <= half).all(axis=1))
    assert 0 < len(inside) <= 150
    view = [[float(centre[d] - half[d]), float(centre[d] + half[d])] for d in (0, 1)]
    explore.evaluate("([x, y]) => Plotly.relayout(document.querySelector('.lem-plot'),"
                     " {'xaxis.range': x, 'yaxis.range': y})", view)  # fmt: skip
    explore.wait_for_function("(n) => document.querySelector('.lem').dataset.sprites === String(n)", arg=len(inside))
    sprites = explore.evaluate("""() => (document.querySelector('.lem-plot').layout.images || [])
      .filter((im) => String(im.name || '').startsWith('sprite '))
      .map((im) => ({row: Number(im.name.slice(7)), png: im.source.split(',')[1]}))""")
    assert sorted(s["row"] for s in sprites) == sorted(np.array(state["rows"])[inside].tolist())
    for s in sprites[:10]:
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(s["png"]))).convert("L"), dtype=int)
        assert np.abs(shown - np.round(ds.x_test[s["row"]].numpy()[0] * 255)).max() <= 1
    shot(explore, "explore-points-layer-sprites")


def items_route_answers(the_map: str, layer_url: str) -> None:
    """The items' route of the served app (ui/served.py): a map no page offered, bad rows and too many rows get a
    status and a sentence, never a traceback; the map on screen's rows get their pixels."""
    import urllib.error
    import urllib.parse
    import urllib.request

    def ask(map_id, rows):
        query = urllib.parse.urlencode({"map": map_id, "rows": rows})
        try:
            with urllib.request.urlopen(f"{layer_url}/api/items?{query}", timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, body = ask(the_map, "0,1,2")
    assert status == 200 and np.frombuffer(body[:16], "<u4").tolist() == [3, 1, 8, 8] and len(body) == 16 + 3 * 64
    for map_id, rows, want in ((the_map + "x", "0", 404), ("../../etc/passwd", "0", 404), (the_map, "", 400),
                               (the_map, "-1", 400), (the_map, "1;2", 400), (the_map, "360", 400),
                               (the_map, ",".join(["0"] * 65), 400)):  # fmt: skip
        status, body = ask(map_id, rows)
        assert status == want and b"Traceback" not in body and body.strip(), (map_id, rows, body)


def test_a_box_drawn_with_the_select_tool_selects_exactly_the_points_inside_it(explore):
    state = explore.evaluate(STATE)
    left, top, w, h = state["area"]
    (xr, yr), x, y = state["range"], np.array(state["x"]), np.array(state["y"])

    def box(a, b, grow=0.0):  # a box's points, the box grown by ``grow`` of the ranges on every side
        x0, y0, x1, y1 = left + a * w, top + b * h, left + (a + 0.3) * w, top + (b + 0.35) * h
        bx = sorted(xr[0] + (np.array([x0, x1]) - left) / w * (xr[1] - xr[0]))  # in data units (y grows upwards)
        by = sorted(yr[1] - (np.array([y0, y1]) - top) / h * (yr[1] - yr[0]))
        gx, gy = grow * (xr[1] - xr[0]), grow * (yr[1] - yr[0])
        inside = (x >= bx[0] - gx) & (x <= bx[1] + gx) & (y >= by[0] - gy) & (y <= by[1] + gy)
        return (x0, y0, x1, y1), inside

    # a box whose edges pass clear of every point (by 0.3 % of the view: a pixel's rounding cannot matter)
    tries = [(a, b) for a in np.linspace(0.2, 0.4, 21) for b in np.linspace(0.2, 0.4, 21)]
    a, b = next(((a, b) for a, b in tries if (box(a, b, 0.003)[1] == box(a, b, -0.003)[1]).all()), (None, None))
    assert a is not None, "no box whose edges pass clear of the points"
    (x0, y0, x1, y1), inside = box(a, b)
    assert inside.sum() >= 10
    explore.locator('.modebar-btn[data-val="select"]').first.click()
    explore.mouse.move(x0, y0)
    explore.mouse.down()
    for i in range(1, 11):
        explore.mouse.move(x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
    explore.mouse.up()
    shown = label_counts(explore)  # a box dragged: a selection, not a click that pins a spot
    assert "pin=" not in explore.url and not explore.get_by_text("Decoded map point", exact=True).count()
    labels = np.array(state["category"])[inside]
    names = [str(i) for i in range(10)]  # digits: label i is named "i"
    assert shown == {names[c]: int((labels == c).sum()) for c in np.unique(labels)}
    # the points outside the box fade (as Plotly fades a trace's), those inside stay; "Clear selection" ends it
    assert explore.evaluate("() => document.querySelector('.lem-plot').dataset.layerChosen") == str(inside.sum())
    faded = explore.evaluate(STATE)
    alone = lonely(faded)
    alpha = {bool(inside[k]): faded["rgba"][k][3] for k in alone}
    assert abs(alpha[True] - 255 * faded["opacity"]) <= 3 and abs(alpha[False] - 0.2 * 255 * faded["opacity"]) <= 3
    explore.get_by_role("button", name="Clear selection").click()
    explore.wait_for_function("() => !document.querySelector('.lem-plot').dataset.layerChosen")
    wait_idle(explore)
    cleared = explore.evaluate(STATE)
    assert all(abs(cleared["rgba"][k][3] - 255 * cleared["opacity"]) <= 3 for k in lonely(cleared))


def test_a_pan_moves_the_picture_with_the_axes_and_draws_it_afresh_at_rest(explore):
    before = explore.evaluate(STATE)
    left, top, w, h = before["area"]
    explore.mouse.move(left + w / 2, top + h / 2)
    explore.mouse.down()
    for i in range(1, 16):
        explore.mouse.move(left + w / 2 + 6 * i, top + h / 2 + 4 * i)
    moved = explore.evaluate("() => document.querySelector('.lem-layer canvas').style.transform")
    explore.mouse.up()
    assert moved.startswith("translate(") and "scale(1, 1)" in moved  # the last picture moved while the pan ran
    explore.wait_for_function(
        "(n) => Number(document.querySelector('.lem-plot').dataset.layerDraws) > n && "
        "!document.querySelector('.lem-layer canvas').style.transform",
        arg=before["draws"],
    )
    after = explore.evaluate(STATE)
    assert after["range"][0][0] < before["range"][0][0] and after["range"][1][0] > before["range"][1][0]
    for k in lonely(after)[:20]:  # drawn afresh: each point at its new place, in its colour
        colour = rgb(after["colours"][after["category"][k]])
        assert np.abs(np.array(after["rgba"][k][:3]) - colour).max() <= 3, (k, after["rgba"][k], colour)


def test_a_number_column_colours_the_layers_points_along_its_scale_with_a_colour_bar(page, layer_url):
    from ui.mapview.columns import VIRIDIS

    page.goto(f"{layer_url}/explore?run={E2E_RUN}&explore_method=PCA&explore_colour=reconstruction+error")
    page.wait_for_function(DRAWN, timeout=90_000)
    page.wait_for_function("() => document.querySelector('.lem').dataset.column === 'reconstruction error'")
    wait_idle(page)
    page.wait_for_function(DRAWN)
    state = page.evaluate(STATE)
    column = page.evaluate("""() => { const s = document.querySelector('.lem').parentElement.__latentMap;
      return {values: Array.from(s.column.values), range: s.column.range}; }""")
    assert page.locator(".colorbar").count() == 1  # the bar Plotly draws from the points trace's two colours
    stops = np.array([t for t, _ in VIRIDIS])
    colours = np.array([rgb(c) for _, c in VIRIDIS])
    lo, hi = column["range"]
    for k in lonely(state)[:20]:
        t = np.clip((column["values"][state["rows"][k]] - lo) / (hi - lo), 0, 1)
        expected = np.array([np.interp(t, stops, colours[:, ch]) for ch in range(3)])
        assert np.abs(np.array(state["rgba"][k][:3]) - expected).max() <= 6, (k, state["rgba"][k], expected)


def test_a_lasso_selects_exactly_the_points_inside_it(explore):
    """A triangle drawn with the lasso tool: the label counts are those of the points inside it (a half-plane test
    here, the even-odd rule in the page), with no point within 0.3 % of the view of its edges."""
    state = explore.evaluate(STATE)
    left, top, w, h = state["area"]
    (xr, yr), pts = state["range"], np.column_stack([state["x"], state["y"]])

    def data(px, py):  # a page position in data units (y grows upwards)
        return xr[0] + (px - left) / w * (xr[1] - xr[0]), yr[1] - (py - top) / h * (yr[1] - yr[0])

    def triangle(a, b):  # its corners on the page and in data units
        corners = [(left + a * w, top + b * h), (left + (a + 0.4) * w, top + (b + 0.05) * h),
                   (left + (a + 0.15) * w, top + (b + 0.45) * h)]  # fmt: skip
        return corners, np.array([data(*c) for c in corners])

    def inside_and_gap(tri):
        scale = np.array([xr[1] - xr[0], yr[1] - yr[0]])
        p, t = pts / scale, tri / scale  # in fractions of the view, so that a gap is one in both directions
        sides, gaps = [], []
        for i in range(3):
            a, b = t[i], t[(i + 1) % 3]
            edge = b - a
            sides.append(np.sign(edge[0] * (p[:, 1] - a[1]) - edge[1] * (p[:, 0] - a[0])))
            s = np.clip(((p - a) @ edge) / (edge @ edge), 0, 1)
            gaps.append(np.linalg.norm(p - (a + s[:, None] * edge), axis=1))
        sides = np.array(sides)
        return (np.all(sides > 0, axis=0) | np.all(sides < 0, axis=0)), np.min(gaps, axis=0).min()

    tries = [(a, b) for a in np.linspace(0.15, 0.4, 11) for b in np.linspace(0.15, 0.4, 11)]
    for a, b in tries:
        corners, tri = triangle(a, b)
        inside, gap = inside_and_gap(tri)
        if gap > 0.003 and inside.sum() >= 5:
            break
    else:
        pytest.fail("no triangle whose edges pass clear of the points")
    explore.locator('.modebar-btn[data-val="lasso"]').first.click()
    explore.mouse.move(*corners[0])
    explore.mouse.down()
    for i in range(3):
        (x0, y0), (x1, y1) = corners[i], corners[(i + 1) % 3]
        for j in range(1, 13):
            explore.mouse.move(x0 + (x1 - x0) * j / 12, y0 + (y1 - y0) * j / 12)
    explore.mouse.up()
    shown = label_counts(explore)  # the lasso ends where it began: a selection, not a click that pins that spot
    assert "pin=" not in explore.url and not explore.get_by_text("Decoded map point", exact=True).count()
    labels = np.array(state["category"])[inside]
    assert shown == {str(c): int((labels == c).sum()) for c in np.unique(labels)}  # digits: label i is named "i"
    assert explore.evaluate("() => document.querySelector('.lem-plot').dataset.layerChosen") == str(inside.sum())
