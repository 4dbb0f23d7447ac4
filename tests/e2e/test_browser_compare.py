"""The Compare page in a real browser: pointing at an item on one run's map rings the same item on the other's."""

from __future__ import annotations

import shutil

import pytest
from browser import shot, wait_idle

SECOND = "e2e-compare-link"

# Where item ``row`` sits on the chart keyed ``key``, in pixels of the page (Plotly's own axes), and the ring's.
PLACE = """([key, row]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const t = gd._fullData[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const i = Array.from(t.customdata).indexOf(row);
  const box = gd.getBoundingClientRect();
  const ring = gd.querySelector('.le-link-ring');
  const rb = ring && ring.style.display !== 'none' ? ring.getBoundingClientRect() : null;
  return {x: box.left + xa._offset + xa.l2p(t.x[i]), y: box.top + ya._offset + ya.l2p(t.y[i]),
          ring: rb && {x: rb.left + rb.width / 2, y: rb.top + rb.height / 2, row: Number(ring.dataset.row)}};
}"""


@pytest.fixture
def second_run(runs_dir, small_run):
    run = small_run(runs_dir, SECOND, latent_dim=3, hidden=(32,), epochs=4)
    yield run
    shutil.rmtree(run, ignore_errors=True)


def test_pointing_at_an_item_on_one_map_rings_it_on_the_other(page, app_url, second_run):
    page.goto(f"{app_url}/compare")
    wait_idle(page)
    for side in ("A", "B"):
        page.locator(f".st-key-compare_chart_{side} .js-plotly-plot").wait_for()
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .scatterlayer, .js-plotly-plot canvas')"
                           ".length >= 2")  # fmt: skip
    wait_idle(page)
    rows = page.evaluate("() => Array.from(document.querySelector('.st-key-compare_chart_A .js-plotly-plot')"
                         "._fullData[0].customdata).slice(0, 40)")  # fmt: skip
    ringed = 0
    for row in rows[::8]:  # several items, each pointed at on A
        at = page.evaluate(PLACE, ["compare_chart_A", row])
        page.mouse.move(at["x"], at["y"])
        try:
            page.wait_for_function(
                "r => document.querySelector('.st-key-compare_chart_B .le-link-ring')?.dataset.row === String(r)",
                arg=row,
                timeout=3000,
            )
        except Exception:  # another item drawn over this one took the hover: Plotly rings what it hovers
            continue
        there = page.evaluate(PLACE, ["compare_chart_B", row])
        assert there["ring"]["row"] == row
        assert abs(there["ring"]["x"] - there["x"]) < 2 and abs(there["ring"]["y"] - there["y"]) < 2
        ringed += 1
    assert ringed >= 3, "pointing at items on A did not ring them on B"
    shot(page, "compare-linked-hover")
    page.mouse.move(5, 5)  # off the map: the ring goes
    page.wait_for_function("() => document.querySelector('.st-key-compare_chart_B .le-link-ring')?.style.display"
                           " === 'none'")  # fmt: skip
