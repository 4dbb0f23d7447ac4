"""Take the README's tour screenshots: every page of the app on a real run, in headless Chromium.

    python docs/make_tour.py RUNS_DIR RUN_NAME

Starts `streamlit run app.py` on 127.0.0.1 with LATENT_EXPLORER_RUNS=RUNS_DIR, visits each page with
RUN_NAME selected, clicks the map once, and writes docs/tour/*.png. Ends the server it started.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.serving import chromium, pick_run, serving, wait_idle  # noqa: E402

OUT = ROOT / "docs" / "tour"


def main(runs: Path, run: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with serving(runs) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.set_default_timeout(240_000)
        page.goto(url)
        wait_idle(page)
        pick_run(page, run)
        for name, title in [
            ("train", "Train"),
            ("explore", "Explore"),
            ("decode", "Decode"),
            ("interpolate", "Interpolate"),
            ("runs", "Runs"),
        ]:
            page.get_by_role("link", name=title, exact=True).first.click()
            page.wait_for_url(f"**/{name}*")  # Decode and Interpolate keep their state in the query
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path, metavar="RUNS_DIR", help="the runs folder the app serves")
    parser.add_argument("run", metavar="RUN_NAME", help="the run to select on every page")
    args = parser.parse_args()
    main(args.runs_dir, args.run)
