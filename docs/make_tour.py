"""Take the README's tour screenshots: every page of the app on a real run, in headless Chromium.

    python docs/make_tour.py RUNS_DIR RUN_NAME

Starts `streamlit run app.py` on 127.0.0.1 with LATENT_EXPLORER_RUNS=RUNS_DIR, visits each page with
RUN_NAME selected, clicks the map once, and writes docs/tour/*.png. Ends the server it started.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from browser import CHROMIUM, CHROMIUM_ARGS, serving, wait_idle  # noqa: E402

OUT = ROOT / "docs" / "tour"


def main(runs: Path, run: str) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with serving(runs) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.set_default_timeout(240_000)
        page.goto(url)
        wait_idle(page)
        picker = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Run")
        picker.click()
        page.get_by_role("option", name=run, exact=True).click()
        wait_idle(page)
        for name, title in [
            ("train", "Train"),
            ("explore", "Explore"),
            ("decode", "Decode"),
            ("interpolate", "Interpolate"),
            ("runs", "Runs"),
        ]:
            page.get_by_role("link", name=title, exact=True).first.click()
            page.wait_for_url(f"**/{name}")
            wait_idle(page)
            if name == "explore":
                page.get_by_text("latent means", exact=False).first.wait_for()
                page.wait_for_function(
                    "() => { const gd = document.querySelector('.js-plotly-plot');"
                    " return !!(gd && gd._fullLayout && gd._fullData.length > 2); }"
                )
                gd = page.locator(".js-plotly-plot").first.bounding_box()
                page.mouse.click(gd["x"] + gd["width"] * 0.35, gd["y"] + gd["height"] * 0.45)
                page.get_by_text(re.compile(r"^(Decoded map point|Label: .+)$")).first.wait_for()
                wait_idle(page)
            if name == "decode":
                page.locator("div.le[data-draws]").wait_for()  # the in-browser decoder has drawn
                page.get_by_role("button", name="Random").click()
                page.mouse.move(5, 5)  # no tooltip over the picture
                wait_idle(page)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(OUT / f"{name}.png"))
            print("wrote", OUT / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
