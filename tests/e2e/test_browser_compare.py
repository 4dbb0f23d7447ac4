"""The Compare page in a real browser: pointing at an item on one run's map rings the same item on the other's."""

from __future__ import annotations

import shutil

import pytest
from browser import E2E_RUN, selected_run, shot, wait_idle

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


# The pictures the component drew last over a chart: each canvas's RGBA bytes, where it decoded and on which map.
BOTH = """(key) => {
  const panel = document.querySelector(`.st-key-${key} .le-both`);
  if (!panel || panel.style.display === 'none') return null;
  const pics = Array.from(panel.querySelectorAll('canvas')).map(c => ({w: c.width, h: c.height,
    rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}));
  return {side: panel.dataset.side, x: Number(panel.dataset.x), y: Number(panel.dataset.y),
          draws: Number(panel.dataset.draws), pics, captions: Array.from(panel.querySelectorAll('figcaption'),
          f => f.textContent)};
}"""
# A page pixel at fractions (fx, fy) of chart ``key``'s plot area.
SPOT = """([key, fx, fy]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return {x: r.left + xa._offset + fx * xa._length, y: r.top + ya._offset + fy * ya._length};
}"""


def test_pointing_anywhere_decodes_the_spot_through_both_runs_in_the_browser(page, app_url, runs_dir, second_run):
    """A spot on either map is decoded by that run at its PCA map's inverse and by the other run at that code carried
    across by the least-squares map fitted on both runs' training codes, as torch decodes them (within 1/255)."""
    import numpy as np

    from ui import cache
    from vae.analysis.compare import MAP_ITEMS, fit_linear_map
    from vae.projection.sequence import pca_plane
    from vae.runs import folder as rf
    from vae.web import decoder as webdecoder

    run_a, run_b = runs_dir / E2E_RUN, second_run
    models = [rf.load_model(r) for r in (run_a, run_b)]

    def codes(run, split, n):
        return cache.latent_means(str(run), rf.checkpoint_id(run), split, n)[0]

    plane_a = pca_plane(codes(run_a, "test", None))  # the page's default: every test item
    plane_b = pca_plane(codes(run_b, "test", None)).turned_onto(plane_a.layout)
    fit_a, fit_b = codes(run_a, "train", MAP_ITEMS), codes(run_b, "train", MAP_ITEMS)
    across = (fit_linear_map(fit_a, fit_b), fit_linear_map(fit_b, fit_a))

    page.goto(f"{app_url}/compare?run={E2E_RUN}&compare_b={SECOND}")
    wait_idle(page)
    assert selected_run(page) == E2E_RUN
    for side in ("A", "B"):
        page.locator(f".st-key-compare_chart_{side} .js-plotly-plot").wait_for()
    wait_idle(page)
    for k, (side, plane) in enumerate((("A", plane_a), ("B", plane_b))):
        key = f"compare_chart_{side}"
        for fx, fy in ((0.3, 0.7), (0.75, 0.4)):
            before = (page.evaluate(BOTH, key) or {}).get("draws", 0)
            at = page.evaluate(SPOT, [key, fx, fy])
            page.mouse.move(at["x"], at["y"])
            page.wait_for_function(f"(n) => ({BOTH})('{key}')?.draws > n", arg=before)
            shown = page.evaluate(BOTH, key)
            assert shown["side"] == side and shown["captions"][k].endswith("here")
            assert "linear map" in shown["captions"][1 - k]
            here = plane.inverse(np.array([shown["x"], shown["y"]]))
            zs = [here, across[k](here)] if k == 0 else [across[k](here), here]
            for model, z, pic in zip(models, zs, shown["pics"], strict=True):
                want = webdecoder.expected_pixels(model, np.asarray(z, dtype=np.float32)[None, :])[0]  # (C, H, W)
                got = np.asarray(pic["rgba"], dtype=np.uint8).reshape(pic["h"], pic["w"], 4)[..., : want.shape[0]]
                assert np.abs(got.transpose(2, 0, 1).astype(int) - want.astype(int)).max() <= 1
        shot(page, f"compare-decoded-through-both-{side}")
    page.mouse.move(5, 5)  # off the maps: the pictures go
    page.wait_for_function(f"() => ({BOTH})('compare_chart_B') === null")
