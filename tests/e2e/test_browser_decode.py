"""The Decode page in a real browser, decoding on the server: a slider step redraws the decoded image;
Random and Reset work. (In-browser decoding, the default: test_browser_live_decode.py.)

Also measures (never asserts) slider step -> new image latency over 20 ArrowRight presses; the
numbers are printed and written to artifacts/e2e/decode-latency.txt.
"""

from __future__ import annotations

import statistics

from browser import ARTIFACTS, E2E_RUN, choose, selected_run, shot, wait_idle

DECODED = 'img[alt="decoded image"]'
SLIDERS = '[data-testid="stMain"] [class*="st-key-decode_dim_"] input[type="range"]'  # the latent dimensions' sliders
PRESSES = 20

# Browser-side probe: when each ArrowRight went down, when the decoded image's src changed, and
# when the new image finished loading (all on the page's performance.now() clock).
PROBE = """() => {
  const lat = (window.__lat = {keys: [], changes: [], loads: []});
  const sel = 'img[alt="decoded image"]';
  let last = document.querySelector(sel)?.src;
  document.addEventListener('keydown', (e) => { if (e.key === 'ArrowRight') lat.keys.push(performance.now()); }, true);
  new MutationObserver(() => {
    const img = document.querySelector(sel);
    if (!img || img.src === last) return;
    last = img.src;
    lat.changes.push(performance.now());
    const loaded = () => lat.loads.push(performance.now());
    if (img.complete && img.naturalWidth) loaded(); else img.addEventListener('load', loaded, {once: true});
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def decoded_src(page) -> str:
    return page.locator(DECODED).get_attribute("src")


def wait_src_change(page, old: str) -> str:
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); return i && i.src && i.src !== old && i.complete; }",
        arg=[DECODED, page.evaluate("(s) => new URL(s, location.href).href", old)],
    )
    return decoded_src(page)


def wait_images(page) -> None:
    """Wait until Streamlit is idle and every picture on the page has loaded (for honest screenshots)."""
    wait_idle(page)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMain] img')].every(i => i.complete)")


def open_decode(page, app_url) -> None:
    """The Decode page with in-browser decoding switched off: Streamlit sliders, decoded on the server."""
    page.goto(app_url)  # through the home page: the app script (and its run picker) runs first
    wait_idle(page)
    page.get_by_role("heading", name="Latent Explorer").wait_for()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Decode", exact=True).click()
    toggle = page.get_by_role("switch", name="Decode in the browser while dragging")
    toggle.wait_for(state="attached")
    assert toggle.is_checked()  # in-browser decoding is the default
    page.get_by_text("Decode in the browser while dragging").click()
    page.locator(DECODED).wait_for()
    wait_idle(page)
    assert not toggle.is_checked()
    assert page.url.split("?")[0].endswith("/decode")  # the point follows in the query (?z=)
    assert selected_run(page) == E2E_RUN


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def test_slider_step_redraws_the_decoded_image(page, app_url):
    open_decode(page, app_url)
    sliders = page.locator(SLIDERS)
    assert sliders.count() == 4
    img = page.locator(DECODED)
    assert img.evaluate("i => i.naturalWidth") >= 200  # 8x8 digits are enlarged, not a speck
    wait_images(page)
    shot(page, "decode-before")
    before = decoded_src(page)
    thumb = sliders.first
    thumb.focus()
    page.keyboard.press("ArrowRight")
    after = wait_src_change(page, before)
    assert after != before
    assert float(thumb.input_value()) == 0.05
    page.keyboard.press("End")  # a step you can see: the most informative dimension to +3
    wait_src_change(page, after)
    assert float(thumb.input_value()) == 3.0
    wait_images(page)
    shot(page, "decode-after")
    grid = page.locator('img[alt="traversal grid"]')
    assert grid.evaluate("i => i.naturalWidth") >= 9 * 8 * 4  # nine columns of enlarged digits
    grid.screenshot(path=str(ARTIFACTS / "decode-traversal.png"))


def test_random_and_reset(page, app_url):
    open_decode(page, app_url)
    start = decoded_src(page)
    page.get_by_role("button", name="Random").click()
    wait_src_change(page, start)
    wait_images(page)
    shot(page, "decode-random")
    page.get_by_role("button", name="Reset").click()
    page.wait_for_function(
        "([sel, want]) => document.querySelector(sel)?.getAttribute('src') === want", arg=[DECODED, start]
    )
    assert all(float(v) == 0.0 for v in page.locator(SLIDERS).evaluate_all("s => s.map(e => e.value)"))


def test_start_from_a_data_item(page, app_url):
    open_decode(page, app_url)
    page.get_by_text("Data item").click()
    page.get_by_text("Label:").wait_for()
    wait_images(page)
    page.wait_for_function(  # decoded, the test item, the grid (the prior's samples below are another section)
        "() => [...document.querySelectorAll('[data-testid=\"stMain\"] img')]"
        ".filter((i) => !i.closest('.st-key-decode_prior')).length === 3"
    )
    values = page.locator(SLIDERS).evaluate_all("s => s.map(e => Number(e.value))")
    assert any(v != 0.0 for v in values)
    shot(page, "decode-item")


def test_measure_slider_latency(page, app_url):
    """Slider step -> new decoded image, in the browser; printed, not asserted."""
    open_decode(page, app_url)
    page.evaluate(PROBE)
    thumb = page.locator(SLIDERS).first
    thumb.focus()
    for i in range(PRESSES):
        page.keyboard.press("ArrowRight")  # one step at a time: wait for its image before the next
        page.wait_for_function(f"window.__lat.loads.length >= {i + 1}")
    lat = page.evaluate("window.__lat")
    src = [c - k for k, c in zip(lat["keys"], lat["changes"], strict=True)]
    shown = [d - k for k, d in zip(lat["keys"], lat["loads"], strict=True)]
    lines = [f"Decode page, slider step -> new image over {PRESSES} ArrowRight presses (ms):"]
    for name, xs in (("src changed", src), ("image loaded", shown)):
        lines.append(
            f"  {name:12s}  p50 {statistics.median(xs):6.1f}  p95 {percentile(xs, 0.95):6.1f}  "
            f"min {min(xs):6.1f}  max {max(xs):6.1f}"
        )
    report = "\n".join(lines)
    print("\n" + report)
    (ARTIFACTS / "decode-latency.txt").write_text(report + "\n")


def test_a_test_item_is_picked_by_its_picture_from_a_table_filtered_by_label(page, app_url, runs_dir):
    """Decode's item picker: "Browse the test items by picture", the label filter at 7, a click on the third row's
    box: the number box shows that item (the third test digit labelled 7), its label is 7, and the sliders hold its
    posterior mean."""
    import numpy as np

    from vae.data import load_dataset
    from vae.runs import folder as rf

    ds = load_dataset(rf.load_data_config(runs_dir / E2E_RUN))
    want = int(np.flatnonzero(ds.y_test.numpy() == 7)[2])
    open_decode(page, app_url)
    page.get_by_text("Data item").click()
    page.get_by_text("Label:").wait_for()
    wait_idle(page)
    page.get_by_text("Browse the test items by picture").click()
    choose(page, page.get_by_role("combobox", name="Label"), "7")
    wait_idle(page)
    table = page.locator('.st-key-decode_browse_table_7 [data-testid="stDataFrame"]')
    table.wait_for()
    page.wait_for_timeout(300)  # the grid draws its rows on a canvas
    box = table.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 48 * 2 + 24)  # the third row's selection box
    page.wait_for_function(
        "(n) => document.querySelector('input[aria-label=\"Test item\"]')?.value === String(n)", arg=want
    )
    page.get_by_text("Label: 7").wait_for()
    wait_images(page)
    mu = rf.load_model(runs_dir / E2E_RUN).embed_split(ds, "test", [want])[0][0]
    shown = page.locator(SLIDERS).evaluate_all(  # (dimension, value): the sliders come in order of their KL
        "s => s.map(e => [Number(e.closest('[class*=\"st-key-decode_dim_\"]').className"
        ".match(/st-key-decode_dim_(\\d+)/)[1]), Number(e.value)])"
    )
    dims, values = np.array(shown).T
    np.testing.assert_allclose(values, np.clip(np.round(mu[dims.astype(int)] / 0.05) * 0.05, -3, 3), atol=0.051)
    shot(page, "decode-item-by-picture")
