"""The Decode page's in-browser decoder in real Chromium: dragging a slider or the pad redraws the image
before release, the released point reaches Python, Python's own moves (Random) reach the browser, and the
weights cross the wire once, not on every rerun."""

from __future__ import annotations

import time

from browser import E2E_RUN, selected_run, shot, wait_idle

from vae.runs import folder as rf
from vae.web import decoder as webdecoder

PANEL = "div.le"
IMAGE = "canvas.le-image"
SLIDERS = "input.le-range"  # the component's sliders (open shadow root: Playwright's CSS pierces it)
TRAVERSAL = 'img[alt="traversal grid"]'


def open_live_decode(page, app_url) -> None:
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("heading", name="Latent Explorer").wait_for()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Decode", exact=True).click()
    page.locator(IMAGE).wait_for()
    page.locator(f"{PANEL}[data-draws]").wait_for(timeout=15_000)  # the weights arrived and it drew
    wait_idle(page)
    assert selected_run(page) == E2E_RUN


def draws(page) -> int:
    return int(page.locator(PANEL).get_attribute("data-draws") or 0)


def canvas_png(page) -> str:
    return page.locator(IMAGE).evaluate("c => c.toDataURL()")


def wait_canvas_change(page, old: str, timeout: float = 15.0) -> str:
    """Poll the canvas (inside the component's shadow root, out of reach of document.querySelector)."""
    deadline = time.time() + timeout
    while (new := canvas_png(page)) == old:
        assert time.time() < deadline, "the decoded image did not change"
        time.sleep(0.05)
    return new


def slider_values(page) -> list[float]:
    return page.locator(SLIDERS).evaluate_all("s => s.map(e => Number(e.value))")


def test_dragging_a_slider_redraws_before_release_and_python_gets_the_point(page, app_url):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))  # an exception the page did not catch
    open_live_decode(page, app_url)
    assert page.locator(SLIDERS).count() == 4  # one per latent dimension of the e2e model
    server_sliders = "[class*='st-key-decode_dim_'] [data-testid='stSlider']"
    assert page.locator(server_sliders).count() == 0  # no server sliders beside them
    shot(page, "live-decode-before")
    grid_before = page.locator(TRAVERSAL).get_attribute("src")
    seen, before = {canvas_png(page)}, draws(page)

    box = page.locator(SLIDERS).first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 41):  # about 1.5 s of dragging to the right
        page.mouse.move(x + (box["width"] / 2 - 4) * i / 40, y)
        if i % 8 == 0:
            seen.add(canvas_png(page))
        time.sleep(0.03)
    during = draws(page) - before
    assert page.locator(TRAVERSAL).get_attribute("src") == grid_before  # nothing sent to Python yet
    shot(page, "live-decode-dragging")
    page.mouse.up()

    assert during >= 20, f"only {during} redraws during the drag"
    assert len(seen) >= 5, "the image did not change while the slider moved"
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel)?.getAttribute('src') !== old", arg=[TRAVERSAL, grid_before]
    )  # released: the traversal grid, drawn by Python, follows the new point
    wait_idle(page)
    assert slider_values(page)[0] > 2.5
    assert not errors, errors


def test_random_moves_the_browser_point_and_the_pad_moves_two_dimensions(page, app_url):
    open_live_decode(page, app_url)
    start_png, start_values = canvas_png(page), slider_values(page)
    page.get_by_role("button", name="Random").click()
    wait_canvas_change(page, start_png)
    wait_idle(page)
    random_values = slider_values(page)
    assert random_values != start_values  # Python's new point reached the browser's sliders

    pad = page.locator("canvas.le-pad").bounding_box()
    page.mouse.move(pad["x"] + 10, pad["y"] + pad["height"] - 10)  # bottom left: (-limit, -limit)
    page.mouse.down()
    page.mouse.move(pad["x"] + pad["width"] - 10, pad["y"] + 10, steps=25)  # to the top right
    page.mouse.up()
    wait_idle(page)
    values = slider_values(page)
    x_dim, y_dim = (int(page.get_by_label(f"pad {a} dimension").input_value()) for a in ("horizontal", "vertical"))
    dims = page.locator(SLIDERS).evaluate_all("s => s.map(e => Number(e.dataset.dim))")
    assert values[dims.index(x_dim)] > 2.5 and values[dims.index(y_dim)] > 2.5
    untouched = [i for i, d in enumerate(dims) if d not in (x_dim, y_dim)]
    assert [values[i] for i in untouched] == [random_values[i] for i in untouched]
    shot(page, "live-decode-pad")


def test_weights_cross_the_wire_once(page, app_url, runs_dir):
    """The decoder's bytes come with the first render only; later reruns send the point, not the weights."""
    needle = webdecoder.export_decoder(rf.load_model(runs_dir / E2E_RUN), "any")[-256:]  # the last parameters
    frames: list[bytes] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f if isinstance(f, bytes) else b"")))
    open_live_decode(page, app_url)
    carrying = [f for f in frames if needle in f]
    assert len(carrying) == 1  # the page load carried the weights, once
    frames.clear()
    for _ in range(3):
        old = canvas_png(page)
        page.get_by_role("button", name="Random").click()
        wait_canvas_change(page, old)  # each rerun reached the browser
        wait_idle(page)
    assert frames, "no messages seen after the page load"
    assert not [f for f in frames if needle in f], "a rerun sent the weights again"
