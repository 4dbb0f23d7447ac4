"""Interpolate in a real browser: the decoded strip between two test items, slerp, and a point
decoded on the Explore map used as an endpoint, with the path drawn on that map.
"""

from __future__ import annotations

import contextlib

from browser import shot, wait_idle
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from test_browser_explore import JS_EMPTY, aim, click_and_wait, open_explore, open_home, wait_for_map

# The path's map: the plot with a trace named "path" (the endpoints' σ charts are plots too).
PATH_MAP = ("[...document.querySelectorAll('.js-plotly-plot')]"
            ".find(gd => (gd._fullData || []).some(t => t.name === 'path'))")  # fmt: skip
# The path section is drawn: a plotted map, or the hint that there is none yet.
MAP_OR_HINT = f"""() => !!{PATH_MAP}
  || [...document.querySelectorAll('[data-testid="stAlert"]')].some(a => a.innerText.includes('open Explore'))"""
# Decode's point in the URL (?z=...) is not the zero point.
NONZERO_POINT = """() => { const m = location.search.match(/[?&]z=([^&]*)/);
  return !!m && decodeURIComponent(m[1]).split(',').some(v => Math.abs(parseFloat(v)) > 1e-3); }"""
STRIP = '[data-testid="stImage"]:has-text("steps from A (left) to B (right)") img'


def open_interpolate(page):
    page.get_by_role("link", name="Interpolate").first.click()
    page.get_by_role("heading", name="Decoded path").wait_for()
    wait_idle(page)


def strip_src(page) -> str:
    return page.locator(STRIP).get_attribute("src")


def test_strip_between_two_items_then_from_a_map_point(page, app_url):
    page.set_viewport_size({"width": 1400, "height": 1700})  # the map sits below the strip
    open_home(page, app_url)
    open_interpolate(page)
    page.get_by_text("10 steps from A (left) to B (right), lerp").wait_for()
    strip = page.locator(STRIP)
    page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=strip.element_handle())
    assert strip.evaluate("e => e.naturalWidth") > 9 * strip.evaluate("e => e.naturalHeight")  # one row of 10
    assert page.get_by_role("button", name="Download strip (PNG)").is_visible()
    page.wait_for_function(MAP_OR_HINT)
    shot(page, "interpolate-strip")

    before = strip_src(page)
    page.get_by_text("Spherical (slerp)").click()
    page.get_by_text("10 steps from A (left) to B (right), slerp").wait_for()
    wait_idle(page)
    assert strip_src(page) != before

    # decode a point on the map, then use it as endpoint B: the path is drawn on that map
    open_explore(page, app_url)
    page.get_by_text("PCA", exact=True).click()
    wait_for_map(page, "PCA")
    click_and_wait(page, aim(page, JS_EMPTY), "Decoded map point", "star")
    open_interpolate(page)
    page.get_by_text("Map point").nth(1).click()  # endpoint B's "From" radio
    page.get_by_text("map point (", exact=False).first.wait_for()
    page.get_by_text("path is projected exactly").wait_for()
    page.wait_for_function(f"() => {{ const gd = {PATH_MAP}; return gd && gd._fullData.some("
                           "t => t.name === 'path' && t.x.length === 10); }")  # fmt: skip
    wait_idle(page)
    clouds = f"() => {PATH_MAP}._fullData.filter(t => t.name === 'q(z|x) samples').map(t => t.x.length).join()"
    with contextlib.suppress(PlaywrightTimeout):  # the redraw for B's new source may follow the first idle moment
        page.wait_for_function(f"() => ({clouds})() === '100'", timeout=15_000)
    assert page.evaluate(clouds) == "100"  # endpoint A's q(z|x) (a test item); B is the map point
    shot(page, "interpolate-map-point")


def test_links_reopen_interpolate_endpoints_and_the_decode_point(browser, page, app_url):
    """Interpolate's endpoints, method and steps, and Decode's point, live in the page's URL: a copied link
    opens the same view in a new session."""
    open_home(page, app_url)
    open_interpolate(page)
    field = page.locator(".st-key-interp_index_A input")
    field.fill("5")
    field.press("Enter")
    page.get_by_text("Spherical (slerp)").click()
    page.wait_for_url("**interp_index_A=5*")
    wait_idle(page)
    link = page.url
    assert "interp_method=Spherical" in link and "interp_index_A=5" in link
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other.goto(link)
    other.get_by_text("10 steps from A (left) to B (right), slerp").wait_for(timeout=60_000)
    # the number box shows the link's item (a busy machine can paint the page's text before the box's value)
    expect(other.locator(".st-key-interp_index_A input")).to_have_value("5", timeout=30_000)
    other.context.close()

    page.get_by_role("link", name="Decode").first.click()
    page.get_by_role("heading", name="Decode").wait_for()
    page.get_by_text("Data item", exact=True).click()  # start from a test item's posterior mean
    page.wait_for_function(NONZERO_POINT)  # the URL held the zero point before the click
    wait_idle(page)
    link = page.url
    point = [float(v) for v in link.split("z=")[1].split("&")[0].replace("%2C", ",").split(",")]
    assert any(abs(v) > 1e-3 for v in point)  # not the zero point
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    fresh.goto(link)
    fresh.get_by_role("heading", name="Decode").wait_for(timeout=60_000)
    wait_idle(fresh)
    fresh.wait_for_url("**z=*")
    again = [float(v) for v in fresh.url.split("z=")[1].split("&")[0].replace("%2C", ",").split(",")]
    assert again == point  # the same point, from the link alone
    assert fresh.locator('[data-testid="stException"]').count() == 0
    shot(fresh, "decode-from-link")
    fresh.context.close()
