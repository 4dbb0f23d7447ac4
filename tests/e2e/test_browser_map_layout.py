"""The Explore map fills the page (bounding boxes at three window sizes and at 800 px), and its mode bar offers
no upload to Plotly's cloud: a real Chromium against ``streamlit run``."""

from __future__ import annotations

import pytest
from browser import E2E_RUN, shot, wait_idle

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
