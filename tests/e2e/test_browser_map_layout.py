"""The Explore map fills the page (bounding boxes at three window sizes and at 800 px), and its mode bar offers
no upload to Plotly's cloud: a real Chromium against ``streamlit run``."""

from __future__ import annotations

import pytest
from browser import E2E_RUN, display_toggle, shot, wait_idle

PLOT_AREA = """() => {
  const gd = document.querySelector('.lem-plot');
  if (!gd || !gd._fullLayout) return null;
  const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const main = document.querySelector('[data-testid="stMainBlockContainer"]').getBoundingClientRect();
  return {left: r.left + xa._offset, top: r.top + ya._offset, width: xa._length, height: ya._length,
          mainWidth: main.width, mainLeft: main.left, windowHeight: window.innerHeight, scrollY: window.scrollY};
}"""


def map_area(page, width: int, height: int) -> dict:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(page.url)
    wait_idle(page)
    page.wait_for_function(f"() => !!({PLOT_AREA})()", timeout=120_000)
    page.wait_for_timeout(500)  # Plotly's responsive resize settles
    return page.evaluate(PLOT_AREA)


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1440, 900), (1920, 1080)])
def test_the_map_fills_the_main_column_and_most_of_the_window(page, app_url, width, height):
    page.goto(f"{app_url}/explore?run={E2E_RUN}&explore_method=PCA")
    box = map_area(page, width, height)
    shot(page, f"explore-layout-{width}")
    assert box["width"] >= 0.75 * box["mainWidth"], box
    assert box["height"] >= 0.65 * box["windowHeight"], box
    assert box["top"] < box["windowHeight"], box  # it starts within the first screen


def test_under_900_px_the_map_takes_the_whole_column(page, app_url):
    page.goto(f"{app_url}/explore?run={E2E_RUN}&explore_method=PCA")
    box = map_area(page, 800, 900)
    shot(page, "explore-layout-800")
    assert box["width"] >= 0.9 * box["mainWidth"], box


def test_the_mode_bar_has_no_share_button_and_keeps_the_png_download(page, app_url):
    page.goto(f"{app_url}/explore?run={E2E_RUN}&explore_method=PCA")
    map_area(page, 1440, 900)
    page.hover(".lem-plot")
    page.wait_for_selector(".lem-plot .modebar-btn", state="attached")
    titles = page.eval_on_selector_all(".lem-plot .modebar-btn", "bs => bs.map(b => b.getAttribute('data-title'))")
    assert titles and not any("share" in (t or "").lower() or "cloud" in (t or "").lower() for t in titles), titles
    assert any("png" in (t or "").lower() for t in titles), titles


# The points trace's colours as drawn: each drawn point's row, its colour value, the scale and its range.
POINTS = """() => {
  const gd = document.querySelector('.lem-plot');
  const t = gd && gd._fullData && gd._fullData.find((d) => d.name === 'points');
  if (!t || !gd.__lem) return null;
  const m = t.marker;
  return {rows: Array.from(gd.__lem.rows), category: Array.from(gd.__lem.category), names: gd.__lem.names,
          colour: Array.from(m.color), scale: m.colorscale, cmin: m.cmin, cmax: m.cmax, showscale: m.showscale,
          legend: gd._fullData.filter((d) => d.legendgroup === 'category').map((d) => [d.name, d.marker.color]),
          star: gd._fullData.at(-1).x.length};
}"""


def points(page, check: str = "(p) => true") -> dict:
    page.wait_for_function(f"() => {{ const p = ({POINTS})(); return !!p && ({check})(p); }}", timeout=60_000)
    return page.evaluate(POINTS)


def test_a_legend_click_shows_only_that_label_over_the_others_in_grey_and_moves_no_star(page, app_url):
    page.goto(f"{app_url}/explore?run={E2E_RUN}&explore_method=PCA")
    map_area(page, 1440, 900)
    before = points(page)
    assert before["star"] == 0 and not before["showscale"]
    grey = len(before["names"])  # the step scale's last colour: the points not shown
    assert max(before["colour"]) < grey  # every point in its label's colour
    page.locator(".lem-plot .legend .traces").nth(3).click()  # label "3"
    only = points(page, "(p) => p.colour.includes(" + str(grey) + ")")
    label3 = [c == 3 for c in only["category"]]
    assert sum(label3) > 0 and all(label3[-sum(label3) :]), "label 3's points are drawn last, over the rest"
    assert all((c == grey) != is3 for c, is3 in zip(only["colour"], label3, strict=True))
    assert only["star"] == 0  # the click on the legend pinned nothing
    assert [c for _, c in only["legend"]].count(only["legend"][3][1]) == 1  # its entry alone keeps its colour
    shot(page, "explore-only-label-3")
    page.locator(".lem-plot .legend .traces").nth(3).click()  # again: every label
    again = points(page, f"(p) => !p.colour.includes({grey})")
    assert sorted(again["rows"]) == sorted(before["rows"]) and again["star"] == 0


def test_neighbourhood_kept_colours_an_item_with_every_neighbour_kept_as_the_colour_bar_says_for_1(page, app_url):
    page.goto(f"{app_url}/explore?run={E2E_RUN}&explore_method=PCA&explore_colour=neighbourhood+kept")
    map_area(page, 1440, 900)
    p = points(page, "(p) => p.showscale")
    assert p["cmin"] == 0 and p["cmax"] == 1.0 and p["scale"][-1] == [1, "#fde725"]  # a share: yellow at 1
    assert page.get_by_text("yellow (1) all kept").count() == 1  # the help says what the bar shows
    assert all(0 <= c <= 1 for c in p["colour"]) and len(set(p["colour"])) > 3
    bar = page.locator(".lem-plot .colorbar")
    assert bar.count() == 1 and "neighbourhood kept" in (bar.text_content() or "")
    shot(page, "explore-colour-kept")


# The density traces as the page gave them to Plotly, and the legend's label colours.
DENSITIES = """() => {
  const d = document.querySelector('.lem-plot').data;
  return {contours: d.filter((t) => t.type === 'histogram2dcontour').map((t) => ({name: t.name, n: t.x.length,
            colours: t.colorscale ? t.colorscale.map((c) => c[1]) : null, coloring: t.contours.coloring})),
          legend: d.filter((t) => t.legendgroup === 'category').map((t) => [t.name, t.marker.color])};
}"""


def test_one_density_per_label_draws_each_labels_contours_in_its_colour(page, app_url):
    page.goto(f"{app_url}/explore?run={E2E_RUN}&explore_method=PCA")
    map_area(page, 1440, 900)
    display_toggle(page, "Density")
    wait_idle(page)
    page.wait_for_function(f"() => ({DENSITIES})().contours.length === 1")
    assert page.evaluate(DENSITIES)["contours"][0]["n"] == 360  # every test digit, one density
    display_toggle(page, "One density per label")
    wait_idle(page)
    page.wait_for_function(f"() => ({DENSITIES})().contours.length === 10")
    drawn = page.evaluate(DENSITIES)
    assert [c["name"] for c in drawn["contours"]] == [f"density {name}" for name, _ in drawn["legend"]]
    for contour, (_, colour) in zip(drawn["contours"], drawn["legend"], strict=True):
        assert contour["coloring"] == "lines" and set(contour["colours"]) == {colour}  # its label's colour
    assert sum(c["n"] for c in drawn["contours"]) == 360  # each digit in its label's density
    shot(page, "explore-density-per-label")
